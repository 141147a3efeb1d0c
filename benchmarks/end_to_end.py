"""End to end: raw odds messages -> one processors worker -> one sink worker -> rows in odds_snapshots.

Publishes 1000-row raw odds pages at a steady rate for a while (real broker, real TimescaleDB, both workers as
real processes on this machine), then reports the rows/s committed while publishing, the time to drain, and the
latency from each raw message's ``fetched_at`` to its committed row, measured on one-row probe messages sent every
0.25 s on a race of their own (looked up through the unique index every 10 ms, by a task of its own). Where that time
goes: when each probe could be read from the raw topic, and when its board was on the normalized topic (read by a
consumer of the probe's partition of each).

    python -m benchmarks.end_to_end [--rate 25000] [--seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from producers.simulator import envelope, render_kra
from producers.simulator.world import World
from runtime.db import connect
from runtime.kafka import delete_topics, durable_producer, ensure_topics
from runtime.settings import load_settings
from schemas import endpoints as ep
from schemas.raw import RawHeaders
from schemas.topics import TopicCatalogue
from sinks.migrate import migrate

PROBE_RACE = "horse-jeju-99-20241214"
PROBE_POLL_S = 0.01  # how often the committed probes are looked for: the measurement's resolution
STAGES = ("raw page readable", "board published")


def boards() -> list[list[dict[str, object]]]:
    """1000-row pages of odds boards (every pool and combination) of many races."""
    world = World(seed=9)
    pages = []
    for track in ("seoul", "busan", "jeju"):
        for day in (date(2024, 12, 13), date(2024, 12, 14), date(2024, 12, 15)):
            for race in world.races(track, day):
                rows = render_kra.final_dividend_rows(race)
                pages += [rows[i : i + 1000] for i in range(0, len(rows), 1000) if len(rows[i : i + 1000]) == 1000]
    return pages


def start(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = tempfile.NamedTemporaryFile(prefix=f"e2e-{role}-", suffix=".log", delete=False)
    print(f"{role} log: {log.name}")
    return subprocess.Popen(
        [sys.executable, "-m", "racelab.cli", "run", role], env=env, stdout=log, stderr=subprocess.STDOUT
    )


PROBE_ROW: dict[str, object] = {
    "meet": "제주",
    "rcDate": 20241214,
    "rcNo": 99,
    "pool": "단승식",
    "chulNo": 1,
    "chulNo2": 0,
    "chulNo3": 0,
    "odds": 2.5,
}


def raw_message(rows: list[dict[str, object]], at: datetime) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A raw live-odds page as the producers publish it: the body and its provenance headers."""
    headers = RawHeaders(
        source="kra", kind="odds", endpoint=ep.LIVE_ODDS_PATH, params={}, fetched_at=at, poll_id="e2e", http_status=200
    ).to_kafka()
    return envelope.json_body(rows, 1, 1000, len(rows)), headers


@dataclass
class Figures:
    """What one run measured."""

    window_s: float = 0.0
    sent_rows: int = 0
    committed_in_window: int = 0
    drain_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})

    def report(self, rate: int) -> None:
        print(
            f"offered {rate:,} rows/s for {self.window_s:.0f}s ({self.sent_rows:,} rows in 1000-row raw messages): "
            f"committed {self.committed_in_window / self.window_s:,.0f} rows/s while publishing; backlog drained "
            f"{self.drain_s:.1f}s after the end"
        )
        print(f"fetched_at -> committed row, {len(self.latencies)} probes: {percentiles(self.latencies)}")
        for stage, seconds in self.stages.items():
            if seconds:
                print(f"  {stage} after fetched_at: {percentiles(seconds)} ({len(seconds)} probes)")


def percentiles(seconds: list[float]) -> str:
    """p50 and p99 of latencies, in ms ("nan" when there are none)."""
    ordered = sorted(seconds)
    p50 = statistics.median(ordered) * 1000 if ordered else float("nan")
    p99 = ordered[int(len(ordered) * 0.99)] * 1000 if ordered else float("nan")
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"


