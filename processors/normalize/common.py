"""Parsing helpers for the quirks of the KRA and KSPO payloads (see the API notes, §8)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

from processors.errors import DecodeError, NormalizeError
from schemas import race_ids
from schemas.envelope import EnvelopeError, PageInfo, inspect_page
from schemas.timezones import KST, kst_moment
from schemas.tracks import Track, by_spelling

NULLS = frozenset({"", "-", "--", "null", "None"})
Row = dict[str, Any]
R = TypeVar("R")

POOL_CODES: dict[str, str] = {
    "단승식": "WIN",
    "단승": "WIN",
    "WIN": "WIN",
    "연승식": "PLC",
    "연승": "PLC",
    "PLC": "PLC",
    "복승식": "QNL",
    "복승": "QNL",
    "QNL": "QNL",
    "쌍승식": "EXA",
    "쌍승": "EXA",
    "EXA": "EXA",
    "복연승식": "QPL",
    "복연승": "QPL",
    "QPL": "QPL",
    "삼복승식": "TLA",
    "삼복승": "TLA",
    "TLA": "TLA",
    "삼쌍승식": "TRI",
    "삼쌍승": "TRI",
    "TRI": "TRI",
}
UNORDERED_POOLS = frozenset({"QNL", "QPL", "TLA"})
NOT_OUR_POOLS = frozenset({"XLA", "쌍복승식", "쌍복승"})  # sold, but not one of the 7 pools we store
CIRCLED = {ch: i for i, ch in enumerate("⓪①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳")}
ORD_STATUS = {
    91: "disqualified",
    92: "did_not_finish",
    93: "did_not_start",
    94: "did_not_start",
    95: "scratched",
    96: "void",
    97: "void",
    98: "void",
    99: "cancelled",
}


@dataclass(frozen=True)
class Context:
    """Where a raw message came from (its headers and key)."""

    source: str
    endpoint: str
    params: dict[str, str]
    fetched_at: datetime
    key: str


def items(body: bytes) -> list[Row]:
    """The item rows of a response body (JSON or XML), whatever shape ``items`` has."""
    try:
        page = inspect_page(body)
    except EnvelopeError as exc:
        raise DecodeError(str(exc)) from None
    return _checked(page)


def typed_items(body: bytes, read: Callable[[bytes], PageInfo[R] | None], of_row: Callable[[Row], R]) -> list[R]:
    """The item rows of a response body as structs: read by ``read`` (a :func:`schemas.envelope.typed_json_reader`)
    when the body fits it, else by :func:`items` and each row made a struct by ``of_row``, its values as they are."""
    try:
        page = read(body)
    except EnvelopeError as exc:
        raise DecodeError(str(exc)) from None
    if page is None:
        return [of_row(row) for row in items(body)]
    return _checked(page)


def _checked(page: PageInfo[R]) -> list[R]:
    """The rows of a page that is a normal answer; a gateway error or an API error code is a DecodeError."""
    if page.gateway:
        raise DecodeError(f"body is a gateway error response (code {page.code!r})")
    if not page.ok:
        raise DecodeError(f"body carries API error code {page.code!r}")
    return page.rows


def text(value: Any) -> str | None:
    """A trimmed string, or None for the null sentinels ("-", "")."""
    if value is None:
        return None
    out = str(value).strip()
    return None if out in NULLS else out


# A number as the APIs write it: digits, optionally with thousands separators ("1,234.5"), a sign and a fraction.
# Nothing else is read as a number (not "1,2,3", "1e5", "nan" or "1_000", which float() would accept).
NUMBER_TEXT = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
PRICE_TEXT = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER = re.compile(NUMBER_TEXT)


def _numeric(value: Any) -> str | None:
    """The digits of a number written as text (separators removed), None for the null sentinels; a text that is
    not a number in the APIs' formats (a lone circled digit counts: "③" is 3) is a NormalizeError."""
    s = text(value)
    if s is None:
        return None
    if s in CIRCLED:
        return str(CIRCLED[s])
    if not _NUMBER.fullmatch(s):
        raise NormalizeError(f"expected a number, got {s[:20]!r}")
    return s.replace(",", "")


def integer(value: Any, zero_is_null: bool = False) -> int | None:
    """An int from an int, an integral float or a numeric string ("0051228" -> 51228, "1,200" -> 1200); None for
    sentinels. A fraction that is not zero ("52.5") is an error: truncating it would store a number not published."""
    if type(value) is int:  # the common case, first
        return None if zero_is_null and value == 0 else value
    if isinstance(value, bool):
        raise NormalizeError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        out = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise NormalizeError(f"expected a whole number, got {value!r}")
        out = int(value)
    else:
        digits = _numeric(value)
        if digits is None:
            return None
        whole, _, fraction = digits.partition(".")
        if fraction.strip("0"):
            raise NormalizeError(f"expected a whole number, got {str(value).strip()[:20]!r}")
        out = int(whole)
    return None if zero_is_null and out == 0 else out


