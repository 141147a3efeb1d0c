"""Delivery of records to the broker: every part that produces normalized records or dead letters sends through here.

:meth:`OutputProducer.deliver` returns only when the broker acknowledged every message (acks=all), and waits out a
broker outage by sending the whole set again with backoff: downstream writes are idempotent, so a re-send is
harmless. Anything with the same ``deliver`` (:class:`Delivery`) can stand in for it in tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from runtime.kafka import durable_producer
from runtime.settings import BrokerSettings

log = logging.getLogger(__name__)
MAX_WAIT_S = 30.0

Outgoing = tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]
"""(topic, key, value, headers) of one message to send."""


class Delivery(Protocol):
    """Sends messages and returns once all of them are acknowledged."""

    async def deliver(self, messages: Sequence[Outgoing]) -> None: ...


ProducerFactory = Callable[..., Any]


class OutputProducer:
    """aiokafka producer for normalized records and dead letters (acks=all; partitions cached per key)."""

    def __init__(
        self,
        broker: BrokerSettings,
        role: str = "processors",
        factory: ProducerFactory = durable_producer,
        initial_delay_s: float = 0.5,
    ) -> None:
        self.broker = broker
        self.role = role
        self._factory = factory
        self._initial_delay_s = initial_delay_s
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, bytes], int] = {}

    async def start(self) -> None:
        """Connect (inside the running loop, as aiokafka requires)."""
        if self._producer is not None:
            return
        self._producer = self._factory(self.broker, self.role, max_batch_size=256 * 1024)
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
        delay = self._initial_delay_s
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
