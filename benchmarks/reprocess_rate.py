"""Reprocess rate over a simulated year through the raw archive (``racelab reprocess``), and the archive's bytes per
million odds rows.

A year of the simulated world's horse racing (every race of Seoul, Busan and Jeju): each race's final dividends
(API160_1, 500 rows a page) and 20 live-odds snapshots in its last 40 minutes (WIN, PLC and QNL), about 18M odds
rows, archived by :class:`sinks.archive.ArchiveWriter` into a scratch schema a day at a time (memory stays flat).
Then ``reprocess`` over the whole year twice: first into empty tables (every row inserted: a rebuild), then again
(nothing changes, nothing is rewritten: the cost of a run after a normalizer change that touches few rows). Prints
odds rows per second, responses per second and the peak memory of the process. Needs a database: the local stack
(``racelab stack up``) or ``RACELAB_DATABASE__URL``.

    python -m benchmarks.reprocess_rate [--days 365] [--page-size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import orjson

from producers.simulator import envelope, render_kra
from producers.simulator.world import Race, World
from racelab.reprocess import reprocess
from runtime.db import connect
from runtime.settings import Settings, load_settings
from schemas import endpoints as ep
from schemas.tracks import BY_CODE, CODES_BY_RACE_TYPE
from sinks.archive import ArchiveWriter, RawMessage
from sinks.migrate import migrate
from sinks.reprocess import Selection

START = date(2024, 1, 1)
PAGE = 500
LIVE_SNAPSHOTS = 20
LIVE_EVERY = timedelta(minutes=2)


def _message(n: int, endpoint: str, race: Race, body: bytes, at: datetime) -> RawMessage:
    params = {"meet": str(BY_CODE[race.track].kra_meet), "rc_date": f"{race.day:%Y%m%d}", "rc_no": str(race.race_no)}
    headers = [
        ("source", b"kra"),
        ("kind", b"odds"),
        ("endpoint", endpoint.encode()),
        ("params", orjson.dumps(params, option=orjson.OPT_SORT_KEYS)),
        ("fetched_at", at.isoformat(timespec="microseconds").replace("+00:00", "Z").encode()),
        ("poll_id", uuid.uuid4().hex.encode()),
        ("http_status", b"200"),
    ]
    return RawMessage("racelab.raw.odds", 0, n, None, race.race_id.encode(), body, headers)


def day_messages(world: World, day: date, first: int) -> tuple[list[RawMessage], int]:
    """The raw odds messages of one day's horse races, and their odds rows."""
    messages: list[RawMessage] = []
    rows_total = 0
    for track in CODES_BY_RACE_TYPE["horse"]:
        for race in world.races(track, day):
            for k in range(LIVE_SNAPSHOTS):
                at = race.post_time - LIVE_EVERY * (LIVE_SNAPSHOTS - k)
                rows = render_kra.live_odds_rows(race, at)
                rows_total += len(rows)
                body = envelope.json_body(rows, 1, len(rows), len(rows))
                messages.append(_message(first + len(messages), ep.LIVE_ODDS_PATH, race, body, at.astimezone(UTC)))
            rows = render_kra.final_dividend_rows(race)
            rows_total += len(rows)
            fetched = race.post_time + timedelta(minutes=30)
            for n in range(0, len(rows), PAGE):
                body = envelope.json_body(rows[n : n + PAGE], n // PAGE + 1, PAGE, len(rows))
                at = (fetched + timedelta(seconds=n // PAGE)).astimezone(UTC)
                messages.append(_message(first + len(messages), ep.KRA_FINAL_DIVIDENDS.path, race, body, at))
    return messages, rows_total


def days(n: int) -> Iterator[date]:
    return (START + timedelta(days=d) for d in range(n))


async def archive_year(settings: Settings, n_days: int) -> tuple[int, int, float]:
    """Archive the year a day at a time; (responses, odds rows, seconds spent writing)."""
    world = World(seed=11)
    writer = ArchiveWriter(settings.database)
    responses = rows = 0
    writing = 0.0
    try:
        for day in days(n_days):
            messages, day_rows = day_messages(world, day, responses)
            started = time.perf_counter()
            for n in range(0, len(messages), 200):
                await writer.write_until_done(messages[n : n + 200])
            writing += time.perf_counter() - started
            responses += len(messages)
            rows += day_rows
    finally:
        await writer.stop()
    return responses, rows, writing


async def main(n_days: int, page_size: int) -> None:
    base = load_settings()
    settings = base.model_copy(
        update={"database": base.database.model_copy(update={"schema_name": f"bench_{uuid.uuid4().hex[:8]}"})}
    )
    await migrate(settings.database)
    conn = await connect(settings.database)
    try:
        started = time.perf_counter()
        responses, odds_rows, writing = await archive_year(settings, n_days)
        generated = time.perf_counter() - started
        size = await conn.fetchval("SELECT hypertable_size('raw_archive')")
        body = await conn.fetchval("SELECT sum(octet_length(body)) FROM raw_archive")
        print(
            f"{n_days} simulated days: {responses:,} raw odds responses, {odds_rows:,} odds rows "
            f"(simulated and archived in {generated:.0f} s; the archive writes took {writing:.0f} s = "
            f"{responses / writing:,.0f} responses/s)"
        )
        print(
            f"archive {size / 1e6:,.0f} MB = {size / odds_rows * 1e6 / 1e6:.1f} MB per million odds rows "
            f"(bodies as received {body / 1e6:,.0f} MB, {body / size:.1f}x the stored size)"
        )
        selection = Selection(START - timedelta(days=1), START + timedelta(days=n_days))
        for name in ("into empty tables (every row inserted)", "again (nothing changes, nothing rewritten)"):
            started = time.perf_counter()
            run = await reprocess(settings, selection, page_responses=page_size, out=io.StringIO())
            elapsed = time.perf_counter() - started
            report = run.report
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"reprocess {name}: {report.records:,} odds rows from {report.responses:,} responses in {elapsed:.0f} s"
                f" = {report.records / elapsed:,.0f} rows/s ({report.responses / elapsed:,.0f} responses/s); "
                f"inserted {sum(report.inserted.values()):,}, changed {report.changed_rows:,}; "
                f"peak memory {peak_mb:,.0f} MB"
            )
        stored = await conn.fetchval("SELECT count(*) FROM odds_snapshots")
        print(f"odds_snapshots holds {stored:,} rows")
        await conn.execute(f'DROP SCHEMA "{settings.database.schema_name}" CASCADE')
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="simulated days (default 365)")
    parser.add_argument("--page-size", type=int, default=100, help="responses per reprocess transaction")
    args = parser.parse_args()
    asyncio.run(main(args.days, args.page_size))
