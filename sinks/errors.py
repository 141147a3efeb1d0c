"""Errors of the sink side: its schema and the rows it writes.

::

    PipelineError (schemas.errors)
    ├── DatabaseError (schemas.errors)
    │   └── MigrationError      a migration failed or the recorded history does not match the files
    └── RacerNotOnCard          a KSPO rank names a racer the race's card does not have (for the DLQ)
    ValueError
    └── RowEncodingError        a value its column's binary encoding cannot hold (bad data, for the DLQ)
"""

from __future__ import annotations

from schemas.errors import DatabaseError, PipelineError


class MigrationError(DatabaseError):
    """A migration failed, or the applied history does not match the migration files."""

    def __init__(self, message: str, *, version: str | None = None) -> None:
        super().__init__(message)
        self.version = version


class RowEncodingError(ValueError):
    """A value that its column's binary encoding cannot hold (e.g. a number out of a ``smallint``'s range)."""


class RacerNotOnCard(PipelineError):
    """A rank row names a racer that no runner of the race's card has (or that two have): not joined, never guessed."""
