"""What a database error means, decided in one place: by exception type and SQLSTATE class, never by message text.

asyncpg's own rule applies: "we specifically do not rely on the error message, as it is localizable". Every part
that talks to PostgreSQL (the sink's writer, the producers' state, the control API's store, migrations) asks
:func:`classify`:

- ``unavailable``: the server is not there or cannot take work for now; wait and retry, drop nothing. Sockets and
  timeouts, SQLSTATE class 08 (connection exception), 40 (transaction rollback: deadlock, serialization), 53
  (insufficient resources: disk, memory, connections), 25006 (read-only transaction: a standby during failover)
  and the operator interventions 57P01-57P03 and 57P05 (shutdown, crash, starting up, idle session timeout). An
  ``InterfaceError`` counts when its cause chain holds one of these (leaving a transaction on a connection the
  server ended raises a plain ``InterfaceError`` that replaces the connection error), and so does asyncpg's
  ``InternalClientError``: a pooled connection whose server shut down while it sat idle fails its next ``BEGIN``
  with a broken protocol state ("cannot switch to state 15") instead of a connection error (seen when PostgreSQL
  restarted under a running sink); the writer drops that connection and retries on a new one.
- ``bad_data``: the rows are the problem; retrying cannot help, the row goes to the DLQ. Class 22 (data exception)
  and 23 (integrity constraint violation).
- ``login``: class 28 (invalid authorization) and 3D000 (the database does not exist): a configuration error.
- ``fatal``: anything else, a cancelled statement (57014) included: a ``statement_timeout`` shorter than a batch
  would cancel every retry the same way.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import asyncpg
from asyncpg.exceptions._base import InternalClientError

Outcome = Literal["unavailable", "bad_data", "login", "fatal"]

# What a call to the database may raise that :func:`classify` judges; anything else is a bug and propagates.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    InternalClientError,  # not an InterfaceError: an ``except`` that lists only those lets it through
    OSError,
    TimeoutError,
)
UNAVAILABLE_CLASSES = frozenset({"08", "40", "53"})
UNAVAILABLE_STATES = frozenset({"25006", "57P01", "57P02", "57P03", "57P05"})
BAD_DATA_CLASSES = frozenset({"22", "23"})
LOGIN_CLASSES = frozenset({"28"})
LOGIN_STATES = frozenset({"3D000"})


def sqlstate(exc: BaseException) -> str | None:
    """The five-character SQLSTATE of a server error, else None."""
    state = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    return state if isinstance(state, str) and len(state) == 5 else None


def _by_state(state: str) -> Outcome:
    if state[:2] in UNAVAILABLE_CLASSES or state in UNAVAILABLE_STATES:
        return "unavailable"
    if state[:2] in BAD_DATA_CLASSES:
        return "bad_data"
    if state[:2] in LOGIN_CLASSES or state in LOGIN_STATES:
        return "login"
    return "fatal"


def _direct(exc: BaseException) -> Outcome | None:
    state = sqlstate(exc)
    if state is not None:
        return _by_state(state)
    if isinstance(exc, OSError | asyncio.TimeoutError | InternalClientError):
        return "unavailable"
    return None


def classify(exc: BaseException) -> Outcome:
    """What an error raised while talking to the database means (see the module docstring)."""
    outcome = _direct(exc)
    if outcome is not None:
        return outcome
    if isinstance(exc, asyncpg.InterfaceError):
        seen = exc.__cause__ or exc.__context__
        while seen is not None:
            if _direct(seen) == "unavailable":
                return "unavailable"
            seen = seen.__cause__ or seen.__context__
    return "fatal"


def is_unavailable(exc: BaseException) -> bool:
    """Whether waiting and retrying can help (:func:`classify` says ``unavailable``)."""
    return classify(exc) == "unavailable"
