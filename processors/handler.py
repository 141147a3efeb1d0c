"""One batch of raw messages -> normalized records and dead letters, delivered before the batch counts as done.

The handler never raises for a bad message: it goes to the DLQ. It raises only :class:`DlqLimitExceeded` (the
worker must stop) and waits out a broker outage (the batch is re-sent until the broker acknowledges it; downstream
writes are idempotent, so a re-send is harmless).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from processors.dlq import DlqLimit
from processors.errors import DecodeError, ProcessingError
from processors.normalize import normalize
from processors.normalize.common import Context
from runtime.delivery import Delivery, Outgoing
from runtime.metrics import ProcessorMetrics
from schemas.dlq import Stage, dlq_headers
from schemas.raw import RawHeaders
from schemas.records import board_messages, message_key
from schemas.topics import NORMALIZED_NAME, Kind, TopicCatalogue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    """A consumed raw message with its coordinates."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def context_of(message: RawMessage) -> Context:
    """The normalizer context from the provenance headers; unreadable headers are a decode error."""
    try:
        headers = RawHeaders.from_kafka(message.headers)
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"provenance headers missing or invalid ({exc.__class__.__name__})") from None
    key = message.key.decode("utf-8", "replace") if message.key else ""
    return Context(headers.source, headers.endpoint, headers.params, headers.fetched_at, key)


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
        output: Delivery,
        limit: DlqLimit,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        self.kind = kind
        self.metrics = metrics
        self.topics = topics
        self.output = output
        self.limit = limit
        self.normalized_topics = {name: topics.normalized(k) for k, name in NORMALIZED_NAME.items()}

    def _dead_letter(self, message: RawMessage, error: Exception, stage: Stage) -> Outgoing:
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
                failure: tuple[Exception, Stage] | None = (exc, exc.stage)
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
                if name == "odds":  # one board per race and snapshot time; its prices are the records
                    outgoing += [(topic, rid.encode(), value, None) for rid, value in board_messages(records.odds)]
                    count = sum(len(board.prices) for board in records.odds)
                else:
                    for record in items:
                        outgoing.append((topic, message_key(record).encode(), record.model_dump_json().encode(), None))
                    count = len(items)
                result.records += count
                result.records_by_name[name] = result.records_by_name.get(name, 0) + count
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
