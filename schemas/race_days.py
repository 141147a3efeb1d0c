"""Race days: the calendar days the pipeline takes as a race day (1900-01-01 to 2999-12-31), and their patterns.

Racing in Korea is published from the 1990s on; the bounds keep a typo (``0202-12-10``) from becoming a day of
work, and every day +/- a few weeks is still a date. Contracts that must say exactly what is accepted (the OpenAPI
document) use the patterns: a pattern that checks only the shape (``[0-9]{8}``) lets ``20241399`` or ``20230229``
through, which the code then rejects. They use only what ECMA-262 and Python's ``re`` share (no look-around), so
every JSON Schema validator and test generator reads them alike; ``tests/unit/test_race_days.py`` checks them
against :func:`check` and ``datetime.date``.
"""

from __future__ import annotations

import re
from datetime import date

FIRST = date(1900, 1, 1)
LAST = date(2999, 12, 31)

_YEAR = "(?:19[0-9]{2}|2[0-9]{3})"
# Leap years: divisible by 4 and not by 100 (19xx, 2xxx by their last two digits), or by 400 (2000, 2400, 2800).
_LEAP_YEAR = "(?:19(?:0[48]|[2468][048]|[13579][26])|2[0-9](?:0[48]|[2468][048]|[13579][26])|2[048]00)"
_MONTHS_31 = "(?:0[13578]|1[02])"
_MONTHS_30 = "(?:0[469]|11)"


def day_pattern(separator: str = "") -> str:
    """Race days as ``YYYY{sep}MM{sep}DD`` (a group, no anchors)."""
    s = separator
    month_day = (
        f"(?:{_MONTHS_31}{s}(?:0[1-9]|[12][0-9]|3[01])"
        f"|{_MONTHS_30}{s}(?:0[1-9]|[12][0-9]|30)"
        f"|02{s}(?:0[1-9]|1[0-9]|2[0-8]))"
    )
    return f"(?:{_YEAR}{s}{month_day}|{_LEAP_YEAR}{s}02{s}29)"


ISO_PATTERN = f"^{day_pattern('-')}$"
"""``YYYY-MM-DD``, a race day."""

COMPACT_PATTERN = f"^{day_pattern()}$"
"""``YYYYMMDD``, a race day."""

_ISO = re.compile(ISO_PATTERN)

OUT_OF_RANGE = f"race days are {FIRST} to {LAST}"


def check(day: date) -> date:
    """``day`` when it can be a race day; ``ValueError`` (saying the range) otherwise."""
    if not FIRST <= day <= LAST:
        raise ValueError(OUT_OF_RANGE)
    return day


def parse_iso(text: str) -> date:
    """The race day ``YYYY-MM-DD`` names, strictly (what :data:`ISO_PATTERN` matches); ``ValueError`` otherwise.

    The message names the format and the range, never the text (it may be anything a client sent).
    """
    if not _ISO.fullmatch(text):
        raise ValueError(f"date must be a race day YYYY-MM-DD ({OUT_OF_RANGE})")
    return date.fromisoformat(text)
