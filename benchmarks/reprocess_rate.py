"""Reprocess rate over a simulated year through the raw archive (``racelab reprocess``), and the archive's bytes per
million odds rows.

A year of the simulated world's horse racing (every race of Seoul, Busan and Jeju): each race's final dividends
(API160_1, 500 rows a page) and 20 live-odds snapshots in its last 40 minutes (WIN, PLC and QNL), about 18M odds
rows, archived by :class:`sinks.archive.ArchiveWriter` into a scratch schema a day at a time (memory stays flat).
Then ``reprocess`` over the whole year twice: first into empty tables (every row inserted: a rebuild), then again
(nothing changes, nothing is rewritten: the cost of a run after a normalizer change that touches few rows), each
time the ``racelab reprocess`` command in its own process. Prints odds rows per second and that process's peak
memory. Needs a database: the local stack
(``racelab stack up``) or ``RACELAB_DATABASE__URL``.

    python -m benchmarks.reprocess_rate [--days 365] [--page-size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from benchmarks.scratch import scratch_schema
from producers.simulator import envelope, render_kra
from producers.simulator.world import Race, World
from runtime.db import connect
from runtime.settings import Settings, load_settings
from schemas import endpoints as ep
from schemas.tracks import BY_CODE, CODES_BY_RACE_TYPE
from sinks.archive import ArchiveWriter, RawMessage

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


def _high_water_kb(pid: int) -> int:
    """A running process's peak resident memory so far (``VmHWM``), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_cli(settings: Settings, first: date, last: date, page_size: int) -> tuple[float, float, tuple[str, str]]:
    """``racelab reprocess`` as its own process: (seconds, its peak memory in MB, (what it read, rate and counts))."""
    env = {
        **os.environ,
        "RACELAB_DATABASE__URL": settings.database.url.get_secret_value(),
        "RACELAB_DATABASE__SCHEMA_NAME": settings.database.schema_name,
    }
    command = [sys.executable, "-m", "racelab.cli", "reprocess", "--from", f"{first}", "--to", f"{last}"]
    started = time.perf_counter()
    peak_kb = 0
    with tempfile.TemporaryFile() as out_file:
        proc = subprocess.Popen(
            [*command, "--page-size", str(page_size)], env=env, stdout=out_file, stderr=subprocess.DEVNULL
        )
        while proc.poll() is None:  # its own high-water mark (ru_maxrss of a child counts the parent's at fork)
            peak_kb = max(peak_kb, _high_water_kb(proc.pid))
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        out_file.seek(0)
        out = out_file.read().decode()
    if proc.returncode:
        raise SystemExit(f"racelab reprocess failed ({proc.returncode}):\n{out}")
    first_line = out.splitlines()[0]  # "N archived responses re-normalized into M records"
    records = int(first_line.split(" into ")[1].split()[0].replace(",", ""))
    responses = int(first_line.split()[0].replace(",", ""))
    rate = f"{records:,} odds rows from {responses:,} responses = {records / seconds:,.0f} rows/s"
    counts = "; ".join(line.strip() for line in out.splitlines()[1:3])
    return seconds, peak_kb / 1024, (rate, counts)


async def main(n_days: int, page_size: int) -> None:
    base = load_settings()
    async with scratch_schema(base.database) as database:
        await measure(base.model_copy(update={"database": database}), n_days, page_size)


async def measure(settings: Settings, n_days: int, page_size: int) -> None:
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
        last = START + timedelta(days=n_days)
        for name in ("into empty tables (every row inserted)", "again (nothing changes, nothing rewritten)"):
            seconds, peak_mb, report = run_cli(settings, START - timedelta(days=1), last, page_size)
            print(f"reprocess {name}: {report[0]} in {seconds:.0f} s; {report[1]}; peak memory {peak_mb:,.0f} MB")
        stored = await conn.fetchval("SELECT count(*) FROM odds_snapshots")
        print(f"odds_snapshots holds {stored:,} rows")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="simulated days (default 365)")
    parser.add_argument("--page-size", type=int, default=100, help="responses per reprocess transaction")
    args = parser.parse_args()
    asyncio.run(main(args.days, args.page_size))
