"""Odds rows/s the sink's writer puts into the real odds_snapshots hypertable (with its unique index).

Rows go through :class:`sinks.writer.TimescaleWriter` exactly as in the sink worker: binary COPY straight into the
hypertable (staging + ``INSERT ... ON CONFLICT DO NOTHING`` when a snapshot exists), one transaction per batch. A
second pass writes the same rows again (a replay) to show the cost of the idempotent path. Measured twice: into the
hypertable alone (as on a licensed server, whose day summary is a continuous aggregate), and with the Apache build's
day rollup kept in the same transaction. Needs a database: the local stack (``racelab stack up``) or
``RACELAB_DATABASE__URL``; works in scratch schemas that it drops at the end.

    python -m benchmarks.sink_throughput [--rows 500000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from benchmarks.scratch import scratch_schema
from runtime.db import connect
from runtime.settings import DatabaseSettings, load_settings
from sinks.tables import COLUMNS
from sinks.writer import Row, TimescaleWriter

POOLS = ("WIN", "PLC", "QNL", "EXA", "QPL", "TLA", "TRI")


def make_rows(count: int) -> list[Row]:
    """Odds rows spread like a live market: 300 races x 30 snapshots a day over several days."""
    start = datetime(2024, 12, 1, 1, 0, tzinfo=UTC)
    rows: list[Row] = []
    i = 0
    while len(rows) < count:
        day, race, snap = i // 9000, (i // 30) % 300, i % 30
        at = start + timedelta(days=day, minutes=snap * 2)
        race_id = f"horse-seoul-{race % 16 + 1}-{(start + timedelta(days=day + race // 16)):%Y%m%d}"
        for n in range(min(40, count - len(rows))):
            pool = POOLS[n % 7]
            selection = str(n + 1) if pool in ("WIN", "PLC") else f"{n + 1}-{n + 2}"  # unique per snapshot
            rows.append(
                Row("odds_snapshots", (at, race_id, pool, selection, 1.0 + n / 10, False, 1000 * n, None, "kra"))
            )
        i += 1
    assert len(COLUMNS["odds_snapshots"]) == len(rows[0].values)
    return rows


async def run(total: int, batch: int) -> None:
    rows = make_rows(total)
    for rollup in (False, True):
        print("hypertable and the day rollup:" if rollup else "hypertable alone:")
        await run_one(rows, batch, rollup)


async def run_one(rows: list[Row], batch: int, rollup: bool) -> None:
    async with scratch_schema(load_settings().database) as settings:
        await measure(settings, rows, batch, rollup)


async def measure(settings: DatabaseSettings, rows: list[Row], batch: int, rollup: bool) -> None:
    if not rollup:
        conn = await connect(settings)
        try:
            await conn.execute("DROP TABLE IF EXISTS odds_daily_rollup CASCADE")
        finally:
            await conn.close()
    writer = TimescaleWriter(settings)
    await writer.start()
    try:
        for label in ("first write", "replay (all conflicts)"):
            started = time.perf_counter()
            written = 0
            for i in range(0, len(rows), batch):
                result = await writer.write(rows[i : i + batch])
                written += result.rows.get("odds_snapshots", 0)
            elapsed = time.perf_counter() - started
            print(
                f"  {label}: {len(rows):,} rows in {elapsed:.2f}s = {len(rows) / elapsed:,.0f} rows/s "
                f"({written:,} inserted, batches of {batch:,})"
            )
        conn = await connect(settings)
        try:
            size = await conn.fetchval("SELECT pg_size_pretty(hypertable_size('odds_snapshots'))")
            print(f"  hypertable size: {size}")
        finally:
            await conn.close()
    finally:
        await writer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.batch))


if __name__ == "__main__":
    main()
