"""The Faust app: one agent per raw topic, each normalizing batches of raw bytes.

Guarding against the Faust pitfalls (see the streaming notes):

- raw topics use ``value_serializer="raw"``: Faust never decodes, so a decode error cannot ack-and-skip a message;
  decoding and validation happen in :class:`processors.handler.BatchHandler`, which dead-letters bad messages;
- ``take_events`` acks the batch after the loop body, even when the body raises. So nothing may escape the body: the
  handler waits out broker outages, and when the DLQ breaker trips (or an unexpected error happens) the process
  exits at once, before the batch is acked, so its offsets are not committed and it is redelivered;
- ``concurrency=1`` per agent (faust#606: with more, a commit can pass an in-flight message).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, cast

import faust

from processors.dlq import DlqLimit
from processors.errors import DlqLimitExceeded
from processors.handler import BatchHandler, RawMessage
from runtime.delivery import OutputProducer
from runtime.metrics import processor_metrics
from runtime.settings import Settings
from runtime.worker import attach_ops, faust_app, header_list, run_faust_worker, stop_now
from schemas.topics import KINDS, Kind, TopicCatalogue

log = logging.getLogger(__name__)
EXIT_DLQ_LIMIT = 3
EXIT_BUG = 70


class ProcessorApp:
    """Builds the Faust app and owns the output producer its agents share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = TopicCatalogue(settings.topics.prefix)
        self.output = OutputProducer(settings.broker)
        self._started = False
        self.app = self._build()

    def _build(self) -> faust.App:
        s = self.settings
        app = faust_app(s, "processors", buffer=4 * s.processors.batch_size)
        app.on_before_shutdown.connect(self._close_output)
        for kind in KINDS:
            topic = app.topic(
                self.topics.raw(kind), value_serializer="raw", key_serializer="raw", partitions=s.topics.partitions
            )
            app.agent(topic, name=f"normalize-{kind}", concurrency=1)(self._agent(kind))
        attach_ops(app, s, "processors", [self.topics.raw(k) for k in KINDS], database=False)
        return app

    async def _close_output(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """After the consumers stopped (agents done with their batches): close the output producer."""
        if self._started:
            await self.output.stop()
            self._started = False

    async def _ensure_output(self) -> None:
        if not self._started:
            await self.output.start()
            self._started = True

    def _agent(self, kind: Kind) -> Callable[[Any], Coroutine[Any, Any, None]]:
        limit = DlqLimit(
            self.settings.processors.dlq_max_ratio,
            self.settings.processors.dlq_window,
            self.settings.processors.dlq_max_consecutive,
        )
        handler = BatchHandler(kind, self.topics, self.output, limit, processor_metrics())
        batch, within = self.settings.processors.batch_size, self.settings.processors.batch_within_s

        async def normalize_raw(stream: faust.StreamT[bytes]) -> None:
            await self._ensure_output()
            events: AsyncIterator[list[faust.EventT[bytes]]] = cast(Any, stream).take_events(batch, within=within)
            async for chunk in events:
                try:
                    messages = [
                        RawMessage(
                            e.message.topic,
                            e.message.partition,
                            e.message.offset,
                            e.message.key,
                            e.message.value,
                            header_list(e.message.headers),
                        )
                        for e in chunk
                    ]
                    result = await handler.handle(messages)
                except DlqLimitExceeded as exc:
                    log.critical(
                        "DLQ circuit breaker on %s: %s; stopping the worker without committing",
                        self.topics.raw(kind),
                        exc,
                    )
                    stop_now(EXIT_DLQ_LIMIT)
                except BaseException:
                    log.critical(
                        "unexpected error on %s; stopping the worker without committing",
                        self.topics.raw(kind),
                        exc_info=True,
                    )
                    stop_now(EXIT_BUG)
                if result.dead_letters:
                    log.warning("%s: %d message(s) dead-lettered", self.topics.raw(kind), result.dead_letters)

        normalize_raw.__name__ = f"normalize_{kind}"
        return normalize_raw


def run_worker(settings: Settings) -> None:
    """Run one processors worker until SIGINT/SIGTERM (exits the process)."""
    run_faust_worker(settings, lambda s: ProcessorApp(s).app)