def number(value: Any, zero_is_null: bool = False) -> float | None:
    """A float from a number or numeric string ("1,234.5" -> 1234.5); None for sentinels."""
    if type(value) is float:
        if not math.isfinite(value):
            raise NormalizeError(f"expected a number, got {value!r}")
        return None if zero_is_null and value == 0 else value
    if isinstance(value, bool):
        raise NormalizeError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        out = float(value)
    else:
        digits = _numeric(value)
        if digits is None:
            return None
        out = float(digits)
    return None if zero_is_null and out == 0 else out


def ident(value: Any, width: int = 0) -> str | None:
    """An identifier as a string; numbers that lost their leading zeros are padded back to ``width``."""
    s = text(value)
    if s is None:
        return None
    if isinstance(value, int | float) and width:
        return str(int(value)).zfill(width)
    return s


def track_of(value: Any) -> Track:
    """The track of any spelling ("부경", "부산경남", "광명  " ...)."""
    name = text(value)
    found = by_spelling(name) if name is not None else None
    if found is None:
        raise NormalizeError(f"unknown track {str(value)[:20]!r}")
    return found


def track_code(value: Any) -> str:
    """The canonical track code of any spelling."""
    return track_of(value).code


def ymd(value: Any, year: int | None = None) -> date:
    """20250523, "20250523", "2026.01.02", "2026-01-02", or "0102" with ``year``."""
    s = text(value)
    if s is None:
        raise NormalizeError("missing date")
    digits = re.sub(r"[.\-/]", "", s)
    try:
        if len(digits) == 8 and digits.isdigit():
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        if len(digits) == 4 and digits.isdigit() and year is not None:
            return date(year, int(digits[:2]), int(digits[2:]))
    except ValueError:
        pass
    raise NormalizeError(f"not a date: {s[:20]!r}")


def clock_time(value: Any) -> time | None:
    """ "출발 :10:45", "10:45", '12"55', "1045" -> time(10, 45); None when absent."""
    s = text(value)
    if s is None:
        return None
    match = re.search(r"(\d{1,2})\s*[:\"]\s*(\d{2})", s) or re.fullmatch(r"(\d{2})(\d{2})", s)
    if not match:
        raise NormalizeError(f"not a time of day: {s[:20]!r}")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise NormalizeError(f"not a time of day: {s[:20]!r}")
    return time(hour, minute)


def kst(day: date, at: time | None) -> datetime | None:
    """A Korean local date and time as an aware UTC datetime."""
    return None if at is None else kst_moment(day, at)


