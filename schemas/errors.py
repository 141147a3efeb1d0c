"""The root of every error RaceLab ingest raises on purpose.

::

    PipelineError                      (schemas.errors)
    ├── ConfigurationError             bad or unusable settings
    ├── StackError                     (deploy.stack.errors) the local stack cannot start or answer
    ├── DatabaseError                  (sinks.errors) TimescaleDB unreachable, refused, or not TimescaleDB
    │   └── MigrationError             a migration file failed or the history is inconsistent
    └── BrokerError                    (racelab.kafka) the broker is unreachable or refused a request

Each class says whether retrying can help (``retriable``); callers decide by type, never by message text.
Messages never contain secrets: URLs are redacted before they are put into a message.
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
