"""The normalized records: one model per normalized topic, field names = the table's column names.

Every message on ``racelab.races|entries|results`` is the JSON of one record model, keyed by race id, with
``schema_version``. A message on ``racelab.odds`` is an :class:`OddsBoard`: every price of one race at one time (one
snapshot), because odds arrive as whole boards and a per-price message costs more than the price itself; each price
plus the board's fields is one row of ``odds_snapshots`` (:meth:`OddsBoard.records`). ``racelab.results`` also
carries the KSPO finishers by racer (:class:`RankRecord`), which the sink joins to the cards, and ``racelab.races``
the KSPO cycle payoffs (:class:`PayoffRecord`), which the sink attaches to their race.

Versions: 1 was the first. 2 adds fields only (the race's conditions, prizes, weather and going; a result's
trainer, owner, weights, rating, equipment, sectional times and positions): a version 1 message still reads as
version 2 with those fields empty. Every change of the records bumps the version; a change that is not additive
also stops reading the old one.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, NotRequired

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

SCHEMA_VERSION: Literal[2] = 2
SchemaVersion = Literal[1, 2]
RaceType = Literal["horse", "cycle", "boat"]
Source = Literal["kra", "kspo"]
Pool = Literal["WIN", "PLC", "QNL", "EXA", "QPL", "TLA", "TRI"]
RACE_ID_PATTERN = r"^(horse|cycle|boat)-[a-z_]+-[0-9]{1,2}-[0-9]{8}$"
SELECTION_PATTERN = r"^[0-9]{1,2}(-[0-9]{1,2}){0,2}$"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: SchemaVersion = SCHEMA_VERSION
    race_id: str = Field(pattern=RACE_ID_PATTERN)


class RaceRecord(_Record):
    """A race of the schedule (table ``races``)."""

    race_type: RaceType
    track_code: str
    race_date: date
    race_no: int = Field(gt=0, lt=100)
    post_time: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    distance_m: int | None = Field(default=None, gt=0)
    grade: str | None = None
    race_name: str | None = None
    field_size: int | None = Field(default=None, ge=0)
    status: Literal["unknown", "scheduled", "finished", "official", "cancelled"] = "scheduled"
    source: Source
    source_fetched_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)
    age_condition: str | None = None
    sex_condition: str | None = None
    prize_condition: str | None = None
    weight_rule: str | None = None
    prize_money_krw: list[int] | None = None
    bonus_money_krw: list[int] | None = None
    weather: str | None = None
    track_condition: str | None = None
    track_moisture_pct: int | None = Field(default=None, ge=0, le=100)


class EntryRecord(_Record):
    """A runner of a race's entry sheet (table ``entries``)."""

    entry_no: int = Field(gt=0, lt=100)
    participant_id: str | None = None
    participant_name: str
    jockey_id: str | None = None
    jockey_name: str | None = None
    trainer_id: str | None = None
    trainer_name: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    age: int | None = None
    sex: str | None = None
    carried_weight_kg: float | None = None
    body_weight_kg: int | None = None
    body_weight_delta: int | None = None
    rating: int | None = None
    grade: str | None = None
    status: Literal["declared", "scratched"] = "declared"
    scratch_reason: str | None = None
    source: Source
    source_fetched_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)
    gear_ratio: float | None = Field(default=None, gt=0)
    recent_ranks: list[str] | None = None


class OddsRecord(_Record):
    """One price of one selection in one pool at one time (table ``odds_snapshots``)."""

    time: AwareDatetime
    pool: Pool
    selection: str = Field(pattern=SELECTION_PATTERN)
    odds: float = Field(ge=0, allow_inf_nan=False)
    is_final: bool
    pool_total: int | None = None
    popularity_rank: int | None = None
    source: Source


@with_config(ConfigDict(extra="forbid"))
class OddsPrice(TypedDict):
    """One selection's price within an :class:`OddsBoard` (the per-price columns of ``odds_snapshots``).

    A validated mapping rather than a model: a board carries up to ~4,400 prices, and a model object per price cost
    three times the validation itself (measured on 1000-price boards: 4.0 us a price as models, 1.0 us as mappings).
    """

    pool: Pool
    selection: Annotated[str, Field(pattern=SELECTION_PATTERN)]
    odds: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    pool_total: NotRequired[int | None]
    popularity_rank: NotRequired[int | None]


