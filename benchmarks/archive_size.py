"""Bytes of the raw archive per million odds rows, and its write rate: final-dividend pages (API160_1, 1000 rows a
page, as the simulator renders a day's races) archived through :class:`sinks.archive.ArchiveWriter` into a scratch
schema, then the table's size (heap, TOAST and indexes) divided by the odds rows in the pages. On a server whose
license allows compression the chunks are compressed afterwards and measured again. Needs a database: the local
stack (``racelab stack up``) or ``RACELAB_DATABASE__URL``.

    python -m benchmarks.archive_size [--days 14]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import orjson

from benchmarks.scratch import scratch_schema
from producers.simulator import envelope, render_kra
from producers.simulator.world import World
from runtime.db import connect
from runtime.settings import DatabaseSettings, load_settings
from schemas.tracks import CODES_BY_RACE_TYPE
from sinks.archive import ArchiveWriter, RawMessage

PAGE = 1000


def pages(days: int) -> tuple[list[RawMessage], int]:
    """The raw messages of every horse race's final dividends over ``days`` days, and their odds rows."""
    world, start = World(seed=11), date(2024, 12, 13)
    messages: list[RawMessage] = []
    rows_total = 0
    for d in range(days):
        day = start + timedelta(days=d)
        for track in CODES_BY_RACE_TYPE["horse"]:
            for race in world.races(track, day):
                rows = render_kra.final_dividend_rows(race)
                rows_total += len(rows)
                fetched = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=race.race_no)
                for n in range(0, len(rows), PAGE):
                    body = envelope.json_body(rows[n : n + PAGE], n // PAGE + 1, PAGE, len(rows))
                    headers = [
                        ("source", b"kra"),
                        ("kind", b"odds"),
                        ("endpoint", b"API160_1/integratedInfo_1"),
                        ("params", orjson.dumps({"meet": "1", "rc_date": f"{day:%Y%m%d}", "rc_no": str(race.race_no)})),
                        ("fetched_at", (fetched + timedelta(seconds=n)).isoformat().encode()),
                        ("poll_id", uuid.uuid4().hex.encode()),
                        ("http_status", b"200"),
                    ]
                    messages.append(
                        RawMessage("racelab.raw.odds", 0, len(messages), None, race.race_id.encode(), body, headers)
                    )
    return messages, rows_total


async def main(days: int) -> None:
    async with scratch_schema(load_settings().database) as settings:
        await measure(settings, days)


async def measure(settings: DatabaseSettings, days: int) -> None:
    messages, odds_rows = pages(days)
    writer = ArchiveWriter(settings)
    started = time.perf_counter()
    for n in range(0, len(messages), 200):
        await writer.write_until_done(messages[n : n + 200])
    elapsed = time.perf_counter() - started
    await writer.stop()
    conn = await connect(settings)
    try:
        size = await conn.fetchval("SELECT hypertable_size('raw_archive')")
        body = await conn.fetchval("SELECT sum(octet_length(body)) FROM raw_archive")
        license_name = await conn.fetchval("SHOW timescaledb.license")
        compressed = None
        if license_name == "timescale":
            await conn.execute("SELECT compress_chunk(c) FROM show_chunks('raw_archive') c")
            compressed = await conn.fetchval("SELECT hypertable_size('raw_archive')")
        per_million = size / odds_rows * 1e6
        print(
            f"{len(messages):,} raw pages ({odds_rows:,} odds rows, {body / 1e6:.1f} MB of bodies) archived in "
            f"{elapsed:.1f} s = {len(messages) / elapsed:,.0f} pages/s, {odds_rows / elapsed:,.0f} odds rows/s"
        )
        print(
            f"archive size {size / 1e6:.1f} MB = {per_million / 1e6:.1f} MB per million odds rows: the bodies as "
            f"received are {body / size:.1f}x that (PostgreSQL compresses large values in TOAST; "
            f"TimescaleDB license {license_name!r})"
        )
        if compressed is not None:
            print(
                f"compressed: {compressed / 1e6:.1f} MB = {compressed / odds_rows:.0f} bytes per odds row "
                f"({size / compressed:.1f}x)"
            )
        else:
            print("no compression on the Apache build (the licensed variant of migration 0015 compresses chunks)")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=14, help="simulated days of final dividends (default 14)")
    asyncio.run(main(parser.parse_args().days))
