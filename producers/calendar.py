"""The KSPO calendar: which date is day n of round r of a year, learned from what the APIs publish, never guessed.

KSPO names a race day by year, round (``week_tcnt``/``tms``: the n-th race week of the year, holidays skipped) and
day of the round (``day_tcnt``/``day_ord``). Responses that carry a date next to those numbers teach the calendar
(:func:`learned`): the cycle entry sheets (``race_ymd`` "2026.01.02", before the races), the rank APIs
(``race_day`` "20260613", after them) and the boat payoffs (``race_ymd`` "20260128"). The producers keep what they
learn in the ``kspo_calendar`` table and plan every KSPO call from it (:class:`Calendar`); a day the calendar does not
know is asked about (the rank API by ``race_day``), and a day without racing yields no call and no race.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from producers.client import RawResponse, rows_of
from schemas import endpoints as ep
from schemas.tracks import by_spelling

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class RaceDay:
    """One KSPO race day of one track: its date and its (year, round, day of round)."""

    race_type: str
    track: str
    day: date
    year: int
    round_no: int
    day_no: int


# endpoint -> the row fields of (date, year, round, day of round, track); the track is fixed where it is None
_TEACHERS: dict[str, tuple[str, str, str, str, str | None]] = {
    ep.CYCLE_ENTRIES.path: ("race_ymd", "stnd_yr", "week_tcnt", "day_tcnt", "meet_nm"),
    ep.CYCLE_RANK.path: ("race_day", "stnd_year", "tms", "day_ord", "meet_nm"),
    ep.BOAT_RANK.path: ("race_day", "stnd_year", "tms", "day_ord", "mbr_nm"),
    ep.BOAT_PAYOFF.path: ("race_ymd", "stnd_yr", "week_tcnt", "day_tcnt", None),
}
TEACHING_ENDPOINTS = frozenset(_TEACHERS)


def _number(value: object) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def _day(value: object) -> date | None:
    """A full date as published ("2026.01.02", "20260613"); a month-day "0102" teaches nothing."""
    digits = str(value).strip().replace(".", "").replace("-", "") if value is not None else ""
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def learned(endpoint: str, pages: Sequence[RawResponse]) -> list[RaceDay]:
    """The race days a response publishes (a row without a full date, a round or a known track teaches nothing)."""
    fields = _TEACHERS.get(endpoint)
    if fields is None:
        return []
    date_field, year_field, round_field, day_field, track_field = fields
    race_type = ep.BY_PATH[endpoint].race_type
    found: set[RaceDay] = set()
    for row in rows_of(pages):
        day = _day(row.get(date_field))
        year, round_no, day_no = (_number(row.get(f)) for f in (year_field, round_field, day_field))
        if track_field is None:
            track = "misari"
        else:
            spelled = by_spelling(str(row.get(track_field) or ""))
            track = spelled.code if spelled is not None and spelled.race_type == race_type else ""
        if day is None or year is None or not round_no or not day_no or not track:
            continue
        found.add(RaceDay(race_type, track, day, year, round_no, day_no))
    return sorted(found)


class Calendar:
    """The known race days of KSPO tracks (from the ``kspo_calendar`` table), for planning calls."""

    def __init__(self, days: Iterable[RaceDay] = ()) -> None:
        self._by_day: dict[tuple[str, date], RaceDay] = {}
        for d in days:
            self.add(d)

    def add(self, day: RaceDay) -> None:
        self._by_day.setdefault((day.track, day.day), day)

    def day(self, track: str, day: date) -> RaceDay | None:
        """The race day of a track on a date, if the calendar knows it."""
        return self._by_day.get((track, day))

    def days(self) -> list[RaceDay]:
        return sorted(self._by_day.values())

    def latest_before(self, track: str, day: date) -> RaceDay | None:
        """The last known race day of a track before a date."""
        earlier = [d for (t, when), d in self._by_day.items() if t == track and when < day]
        return max(earlier, key=lambda d: d.day) if earlier else None

    def rounds_to_ask(self, track: str, day: date) -> list[tuple[int, int]]:
        """(year, round) whose entry sheets may hold a date the calendar does not know yet: the round of the last
        known race day (it may go on) and the next one; round 1 when the last known day is of an earlier year."""
        last = self.latest_before(track, day)
        if last is None:
            return []
        if last.year != day.year:
            return [(day.year, 1)]
        return [(last.year, last.round_no), (last.year, last.round_no + 1)]
