"""Latency of the main queries on a year of history while odds keep coming in.

Needs a filled schema (``python -m benchmarks.scale_data``). A background task in a process of its own (as the
sink runs) writes live odds boards of today's races through :class:`sinks.writer.TimescaleWriter` at a steady rate
(the sink's own path: COPY, one transaction per batch). Meanwhile one connection runs the queries of
:mod:`sinks.queries` many times with random arguments; the figures (wall time of the call: SQL, transfer and the
models) are printed with the targets, the achieved ingestion rate and the sizes of the tables and indexes. Each
query runs its series on its own (one query's CPU bursts stay off another's clock). The ingested rows are deleted
at the end (``--keep-ingested`` keeps them). ``--explain`` prints EXPLAIN ANALYZE of one run of each query.

    python -m benchmarks.query_latency [--schema scale] [--runs 300] [--rate 2000] [--seed 1] [--explain]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection

import asyncpg

from producers.simulator.world import TRACKS
from runtime.db import connect
from runtime.settings import DatabaseSettings, load_settings
from schemas.timezones import KST
from sinks import queries as q
from sinks import rollup
from sinks.writer import Row, TimescaleWriter

FIELD = {"horse": 14, "cycle": 7, "boat": 6}
LIVE_POOLS = ("WIN", "PLC", "QNL")
Call = Callable[[asyncpg.Connection, random.Random], Awaitable[Sequence[object]]]


def live_boards(today: date) -> list[tuple[str, list[tuple[str, str]]]]:
    """Today's races (three per track) with the selections of their WIN, PLC and QNL pools."""
    boards = []
    for track in TRACKS.values():
        runners = range(1, FIELD[track.race_type] + 1)
        selections = [(pool, str(n)) for pool in ("WIN", "PLC") for n in runners]
        selections += [("QNL", f"{a}-{b}") for a in runners for b in runners if a < b]
        boards += [(f"{track.race_type}-{track.code}-{n}-{today:%Y%m%d}", selections) for n in (1, 2, 3)]
    return boards


@dataclass
class IngestReport:
    """What the background ingestion did."""

    rows: int
    elapsed: float
    batch_seconds: list[float]
    race_ids: list[str]
    started_at: datetime


async def ingest(settings: DatabaseSettings, rate: float, stop: Connection, tick_s: float = 0.25) -> IngestReport:
    """Write whole live boards (one snapshot each, time = now) at ``rate`` rows/s until told to stop."""
    boards, rng = live_boards(datetime.now(KST).date()), random.Random(0)  # noqa: S311 - synthetic data
    writer, started_at = TimescaleWriter(settings), datetime.now(UTC)
    await writer.start()
    written, seconds, k = 0, list[float](), 0
    start = next_at = time.perf_counter()
    try:
        while not stop.poll():
            now, rows = datetime.now(UTC), list[Row]()
            while written + len(rows) < (time.perf_counter() - start) * rate:
                race_id, selections = boards[k % len(boards)]
                k += 1
                for pool, sel in selections:
                    odds = round(rng.uniform(1.1, 99.0), 1)
                    values = (now, race_id, pool, sel, odds, False, rng.randint(1, 9) * 10**6, None, "simulator")
                    rows.append(Row("odds_snapshots", values))
            if rows:
                began = time.perf_counter()
                written += (await writer.write(rows)).rows.get("odds_snapshots", 0)
                seconds.append(time.perf_counter() - began)
            next_at += tick_s
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        await writer.stop()
    return IngestReport(written, time.perf_counter() - start, seconds, [b[0] for b in boards], started_at)


def ingest_process(settings: DatabaseSettings, rate: float, pipe: Connection) -> None:
    """Entry point of the ingestion process: runs until the pipe says stop, then sends its report back."""
    pipe.send(asyncio.run(ingest(settings, rate, pipe)))


@dataclass(frozen=True)
class Case:
    """One measured query: a call with random arguments (drawn from the rng it is given)."""

    name: str
    call: Call
    target_ms: float | None


