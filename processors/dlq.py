"""Dead-letter records and the DLQ circuit breaker.

A DLQ record is the original key, the original bytes and the original headers, plus::

    dlq.original.topic | dlq.original.partition | dlq.original.offset
    dlq.stage (decode | validate | normalize | sink)
    dlq.exception.class | dlq.exception.message (truncated, no input bytes)
    dlq.attempts (1, +1 for each failed replay) | dlq.first_failed_at (RFC 3339 UTC) | dlq.pipeline_version

The breaker (after Arroyo's ``DlqLimit``) trips when the DLQ share of the last ``window`` messages passes
``max_ratio`` (once at least ``window`` were seen), or after ``max_consecutive`` DLQ records in a row: a bad deploy
or a changed API must stop the worker, not drain every partition into the DLQ.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import racelab
from processors.errors import DlqLimitExceeded, ProcessingError

Headers = Sequence[tuple[str, bytes]]
DLQ_PREFIX = "dlq."
MAX_MESSAGE = 1000


def dlq_headers(
    original: Headers,
    *,
    topic: str,
    partition: int,
    offset: int,
    error: ProcessingError | Exception,
    stage: str,
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """The original headers (earlier ``dlq.*`` ones replaced) plus this failure's ``dlq.*`` headers."""
    previous = {k: v for k, v in original if k.startswith(DLQ_PREFIX)}
    kept = [(k, v) for k, v in original if not k.startswith(DLQ_PREFIX)]
    attempts = int(previous.get("dlq.attempts", b"0") or 0) + 1
    first = (
        previous.get("dlq.first_failed_at") or (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z").encode()
    )
    message = str(error)[:MAX_MESSAGE]
    return [
        *kept,
        ("dlq.original.topic", previous.get("dlq.original.topic", topic.encode())),
        ("dlq.original.partition", previous.get("dlq.original.partition", str(partition).encode())),
        ("dlq.original.offset", previous.get("dlq.original.offset", str(offset).encode())),
        ("dlq.stage", stage.encode()),
        ("dlq.exception.class", type(error).__name__.encode()),
        ("dlq.exception.message", message.encode()),
        ("dlq.attempts", str(attempts).encode()),
        ("dlq.first_failed_at", first),
        ("dlq.pipeline_version", racelab.__version__.encode()),
    ]


@dataclass
class DlqLimit:
    """Counts outcomes and raises :class:`DlqLimitExceeded` when the DLQ share gets out of hand."""

    max_ratio: float = 0.5
    window: int = 200
    max_consecutive: int = 100
    _recent: deque[bool] = field(default_factory=deque, repr=False)
    consecutive: int = 0

    def record(self, failed: bool) -> None:
        self._recent.append(failed)
        if len(self._recent) > self.window:
            self._recent.popleft()
        self.consecutive = self.consecutive + 1 if failed else 0
        if self.consecutive >= self.max_consecutive:
            raise DlqLimitExceeded(
                f"{self.consecutive} messages in a row went to the DLQ (limit {self.max_consecutive})"
            )
        if len(self._recent) >= self.window:
            ratio = sum(self._recent) / len(self._recent)
            if ratio > self.max_ratio:
                raise DlqLimitExceeded(
                    f"{ratio:.0%} of the last {len(self._recent)} messages went to the DLQ (limit {self.max_ratio:.0%})"
                )
