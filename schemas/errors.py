"""The root of every error RaceLab ingest raises on purpose.

::

    PipelineError                      (schemas.errors)
    ├── ConfigurationError             bad or unusable settings
    ├── StackError                     (deploy.stack.errors) the local stack cannot start or answer
    ├── DatabaseError                  TimescaleDB unreachable, refused, or not TimescaleDB
    │   ├── DatabaseUnavailable        retriable: the server does not answer (down, restarting, read-only, full)
    │   └── MigrationError             (sinks.errors) a migration file failed or the history is inconsistent
    ├── BrokerError                    the broker is unreachable or refused a request
    ├── UpstreamError                  (producers.errors) an upstream API call failed
    └── ProcessingError                (processors.errors) a raw message could not be turned into records

Each class says whether retrying can help (``retriable``); callers decide by type, never by message text.
Messages never contain secrets: URLs are redacted before they are put into a message. Driver errors are translated
into these at their adapter (:mod:`runtime.db`, :mod:`runtime.kafka`).
"""

from __future__ import annotations

from typing import ClassVar


class PipelineError(Exception):
    """Base class of all RaceLab ingest errors."""

    retriable: ClassVar[bool] = False


class ConfigurationError(PipelineError):
    """A setting is missing, malformed, or points at something unusable."""


class BrokerError(PipelineError):
    """The Kafka-protocol broker could not be reached or refused a request."""

    retriable = True


class DatabaseError(PipelineError):
    """The database cannot be used as configured, or a statement failed for a reason retrying cannot fix."""


class DatabaseUnavailable(DatabaseError):
    """The database server does not answer or cannot take writes for now; waiting and retrying can help."""

    retriable = True
