"""Keeps the topics a process uses as the catalogue says: recreates missing ones, reports the wrong ones.

A broker that lost its topics (the local broker keeps them in memory; a failover to an empty cluster; a topic
deleted by hand) gets them back from the catalogue, with its partition count and retention, within one
``interval_s``. Clients never create topics implicitly (:func:`runtime.kafka.forbid_auto_create`), so nothing
else brings a topic back with the broker's defaults. A topic with another partition count than the catalogue's is
not changed (moving keys between partitions breaks their order): it is reported, and readiness fails on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from runtime.kafka import ensure_topics, partition_counts
from runtime.settings import BrokerSettings, Settings
from schemas.errors import BrokerError

log = logging.getLogger(__name__)


@dataclass
class TopicKeeper:
    """Checks ``names`` every ``interval_s``; recreates the missing ones with ``partitions`` and their ``configs``."""

    broker: BrokerSettings
    names: list[str]
    partitions: int
    replication_factor: int = 1
    configs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    interval_s: float = 5.0
    clock: Callable[[], float] = time.time
    wrong: dict[str, int] = field(default_factory=dict)  # topic -> its partition count, where it is not ours
    recreated: dict[str, float] = field(default_factory=dict)  # topic -> when this process recreated it
    checked: bool = False  # a check went through (before it, creating topics is a fresh start, not a loss)
    on_recreated: Callable[[list[str]], None] | None = field(default=None, repr=False)

    async def check_once(self) -> None:
        try:
            counts = await partition_counts(self.broker, self.names)
            missing = sorted(t for t, n in counts.items() if n is None)
            if missing:
                created = await ensure_topics(
                    self.broker,
                    missing,
                    self.partitions,
                    self.replication_factor,
                    configs={t: self.configs.get(t, {}) for t in missing},
                )
                if created and not self.checked:  # the first check of a fresh broker: nothing was lost
                    log.info("created %d topics from the catalogue", len(created))
                lost = created if self.checked else []
                for topic in lost:
                    self.recreated[topic] = self.clock()
                    log.warning(
                        "topic %s was missing on the broker; created it from the catalogue (%d partitions)",
                        topic,
                        self.partitions,
                    )
                if lost and self.on_recreated is not None:
                    self.on_recreated(lost)
        except BrokerError:  # unreachable: the broker check of /readyz says so; the next round tries again
            return
        self.checked = True
        wrong = {t: n for t, n in counts.items() if n is not None and n != self.partitions}
        for topic, n in wrong.items():
            if self.wrong.get(topic) != n:
                log.error(
                    "topic %s has %d partitions, the catalogue says %d: left as it is (keys would change partitions)",
                    topic,
                    n,
                    self.partitions,
                )
        self.wrong = wrong

    async def run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval_s)

    async def problems(self, topics: Collection[str]) -> list[str]:
        """Why ``topics`` are not as the catalogue says, looked up on the broker now (never creates a topic)."""
        try:
            counts = await partition_counts(self.broker, topics)
        except BrokerError as exc:
            return [str(exc)]
        found = []
        for topic, n in sorted(counts.items()):
            if n is None:
                found.append(
                    f"{topic} is missing on the broker (recreated from the catalogue within {self.interval_s:g}s)"
                )
            elif n != self.partitions:
                found.append(f"{topic} has {n} partitions, the catalogue says {self.partitions}")
        return found


def catalogue_keeper(settings: Settings) -> TopicKeeper:
    """A keeper of every topic of the settings' catalogue, checking every ``ops.lag_interval_s``."""
    t = settings.topics
    catalogue = t.catalogue()
    return TopicKeeper(
        settings.broker,
        catalogue.all_names(),
        t.partitions,
        t.replication_factor,
        catalogue.configs(),
        interval_s=settings.ops.lag_interval_s,
    )
