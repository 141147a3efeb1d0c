"""Odds rows/s the sink's writer puts into the real odds_snapshots hypertable (with its unique index).

Boards of 40 prices go through :class:`sinks.writer.TimescaleWriter` as in the sink worker (one row a board, as
:func:`sinks.rows.rows_of_message` reads a board message): binary COPY straight into the
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
from sinks.odds_stage import next_board
from sinks.rows import row_count
from sinks.writer import Row, TimescaleWriter

POOLS = ("WIN", "PLC", "QNL", "EXA", "QPL", "TLA", "TRI")
PRICES = 40  # prices a board


def make_rows(count: int) -> list[Row]:
    """Odds boards of 40 prices spread like a live market: 300 races x 30 snapshots a day over several days; one row
    a board, as the sink reads a board message."""
    start = datetime(2024, 12, 1, 1, 0, tzinfo=UTC)
    rows: list[Row] = []
    total = i = 0
    while total < count:
        day, race, snap = i // 9000, (i // 30) % 300, i % 30
        at = start + timedelta(days=day, minutes=snap * 2)
        race_id = f"horse-seoul-{race % 16 + 1}-{(start + timedelta(days=day + race // 16)):%Y%m%d}"
        board = next_board()
        prices = []
        for n in range(min(PRICES, count - total)):
            pool = POOLS[n % 7]
            selection = str(n + 1) if pool in ("WIN", "PLC") else f"{n + 1}-{n + 2}"  # unique per snapshot
            prices.append((board, pool, selection, 1.0 + n / 10, 1000 * n, None))
        rows.append(Row("odds_snapshots", (board, at, race_id, False, "kra"), None, prices))
        total += len(prices)
        i += 1
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
        total = row_count(rows)
        for label in ("first write", "replay (all conflicts)"):
            started = time.perf_counter()
            written = 0
            step = max(1, batch // PRICES)
            for i in range(0, len(rows), step):
                result = await writer.write(rows[i : i + step])
                written += result.rows.get("odds_snapshots", 0)
            elapsed = time.perf_counter() - started
            print(
                f"  {label}: {total:,} rows in {elapsed:.2f}s = {total / elapsed:,.0f} rows/s "
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
