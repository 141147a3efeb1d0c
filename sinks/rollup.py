"""The day summary rollup of the Apache build (``odds_daily_rollup``, behind the ``odds_daily_summary`` view).

The writer rolls up the odds rows it inserted, in the same transaction: per Korean day, race, pool and selection,
the first and last price with their times, high, low and the number of snapshots. The table keeps one row per day,
race and pool with its selections in parallel arrays (migration 0018: a row per selection cost more than the
snapshot insert itself); the view unnests them. New rows of a batch are grouped by the database (per selection, then
per pool, in key order so that concurrent writers lock rows in the same order; the arrays are in selection order,
from sorted input, so the same snapshots always make the same row); a pool row that exists is merged
with them under its row lock (``ON CONFLICT DO UPDATE`` sees the latest committed version, so concurrent writers
add up): the earlier open, the later close, the extremes, the counts added, so batches may arrive in any order.
When every new row is the only snapshot of its selection that day in the batch (a batch without two boards of one
race day: final dividends, a backlog of distinct races), the per-selection grouping is skipped. A licensed server has
a continuous aggregate instead and no rollup table; then nothing here runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import asyncpg

TABLE = "odds_daily_rollup"
DAY = "time_bucket(INTERVAL '1 day', time, TIMESTAMPTZ '2000-01-01 00:00:00+09')"
KST = timezone(timedelta(hours=9))
# Sorted and grouped byte by byte (the "C" collation): the same order on every server, and several times cheaper to
# sort than by a language's rules (measured: the rollup's sort was most of its cost).
BYTEWISE = 'race_id COLLATE "C" AS race_id, pool COLLATE "C" AS pool, selection COLLATE "C" AS selection'
FIELDS = ("open_odds", "close_odds", "high_odds", "low_odds", "snapshots", "first_at", "last_at")
PER_SELECTION = f"""
SELECT {DAY} AS day, {BYTEWISE}, first(odds, time) AS open_odds, last(odds, time) AS close_odds,
       max(odds) AS high_odds, min(odds) AS low_odds, count(*) AS snapshots, min(time) AS first_at,
       max(time) AS last_at
FROM {{source}}
GROUP BY 1, 2, 3, 4
"""
ONE_EACH = f"""
SELECT {DAY} AS day, {BYTEWISE}, odds AS open_odds, odds AS close_odds, odds AS high_odds,
       odds AS low_odds, 1::bigint AS snapshots, time AS first_at, time AS last_at
