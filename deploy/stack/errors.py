"""Errors of the local stack (a branch of :class:`schemas.errors.PipelineError`)."""

from __future__ import annotations

from schemas.errors import PipelineError


class StackError(PipelineError):
    """A component of the local stack could not be installed, started, or reached."""

    def __init__(self, message: str, *, component: str, log_file: str | None = None) -> None:
        hint = f" (see {log_file})" if log_file else ""
        super().__init__(f"{component}: {message}{hint}")
        self.component = component
        self.log_file = log_file