@dataclass
class Bench:
    """Publishes raw pages and probes into the raw odds topic and watches the rows land."""

    producer: AIOKafkaProducer
    conn: asyncpg.Connection
    probe_conn: asyncpg.Connection  # the probe watcher's own: it runs while ``conn`` counts rows
    topic: str
    pages: list[list[dict[str, object]]]
    probes: dict[datetime, float] = field(default_factory=dict)  # sent and not committed yet
    sent: dict[datetime, float] = field(default_factory=dict)  # every probe's fetched_at and send time

    async def send(self, rows: list[dict[str, object]], key: bytes, at: datetime | None = None) -> None:
        body, headers = raw_message(rows, at or datetime.now(UTC))
        await self.producer.send(self.topic, body, key=key, headers=headers)

    async def rows(self) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM odds_snapshots"))

    async def warm_up(self, workers: list[subprocess.Popen[bytes]]) -> None:
        """Both workers joined and a probe went all the way through."""
        deadline = time.monotonic() + 120
        await self.send([PROBE_ROW], PROBE_RACE.encode())
        while not await self.conn.fetchval("SELECT count(*) FROM odds_snapshots WHERE race_id = $1", PROBE_RACE):
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise SystemExit("the workers did not start; see their logs")
            await asyncio.sleep(0.2)

    async def _probe(self, now: float) -> None:
        at = datetime.now(UTC)
        await self.send([PROBE_ROW], PROBE_RACE.encode(), at)
        self.probes[at] = self.sent[at] = now

    async def _landed_probes(self, figures: Figures) -> None:
        if not self.probes:
            return
        done = await self.probe_conn.fetch(
            "SELECT time FROM odds_snapshots WHERE race_id = $1 AND time = ANY($2)", PROBE_RACE, list(self.probes)
        )
        for row in done:
            figures.latencies.append(time.monotonic() - self.probes.pop(row["time"]))

    async def _watch_probes(self, figures: Figures, stop: asyncio.Event) -> None:
        """Look for committed probes every ``PROBE_POLL_S``, apart from the publishing loop (which sleeps 50 ms)."""
        while not stop.is_set():
            await self._landed_probes(figures)
            await asyncio.sleep(PROBE_POLL_S)

    async def follow_stages(self, consumer: AIOKafkaConsumer, figures: Figures, stop: asyncio.Event) -> None:
        """Note when each probe could be read from the raw topic and when its board was on the normalized topic.

        ``consumer`` is assigned the probe's partition of both, at their end. A probe is known by its ``fetched_at``:
        the raw message's header, the board's ``time``.
        """
        while not stop.is_set():
            for tp, messages in (await consumer.getmany(timeout_ms=100)).items():
                seen = time.monotonic()
                for message in messages:
                    if message.key != PROBE_RACE.encode():
                        continue
                    if tp.topic == self.topic:
                        stage = STAGES[0]
                        at = datetime.fromisoformat(dict(message.headers)["fetched_at"].decode())
                    else:
                        stage = STAGES[1]
                        at = datetime.fromisoformat(orjson.loads(message.value or b"{}")["time"])
                    if at in self.sent:
                        figures.stages[stage].append(seen - self.sent[at])

    async def offer(self, rate: int, seconds: float, stages: AIOKafkaConsumer) -> Figures:
        """Pages at ``rate`` rows/s for ``seconds``, a probe every 0.25 s; then wait for the backlog to drain."""
        figures = Figures()
        before = await self.rows()
        started = time.monotonic()
        next_probe, i = started, 0
        stop = asyncio.Event()
        watcher = asyncio.create_task(self._watch_probes(figures, stop))
        follower = asyncio.create_task(self.follow_stages(stages, figures, stop))
        while (now := time.monotonic()) < started + seconds:
            due = int((now - started) * rate / 1000)  # pages that should have gone out by now
            while i < due:
                await self.send(self.pages[i % len(self.pages)], f"page-{i % len(self.pages)}".encode())
                i += 1
                figures.sent_rows += 1000
            if now >= next_probe:
                await self._probe(now)
                next_probe += 0.25
            await asyncio.sleep(0.05)
        figures.window_s = time.monotonic() - started
        figures.committed_in_window = await self.rows() - before
        drain_started = time.monotonic()
        while await self.rows() < before + figures.sent_rows:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        figures.drain_s = time.monotonic() - drain_started
        stop.set()  # the last probes were committed with the backlog: one more look finds them
        await watcher
        await follower
        await self._landed_probes(figures)
        return figures


async def run(rate: int, seconds: float) -> None:
    settings = load_settings()
    prefix = f"e2e{uuid.uuid4().hex[:6]}"
    db = settings.database.model_copy(update={"schema_name": prefix})
    await migrate(db)
    topics = TopicCatalogue(prefix)
    await ensure_topics(settings.broker, topics.all_names(), settings.topics.partitions)
    env = {
        **os.environ,
        "RACELAB_TOPICS__PREFIX": prefix,
        "RACELAB_DATABASE__SCHEMA_NAME": prefix,
        "RACELAB_LOG_LEVEL": "WARNING",
    }
    workers = [await asyncio.to_thread(start, role, env) for role in ("processors", "sink")]
    producer = durable_producer(settings.broker, "bench-e2e")  # raw pages as the pollers publish them
    await producer.start()
    conn, probe_conn = await connect(db), await connect(db)
    bench = Bench(producer, conn, probe_conn, topics.raw("odds"), boards())
    stages = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap_servers, fetch_max_wait_ms=10)
    await stages.start()
    try:
        await bench.warm_up(workers)
        partitions = list(range(settings.topics.partitions))
        probe_partition = DefaultPartitioner()(PROBE_RACE.encode(), partitions, partitions)
        followed = [TopicPartition(t, probe_partition) for t in (topics.raw("odds"), topics.normalized("odds"))]
        stages.assign(followed)
        await stages.seek_to_end(*followed)
        figures = await bench.offer(rate, seconds, stages)
    finally:
        for w in workers:
            w.terminate()
            await asyncio.to_thread(w.wait, 60)
        await producer.stop()
        await stages.stop()
        await delete_topics(settings.broker, topics.all_names())
        await conn.execute(f'DROP SCHEMA "{prefix}" CASCADE')
        await conn.close()
        await probe_conn.close()
    figures.report(rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=25_000, help="offered odds rows per second")
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds))


if __name__ == "__main__":
    main()
