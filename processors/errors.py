"""Errors of the processors; each names the DLQ stage it belongs to.

::

    PipelineError (schemas.errors)
    └── ProcessingError            a raw message could not be turned into records
        ├── DecodeError            stage "decode": not JSON/XML, not an API envelope, or an API error body
        ├── ValidationFailed       stage "validate": a field does not fit the normalized model
        ├── NormalizeError         stage "normalize": the content makes no sense (unknown track, endpoint ...)
        └── DlqLimitExceeded       the DLQ circuit breaker tripped: stop the worker loudly
"""

from __future__ import annotations

from typing import ClassVar

from schemas.dlq import Stage
from schemas.errors import PipelineError


class ProcessingError(PipelineError):
    """A raw message could not be processed; ``stage`` goes into the DLQ headers."""

    stage: ClassVar[Stage] = "normalize"


class DecodeError(ProcessingError):
    """The bytes are not a readable API response."""

    stage = "decode"


class ValidationFailed(ProcessingError):
    """A value does not fit the normalized model."""

    stage = "validate"


class NormalizeError(ProcessingError):
    """The response is readable but cannot be mapped (unknown endpoint, track, date ...)."""

    stage = "normalize"


class DlqLimitExceeded(ProcessingError):
    """Too many messages went to the DLQ: a bad deploy or a changed API; the worker must stop."""
