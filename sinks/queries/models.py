"""What the queries return: small slotted dataclasses, one per row shape.

Not frozen: building a frozen one costs about eight times as much, which shows on a day summary of 50,000 rows.

Field names are the table's column names where there is one, so a model's fields double as its SELECT list and as
the keys of its JSON form. Times are aware datetimes (UTC from the database), race dates are ``date``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime


@dataclass(slots=True)
class Race:
    """One race of the schedule."""

    race_id: str
    race_type: str
    track_code: str
    race_date: date
    race_no: int
    post_time: datetime | None
    status: str
    distance_m: int | None
    grade: str | None
    race_name: str | None
    field_size: int | None


@dataclass(slots=True)
class Entry:
    """One runner declared for a race."""

    race_id: str
    entry_no: int
    participant_id: str | None
    participant_name: str
    jockey_id: str | None
    jockey_name: str | None
    trainer_name: str | None
    age: int | None
    sex: str | None
    carried_weight_kg: float | None
    body_weight_kg: int | None
    rating: int | None
    status: str
    scratch_reason: str | None


@dataclass(slots=True)
class RaceDetail:
    """A race with its entries (in entry number order)."""

    race: Race
    entries: tuple[Entry, ...]


@dataclass(slots=True)
class Result:
    """One runner's result."""

    race_id: str
    entry_no: int
    finish_position: int | None
    status: str
    finish_time_s: float | None
    margin: str | None
    participant_id: str | None
    participant_name: str
    jockey_id: str | None
    jockey_name: str | None
    win_odds: float | None
    place_odds: float | None
    is_final: bool


@dataclass(slots=True)
class OddsSnapshot:
    """One odds value of one selection at one time (a row of ``odds_snapshots`` without its race id)."""

    time: datetime
    pool: str
    selection: str
    odds: float
    is_final: bool
    pool_total: int | None
    popularity_rank: int | None


@dataclass(slots=True)
class OddsBucket:
    """The odds of one selection within one time bucket."""

    bucket: datetime
    pool: str
    selection: str
    open: float
    close: float
    high: float
    low: float
    samples: int


@dataclass(slots=True)
class OddsSummary:
    """Open, close, high and low of one selection over one race day (from ``odds_daily_summary``)."""

    day: date
    race_id: str
    pool: str
    selection: str
    open: float
    close: float
    high: float
    low: float
    change: float
    snapshots: int


@dataclass(slots=True)
class WideOdds:
    """The seed's wide shape: win and place odds of one runner at one time (``odds_snapshots_wide``)."""

    time: datetime
    race_id: str
    entry_no: int
    odds_win: float | None
    odds_place: float | None


@dataclass(slots=True)
class ParticipantStats:
    """Starts, wins and places (top three, wins included) of a horse, rider or jockey."""

    id: str
    name: str
    starts: int
    wins: int
    places: int
    win_rate: float
    place_rate: float


@dataclass(slots=True)
class EntryForm:
    """A runner of a race with its record and its jockey's before the race day (starts, wins, places, rates)."""

    entry_no: int
    participant_id: str | None
    participant_name: str
    jockey_id: str | None
    jockey_name: str | None
    status: str
    starts: int
    wins: int
    places: int
    win_rate: float | None
    jockey_starts: int
    jockey_wins: int
    jockey_win_rate: float | None


def names(model: type) -> tuple[str, ...]:
    """The field names of a model, in order."""
    return tuple(f.name for f in fields(model))


@dataclass(slots=True)
class RawResponse:
    """One archived raw message (``raw_archive``)."""

    fetched_at: datetime
    topic: str
    msg_partition: int
    msg_offset: int
    message_key: str | None
    endpoint: str | None
    params: dict[str, object] | None
    poll_id: str
    http_status: int | None
    size_bytes: int
    headers: dict[str, object]
    body: bytes