FROM {{source}}
"""
_COLUMNS = ", ".join(("selections", *FIELDS))
_OLD = ", ".join(f"r.{c}" for c in ("selections", *FIELDS))
_NEW = ", ".join(f"excluded.{c}" for c in ("selections", *FIELDS))
_AS = ", ".join(("selection", *FIELDS))
_AGGREGATES = ", ".join(f"array_agg({c})" for c in FIELDS)
POOLED = f"""
INSERT INTO {TABLE} AS r (day, race_id, pool, {_COLUMNS})
SELECT day, race_id, pool, array_agg(selection), {_AGGREGATES}
FROM ({{selections}}) AS s
GROUP BY day, race_id, pool
ORDER BY day, race_id, pool
ON CONFLICT (day, race_id, pool) DO UPDATE SET ({_COLUMNS}) = (
    SELECT array_agg(selection), {_AGGREGATES}
    FROM (
        SELECT coalesce(o.selection, n.selection) AS selection,
               CASE WHEN n.first_at IS NULL OR o.first_at <= n.first_at THEN o.open_odds ELSE n.open_odds END,
               CASE WHEN n.last_at IS NULL OR o.last_at >= n.last_at THEN o.close_odds ELSE n.close_odds END,
               greatest(o.high_odds, n.high_odds),
               least(o.low_odds, n.low_odds),
               coalesce(o.snapshots, 0) + coalesce(n.snapshots, 0),
               least(o.first_at, n.first_at),
               greatest(o.last_at, n.last_at)
        FROM unnest({_OLD}) AS o({_AS})
        FULL JOIN unnest({_NEW}) AS n({_AS}) ON o.selection = n.selection
        ORDER BY coalesce(o.selection, n.selection) COLLATE "C"
    ) AS m({_AS})
)
"""
STAGE = "stage_odds_snapshots"
ARRAYS = (
    "unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::float8[]) AS b(time, race_id, pool, selection, "
    "odds)"
)
MERGE_SQL = POOLED.replace("{selections}", PER_SELECTION.replace("{source}", ARRAYS))
MERGE_STAGED_SQL = POOLED.replace("{selections}", PER_SELECTION.replace("{source}", STAGE))
MERGE_STAGED_ONE_EACH_SQL = POOLED.replace("{selections}", ONE_EACH.replace("{source}", STAGE))
REBUILD_SQL = POOLED.replace("{selections}", PER_SELECTION.replace("{source}", "odds_snapshots"))
_KEYS = """
WITH k AS (
    SELECT DISTINCT time_bucket(INTERVAL '1 day', u.time, TIMESTAMPTZ '2000-01-01 00:00:00+09') AS day, u.race_id,
           u.pool
    FROM unnest($1::timestamptz[], $2::text[], $3::text[]) AS u(time, race_id, pool)
)
"""
DROP_KEYS_SQL = (
    _KEYS + f"DELETE FROM {TABLE} r USING k WHERE r.day = k.day AND r.race_id = k.race_id AND r.pool = k.pool"
)
REFILL_KEYS_SQL = _KEYS + POOLED.replace(
    "{selections}",
    PER_SELECTION.replace(
        "{source}",
        "(SELECT s.time, s.race_id, s.pool, s.selection, s.odds FROM odds_snapshots s JOIN k "
        "ON s.race_id = k.race_id AND s.pool = k.pool AND s.time >= k.day AND s.time < k.day + INTERVAL '1 day') "
        "AS src",
    ),
)
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def exists(conn: Connection) -> bool:
    """Whether this schema has the rollup table (the Apache build after migration 0007)."""
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE))


async def merge(conn: Connection, rows: Sequence[tuple[datetime, str, str, str, float]]) -> None:
    """Roll up inserted odds rows into the table (call inside the transaction that inserted them)."""
    if rows:  # the database groups them (on the other core, while this process reads the next batch)
        await conn.execute(MERGE_SQL, *(list(column) for column in zip(*rows, strict=True)))


def one_each(snapshots: set[tuple[datetime, str]]) -> bool:
    """Whether the boards ``(time, race_id)`` of a batch are one per race and Korean day at most: then no selection
    has two snapshots of one day in the batch, and the rollup needs no per-selection grouping."""
    return len({(race_id, at.astimezone(KST).date()) for at, race_id in snapshots}) == len(snapshots)


async def merge_staged(conn: Connection, one_each: bool = False) -> None:
    """Roll up the odds rows of the session's staging table, every one of which the transaction inserted.

    The rows are already on the server: nothing travels twice (shipping a batch's columns as arrays cost more than
    the grouping and the upsert together, measured). ``one_each``: see :func:`one_each`.
    """
    await conn.execute(MERGE_STAGED_ONE_EACH_SQL if one_each else MERGE_STAGED_SQL)


async def recompute(conn: Connection, rows: Sequence[tuple[datetime, str, str, str]]) -> None:
    """Recompute the rollup rows of the days, races and pools of changed odds rows (a reprocess that corrected
    stored prices), from ``odds_snapshots``, in the transaction that changed them."""
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)][:3]
        await conn.execute(DROP_KEYS_SQL, *columns)
        await conn.execute(REFILL_KEYS_SQL, *columns)


async def rebuild(conn: asyncpg.Connection) -> int:
    """Recompute the whole rollup from ``odds_snapshots`` (after a bulk load that bypassed the writer); the number of
    day summary rows (selections) it holds."""
    if not await exists(conn):
        return 0
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {TABLE}")
        await conn.execute(REBUILD_SQL)
    await conn.execute(f"ANALYZE {TABLE}")
    return int(await conn.fetchval(f"SELECT coalesce(sum(cardinality(selections)), 0) FROM {TABLE}"))
