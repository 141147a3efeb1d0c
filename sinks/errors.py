"""Errors of the sink side: the database and its schema.

::

    PipelineError (schemas.errors)
    └── DatabaseError           TimescaleDB unreachable, refused the login, or lacks the extension
        ├── DatabaseUnavailable retriable: the server does not answer (down, restarting, network)
        └── MigrationError      a migration failed or the recorded history does not match the files
"""

from __future__ import annotations

from schemas.errors import PipelineError


class DatabaseError(PipelineError):
    """The database cannot be used as configured."""


class DatabaseUnavailable(DatabaseError):
    """The database server does not answer; waiting and retrying can help."""

    retriable = True


class MigrationError(DatabaseError):
    """A migration failed, or the applied history does not match the migration files."""

    def __init__(self, message: str, *, version: str | None = None) -> None:
        super().__init__(message)
        self.version = version
