"""Batched, idempotent writes of normalized records to TimescaleDB (asyncpg, binary COPY + one upsert per table).

One batch = one transaction: every table's rows are COPYed into session temp tables, then moved with one
``INSERT ... SELECT ... ON CONFLICT`` per table (the rules: :mod:`sinks.merge`). Rows may arrive before their race:
a placeholder race is created from the race id first. Several versions of one row in a batch are applied in rounds
(:func:`sinks.rows.rounds`), oldest first, each round a COPY and an upsert of its own in the same transaction: the
result is the same as if each version had come in a batch of its own. Odds go in by :mod:`sinks.odds_write`.

Bad rows are bisected out and outages waited out by :class:`sinks.batches.BatchWriter`, which runs every
transaction of this writer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg.exceptions._base import InternalClientError

from runtime.db import LazyPool, wait_out_outage
from runtime.metrics import SinkMetrics
from runtime.pgerrors import DATABASE_ERRORS
from runtime.settings import DatabaseSettings
from schemas import race_ids
from schemas.errors import DatabaseUnavailable
from sinks import payoffs, rollup
from sinks.batches import BatchWriter, WriteResult
from sinks.errors import RowEncodingError
from sinks.merge import PLACEHOLDERS_SQL, create_staging_sql, merge_sql, truncate_staging_sql
from sinks.odds_stage import StagedOdds, split_rows
from sinks.odds_write import TABLE as ODDS
from sinks.odds_write import copy_rows, write_odds
from sinks.ranks import JOIN_SQL, MARK_SQL, UNMATCHED_SQL, UnmatchedRank, joined_races, unmatched_of
from sinks.rows import Row, rounds, rows_of_message, rows_of_record
from sinks.tables import ORDER, RACE_ID_INDEX

__all__ = ["Row", "RowEncodingError", "TimescaleWriter", "WriteResult", "rows_of_message", "rows_of_record"]
MERGE_SQL = {table: merge_sql(table) for table in ORDER}
log = logging.getLogger(__name__)


def placeholder_arrays(race_id_values: Sequence[str]) -> list[list[Any]]:
    """The columns of the placeholder races of race ids, as arrays for :data:`sinks.merge.PLACEHOLDERS_SQL`.

    A race id whose date is not a calendar date is bad data (its row goes to the DLQ, the batch lands).
    """
    races: list[tuple[Any, ...]] = []
    for text in race_id_values:
        try:
            key = race_ids.parse(text)
        except ValueError as exc:
            raise RowEncodingError(f"race id {text[:40]!r}: {exc}") from exc
        races.append((text, key.race_type, key.track, key.race_no, key.day, key.source))
    return [list(column) for column in zip(*races, strict=True)]


def grouped(
    rows: Sequence[Row],
) -> tuple[dict[str, list[tuple[Any, ...]]], StagedOdds | None, list[list[Any]] | None]:
    """The rows' values by table but the odds, the odds as the staging tables take them (None: no odds), and the
    placeholder races of the race ids they reference (None: no reference)."""
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    odds = StagedOdds()
    numbers: set[int] = set()  # a board taken apart by bisection is a row a price, each with the same board
    for row in rows:
        if row.prices is None:
            by_table.setdefault(row.table, []).append(row.values)
            continue
        if row.values[0] not in numbers:
            numbers.add(row.values[0])
            odds.boards.append(row.values)
        odds.prices += row.prices
    loose = by_table.pop(ODDS, None)  # odds rows of the table's columns (a reprocess, a record of one price)
    if loose:
        split_rows(loose, into=odds)
    referenced = {
        values[at]
        for table, values_of in by_table.items()
        if table != "races" and (at := RACE_ID_INDEX.get(table)) is not None
        for values in values_of
    }
    referenced.update(board[2] for board in odds.boards)
    placeholders = placeholder_arrays(sorted(referenced)) if referenced else None
    return by_table, odds if odds.prices else None, placeholders


async def link(
    conn: asyncpg.pool.PoolConnectionProxy, by_table: dict[str, list[tuple[Any, ...]]], unmatched: list[UnmatchedRank]
) -> dict[str, int]:
    """After the rows of a transaction: KSPO ranks joined to their cards (:mod:`sinks.ranks`; the ranks still
    unmatched appended to ``unmatched``) and cycle payoffs attached to their races (:mod:`sinks.payoffs`); the rows
    this changed, per table."""
    written: dict[str, int] = {}
    races = joined_races(by_table, RACE_ID_INDEX)
    if races:
        status = await conn.execute(JOIN_SQL, races)
        written["results"] = int(status.rsplit(" ", 1)[-1])
        unmatched += unmatched_of(await conn.fetch(UNMATCHED_SQL, races))
    days = payoffs.payoff_days(by_table)
    if days:
        status = await conn.execute(payoffs.ATTACH_SQL, days)
        written["races"] = int(status.rsplit(" ", 1)[-1])
    return written


async def init_connection(conn: asyncpg.Connection) -> None:
    """A pool connection's staging tables (session temp tables, emptied at every commit)."""
    for table in ORDER:
        await conn.execute(create_staging_sql(table))


