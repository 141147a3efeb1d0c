"""The race-day and race-id patterns of the contracts agree exactly with what the code accepts."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import race_days, race_ids
from schemas.race_days import COMPACT_PATTERN, ISO_PATTERN
from schemas.race_ids import KNOWN_RACE_ID_PATTERN

# leap-year rules at work: 1904 and 2024 (by 4), 1900 and 2100 (not: by 100), 2000 and 2400 (by 400), 2023 (not);
# out of range: 1899, 3000
YEARS = (1, 1899, 1900, 1904, 1999, 2000, 2023, 2024, 2100, 2400, 2999, 3000, 9996)


def is_race_day(year: int, month: int, day: int) -> bool:
    try:
        race_days.check(date(year, month, day))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("year", YEARS)
def test_every_month_and_day_text_of_a_year(year: int):
    compact, iso = re.compile(COMPACT_PATTERN), re.compile(ISO_PATTERN)
    for month in range(100):
        for day in range(100):
            valid = is_race_day(year, month, day)
            assert bool(compact.fullmatch(f"{year:04d}{month:02d}{day:02d}")) == valid, (year, month, day)
            assert bool(iso.fullmatch(f"{year:04d}-{month:02d}-{day:02d}")) == valid, (year, month, day)


def test_written_out_days():
    # fullmatch: in ECMA-262 (JSON Schema), unlike Python's re.match, "$" does not match before a final newline
    accepted = ("2024-02-29", "2000-02-29", "2400-02-29", "1904-02-29", "1900-01-01", "2999-12-31", "2024-04-30")
    rejected = ("2023-02-29", "1900-02-29", "2100-02-29", "2024-04-31", "2024-13-01", "2024-00-10", "1899-12-31")
    rejected += ("3000-01-01", "0001-01-01", "", "2024-1-01", "2024-12-10\n")
    assert all(re.fullmatch(ISO_PATTERN, text) for text in accepted)
    assert not any(re.fullmatch(ISO_PATTERN, text) for text in rejected)
    with pytest.raises(ValueError, match="race days are 1900-01-01 to 2999-12-31"):
        race_days.check(date(1899, 12, 31))


@given(st.from_regex(ISO_PATTERN, fullmatch=True))
def test_generated_days_are_race_days(text: str):
    race_days.check(date.fromisoformat(text))


def accepted(text: str) -> bool:
    try:
        race_ids.parse_known(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("horse-seoul-1-20240229", True),
        ("cycle-busan_cycle-12-20241210", True),
        ("boat-misari-99-19000101", True),
        ("horse-yeongcheon-3-20261205", True),
        ("horse-seoul-1-20230229", False),  # not a leap year
        ("horse-_-0-00000000", False),
        ("horse-busan_cycle-1-20241210", False),  # a cycle track
        ("horse-seoul-01-20241210", False),  # race ids write race numbers without leading zeros
        ("horse-seoul-0-20241210", False),
        ("horse-seoul-100-20241210", False),
        ("horse-seoul-1-18991231", False),  # before the first race day
        ("horse-seoul-1-30000101", False),  # after the last
        ("horse-seoul-1-2024121", False),
        ("Horse-seoul-1-20241210", False),
        ("horse-seoul-1-20241210\n", False),
    ],
)
def test_written_out_race_ids(text: str, ok: bool):
    assert bool(re.fullmatch(KNOWN_RACE_ID_PATTERN, text)) == ok
    assert accepted(text) == ok


@given(st.from_regex(KNOWN_RACE_ID_PATTERN, fullmatch=True))
def test_every_race_id_the_pattern_allows_is_accepted(text: str):
    key = race_ids.parse_known(text)
    assert key.race_id == text


shapes = st.builds(
    "{}-{}-{}-{}".format,
    st.sampled_from(["horse", "cycle", "boat", "car"]),
    st.sampled_from(["seoul", "busan", "jeju", "yeongcheon", "gwangmyeong", "changwon", "busan_cycle", "misari", "x"]),
    st.from_regex(r"[0-9]{1,3}", fullmatch=True),
    st.from_regex(r"[0-9]{8}", fullmatch=True) | st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}"),
)


@given(shapes)
def test_the_pattern_and_the_parser_agree_on_race_id_shapes(text: str):
    assert bool(re.fullmatch(KNOWN_RACE_ID_PATTERN, text)) == accepted(text)


def test_parse_iso_reads_race_days_strictly():
    assert race_days.parse_iso("2024-02-29") == date(2024, 2, 29)
    for text in ("2023-02-29", "1899-12-31", "2024-12-10\n", "20241210", ""):
        with pytest.raises(ValueError, match=r"date must be a race day YYYY-MM-DD \(race days are 1900-01-01"):
            race_days.parse_iso(text)
