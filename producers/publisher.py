"""Publishes raw API responses to ``racelab.raw.<kind>`` and reports success only after the broker acknowledged.

The producer uses ``acks=all`` and, where the broker supports it, idempotence (settings: ``broker.idempotence``).
Messages of one race share a key, so they stay in order on one partition.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from aiokafka.errors import KafkaError

from producers.client import RawResponse
from runtime.kafka import durable_producer
from runtime.settings import BrokerSettings
from schemas.errors import BrokerError
from schemas.raw import RawHeaders
from schemas.topics import Kind, TopicCatalogue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """Where a message landed."""

    topic: str
    partition: int
    offset: int


class RawPublisher:
    """One aiokafka producer for all pollers of a process."""

    def __init__(self, broker: BrokerSettings, topics: TopicCatalogue) -> None:
        self.broker = broker
        self.topics = topics
        self._producer = durable_producer(broker, "producers")
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        try:
            await self._producer.start()
        except (KafkaError, OSError) as exc:
            await self._producer.stop()
            raise BrokerError(
                f"cannot reach the broker at {self.broker.bootstrap_servers} ({exc.__class__.__name__})"
            ) from exc
        self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def publish(
        self, kind: Kind, key: str, pages: Sequence[RawResponse], poll_id: str | None = None
    ) -> list[Published]:
        """Send every page of one call; returns when the broker acknowledged all of them."""
        poll_id = poll_id or uuid.uuid4().hex
        topic = self.topics.raw(kind)
        futures = []
        try:
            for page in pages:
                headers = RawHeaders.model_validate(
                    {
                        "source": page.source,
                        "kind": kind,
                        "endpoint": page.endpoint,
                        "params": page.params,
                        "fetched_at": page.fetched_at,
                        "poll_id": poll_id,
                        "http_status": page.http_status,
                    }
                )
                futures.append(
                    await self._producer.send(topic, value=page.body, key=key.encode(), headers=headers.to_kafka())
                )
            results = await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BrokerError(f"publishing to {topic} failed ({exc.__class__.__name__})") from exc
        return [Published(r.topic, r.partition, r.offset) for r in results]