class TimescaleWriter:
    """Writes batches of rows; owns an asyncpg pool whose connections carry the staging tables."""

    def __init__(self, settings: DatabaseSettings, metrics: SinkMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pool = LazyPool(settings, init=init_connection)  # also the landings' (sinks.landings)
        self._batches = BatchWriter(self._transaction, metrics)
        self._unmatched: list[UnmatchedRank] = []
        self._rolled_up: bool | None = None  # whether the schema has the day rollup table (asked once)

    async def start(self) -> None:
        await self.pool.get()

    async def stop(self) -> None:
        await self.pool.close()

    async def write(self, rows: Sequence[Row]) -> WriteResult:
        """Write rows in one transaction; bad rows are bisected out; raises DatabaseUnavailable on an outage."""
        return await self._batches.write(rows)

    async def write_until_done(self, rows: Sequence[Row], max_delay_s: float = 10.0) -> WriteResult:
        """Like :meth:`write`, but waits out database outages (backoff, no drop, no skip)."""
        return await self._batches.write_until_done(rows, max_delay_s)

    def take_unmatched(self) -> list[UnmatchedRank]:
        """The KSPO ranks found unmatched by the committed transactions since the last call (for the DLQ)."""
        found, self._unmatched = self._unmatched, []
        return found

    async def mark_reported(self, ranks: Sequence[UnmatchedRank], max_delay_s: float = 10.0) -> None:
        """Record that these ranks' dead letters were delivered (they are not reported again); waits out a database
        outage as the writes do."""
        if not ranks:
            return

        async def mark() -> None:
            pool = await self.pool.get()
            await pool.execute(MARK_SQL, [r.race_id for r in ranks], [r.racer_id for r in ranks])

        await wait_out_outage(mark, self.settings, f"marking {len(ranks)} reported rank(s)", max_delay_s)

    async def _transaction(self, rows: Sequence[Row]) -> dict[str, int]:
        """One transaction with every row; the rows written per table."""
        pool = await self.pool.get()
        by_table, odds, placeholders = grouped(rows)
        written: dict[str, int] | None = None
        unmatched: list[UnmatchedRank] = []
        try:
            async with pool.acquire() as conn:
                written = await self._commit(conn, by_table, odds, placeholders, unmatched)
        except DATABASE_ERRORS as exc:
            if written is None:
                raise
            # The commit went through; handing the connection back to the pool failed (the server closed it
            # meanwhile, and the pool drops it): the rows are durable, the next transaction gets a new connection.
            log.warning("the connection failed after a committed write (%s); the pool replaces it", type(exc).__name__)
        assert written is not None  # noqa: S101 - set before the block ends without an error
        self._unmatched += unmatched  # found by a committed transaction
        return written

    async def _commit(
        self,
        conn: asyncpg.pool.PoolConnectionProxy,
        by_table: dict[str, list[tuple[Any, ...]]],
        odds: StagedOdds | None,
        placeholders: list[list[Any]] | None,
        unmatched: list[UnmatchedRank],
    ) -> dict[str, int]:
        try:
            async with conn.transaction():
                if placeholders is not None:
                    await conn.execute(PLACEHOLDERS_SQL, *placeholders)
                if self._rolled_up is None and odds is not None:
                    self._rolled_up = await rollup.exists(conn)
                written: dict[str, int] = {}
                for table in ORDER:
                    if table == ODDS and odds is not None:
                        written[table] = await write_odds(conn, odds, bool(self._rolled_up))
                    elif table in by_table:
                        written[table] = await self._write_table(conn, table, by_table[table])
                for table, n in (await link(conn, by_table, unmatched)).items():
                    written[table] = written.get(table, 0) + n
                return written
        except asyncpg.InterfaceError as exc:
            if conn.is_closed():  # the server ended the connection before or during the call
                raise DatabaseUnavailable(f"lost the connection during a write ({exc.__class__.__name__})") from exc
            raise
        except InternalClientError as exc:  # the server ended it while it sat in the pool (runtime.pgerrors)
            conn.terminate()
            raise DatabaseUnavailable(f"a broken connection ({exc.__class__.__name__}); retrying on a new one") from exc

    async def _write_table(
        self, conn: asyncpg.pool.PoolConnectionProxy, table: str, records: list[tuple[Any, ...]]
    ) -> int:
        written = 0
        for n, batch in enumerate(rounds(table, records)):
            if n:
                await conn.execute(truncate_staging_sql(table))
            await copy_rows(conn, table, batch, staged=True)
            status = await conn.execute(MERGE_SQL[table])
            written += int(status.rsplit(" ", 1)[-1])
        return written
