"""The pipeline's time zones: everything is stored in UTC; race days and post times are Korean (KST, UTC+9).

Korea has kept UTC+9 without daylight saving since 1988, so a fixed offset is exact for every race the APIs
publish.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

KST = timezone(timedelta(hours=9))


def kst_date(moment: datetime) -> date:
    """The Korean calendar day of an aware moment."""
    return moment.astimezone(KST).date()


def kst_today() -> date:
    """Today in Korea, on the system clock."""
    return datetime.now(KST).date()


def kst_moment(day: date, at: time) -> datetime:
    """A Korean local date and time as an aware UTC datetime."""
    return datetime.combine(day, at, tzinfo=KST).astimezone(UTC)


def kst_midnight(day: date) -> datetime:
    """The start of a Korean day, as an aware datetime in KST."""
    return datetime.combine(day, time(0), tzinfo=KST)
