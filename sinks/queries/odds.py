"""Odds: a race's history (raw or bucketed), daily summaries, and the seed's wide view.

Race-scoped queries bound ``time`` to the race's window (:func:`sinks.queries.base.race_window`), so the planner
opens a few chunks of the hypertable instead of every one; with the key of migration 0005 (Apache build) a race's
history is then an index-only scan already in (time, pool, selection) order.

Summaries read ``odds_daily_summary``: the continuous aggregate on a licensed TimescaleDB, the plain view of the
same name and columns on the Apache build. Its ``day`` is filtered with a range (``day >= a AND day <= b``), never
``=``: TimescaleDB turns range comparisons on ``time_bucket()`` into a range on ``time`` (chunk exclusion through
the plain view), equality it does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from schemas.timezones import kst_date
from sinks.queries.base import Executor, QueryError, Sql, bulk, column_list, day_start, race_window
from sinks.queries.models import OddsBucket, OddsSnapshot, OddsSummary, WideOdds, names

# Buckets are aligned to a Korean midnight (a Monday): one-day buckets are Korean days, one-week buckets start on
# Monday, and shorter widths fall on the same boundaries as from any other midnight.
BUCKET_ORIGIN = "TIMESTAMPTZ '2000-01-03 00:00:00+09'"
# A selection with one snapshot (every final-only pool: most rows of a day) has close = high = low = open: those
# three travel as NULL and the row reuses the open's float, which makes a 50,000-row day summary about 40 % faster
# (fewer values to decode and to allocate); change is computed in Python, only where it is not 0.
SUMMARY_COLUMNS = (
    "day, race_id, pool, selection, open_odds, CASE WHEN snapshots > 1 THEN close_odds END, "
    "CASE WHEN snapshots > 1 THEN high_odds END, CASE WHEN snapshots > 1 THEN low_odds END, snapshots"
)
DAY_SUMMARY_COLUMNS = SUMMARY_COLUMNS.removeprefix("day, ")
SNAPSHOT_COLUMNS = column_list(names(OddsSnapshot))
WIDE_COLUMNS = column_list(names(WideOdds))


async def odds_history(db: Executor, race_id: str, *, pool: str | None = None) -> list[OddsSnapshot]:
    """Every odds snapshot of a race (or of one pool), by time, pool and selection."""
    start, end = race_window(race_id)
    sql = (
        Sql(
            f"SELECT {SNAPSHOT_COLUMNS} FROM odds_snapshots WHERE race_id = $1 AND time >= $2 AND time < $3",
            race_id,
            start,
            end,
        )
        .where("pool = {}", pool)
        .then("ORDER BY time, pool, selection")
    )
    with bulk():
        return [OddsSnapshot(*row) for row in await db.fetch(sql.text, *sql.args)]


async def odds_history_bucketed(
    db: Executor, race_id: str, bucket: timedelta, *, pool: str | None = None
) -> list[OddsBucket]:
    """A race's odds in time buckets of the given width: open, close, high, low and samples per selection."""
    if bucket <= timedelta(0):
        raise QueryError(f"the bucket width must be positive, not {bucket}")
    start, end = race_window(race_id)
    sql = (
        Sql(
            f"SELECT time_bucket($4::interval, time, {BUCKET_ORIGIN}) AS bucket, pool, selection, "
            "first(odds, time), last(odds, time), max(odds), min(odds), count(*) "
            "FROM odds_snapshots WHERE race_id = $1 AND time >= $2 AND time < $3",
            race_id,
            start,
            end,
            bucket,
        )
        .where("pool = {}", pool)
        .then("GROUP BY bucket, pool, selection ORDER BY bucket, pool, selection")
    )
    with bulk():
        return [OddsBucket(*row) for row in await db.fetch(sql.text, *sql.args)]


async def odds_summary(db: Executor, race_id: str, *, pool: str | None = None) -> list[OddsSummary]:
    """Open, close, high, low and change per selection of one race (per race day), by pool and selection."""
    start, end = race_window(race_id)
    sql = (
        Sql(
            f"SELECT {SUMMARY_COLUMNS} FROM odds_daily_summary WHERE race_id = $1 AND day >= $2 AND day <= $3",
            race_id,
            start,
            end,
        )
        .where("pool = {}", pool)
        .then("ORDER BY day, race_id, pool, selection")
    )
    with bulk():
        return _summaries(await db.fetch(sql.text, *sql.args))


async def odds_day_summary(
    db: Executor,
    day: date,
    *,
    pools: Sequence[str] | None = None,
    race_type: str | None = None,
    track: str | None = None,
) -> list[OddsSummary]:
    """Open, close, high, low and change per selection of every race of a day (Korean calendar day)."""
    start = day_start(day)
    sql = (
        Sql(f"SELECT {DAY_SUMMARY_COLUMNS} FROM odds_daily_summary WHERE day >= $1 AND day <= $1", start)
        .where("pool = ANY({}::text[])", list(pools) if pools else None)
        .where("split_part(race_id, '-', 1) = {}", race_type)
        .where("split_part(race_id, '-', 2) = {}", track)
        .then("ORDER BY day, race_id, pool, selection")
    )
    with bulk():
        return _day_summaries(day, await db.fetch(sql.text, *sql.args))


def _summaries(rows: Iterable[asyncpg.Record]) -> list[OddsSummary]:
    """Summary rows as models; ``day`` (Korean midnight) becomes the Korean date."""
    days: dict[datetime, date] = {}
    out: list[OddsSummary] = []
    for day, *rest in rows:
        local = days.get(day)
        if local is None:
            local = days[day] = kst_date(day)
        out += _day_summaries(local, [rest])
    return out


def _day_summaries(day: date, rows: Iterable[Any]) -> list[OddsSummary]:
    """Summary rows of one known day (``day`` is not fetched: one timestamp fewer to decode per row)."""
    return [
        OddsSummary(day, race_id, pool, selection, first, first, first, first, 0.0, snapshots)  # one snapshot
        if last is None
        else OddsSummary(
            day, race_id, pool, selection, first, last, high, low, round(last - first, 6) or 0.0, snapshots
        )
        for race_id, pool, selection, first, last, high, low, snapshots in rows
    ]


async def odds_wide(db: Executor, race_id: str) -> list[WideOdds]:
    """The seed's wide shape of a race (``odds_snapshots_wide``): win and place odds per runner and time."""
    start, end = race_window(race_id)
    rows = await db.fetch(
        f"SELECT {WIDE_COLUMNS} FROM odds_snapshots_wide "
        "WHERE race_id = $1 AND time >= $2 AND time < $3 ORDER BY time, entry_no",
        race_id,
        start,
        end,
    )
    return [WideOdds(*row) for row in rows]