class OddsBoard(_Record):
    """Every price of one race at one time: one message on the odds topic, one row per price in ``odds_snapshots``."""

    time: AwareDatetime
    is_final: bool
    source: Source
    prices: list[OddsPrice] = Field(min_length=1)

    def records(self) -> list[OddsRecord]:
        """The board as table rows."""
        return [
            OddsRecord(race_id=self.race_id, time=self.time, is_final=self.is_final, source=self.source, **p)
            for p in self.prices
        ]

    @classmethod
    def boards_of(cls, records: list[OddsRecord]) -> list[OddsBoard]:
        """Group validated rows into boards (race, time, finality, source), keeping their order."""
        groups: dict[tuple[str, object, bool, str], list[OddsPrice]] = {}
        for r in records:
            price = OddsPrice(
                pool=r.pool,
                selection=r.selection,
                odds=r.odds,
                pool_total=r.pool_total,
                popularity_rank=r.popularity_rank,
            )
            groups.setdefault((r.race_id, r.time, r.is_final, r.source), []).append(price)
        return [
            cls.model_construct(
                schema_version=SCHEMA_VERSION, race_id=race_id, time=at, is_final=final, source=source, prices=prices
            )
            for (race_id, at, final, source), prices in groups.items()
        ]


_dumps = orjson.dumps
_UTC_Z = orjson.OPT_UTC_Z


def board_messages(boards: list[OddsBoard]) -> list[tuple[str, bytes]]:
    """(race id, JSON) of the messages of validated boards: the bytes of ``model_dump_json``, written by orjson from
    the validated values in the model's field order (measured: 0.16 us a price instead of pydantic's 0.36 us)."""
    return [
        (
            b.race_id,
            _dumps(
                {
                    "schema_version": b.schema_version,
                    "race_id": b.race_id,
                    "time": b.time,
                    "is_final": b.is_final,
                    "source": b.source,
                    "prices": b.prices,
                },
                option=_UTC_Z,
            ),
        )
        for b in boards
    ]


SectionPoint = Literal["S1F", "C1", "C2", "C3", "C4", "G8F", "G6F", "G4F", "G3F", "G2F", "G1F"]
SplitMark = Literal["start", "S1F", "G10F", "G8F", "G6F", "G4F", "G3F", "G2F", "G1F", "finish"]


class Sectional(BaseModel):
    """A runner at one point of the race: the time since the start and the position there.

    Points: ``S1F`` one furlong (200 m) after the start, ``C1``..``C4`` the corners, ``G8F``..``G1F`` eight to one
    furlongs before the finish. The same points for every track, whichever of the track's fields published them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    point: SectionPoint
    elapsed_s: float | None = Field(default=None, gt=0)
    position: int | None = Field(default=None, gt=0)


class SplitTime(BaseModel):
    """The time a runner took from one mark to another (``G3F`` -> ``finish``: the last three furlongs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: SplitMark
    end: SplitMark
    seconds: float = Field(gt=0)


class ResultRecord(_Record):
    """One runner's result (table ``results``)."""

    entry_no: int = Field(gt=0, lt=100)
    finish_position: int | None = Field(default=None, gt=0)
    status: Literal["finished", "disqualified", "did_not_finish", "did_not_start", "scratched", "void", "cancelled"]
    status_code: int | None = None
    finish_time_s: float | None = None
    margin: str | None = None
    participant_id: str | None = None
    participant_name: str
    jockey_id: str | None = None
    jockey_name: str | None = None
    win_odds: float | None = None
    place_odds: float | None = None
    is_final: bool
    source: Source
    source_fetched_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)
    trainer_id: str | None = None
    trainer_name: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    age: int | None = None
    sex: str | None = None
    rating: int | None = None
    carried_weight_kg: float | None = None
    jockey_allowance_kg: float | None = None
    body_weight_kg: int | None = None
    body_weight_delta: int | None = None
    equipment: str | None = None
    sectionals: list[Sectional] | None = None
    split_times: list[SplitTime] | None = None


class RankRecord(_Record):
    """A KSPO finisher by racer (the RANK APIs, table ``race_ranks``): a racer id and name with a finishing position,
    without the entry number. The sink joins it to the race's card by name, in the database, whichever arrives
    first: the joined runner gets its result row (and the entry its racer id); a racer missing from the card is a
    dead letter."""

    racer_id: str = Field(min_length=1)
    racer_name: str = Field(min_length=1)
    finish_position: int = Field(gt=0, lt=100)
    source: Source
    source_fetched_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)