def iso_time(value: Any) -> datetime | None:
    """ISO 8601 with offset ("2025-05-03T10:35:00+09:00") -> aware UTC datetime."""
    s = text(value)
    if s is None:
        return None
    try:
        moment = datetime.fromisoformat(s)
    except ValueError:
        raise NormalizeError(f"not an ISO time: {s[:30]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=KST)
    return moment.astimezone(UTC)


def race_seconds(value: Any) -> float | None:
    """75.4, "75.4", "1:12.3" -> seconds; 0 and "0:00.0" mean no time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) or None
    s = text(value)
    if s is None:
        return None
    match = re.fullmatch(r"(\d+):(\d{1,2}(?:\.\d+)?)", s)
    try:
        seconds = int(match.group(1)) * 60 + float(match.group(2)) if match else float(s)
    except ValueError:
        raise NormalizeError(f"not a race time: {s[:20]!r}") from None
    return seconds or None


def body_weight(value: Any) -> tuple[int | None, int | None]:
    """ "511(+2)" -> (511, 2); "511" -> (511, None)."""
    s = text(value)
    if s is None:
        return None, None
    match = re.fullmatch(r"(\d+)\s*(?:\(\s*([+-]?\d+)\s*\))?", s)
    if not match:
        raise NormalizeError(f"not a body weight: {s[:20]!r}")
    return int(match.group(1)), int(match.group(2)) if match.group(2) is not None else None


def result_status(position: int | None) -> tuple[int | None, str, int | None]:
    """KRA ``ord`` -> (finish position, status, status code): 91-99 are status codes, not places."""
    if position is None or position == 0:
        return None, "did_not_start", position
    if position >= 90:
        return None, ORD_STATUS.get(position, "void"), position
    return position, "finished", None


def selection(pool: str, numbers: list[int]) -> str:
    """'3', '3-7', '3-7-5'; unordered pools sorted (zeros are unused positions)."""
    a, b, c = numbers
    if not b:
        return str(a)
    if not c:
        if pool in UNORDERED_POOLS and b < a:
            a, b = b, a
        return f"{a}-{b}"
    if pool in UNORDERED_POOLS:
        a, b, c = sorted((a, b, c))
    return f"{a}-{b}-{c}"


PRICE_FIELDS = ("pool", "selection", "odds", "pool_total", "popularity_rank")


def boards(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Odds rows (race, time, finality, source and a price each) grouped into boards, one per race and time, in
    the order of their first rows (the shape of :class:`schemas.records.OddsBoard`)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["race_id"], row["time"], row["is_final"], row["source"])
        board = out.get(key)
        if board is None:
            board = out[key] = {"race_id": key[0], "time": key[1], "is_final": key[2], "source": key[3], "prices": []}
        board["prices"].append({name: row[name] for name in PRICE_FIELDS if name in row})
    return list(out.values())


def day_from_key(key: str) -> date | None:
    """The date of a day-wide key (``kspo:misari:20241212``) or a race id (``boat-misari-3-20241212``)."""
    digits = race_ids.day_of_key(key)
    return ymd(digits) if digits else None


def circled_entry(value: Any) -> tuple[int, str]:
    """ "②이길섭" -> (2, "이길섭")."""
    s = text(value)
    if not s:
        raise NormalizeError("missing ranked name")
    if s[0] in CIRCLED:
        return CIRCLED[s[0]], s[1:].strip()
    match = re.fullmatch(r"\((\d+)\)\s*(.+)", s)
    if match:
        return int(match.group(1)), match.group(2).strip()
    raise NormalizeError(f"no entry number in {s[:20]!r}")


_PAREN_COMBO = rf"\(\s*(\d+(?:\s*-\s*\d+)*)\s*\)\s*({PRICE_TEXT})"
_PAREN_COMBOS = re.compile(rf"{_PAREN_COMBO}(?:\s+{_PAREN_COMBO})*")
_PAREN_PART = re.compile(_PAREN_COMBO)
_CIRCLED_SET = "".join(CIRCLED)
_CIRCLED_COMBO = re.compile(rf"([{_CIRCLED_SET}](?:\s*-\s*[{_CIRCLED_SET}])*)\s*({PRICE_TEXT})")


def combos(value: Any) -> list[tuple[list[int], float]]:
    """KSPO dividend text -> [(numbers, odds)]: "(2-7-5)3.4", "(2)1.2 (7)2.1", "①-②-⑥3.4", "①1.1", "(2-7)1,234.5".

    The whole text must be read: anything left over, or a price in another format, is an error, never a guess.
    """
    s = text(value)
    if s is None:
        return []
    if _PAREN_COMBOS.fullmatch(s):
        return [
            ([int(n) for n in part.group(1).split("-")], float(part.group(2).replace(",", "")))
            for part in _PAREN_PART.finditer(s)
        ]
    match = _CIRCLED_COMBO.fullmatch(s)
    if match:
        numbers = [CIRCLED[ch] for ch in match.group(1) if ch in CIRCLED]
        return [(numbers, float(match.group(2).replace(",", "")))]
    raise NormalizeError(f"dividend text not understood: {s[:30]!r}")


_GOING = re.compile(r"([^\d()%\s]+)\s*(?:\(\s*(\d{1,3})\s*%\s*\))?")


def going(value: Any) -> tuple[str | None, int | None]:
    """Track condition and moisture: "건조 (2%)" -> ("건조", 2), "포화 (18%)" -> ("포화", 18); "양호" -> ("양호", None)
    (no moisture published: none stored)."""
    s = text(value)
    if s is None:
        return None, None
    match = _GOING.fullmatch(s)
    if match is None or (match.group(2) is not None and int(match.group(2)) > 100):
        raise NormalizeError(f"not a track condition: {s[:20]!r}")
    return match.group(1), int(match.group(2)) if match.group(2) is not None else None


T = TypeVar("T")
Day = date  # the type, where the method ``Fields.date`` hides the name


def kept(row: Row, typed: Collection[str]) -> dict[str, Any]:
    """Every field of a row that no typed column holds, verbatim (``details``): nothing published is dropped."""
    return {k: v for k, v in row.items() if k not in typed}


class Fields:
    """The fields of one row, read with the parsers above; a value in an unknown format is a NormalizeError that
    names the field (``field 'wgHr': not a body weight: '511kg'``)."""

    __slots__ = ("row",)

    def __init__(self, row: Row) -> None:
        self.row = row

    def read(self, name: str, parse: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return parse(self.row.get(name), *args, **kwargs)
        except NormalizeError as exc:
            raise NormalizeError(f"field {name!r}: {exc}") from None

    def required(self, name: str) -> int:
        value = self.read(name, integer)
        if value is None:
            raise NormalizeError(f"field {name!r}: missing")
        return value

    def text(self, name: str) -> str | None:
        return text(self.row.get(name))

    def integer(self, name: str, zero_is_null: bool = False) -> int | None:
        return self.read(name, integer, zero_is_null=zero_is_null)

    def number(self, name: str, zero_is_null: bool = False) -> float | None:
        return self.read(name, number, zero_is_null=zero_is_null)

    def ident(self, name: str, width: int = 0) -> str | None:
        return self.read(name, ident, width)

    def date(self, name: str, year: int | None = None) -> date:
        return self.read(name, ymd, year=year)

    def optional_date(self, name: str) -> Day | None:
        """A date, or None for the null sentinels ("-")."""
        return None if self.text(name) is None else self.read(name, ymd)
