"""How odds snapshots get into the hypertable, fastest first, and the COPY every table's rows go through.

The usual case is that none of a batch's snapshots exists yet. Without the day rollup (a licensed server) the
fastest way in is a COPY straight into the hypertable; with it (the Apache build), a COPY into the staging table, a
plain ``INSERT ... SELECT`` from there and the rollup grouped from there too, on the server (about 1.5 times the
rows/s of shipping the batch's columns a second time for the rollup; measured), sent as one round trip with its
savepoint (:data:`INSERT_NEW_SQL`). Either way the insert runs in a savepoint: a redelivered or replayed snapshot
fails it on the unique key, the savepoint is rolled back and ``INSERT ... ON CONFLICT DO NOTHING`` inserts the
others (and rolls up exactly those). The staging table is two,
boards and their prices (:mod:`sinks.odds_stage`), read through a view (:func:`sinks.merge.create_staging_sql`).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from sinks import rollup
from sinks.errors import RowEncodingError
from sinks.merge import ODDS_BOARD_COLUMNS, ODDS_PRICE_COLUMNS, ODDS_STAGES, insert_staged_sql, merge_sql, staging_table
from sinks.odds_stage import StagedOdds
from sinks.tables import COLUMNS

TABLE = "odds_snapshots"
INSERT_STAGED_SQL = insert_staged_sql(TABLE)
MERGE_SQL = merge_sql(TABLE)
SAVEPOINT = "odds_new"


def _insert_new_sql(roll_up: str) -> str:
    """Insert every staged snapshot and roll them up (``roll_up``), in a savepoint: one message of statements, so
    one round trip where a savepoint, the insert, its release and the rollup were four (about 90 us of the client's
    CPU each, measured). The rollup runs before the release: whichever statement fails, the savepoint is there to
    roll back to."""
    return f"SAVEPOINT {SAVEPOINT}; {INSERT_STAGED_SQL}; {roll_up}; RELEASE SAVEPOINT {SAVEPOINT}"


INSERT_NEW_SQL = {
    False: _insert_new_sql(rollup.MERGE_STAGED_SQL),
    True: _insert_new_sql(rollup.MERGE_STAGED_ONE_EACH_SQL),
}
"""By :func:`sinks.rollup.one_each`: the statements that insert and roll up the staged snapshots when none exists."""
UNDO_NEW_SQL = f"ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}"
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def copy_rows(conn: Connection, table: str, records: list[tuple[Any, ...]], *, staged: bool = False) -> None:
    """Binary COPY of rows into a table (or, for every table but the odds, its staging table); a value its column
    cannot hold is bad data. Odds go into their staging tables by :func:`copy_staged`."""
    try:
        target = staging_table(table) if staged else table
        await conn.copy_records_to_table(target, records=records, columns=COLUMNS[table])
    except (TypeError, ValueError, OverflowError) as exc:
        raise RowEncodingError(f"{exc.__class__.__name__}: {exc}") from exc


async def copy_staged(conn: Connection, odds: StagedOdds) -> None:
    """Binary COPY of boards and prices into the two odds staging tables; a value a column cannot hold is bad data."""
    try:
        await conn.copy_records_to_table(ODDS_STAGES[0], records=odds.boards, columns=("board", *ODDS_BOARD_COLUMNS))
        await conn.copy_records_to_table(ODDS_STAGES[1], records=odds.prices, columns=("board", *ODDS_PRICE_COLUMNS))
    except (TypeError, ValueError, OverflowError) as exc:
        raise RowEncodingError(f"{exc.__class__.__name__}: {exc}") from exc


async def _copy_new(conn: Connection, records: list[tuple[Any, ...]]) -> bool:
    """COPY straight into the hypertable, in a savepoint; False (rolled back) when a snapshot exists."""
    try:
        async with conn.transaction():
            await copy_rows(conn, TABLE, records)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def _insert_new(conn: Connection, one_each: bool) -> bool:
    """Insert and roll up every staged snapshot, in a savepoint (:data:`INSERT_NEW_SQL`); False (rolled back) when
    one exists."""
    try:
        await conn.execute(INSERT_NEW_SQL[one_each])
    except asyncpg.UniqueViolationError:
        await conn.execute(UNDO_NEW_SQL)
        return False
    return True


async def write_odds(conn: Connection, odds: StagedOdds, rolled_up: bool) -> int:
    """Insert the snapshots that do not exist yet and roll up exactly those (``rolled_up``: the schema has the rollup
    table, :func:`sinks.rollup.exists`)."""
    if not rolled_up and await _copy_new(conn, odds.table_rows()):
        return len(odds)
    await copy_staged(conn, odds)
    if rolled_up and await _insert_new(conn, rollup.one_each(odds.snapshots())):
        return len(odds)
    inserted = [tuple(r) for r in await conn.fetch(MERGE_SQL)]
    if inserted and rolled_up:
        await rollup.merge(conn, inserted)
    return len(inserted)
