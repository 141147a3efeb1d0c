"""The day summary rollup of the Apache build (``odds_daily_rollup``, behind the ``odds_daily_summary`` view).

The writer rolls up the odds rows it inserted, in the same transaction: per Korean day, race, pool and selection,
the first and last price with their times, high, low and the number of snapshots (grouped by the database, in
key order so that concurrent writers lock rows in the same order). Merging keeps the earlier open,
the later close, the extremes, and adds the counts, so batches may arrive in any order. A licensed server has a
continuous aggregate instead and no rollup table; then nothing here runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

TABLE = "odds_daily_rollup"
GROUPED = """
SELECT time_bucket(INTERVAL '1 day', time, TIMESTAMPTZ '2000-01-01 00:00:00+09'), race_id, pool, selection,
       first(odds, time), last(odds, time), max(odds), min(odds), count(*), min(time), max(time)
FROM {source}
GROUP BY 1, race_id, pool, selection
ORDER BY 1, race_id, pool, selection
"""
MERGE = f"""
INSERT INTO {TABLE} AS r (day, race_id, pool, selection, open_odds, close_odds, high_odds, low_odds, snapshots,
                          first_at, last_at)
{GROUPED}
ON CONFLICT (day, race_id, pool, selection) DO UPDATE SET
    open_odds  = CASE WHEN excluded.first_at < r.first_at THEN excluded.open_odds ELSE r.open_odds END,
    close_odds = CASE WHEN excluded.last_at > r.last_at THEN excluded.close_odds ELSE r.close_odds END,
    high_odds  = greatest(r.high_odds, excluded.high_odds),
    low_odds   = least(r.low_odds, excluded.low_odds),
    snapshots  = r.snapshots + excluded.snapshots,
    first_at   = least(r.first_at, excluded.first_at),
    last_at    = greatest(r.last_at, excluded.last_at)
"""
MERGE_SQL = MERGE.replace(
    "{source}",
    "unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::float8[]) AS b(time, race_id, pool, selection, "
    "odds)",
)
MERGE_STAGED_SQL = MERGE.replace("{source}", "stage_odds_snapshots")
REBUILD_SQL = f"INSERT INTO {TABLE} " + GROUPED.replace("{source}", "odds_snapshots")
_KEYS = """
WITH k AS (
    SELECT DISTINCT time_bucket(INTERVAL '1 day', u.time, TIMESTAMPTZ '2000-01-01 00:00:00+09') AS day,
           u.race_id, u.pool, u.selection
    FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[]) AS u(time, race_id, pool, selection)
)
"""
DROP_KEYS_SQL = (
    _KEYS + f"DELETE FROM {TABLE} r USING k "
    "WHERE r.day = k.day AND r.race_id = k.race_id AND r.pool = k.pool AND r.selection = k.selection"
)
REFILL_KEYS_SQL = (
    _KEYS
    + f"INSERT INTO {TABLE} "
    + GROUPED.replace(
        "{source}",
        "(SELECT s.time, s.race_id, s.pool, s.selection, s.odds FROM odds_snapshots s JOIN k "
        "ON s.race_id = k.race_id AND s.pool = k.pool AND s.selection = k.selection "
        "AND s.time >= k.day AND s.time < k.day + INTERVAL '1 day') AS src",
    )
)


async def exists(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> bool:
    """Whether this schema has the rollup table (the Apache build after migration 0007)."""
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE))


async def merge(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, rows: Sequence[tuple[datetime, str, str, str, float]]
) -> None:
    """Roll up inserted odds rows into the table (call inside the transaction that inserted them)."""
    if rows:  # the database groups them (on the other core, while this process reads the next batch)
        await conn.execute(MERGE_SQL, *(list(column) for column in zip(*rows, strict=True)))


async def merge_staged(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> None:
    """Roll up the odds rows of the session's staging table, every one of which the transaction inserted.

    The rows are already on the server: nothing travels twice (shipping a batch's columns as arrays cost more than
    the grouping and the upsert together, measured).
    """
    await conn.execute(MERGE_STAGED_SQL)


async def recompute(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, rows: Sequence[tuple[datetime, str, str, str]]
) -> None:
    """Recompute the rollup rows of the days, races, pools and selections of changed odds rows (a reprocess that
    corrected stored prices), from ``odds_snapshots``, in the transaction that changed them."""
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        await conn.execute(DROP_KEYS_SQL, *columns)
        await conn.execute(REFILL_KEYS_SQL, *columns)


async def rebuild(conn: asyncpg.Connection) -> int:
    """Recompute the whole rollup from ``odds_snapshots`` (after a bulk load that bypassed the writer)."""
    if not await exists(conn):
        return 0
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {TABLE}")
        status = await conn.execute(REBUILD_SQL)
    await conn.execute(f"ANALYZE {TABLE}")
    return int(status.rsplit(" ", 1)[-1])