def cases(race_ids: list[str], days: list[date]) -> list[Case]:
    """The figures asked for, plus the day summary restricted to the pools that move before the off."""

    async def history(conn: asyncpg.Connection, rng: random.Random) -> Sequence[object]:
        return await q.odds_history(conn, rng.choice(race_ids))

    async def day_all(conn: asyncpg.Connection, rng: random.Random) -> Sequence[object]:
        return await q.odds_day_summary(conn, rng.choice(days))

    async def day_live(conn: asyncpg.Connection, rng: random.Random) -> Sequence[object]:
        return await q.odds_day_summary(conn, rng.choice(days), pools=LIVE_POOLS)

    async def races(conn: asyncpg.Connection, rng: random.Random) -> Sequence[object]:
        return await q.races_by_date(conn, rng.choice(days))

    return [
        Case("race odds history (all pools)", history, 20),
        Case("day odds summary (all pools)", day_all, 100),
        Case("day odds summary (WIN/PLC/QNL)", day_live, 100),
        Case("races by date", races, 5),
    ]


@dataclass
class Figures:
    """Wall times (seconds) and row counts of one case."""

    seconds: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def percentile_ms(self, p: int) -> float:
        return statistics.quantiles(self.seconds, n=100, method="inclusive")[p - 1] * 1000


async def measure(conn: asyncpg.Connection, todo: list[Case], runs: int, warmup: int, seed: int) -> dict[str, Figures]:
    """Each case ``runs`` times in a row (after ``warmup`` unrecorded calls), with random arguments.

    One case at a time, so that the CPU bursts of a heavy query (a day summary) do not land on a light one's clock,
    and a full garbage collection between calls, outside the clock, for the same reason on the client side.
    """
    rng = random.Random(seed)  # noqa: S311 - benchmark arguments
    figures = {case.name: Figures() for case in todo}
    for case in todo:
        for i in range(warmup + runs):
            gc.collect()
            began = time.perf_counter()
            count = len(await case.call(conn, rng))
            took = time.perf_counter() - began
            if i >= warmup:
                figures[case.name].seconds.append(took)
                figures[case.name].rows.append(count)
    return figures


def report(todo: list[Case], figures: dict[str, Figures], ingest: IngestReport, rate: float) -> None:
    head = f"{'runs':>5} {'rows/run':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(f"\n{'query':<32} {head}  target p95")
    for case in todo:
        f = figures[case.name]
        p95 = f.percentile_ms(95)
        verdict = (
            "-"
            if case.target_ms is None
            else f"<= {case.target_ms:g} ms {'met' if p95 <= case.target_ms else 'MISSED'}"
        )
        print(
            f"{case.name:<32} {len(f.seconds):>5} {statistics.fmean(f.rows):>9,.0f} {f.percentile_ms(50):>8.1f} "
            f"{p95:>8.1f} {f.percentile_ms(99):>8.1f} {max(f.seconds) * 1000:>8.1f}  {verdict}"
        )
    writes = sorted(ingest.batch_seconds)
    print(
        f"\ningestion meanwhile: {ingest.rows:,} odds rows in {len(writes):,} batches over {ingest.elapsed:.1f}s = "
        f"{ingest.rows / ingest.elapsed:,.0f} rows/s (asked {rate:,.0f}); batch write p50 "
        f"{writes[len(writes) // 2] * 1000:.1f} ms, max {writes[-1] * 1000:.1f} ms"
    )


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f} MB"


async def sizes(conn: asyncpg.Connection) -> None:
    """Rows and on-disk sizes: the hypertable (with its chunks and each index) and the plain tables."""
    size = await conn.fetchrow("SELECT * FROM hypertable_detailed_size('odds_snapshots')")
    chunks = await conn.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = 'odds_snapshots'"
    )
    rows = await conn.fetchval("SELECT approximate_row_count('odds_snapshots')")
    assert size is not None
    print(
        f"\nodds_snapshots (hypertable, {chunks} chunks, ~{rows:,} rows): table {_mb(size['table_bytes'])}, "
        f"indexes {_mb(size['index_bytes'])}, toast {_mb(size['toast_bytes'])}, total {_mb(size['total_bytes'])}"
    )
    for name, nbytes in await conn.fetch(
        "SELECT indexname, hypertable_index_size(format('%I.%I', schemaname, indexname)::regclass) FROM pg_indexes "
        "WHERE schemaname = current_schema() AND tablename = 'odds_snapshots' ORDER BY indexname"
    ):
        print(f"  index {name}: {_mb(nbytes)}")
    for table in ("races", "entries", "results", *(["odds_daily_rollup"] if await rollup.exists(conn) else [])):
        row = await conn.fetchrow(
            f"SELECT count(*), pg_table_size('{table}'), pg_indexes_size('{table}'), pg_total_relation_size('{table}') "
            f"FROM {table}"
        )
        assert row is not None
        count, data, index, total = row
        print(f"{table} ({count:,} rows): table {_mb(data)}, indexes {_mb(index)}, total {_mb(total)}")


