"""What every query module shares: the connection type, the query errors, race ids and time windows.

::

    PipelineError (schemas.errors)
    └── QueryError             a query cannot be answered as asked
        ├── InvalidRaceId      the text is not a race id ({race_type}-{track_code}-{race_no}-{YYYYMMDD})
        └── RaceNotFound       no race with this id

Queries are plain parameterized SQL over the connection's ``search_path`` (:mod:`runtime.db` sets it to the
configured schema), so the same functions serve every schema.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from schemas import race_ids
from schemas.errors import PipelineError
from schemas.timezones import kst_midnight

Executor = asyncpg.Connection | asyncpg.Pool | PoolConnectionProxy
"""Anything with ``fetch``/``fetchrow``: a connection, a pool, or a connection acquired from a pool."""

# Odds of a race are stamped on its race day (Korean time): live snapshots up to the post time, the closing
# snapshot at 23:59:59. Race-scoped odds queries look one day further on each side, which keeps them to a few
# chunks of the hypertable instead of all of them.
WINDOW_SLACK = timedelta(days=1)


class QueryError(PipelineError):
    """A query cannot be answered as asked."""


class InvalidRaceId(QueryError):
    """The text is not a race id."""

    def __init__(self, race_id: str) -> None:
        super().__init__(f"not a race id: {race_id!r} (expected e.g. horse-seoul-3-20241210)")
        self.race_id = race_id


class RaceNotFound(QueryError):
    """No race has this id."""

    def __init__(self, race_id: str) -> None:
        super().__init__(f"unknown race id: {race_id}")
        self.race_id = race_id


def race_day(race_id: str) -> date:
    """The race date a race id carries; raises :class:`InvalidRaceId`."""
    try:
        return race_ids.parse(race_id).day
    except ValueError as exc:
        raise InvalidRaceId(race_id) from exc


def day_start(day: date) -> datetime:
    """Midnight of a day in Korean time (the boundary of the daily summary buckets)."""
    return kst_midnight(day)


def day_window(day: date) -> tuple[datetime, datetime]:
    """The time range that holds every odds snapshot of the races of a day, with slack on both sides."""
    start = day_start(day)
    return start - WINDOW_SLACK, start + timedelta(days=1) + WINDOW_SLACK


def race_window(race_id: str) -> tuple[datetime, datetime]:
    """The time range that holds every odds snapshot of a race: its race day, with slack on both sides."""
    return day_window(race_day(race_id))


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while tens of thousands of result rows are decoded and wrapped.

    Rows form no reference cycles, yet every 700 new objects trigger a collection that walks the young (and now and
    then the whole) heap: on a 50,000-row day summary that was a third of the time. Collection resumes after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Sql:
    """A statement with optional ``AND`` filters; values always travel as parameters, never in the text."""

    def __init__(self, text: str, *args: object) -> None:
        self.text = text
        self.args: list[object] = list(args)

    def param(self, value: object) -> str:
        """Add a parameter; returns its placeholder (``$n``)."""
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str, value: object) -> Sql:
        """Append ``AND condition`` (``{}`` stands for the value's placeholder) unless the value is None."""
        if value is not None:
            self.text += " AND " + condition.format(self.param(value))
        return self

    def then(self, text: str) -> Sql:
        """Append the rest of the statement (GROUP BY, ORDER BY, ...)."""
        self.text += " " + text
        return self


def column_list(names: Iterable[str], reals: Iterable[str] = ()) -> str:
    """``a, b, c`` from field names; ``real`` columns pass through numeric so 98.4 stays 98.4, not 98.40000153."""
    exact = set(reals)
    return ", ".join(f"{name}::numeric::float8 AS {name}" if name in exact else name for name in names)
