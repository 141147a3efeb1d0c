"""The raw archive's loss window on the local broker: how long a published raw message waits until it is archived
(what a restart of the memory-only local broker loses from the history is what was published in that window), at a
steady rate, then counted at a kill -9 of the broker while publishing goes on.

A broker of its own (Tansu, like the local stack's, on a free port), an archiver process (``racelab run archiver``
with its default batching: up to 2,000 messages or 0.5 s) into a scratch schema, and a publisher of raw messages at
``--rate`` per second that notes when the broker acknowledged each one. Needs a database: the local stack
(``racelab stack up``) or ``RACELAB_DATABASE__URL``.

    python -m benchmarks.archive_loss_window [--rate 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from benchmarks.scratch import scratch_schema
from deploy.stack.broker import TansuBroker
from deploy.stack.process import port_open
from runtime.db import connect
from runtime.kafka import ensure_topics
from runtime.settings import Settings, load_settings
from schemas.topics import TopicCatalogue


def _headers(poll_id: str) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return [
        ("source", b"kra"),
        ("kind", b"odds"),
        ("endpoint", b"API160_1/integratedInfo_1"),
        ("params", b'{"meet":"1","rc_date":"20241214","rc_no":"3"}'),
        ("fetched_at", now.encode()),
        ("poll_id", poll_id.encode()),
        ("http_status", b"200"),
    ]


class Publisher:
    """Raw messages at a steady rate; the broker's acknowledgement time of each (epoch seconds) by poll id."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=3000)
        self.topic = topic
        self.acked: dict[str, float] = {}
        self.failed = 0

    async def run(self, prefix: str, rate: float, seconds: float, stop: asyncio.Event | None = None) -> None:
        body = orjson.dumps({"response": {"body": {"items": {"item": [{"pool": "단승식", "odds": 3.1}] * 40}}}})
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds and not (stop and stop.is_set()):
            poll_id = f"{prefix}-{n}"
            future = await self.producer.send(self.topic, value=body, key=b"horse-seoul-3-20241214",
                                              headers=_headers(poll_id))  # fmt: skip
            future.add_done_callback(lambda f, p=poll_id: self._done(p, f))
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))

    def _done(self, poll_id: str, future: asyncio.Future[object]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.failed += 1
        else:
            self.acked[poll_id] = time.time()


async def archived(settings: Settings, prefix: str) -> dict[str, float]:
    conn = await connect(settings.database)
    try:
        found = await conn.fetch(
            "SELECT poll_id, extract(epoch FROM archived_at)::float8 AS at FROM raw_archive WHERE poll_id LIKE $1",
            f"{prefix}-%",
        )
        return {r["poll_id"]: r["at"] for r in found}
    finally:
        await conn.close()


async def until_archived(settings: Settings, prefix: str, n: int, limit_s: float = 60) -> dict[str, float]:
    deadline = time.monotonic() + limit_s
    while True:
        found = await archived(settings, prefix)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


def _env(settings: Settings, bootstrap: str) -> dict[str, str]:
    return {
        **os.environ,
        "RACELAB_BROKER__BOOTSTRAP_SERVERS": bootstrap,
        "RACELAB_BROKER__IDEMPOTENCE": "false",
        "RACELAB_BROKER__FETCH_MAX_WAIT_MS": "50",
        "RACELAB_BROKER__SESSION_TIMEOUT_MS": "6000",
        "RACELAB_DATABASE__URL": settings.database.url.get_secret_value(),
        "RACELAB_DATABASE__SCHEMA_NAME": settings.database.schema_name,
        "RACELAB_TOPICS__PREFIX": settings.topics.prefix,
        "RACELAB_OPS__ARCHIVER_PORT": "0",
    }


def _ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else values[0] * 1000


async def main(rate: float, seconds: float) -> None:
    base = load_settings()
    async with scratch_schema(base.database) as database:
        topics = base.topics.model_copy(update={"prefix": f"loss{uuid.uuid4().hex[:6]}"})
        await measure(base.model_copy(update={"database": database, "topics": topics}), rate, seconds)


async def measure(settings: Settings, rate: float, seconds: float) -> None:
    home = Path(tempfile.mkdtemp(prefix="racelab-loss-"))
    broker = TansuBroker(home=home)
    broker.start()
    topics = TopicCatalogue(settings.topics.prefix)
    broker_settings = settings.broker.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
    await ensure_topics(broker_settings, topics.all_names(), 1)
    archiver = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "racelab.cli", "run", "archiver", env=_env(settings, broker.bootstrap_servers),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    publisher = Publisher(broker.bootstrap_servers, topics.raw("odds"))
    await publisher.producer.start()
    try:
        await publisher.run("warmup", 10, 1)
        await until_archived(settings, "warmup", 10, 120)  # the archiver joined its group and reads

        await publisher.run("steady", rate, seconds)
        await asyncio.sleep(1)
        steady = [p for p in publisher.acked if p.startswith("steady-")]
        stored = await until_archived(settings, "steady", len(steady))
        waits = sorted(stored[p] - publisher.acked[p] for p in steady if p in stored)
        print(
            f"steady {rate:.0f} raw messages/s for {seconds:.0f} s: {len(steady):,} acknowledged, {len(stored):,} "
            f"archived; acknowledged -> archived p50 {_ms(waits, 50):.0f} ms, p99 {_ms(waits, 99):.0f} ms, "
            f"max {waits[-1] * 1000:.0f} ms"
        )

        stop = asyncio.Event()
        feeding = asyncio.create_task(publisher.run("kill", rate, 60, stop))
        await asyncio.sleep(random.Random(3).uniform(4.0, 6.0))  # noqa: S311 - a kill time, not a secret
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)
        killed_at = time.time()
        stop.set()
        await feeding
        await asyncio.sleep(4)  # sends in flight fail
        before = {p: t for p, t in publisher.acked.items() if p.startswith("kill-")}
        stored = await archived(settings, "kill")
        lost = sorted(t for p, t in before.items() if p not in stored)
        window = killed_at - lost[0] if lost else 0.0
        print(
            f"broker killed with -9 while publishing {rate:.0f}/s: {len(before):,} acknowledged before the kill, "
            f"{len(stored):,} archived, {len(lost):,} lost from the history = the last {window * 1000:.0f} ms "
            f"before the kill"
        )
        port, broker.pid = broker.port, None
        while port_open(port):  # noqa: ASYNC110 - the killed process's listener goes away
            await asyncio.sleep(0.05)
        broker.start()
        print(f"after the restart the archive still holds all {len(await archived(settings, 'kill')):,} of them")
    finally:
        archiver.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(archiver.wait(), 30)
        except TimeoutError:
            archiver.kill()
        await publisher.producer.stop()
        broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50, help="raw messages per second (default 50)")
    parser.add_argument("--seconds", type=float, default=30, help="length of the steady phase (default 30)")
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
