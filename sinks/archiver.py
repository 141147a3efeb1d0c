"""The archiver worker (``racelab run archiver``): its own consumer group over the raw topics, every message into the
raw archive (:mod:`sinks.archive`), offsets moved only after the batch is committed in the database.

As in the sink: ``take_events`` acks a batch when the loop body returns, so the body returns only after the write
(which waits out database outages); an unexpected error ends the process before the batch is acked, and the next
worker reads it again (stored once: the archive's key). ``concurrency=1``.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from runtime.metrics import archive_metrics
from runtime.settings import Settings
from runtime.worker import attach_ops, each_batch, faust_app, header_list, run_faust_worker
from schemas.topics import KINDS, TopicCatalogue
from sinks.archive import ArchiveWriter, RawMessage

log = logging.getLogger(__name__)


class ArchiverApp:
    """Builds the archiver's Faust app; owns the archive writer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = TopicCatalogue(settings.topics.prefix)
        self.metrics = archive_metrics()
        self.writer = ArchiveWriter(settings.database)
        a = settings.archiver
        self.app = faust_app(settings, a.consumer_group, buffer=2 * a.batch_size)
        self.app.on_before_shutdown.connect(self._close)
        self.kind_of_topic = {self.topics.raw(k): k for k in KINDS}
        topic = self.app.topic(
            *self.kind_of_topic, value_serializer="raw", key_serializer="raw", partitions=settings.topics.partitions
        )
        self.app.agent(topic, name="raw-archive", concurrency=1)(self._agent)
        attach_ops(self.app, settings, "archiver", list(self.kind_of_topic), database=True)

    async def _close(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await self.writer.stop()

    @staticmethod
    def message_of(event: Any) -> RawMessage:
        m = event.message
        timestamp = getattr(m, "timestamp", None)
        return RawMessage(
            topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            timestamp_ms=int(timestamp * 1000) if timestamp else None,
            key=m.key,
            value=m.value or b"",
            headers=header_list(m.headers),
        )

    async def write(self, chunk: list[Any]) -> None:
        messages = [self.message_of(event) for event in chunk]
        stored = await self.writer.write_until_done(messages, self.settings.archiver.retry_max_delay_s)
        for m in messages:
            self.metrics.seen.labels(self.kind_of_topic.get(m.topic, "unknown")).inc()
        for kind, n in stored.items():  # a kind header the pipeline does not know counts as "unknown"
            self.metrics.archived.labels(kind if kind in KINDS else "unknown").inc(n)
        self.metrics.last_commit.set_to_current_time()

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        a = self.settings.archiver
        await each_batch(stream, a.batch_size, a.batch_within_s, self.write, "archiver")


def run_archiver(settings: Settings) -> None:
    """Run one archiver worker until SIGINT/SIGTERM (exits the process)."""
    run_faust_worker(settings, lambda s: ArchiverApp(s).app)
