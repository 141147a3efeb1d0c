"""An in-memory broker for unit tests, after arroyo's local backend: topics of partitions of records, and a producer
with the part of aiokafka's interface that :class:`runtime.delivery.OutputProducer` uses. Failures are injected by
count (``fail_sends``): a failing send stores nothing of its request and raises a retriable Kafka error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaConnectionError, RequestTimedOutError

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


@dataclass
class LocalBroker:
    """Topics with a fixed number of partitions each; records kept in append order per partition."""

    partitions: int = 4
    topics: dict[str, dict[int, list[Record]]] = field(default_factory=dict)

    def partition_log(self, topic: str, partition: int) -> list[Record]:
        return self.topics.setdefault(topic, {p: [] for p in range(self.partitions)})[partition]

    def records(self, topic: str) -> list[Record]:
        return [r for p in sorted(self.topics.get(topic, {})) for r in self.topics[topic][p]]


class _Batch:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[Record] = []

    def append(self, *, timestamp: Any, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
        if len(self.items) >= self.limit:
            return None
        self.items.append((key, value, list(headers)))
        return object()

    def record_count(self) -> int:
        return len(self.items)


@dataclass
class LocalProducer:
    """Produces into a :class:`LocalBroker`; the first ``fail_sends`` sends fail (timeouts, lost connections)."""

    broker: LocalBroker
    fail_sends: int = 0
    batch_limit: int = 3
    started: bool = False
    stopped: bool = False
    attempts: int = 0

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.broker.partitions))

    def create_batch(self) -> _Batch:
        return _Batch(self.batch_limit)

    def _fail(self) -> None:
        self.attempts += 1
        if self.fail_sends > 0:
            self.fail_sends -= 1
            raise (KafkaConnectionError if self.fail_sends % 2 else RequestTimedOutError)()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> asyncio.Future[object]:
        self._fail()
        self.broker.partition_log(topic, partition).extend(batch.items)
        return self._done()

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[object]:
        self._fail()
        self.broker.partition_log(topic, 0).append((key, value, list(headers or [])))
        return self._done()

    @staticmethod
    def _done() -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future
