"""Normalized odds rows/s and raw messages/s through one processor worker (a real ``racelab run processors``).

Needs a broker: the local stack (``racelab stack up``) or ``RACELAB_BROKER__BOOTSTRAP_SERVERS``. The worker is
started and warmed up first; then the raw messages are produced and the clock runs until every normalized record
is on ``<prefix>.odds``. Also prints the in-process normalize+serialize rate (no broker) for comparison.

    python -m benchmarks.processor_throughput [--messages 400] [--rows 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.normalize import normalize
from processors.normalize.common import Context
from producers.simulator import envelope, render_kra
from producers.simulator.world import World
from runtime.kafka import delete_topics, durable_producer, ensure_topics
from runtime.settings import load_settings
from schemas import endpoints as ep
from schemas.raw import RawHeaders
from schemas.records import board_messages
from schemas.topics import TopicCatalogue

DAY = date(2024, 12, 14)


def payloads(count: int, rows: int) -> list[tuple[bytes, bytes]]:
    world = World(seed=3)
    races = [
        r
        for track in ("seoul", "gwangmyeong", "changwon", "busan_cycle")
        for r in world.races(track, DAY)
        if not r.cancelled
    ]
    out: list[tuple[bytes, bytes]] = []
    i = 0
    while len(out) < count:
        race = races[i % len(races)]
        board = render_kra.final_dividend_rows(race)
        for start in range(0, len(board), rows):
            chunk = board[start : start + rows]
            out.append((race.race_id.encode(), envelope.json_body(chunk, 1, rows, len(chunk))))
            if len(out) == count:
                break
        i += 1
    return out


def in_process_rate(messages: list[tuple[bytes, bytes]]) -> tuple[float, int]:
    ctx = Context("kra", ep.KRA_FINAL_DIVIDENDS.path, {}, datetime.now(UTC), "")
    started, rows = time.perf_counter(), 0
    for _, body in messages:
        boards = normalize(body, ctx).odds
        board_messages(boards)
        rows += sum(len(board.prices) for board in boards)
    return rows / (time.perf_counter() - started), rows


class Counter:
    """Counts odds rows (the prices of the boards) on the output topic by consuming them."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer, self.seen = consumer, 0

    async def at_least(self, n: int) -> int:
        batch = await self.consumer.getmany(timeout_ms=200, max_records=100_000)
        self.seen += sum(len(orjson.loads(m.value)["prices"]) for v in batch.values() for m in v)
        return self.seen >= n


def start_worker(prefix: str) -> subprocess.Popen[bytes]:
    """One ``racelab run processors`` on the benchmark's topics; its log goes to a temporary file."""
    env = {**os.environ, "RACELAB_TOPICS__PREFIX": prefix, "RACELAB_LOG_LEVEL": "WARNING"}
    log = tempfile.NamedTemporaryFile(prefix=f"{prefix}-worker-", suffix=".log", delete=False)
    print(f"worker log: {log.name}")
    return subprocess.Popen(
        [sys.executable, "-m", "racelab.cli", "run", "processors"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def run(count: int, rows: int) -> None:
    settings = load_settings()
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    topics = TopicCatalogue(prefix)
    await ensure_topics(settings.broker, topics.all_names(), settings.topics.partitions)
    messages = payloads(count, rows)
    rate, total_rows = in_process_rate(messages)
    print(f"in-process normalize + serialize: {rate:,.0f} odds rows/s ({total_rows:,} rows)")
    headers = RawHeaders(
        source="kra",
        kind="odds",
        endpoint=ep.KRA_FINAL_DIVIDENDS.path,
        params={},
        fetched_at=datetime.now(UTC),
        poll_id="bench",
        http_status=200,
    ).to_kafka()
    worker = await asyncio.to_thread(start_worker, prefix)
    producer = durable_producer(settings.broker, "bench-processors", linger_ms=20)  # as the pollers publish
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.broker.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await producer.start()
    await consumer.start()
    try:
        await consumer.topics()  # refresh metadata
        out_partitions = [
            TopicPartition(topics.normalized("odds"), p)
            for p in sorted(consumer.partitions_for_topic(topics.normalized("odds")) or [])
        ]
        if not out_partitions:
            raise SystemExit(f"no partitions for {topics.normalized('odds')}")
        consumer.assign(out_partitions)
        counter = Counter(consumer)
        key, body = messages[0]
        await producer.send_and_wait(topics.raw("odds"), body, key=key, headers=headers)  # warm-up: join the group
        warm = body.count(b'"pool"')
        deadline = time.monotonic() + 90
        while not await counter.at_least(warm):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start (exit code {worker.poll()})")
            await asyncio.sleep(0.2)
        started = time.perf_counter()
        futures = [await producer.send(topics.raw("odds"), b, key=k, headers=headers) for k, b in messages]
        await asyncio.gather(*futures)
        produced = time.perf_counter() - started
        while not await counter.at_least(warm + total_rows):
            pass
        elapsed = time.perf_counter() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        await producer.stop()
        await consumer.stop()
        await delete_topics(settings.broker, topics.all_names())
    print(
        f"one worker, raw -> {topics.normalized('odds')}: {count} raw messages ({rows} rows each) in {elapsed:.2f}s "
        f"= {count / elapsed:,.0f} raw msgs/s, {total_rows / elapsed:,.0f} odds rows/s "
        f"(producing the input took {produced:.2f}s of it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rows", type=int, default=1000, help="rows per raw message (API160_1 pages hold 1000)")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.rows))


if __name__ == "__main__":
    main()
