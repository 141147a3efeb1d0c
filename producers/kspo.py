"""KSPO (cycle and boat racing) on the data.go.kr gateway: ``resultType=json`` (required); see :mod:`producers.calls`.

KSPO identifies a race day by year, round (``week_tcnt``/``tms``: the n-th race week of the year) and day of the
round (``day_tcnt``/``day_ord``). ``race_no``, ``week_tcnt`` and ``tms`` must be two-digit strings: ``"9"`` silently
returns no rows where ``"09"`` returns them (the call builders pad them).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

from producers.client import DataGoKrClient

RACE_WEEKDAYS = {"cycle": (4, 5, 6), "boat": (2, 3)}  # Fri-Sun, Wed-Thu


class KspoClient(DataGoKrClient):
    """Client of the KSPO gateway APIs (``serviceKey`` + ``resultType=json``)."""

    source: ClassVar[str] = "kspo"
    format_params: ClassVar[dict[str, str]] = {"resultType": "json"}


def guess_round(race_type: str, day: date) -> tuple[int, int, int]:
    """(year, round, day of round) assuming rounds follow ISO weeks and the usual race weekdays.

    Used only to find a day's entry sheets; the stored races carry the real values from those sheets.
    """
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=d) for d in RACE_WEEKDAYS[race_type]]
    day_no = days.index(day) + 1 if day in days else 1
    return day.year, day.isocalendar()[1], day_no
