"""Race ids and message keys: built, parsed and validated here and nowhere else.

A race id is ``{race_type}-{track_code}-{race_no}-{YYYYMMDD}`` (``horse-seoul-3-20241210``); the key of a day-wide
raw message is ``{source}:{track}:{YYYYMMDD}`` (``kspo:misari:20241212``). The date is the Korean race day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import cast

from schemas import race_days
from schemas.records import RACE_ID_PATTERN, RaceType, Source
from schemas.tracks import CODES_BY_RACE_TYPE, SOURCE_OF_RACE_TYPE

FORMAT = "{race_type}-{track_code}-{race_no}-{YYYYMMDD}, e.g. horse-seoul-3-20241210"
_RACE_ID = re.compile(RACE_ID_PATTERN)


def _known_race_id_pattern() -> str:
    tracks = "|".join(f"{race_type}-(?:{'|'.join(codes)})" for race_type, codes in CODES_BY_RACE_TYPE.items() if codes)
    return f"^(?:{tracks})-[1-9][0-9]?-{race_days.day_pattern()}$"


KNOWN_RACE_ID_PATTERN = _known_race_id_pattern()
"""Exactly the race ids :func:`parse_known` accepts: a known track of the race type, race 1-99, a race day."""
_KEY_DAY = re.compile(r"(\d{8})$")


@dataclass(frozen=True)
class RaceKey:
    """The parts of a race id."""

    race_type: RaceType
    track: str
    race_no: int
    day: date

    @property
    def race_id(self) -> str:
        return race_id(self.race_type, self.track, self.race_no, self.day)

    @property
    def source(self) -> Source:
        return SOURCE_OF_RACE_TYPE[self.race_type]


def race_id(race_type: str, track: str, race_no: int, day: date) -> str:
    """``{race_type}-{track_code}-{race_no}-{YYYYMMDD}``."""
    return f"{race_type}-{track}-{race_no}-{day:%Y%m%d}"


def well_formed(text: str) -> bool:
    """Whether ``text`` has the form of a race id (:data:`schemas.records.RACE_ID_PATTERN`, the models' check)."""
    return _RACE_ID.fullmatch(text) is not None


def parse(text: str) -> RaceKey:
    """The parts of a well-formed race id with a calendar date; ``ValueError`` otherwise.

    Messages name the expected format, never the input (it may be anything a client sent).
    """
    if not well_formed(text):
        raise ValueError(f"not a race id: expected {FORMAT}")
    race_type, rest = text.split("-", 1)
    track, race_no, ymd = rest.rsplit("-", 2)
    try:
        day = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        raise ValueError("the date part is not a calendar date (YYYYMMDD)") from None
    return RaceKey(cast(RaceType, race_type), track, int(race_no), day)


def parse_known(text: str) -> RaceKey:
    """Like :func:`parse`, and the track is a known track of the race type, the race number 1-99 as written in race
    ids (no leading zero) and the day a race day (:mod:`schemas.race_days`).

    :data:`KNOWN_RACE_ID_PATTERN` matches exactly these.
    """
    key = parse(text)
    codes = CODES_BY_RACE_TYPE[key.race_type]
    if key.track not in codes:
        raise ValueError(f"unknown {key.race_type} track code (one of {', '.join(codes)})")
    if key.race_no < 1 or text.rsplit("-", 2)[1] != str(key.race_no):
        raise ValueError("race number must be 1 to 99, without leading zeros")
    race_days.check(key.day)
    return key


def source_of(race_type: str) -> Source:
    """The API family that publishes a race type (``kra`` for horse, ``kspo`` for cycle and boat)."""
    return SOURCE_OF_RACE_TYPE[cast(RaceType, race_type)]


def source_of_race(race: str) -> Source:
    """The source of a race id (by its race type)."""
    return source_of(race.split("-", 1)[0])


def day_key(source: str, track: str, day: date) -> str:
    """Message key of a day-wide call: ``{source}:{track}:{YYYYMMDD}``."""
    return f"{source}:{track}:{day:%Y%m%d}"


def day_of_key(key: str) -> str | None:
    """The ``YYYYMMDD`` a message key ends with (a day key or a race id), or None."""
    match = _KEY_DAY.search(key)
    return match.group(1) if match else None


def date_of_key(key: str) -> date | None:
    """The race day a message key names (``horse-seoul-3-20241210``, ``kra:seoul:20241210``), else None."""
    digits = day_of_key(key)
    if digits is None:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