class PayoffRecord(BaseModel):
    """A KSPO cycle payoff row (table ``kspo_payoffs``): one race's dividends as plain numbers, placed by date, round,
    day of round and race number but not by track (the rows do not name it). The sink attaches its fields to the
    details of the one cycle race of that date, round, day and number; when several tracks ran such a race, it is a
    dead letter, never a guess. Keyed ``kspo:cycle:YYYYMMDD`` on ``racelab.races``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: SchemaVersion = SCHEMA_VERSION
    race_type: Literal["cycle", "boat"]
    race_date: date
    race_no: int = Field(gt=0, lt=100)
    year: int = Field(gt=1900)
    round_no: int = Field(gt=0)
    day_no: int = Field(gt=0)
    track_code: str | None = None
    source: Source
    source_fetched_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"kspo:{self.race_type}:{self.race_date:%Y%m%d}"


class _Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: SchemaVersion = SCHEMA_VERSION
    track_code: str | None = None
    source: Source
    source_fetched_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)


class HorseRecord(_Profile):
    """A horse's profile (KRA API8_2, table ``horses``), keyed ``kra:horse:{horse_id}`` on ``racelab.entries``.
    The career counters are a snapshot of the day it was fetched (kept in ``details``, not for past races)."""

    horse_id: str = Field(min_length=1)
    name: str
    sex: str | None = None
    birth_date: date | None = None
    origin: str | None = None
    grade: str | None = None
    rating: int | None = None
    sire_id: str | None = None
    sire_name: str | None = None
    dam_id: str | None = None
    dam_name: str | None = None
    trainer_id: str | None = None
    trainer_name: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    career_prize_krw: int | None = None  # as of the fetch

    @property
    def key(self) -> str:
        return f"kra:horse:{self.horse_id}"


class JockeyRecord(_Profile):
    """A jockey's profile (KRA API12_1, table ``jockeys``), keyed ``kra:jockey:{jockey_id}`` on ``racelab.entries``."""

    jockey_id: str = Field(min_length=1)
    name: str
    age: int | None = None
    birth_date: date | None = None
    debut_date: date | None = None

    @property
    def key(self) -> str:
        return f"kra:jockey:{self.jockey_id}"


Record = RaceRecord | EntryRecord | OddsRecord | ResultRecord | RankRecord | PayoffRecord | HorseRecord | JockeyRecord


def message_key(record: BaseModel) -> str:
    """The key of a record's message: its race id, or the day key of a record not placed on one race."""
    if isinstance(record, PayoffRecord | HorseRecord | JockeyRecord):
        return record.key
    return str(getattr(record, "race_id", ""))


MODEL_OF_TOPIC: dict[str, type[_Record]] = {
    "races": RaceRecord,
    "entries": EntryRecord,
    "odds": OddsBoard,
    "results": ResultRecord,
}
"""The main model of each normalized topic."""
MODELS_OF_TOPIC: dict[str, tuple[type[BaseModel], ...]] = {**{t: (m,) for t, m in MODEL_OF_TOPIC.items()}}
MODELS_OF_TOPIC["results"] = (ResultRecord, RankRecord)
MODELS_OF_TOPIC["races"] = (RaceRecord, PayoffRecord)
MODELS_OF_TOPIC["entries"] = (EntryRecord, HorseRecord, JockeyRecord)
MESSAGE_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "races": TypeAdapter(RaceRecord | PayoffRecord),
    "entries": TypeAdapter(EntryRecord | HorseRecord | JockeyRecord),
    "odds": TypeAdapter(OddsBoard),
    "results": TypeAdapter(ResultRecord | RankRecord),
}
"""Reads a message of a topic: ``racelab.results`` carries results by entry and KSPO ranks by racer (told apart by
their fields: a rank has ``racer_id`` and no ``entry_no``); ``racelab.races`` races and KSPO cycle payoffs (a payoff
has ``round_no`` and no ``race_id``)."""


def read_message(topic: str, value: bytes) -> BaseModel:
    """The record of one normalized message, validated (``ValueError`` when it fits no model of its topic)."""
    record: BaseModel = MESSAGE_ADAPTERS[topic].validate_json(value)
    return record
