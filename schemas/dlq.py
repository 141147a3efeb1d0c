"""The headers of a dead-letter record (``racelab.raw.<kind>.dlq``), a contract (DESIGN).

A DLQ record is the original key, the original bytes and the original headers, plus::

    dlq.original.topic | dlq.original.partition | dlq.original.offset
    dlq.stage (decode | validate | normalize | sink)
    dlq.exception.class | dlq.exception.message (truncated, no input bytes)
    dlq.attempts (1, +1 for each failed replay) | dlq.first_failed_at (RFC 3339 UTC) | dlq.pipeline_version

Processors and the sink both write them; replay reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

PIPELINE_VERSION = "0.1.0"
Stage = Literal["decode", "validate", "normalize", "sink"]
Headers = Sequence[tuple[str, bytes]]
DLQ_PREFIX = "dlq."
MAX_MESSAGE = 1000


def dlq_headers(
    original: Headers,
    *,
    topic: str,
    partition: int,
    offset: int,
    error: Exception,
    stage: Stage,
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
        ("dlq.pipeline_version", PIPELINE_VERSION.encode()),
    ]
