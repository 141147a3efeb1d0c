"""Consumer lag and progress of a consumer group, measured from the broker (committed vs end offsets).

Measured outside the worker's own consumer, so it also sees a worker that is alive but no longer consuming
(the failure readiness exists for). :class:`LagMonitor` keeps the last figures and the time the group last made
progress: a committed offset moved, or nothing was waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from runtime.metrics import ConsumerMetrics
from runtime.settings import BrokerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicLag:
    topic: str
    end: int
    committed: int
    partitions: int = 1  # how many the broker has (0: the topic is not there)

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


def lag_consumer(settings: BrokerSettings, group: str, timeout_s: float = 5.0) -> AIOKafkaConsumer:
    """A consumer that names the group but never subscribes: it reads the group's committed offsets without joining
    it, and never commits (the admin call for this is not understood by every Kafka-protocol broker)."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000),
        metadata_max_age_ms=settings.metadata_max_age_ms,  # sees partitions added later
    )


async def measure(consumer: AIOKafkaConsumer, topics: Iterable[str], timeout_s: float = 5.0) -> list[TopicLag]:
    """End and committed offsets per topic for the consumer's group (a partition never committed counts from 0)."""
    wanted = sorted(set(topics))
    partitions = [TopicPartition(t, p) for t in wanted for p in sorted(consumer.partitions_for_topic(t) or ())]
    ends = await asyncio.wait_for(consumer.end_offsets(partitions), timeout_s) if partitions else {}
    committed = {tp: await asyncio.wait_for(consumer.committed(tp), timeout_s) for tp in partitions}
    per_topic: dict[str, list[int]] = {t: [0, 0, 0] for t in wanted}
    for tp, end in ends.items():
        per_topic[tp.topic][0] += end
        per_topic[tp.topic][1] += committed.get(tp) or 0
        per_topic[tp.topic][2] += 1
    return [TopicLag(t, end, done, count) for t, (end, done, count) in per_topic.items()]


@dataclass
class LagMonitor:
    """Measures a group's lag every ``interval_s`` and remembers when it last made progress."""

    settings: BrokerSettings
    group: str
    topics: list[str]
    metrics: ConsumerMetrics
    interval_s: float = 5.0
    clock: Callable[[], float] = time.time
    figures: list[TopicLag] = field(default_factory=list)
    last_progress: float = field(default=0.0)
    last_measured: float = field(default=0.0)
    last_error: str | None = None
    # Told of topics the broker lost, once each is back (has partitions again): the group must assign them anew.
    on_lost: Callable[[list[str]], None] | None = field(default=None, repr=False)
    _lost: set[str] = field(default_factory=set, repr=False)  # lost and not back yet
    _consumer: AIOKafkaConsumer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.last_progress = self.last_measured = self.clock()

    @property
    def lag(self) -> int:
        return sum(f.lag for f in self.figures)

    def stalled_for(self) -> float:
        """Seconds without progress while messages wait (0 when nothing waits)."""
        return 0.0 if self.lag == 0 else max(0.0, self.clock() - self.last_progress)

    def unmeasured_for(self) -> float:
        """Seconds since the lag was last measured (the figures are that old)."""
        return max(0.0, self.clock() - self.last_measured)

    def update(self, figures: list[TopicLag]) -> None:
        before = {f.topic: f.committed for f in self.figures}
        ends = {f.topic: f.end for f in self.figures}
        for f in figures:
            # Halved or worse: a topic the broker lost (end offsets can be reported off by one; that is no loss).
            if f.end < ends.get(f.topic, 0) // 2:
                self._lost.add(f.topic)
                log.warning(
                    "group %s: topic %s holds fewer messages than before (end offset %d, was %d): the broker lost it "
                    "(a restart or a deletion) and the group's offsets with it; the group reads it from its beginning "
                    "once it is back",
                    self.group,
                    f.topic,
                    f.end,
                    ends[f.topic],
                )
        back = sorted(f.topic for f in figures if f.topic in self._lost and f.partitions > 0)
        if back:
            self._lost -= set(back)
            if self.on_lost is not None:
                self.on_lost(back)
        moved = any(before.get(f.topic, -1) != f.committed for f in figures)
        self.figures = figures
        self.last_measured = self.clock()
        if moved or self.lag == 0:
            self.last_progress = self.clock()
        for f in figures:
            self.metrics.lag.labels(self.group, f.topic).set(f.lag)
            self.metrics.committed.labels(self.group, f.topic).set(f.committed)
        self.metrics.last_progress.labels(self.group).set(self.last_progress)

    async def poll_once(self) -> None:
        try:
            if self._consumer is None:
                consumer = lag_consumer(self.settings, self.group)
                await asyncio.wait_for(consumer.start(), 10)
                self._consumer = consumer
            self.update(await measure(self._consumer, self.topics))
            self.last_error = None
        except (KafkaError, OSError, TimeoutError) as exc:
            self.last_error = f"cannot measure lag ({exc.__class__.__name__})"
            log.warning("%s of group %s", self.last_error, self.group)
            await self.close()  # a fresh connection next time

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        """Stop the measuring consumer (bounded: shutdown never waits on it for long)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.stop(), 5)
            except (KafkaError, OSError, TimeoutError):
                log.warning("the lag consumer of group %s did not stop cleanly", self.group)
