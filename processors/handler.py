"""One batch of raw messages -> normalized records and dead letters, delivered before the batch counts as done.

The handler never raises for a bad message: it goes to the DLQ. It raises only :class:`DlqLimitExceeded` (the
worker must stop) and waits out a broker outage (the batch is re-sent until the broker acknowledges it; downstream
writes are idempotent, so a re-send is harmless).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from processors.dlq import DlqLimit, dlq_headers
from processors.errors import DecodeError, ProcessingError
from processors.normalize import normalize
from processors.normalize.common import Context
from racelab.kafka import durable_producer
from racelab.metrics import ProcessorMetrics
from racelab.settings import BrokerSettings
from schemas.raw import RawHeaders
from schemas.records import odds_messages
from schemas.topics import NORMALIZED_NAME, Kind, TopicCatalogue

log = logging.getLogger(__name__)
MAX_WAIT_S = 30.0


@dataclass(frozen=True)
class RawMessage:
    """A consumed raw message with its coordinates."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


Outgoing = tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]


def context_of(message: RawMessage) -> Context:
    """The normalizer context from the provenance headers; unreadable headers are a decode error."""
    try:
        headers = RawHeaders.from_kafka(message.headers)
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"provenance headers missing or invalid ({exc.__class__.__name__})") from None
    key = message.key.decode("utf-8", "replace") if message.key else ""
    return Context(headers.source, headers.endpoint, headers.params, headers.fetched_at, key)


class OutputProducer:
    """aiokafka producer for normalized records and dead letters (acks=all; partitions cached per key)."""

    def __init__(self, broker: BrokerSettings) -> None:
        self.broker = broker
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, bytes], int] = {}

    async def start(self) -> None:
        """Connect (inside the running loop, as aiokafka requires)."""
        if self._producer is not None:
            return
        self._producer = durable_producer(self.broker, "processors", max_batch_size=256 * 1024)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("OutputProducer.start() was not awaited")
        return self._producer

    async def _partition(self, topic: str, key: bytes | None) -> int | None:
        if key is None:
            return None
        cached = self._cache.get((topic, key))
        if cached is not None:
            return cached
        if topic not in self._partitions:
            self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
        partitions = self._partitions[topic]
        partition = int(DefaultPartitioner()(key, partitions, partitions))
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[(topic, key)] = partition
        return partition

    async def deliver(self, messages: Sequence[Outgoing]) -> None:
        """Send all, return when all are acknowledged; retry through broker outages.

        Records are grouped by topic and partition (one race's records share one) and handed to aiokafka as
        record batches: one append per record and one request per full batch, instead of one ``send`` per record.
        """
        delay = 0.5
        while True:
            try:
                await asyncio.gather(*await self._submit(messages))
            except KafkaError as exc:
                log.warning(
                    "delivering %d messages failed (%s); retrying in %.1fs",
                    len(messages),
                    exc.__class__.__name__,
                    delay,
                )
                self._partitions.clear()
                self._cache.clear()
                await asyncio.sleep(delay)
                delay = min(MAX_WAIT_S, delay * 2)
            else:
                return

    async def _submit(self, messages: Sequence[Outgoing]) -> list[asyncio.Future[object]]:
        groups: dict[tuple[str, int | None], list[Outgoing]] = {}
        cache = self._cache
        for message in messages:
            topic, key = message[0], message[1]
            partition = cache.get((topic, key)) if key is not None else None
            if partition is None:
                partition = await self._partition(topic, key)
            groups.setdefault((topic, partition), []).append(message)
        futures = []
        for (topic, partition), group in groups.items():
            if partition is None:  # no key: let aiokafka pick
                for _, key, value, headers in group:
                    futures.append(await self.producer.send(topic, value=value, key=key, headers=headers))
                continue
            batch = self.producer.create_batch()
            for _, key, value, headers in group:
                if batch.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                    futures.append(await self.producer.send_batch(batch, topic, partition=partition))
                    batch = self.producer.create_batch()
                    if batch.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                        raise KafkaError(f"a record for {topic} is larger than a whole batch")
            if batch.record_count():
                futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        return futures


@dataclass
class BatchResult:
    """What one batch produced."""

    records: int = 0
    dead_letters: int = 0
    records_by_name: dict[str, int] = field(default_factory=dict)
    dead_by_stage: dict[str, int] = field(default_factory=dict)


class BatchHandler:
    """Normalizes one raw topic's batches."""

    def __init__(
        self,
        kind: Kind,
        topics: TopicCatalogue,
        output: OutputProducer,
        limit: DlqLimit,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        self.kind = kind
        self.metrics = metrics
        self.topics = topics
        self.output = output
        self.limit = limit
        self.normalized_topics = {name: topics.normalized(k) for k, name in NORMALIZED_NAME.items()}

    def _dead_letter(self, message: RawMessage, error: Exception, stage: str) -> Outgoing:
        headers = dlq_headers(
            message.headers,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error=error,
            stage=stage,
        )
        return self.topics.dlq(self.kind), message.key, message.value or b"", headers

    def route(self, messages: Sequence[RawMessage]) -> tuple[list[Outgoing], BatchResult]:
        """Normalize every message of a batch; returns what to send (records and dead letters)."""
        outgoing: list[Outgoing] = []
        result = BatchResult()
        for message in messages:
            try:
                records = normalize(message.value or b"", context_of(message))
            except ProcessingError as exc:
                failure: tuple[Exception, str] | None = (exc, exc.stage)
            except Exception as exc:  # a bug must not skip a message: it goes to the DLQ, loudly
                log.exception("normalizer bug on %s/%d@%d", message.topic, message.partition, message.offset)
                failure = (exc, "normalize")
            else:
                failure = None
            self.limit.record(failure is not None)
            if failure is not None:
                outgoing.append(self._dead_letter(message, *failure))
                result.dead_letters += 1
                result.dead_by_stage[failure[1]] = result.dead_by_stage.get(failure[1], 0) + 1
                continue
            for name, items in records.by_topic().items():
                topic = self.normalized_topics[name]
                if name == "odds":  # one board per race and snapshot time
                    outgoing += [(topic, rid.encode(), value, None) for rid, value in odds_messages(items)]
                else:
                    for record in items:
                        outgoing.append((topic, record.race_id.encode(), record.model_dump_json().encode(), None))
                result.records += len(items)
                result.records_by_name[name] = result.records_by_name.get(name, 0) + len(items)
        return outgoing, result

    async def handle(self, messages: Sequence[RawMessage]) -> BatchResult:
        """Route and deliver one batch."""
        started = time.monotonic()
        outgoing, result = self.route(messages)
        await self.output.deliver(outgoing)
        if self.metrics is not None:
            m = self.metrics
            m.consumed.labels(self.kind).inc(len(messages))
            for name, n in result.records_by_name.items():
                m.normalized.labels(name).inc(n)
            for stage, n in result.dead_by_stage.items():
                m.dead_letters.labels(self.kind, stage).inc(n)
            m.batch_seconds.observe(time.monotonic() - started)
        return result
