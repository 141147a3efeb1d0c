"""``racelab dlq list`` and ``racelab dlq replay``: look into the dead-letter topics and send records back.

A replayed record goes to its original topic with its original key, bytes and headers, plus
``dlq.replayed_from`` (``topic:partition:offset`` of the dead letter) and ``dlq.replay_id``; its earlier ``dlq.*``
headers travel along, so if it fails again its ``dlq.attempts`` grows by one. Downstream writes are idempotent, so a
record replayed twice lands once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from runtime.kafka import durable_producer, list_topics
from runtime.settings import BrokerSettings
from schemas.topics import KINDS, TopicCatalogue

IDLE_S = 2.0


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ topic."""

    dlq_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        return dict(self.headers).get(name, b"").decode("utf-8", "replace")

    @property
    def failed_at(self) -> datetime | None:
        text = self.header("dlq.first_failed_at")
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
        except ValueError:
            return None


@dataclass
class Filters:
    """Which dead letters a command applies to."""

    kinds: Sequence[str] = KINDS
    stage: str | None = None
    exception_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def match(self, letter: DeadLetter) -> bool:
        if self.stage and letter.header("dlq.stage") != self.stage:
            return False
        if self.exception_class and letter.header("dlq.exception.class") != self.exception_class:
            return False
        failed = letter.failed_at
        if self.since and (failed is None or failed < self.since):
            return False
        return not (self.until and (failed is None or failed >= self.until))


async def read_dead_letters(broker: BrokerSettings, topics: TopicCatalogue, filters: Filters) -> list[DeadLetter]:
    """Every matching record of the selected DLQ topics, from the beginning to the current end."""
    wanted = [topics.dlq(k) for k in filters.kinds]  # type: ignore[arg-type]
    existing = await list_topics(broker)
    names = [n for n in wanted if n in existing]
    if not names:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        partitions = [TopicPartition(n, p) for n in names for p in (consumer.partitions_for_topic(n) or set())]
        if not partitions:
            await consumer.topics()
            partitions = [TopicPartition(n, p) for n in names for p in (consumer.partitions_for_topic(n) or set())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        idle_since = time.monotonic()
        while True:
            batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    letter = DeadLetter(tp.topic, tp.partition, r.offset, r.key, r.value or b"", list(r.headers))
                    if filters.match(letter):
                        letters.append(letter)
            if batch:
                idle_since = time.monotonic()
            positions = {tp: await consumer.position(tp) for tp in partitions}
            # end offsets of some brokers have been seen off by one: also stop once nothing arrives for a while
            if all(positions[tp] >= ends[tp] for tp in partitions) or time.monotonic() - idle_since > IDLE_S:
                break
    finally:
        await consumer.stop()
    return letters


@dataclass
class DlqSummary:
    """Counts by topic, stage and exception class, with the first and last failure time."""

    rows: list[tuple[str, str, str, int, datetime | None, datetime | None]] = field(default_factory=list)

    @classmethod
    def of(cls, letters: Sequence[DeadLetter]) -> DlqSummary:
        groups: dict[tuple[str, str, str], list[DeadLetter]] = {}
        for letter in letters:
            key = (letter.dlq_topic, letter.header("dlq.stage"), letter.header("dlq.exception.class"))
            groups.setdefault(key, []).append(letter)
        rows = []
        for (topic, stage, cls_name), members in sorted(groups.items()):
            times = sorted(t for t in (m.failed_at for m in members) if t is not None)
            rows.append(
                (topic, stage, cls_name, len(members), times[0] if times else None, times[-1] if times else None)
            )
        return cls(rows)


@dataclass
class ReplayResult:
    """What a replay did (or would do, with ``dry_run``)."""

    selected: int = 0
    replayed: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    skipped_no_origin: int = 0


async def replay(
    broker: BrokerSettings,
    topics: TopicCatalogue,
    filters: Filters,
    *,
    dry_run: bool = False,
    rate: float | None = None,
) -> ReplayResult:
    """Re-publish matching dead letters to their original topics (``rate``: messages per second)."""
    letters = await read_dead_letters(broker, topics, filters)
    result = ReplayResult(selected=len(letters))
    replay_id = uuid.uuid4().hex[:12]
    producer = None if dry_run else durable_producer(broker, "replay", max_request_size=16 * 1024 * 1024)
    if producer is not None:
        await producer.start()
    try:
        futures = []
        started = time.monotonic()
        for i, letter in enumerate(letters):
            origin = letter.header("dlq.original.topic")
            if not origin:
                result.skipped_no_origin += 1
                continue
            result.by_topic[origin] += 1
            if producer is None:
                continue
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            headers = [(k, v) for k, v in letter.headers if k not in ("dlq.replayed_from", "dlq.replay_id")]
            headers += [
                ("dlq.replayed_from", f"{letter.dlq_topic}:{letter.partition}:{letter.offset}".encode()),
                ("dlq.replay_id", replay_id.encode()),
            ]
            futures.append(await producer.send(origin, value=letter.value, key=letter.key, headers=headers))
        await asyncio.gather(*futures)
        result.replayed = 0 if dry_run else sum(result.by_topic.values())
    finally:
        if producer is not None:
            await producer.stop()
    return result