async def explain(conn: asyncpg.Connection, todo: list[Case], seed: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements one run of each case sends."""
    rng = random.Random(seed)  # noqa: S311 - benchmark arguments
    for case in todo:
        sent: list[asyncpg.connection.LoggedQuery] = []
        conn.add_query_logger(sent.append)
        try:
            await case.call(conn, rng)
            await asyncio.sleep(0)  # the driver hands queries to loggers on the next loop iteration
        finally:
            conn.remove_query_logger(sent.append)
        for logged in sent:
            print(f"\n--- {case.name}: {' '.join(logged.query.split())[:200]}")
            for (line,) in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + logged.query, *logged.args):
                print(line)


async def cleanup(conn: asyncpg.Connection, ingest: IngestReport) -> None:
    """Remove the rows the background ingestion wrote (and the placeholder races it created)."""
    deleted = await conn.execute(
        "DELETE FROM odds_snapshots WHERE source = 'simulator' AND time >= $1 AND race_id = ANY($2)",
        ingest.started_at - timedelta(minutes=1),
        ingest.race_ids,
    )
    if await rollup.exists(conn):  # the writer rolled them up too
        await conn.execute(
            "DELETE FROM odds_daily_rollup WHERE race_id = ANY($1) AND day >= $2",
            ingest.race_ids,
            ingest.started_at - timedelta(days=1),
        )
    await conn.execute("DELETE FROM races WHERE race_id = ANY($1) AND status = 'unknown'", ingest.race_ids)
    chunks = await conn.fetch(
        "SELECT format('%I.%I', chunk_schema, chunk_name), range_start, range_end FROM timescaledb_information.chunks "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = 'odds_snapshots' AND range_end > $1",
        ingest.started_at,
    )
    dropped = 0
    for chunk, start, end in chunks:  # a chunk the run created and that is empty again
        if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {chunk})"):
            await conn.execute(
                "SELECT drop_chunks('odds_snapshots', older_than => $1::timestamptz, newer_than => $2::timestamptz)",
                end,
                start,
            )
            dropped += 1
    print(f"\ncleaned up the ingested rows ({deleted}; {dropped} emptied chunk(s) dropped)")


async def run(
    settings: DatabaseSettings, runs: int, warmup: int, rate: float, seed: int, args: argparse.Namespace
) -> None:
    conn = await connect(settings)
    try:
        race_ids = [r[0] for r in await conn.fetch("SELECT race_id FROM races WHERE status <> 'cancelled' ORDER BY 1")]
        days = [r[0] for r in await conn.fetch("SELECT DISTINCT race_date FROM races ORDER BY 1")]
        if not race_ids:
            raise SystemExit(f"schema {settings.schema_name} has no races: run python -m benchmarks.scale_data first")
        todo = cases(race_ids, days)
        print(
            f"schema {settings.schema_name}: {len(race_ids):,} races over {len(days)} race days; "
            f"{runs} runs per query (+{warmup} warm-up) with {rate:,.0f} odds rows/s being written"
        )
        parent, child = multiprocessing.get_context("spawn").Pipe()
        writer = multiprocessing.get_context("spawn").Process(target=ingest_process, args=(settings, rate, child))
        writer.start()
        try:
            await asyncio.sleep(2.0)  # the writer process is up and writing
            figures = await measure(conn, todo, runs, warmup, seed)
        finally:
            parent.send("stop")
            ingested: IngestReport = await asyncio.to_thread(parent.recv)
            writer.join()
        report(todo, figures, ingested, rate)
        if args.explain:
            await explain(conn, todo, seed)
        await sizes(conn)
        if not args.keep_ingested:
            await cleanup(conn, ingested)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", default="scale", help="schema filled by benchmarks.scale_data (default: scale)")
    parser.add_argument("--runs", type=int, default=300, help="measured runs per query")
    parser.add_argument("--warmup", type=int, default=10, help="unrecorded runs per query first")
    parser.add_argument("--rate", type=float, default=2000, help="odds rows/s written meanwhile")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of one run of each query")
    parser.add_argument("--keep-ingested", action="store_true", help="keep the rows written during the run")
    args = parser.parse_args()
    settings = load_settings().database.model_copy(update={"schema_name": args.schema})
    asyncio.run(run(settings, args.runs, args.warmup, args.rate, args.seed, args))


if __name__ == "__main__":
    main()
