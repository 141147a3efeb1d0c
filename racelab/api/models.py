"""Request and response bodies of the control API, and the race id it validates.

JSON field names follow the seed's contract (camelCase: ``raceIds``, ``raceTypes``, ``errorMessage``); request
bodies also accept the snake_case spelling (``race_ids``, ``race_types``). Every answer is an envelope
``{"success", "data", "error", "timestamp"}``; ``error`` is ``{"code", "message"}`` when something went wrong.
Validation messages never repeat the submitted values, so nothing a caller sent (a pasted key, say) is echoed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from schemas import race_days, race_ids
from schemas.race_ids import KNOWN_RACE_ID_PATTERN, RaceKey
from schemas.records import RaceType
from schemas.topics import Kind

MAX_RACE_IDS = 200
RACE_ID_FORMAT = race_ids.FORMAT


def parse_race_id(text: str) -> RaceKey:
    """Split and check a race id of a known track; ``ValueError`` (without the input in its message) otherwise."""
    return race_ids.parse_known(text)


def _checked_race_id(text: str) -> str:
    parse_race_id(text)
    return text


# The document states exactly what is accepted: known tracks of each race type, races 1-99, calendar days.
RaceId = Annotated[str, AfterValidator(_checked_race_id), Field(json_schema_extra={"pattern": KNOWN_RACE_ID_PATTERN})]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- requests ----------------------------------------------------------------------------------------------------
class ScheduleTrigger(_Request):
    """Body of ``POST /api/ingestion/trigger/schedules`` (optional as a whole)."""

    date: dt.date | None = Field(
        default=None,
        description="race day YYYY-MM-DD; default: today in Asia/Seoul (on the producers' clock)",
        examples=["2024-12-10"],
        json_schema_extra={"pattern": race_days.ISO_PATTERN},
    )
    race_types: list[RaceType] | None = Field(
        default=None,
        min_length=1,
        validation_alias=AliasChoices("raceTypes", "race_types"),
        description="race types to collect (also accepted as race_types); default: every configured type",
    )

    @field_validator("date", mode="before")
    @classmethod
    def _race_day(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("date must be a string YYYY-MM-DD")  # noqa: TRY004 - pydantic reports ValueError
        return race_days.parse_iso(value)


class RaceTrigger(_Request):
    """Body of ``POST /api/ingestion/trigger/{entries,odds,results}``."""

    race_ids: list[RaceId] = Field(
        min_length=1,
        max_length=MAX_RACE_IDS,
        validation_alias=AliasChoices("raceIds", "race_ids"),
        description=f"race ids ({RACE_ID_FORMAT}); also accepted as race_ids; repeats are ignored",
        examples=[["horse-seoul-1-20241210", "horse-seoul-2-20241210"]],
    )

    @field_validator("race_ids")
    @classmethod
    def _once_each(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))

    def races(self) -> list[RaceKey]:
        return [parse_race_id(r) for r in self.race_ids]


# ---- answers -----------------------------------------------------------------------------------------------------
class ErrorDetail(_Body):
    """One reason a request was rejected (location and message; the submitted value is never repeated)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorInfo(_Body):
    """What went wrong: a stable code and a human message."""

    code: str = Field(examples=["UNAUTHORIZED"])
    message: str
    details: list[ErrorDetail] | None = None


class Envelope(_Body):
    """Fields every answer has."""

    success: bool
    error: ErrorInfo | None = None
    timestamp: dt.datetime = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC), description="when the answer was made (RFC 3339, UTC)"
    )


class ErrorResponse(Envelope):
    """An error answer: ``success`` false, the ``error``, no data."""

    success: Literal[False]
    error: ErrorInfo
    data: None = None


class CallOutcome(_Body):
    """One upstream call a trigger planned, and what became of it."""

    source: str = Field(examples=["kra"])
    kind: Kind
    endpoint: str = Field(examples=["API299/Race_Result_total"])
    message_key: str = Field(description="key of its raw messages (race id, or source:track:YYYYMMDD)")
    params: dict[str, str] = Field(description="request parameters (never the service key)")
    outcome: Literal["collected", "failed", "skipped"]
    reason: str | None = Field(default=None, description="why a call was skipped")
    pages: int | None = Field(default=None, description="raw messages published (one per page)")
    items: int | None = Field(default=None, description="rows in those pages")
    failure_id: int | None = Field(default=None, description="the ingestion_failures row of a failed call")


COUNTS_DOC = (
    "Counted in upstream calls. collected: calls made now that succeeded, every page of them acknowledged by the "
    "broker on the raw topic (an answer with no rows yet counts, with pages 1 and items 0); skipped: planned calls "
    "not made, because the same call (same source, endpoint and parameters) was already made for another race of "
    "this request (day-wide calls serve every race of a track and day) or because it is not due (result details "
    "before the result is final); errors: calls that still failed after all their tries, each recorded in "
    "ingestion_failures (failureId) and alerted exactly like a scheduled poll. collected + skipped + errors = "
    "calls planned."
)


class CollectionData(_Body):
    """What a trigger or a retry did."""

    model_config = ConfigDict(json_schema_extra={"description": COUNTS_DOC})

    collected: int = Field(description="calls that succeeded and were published")
    skipped: int = Field(description="planned calls not made (a repeat of another call, or not due)")
    errors: int = Field(description="calls that failed after all tries (recorded as ingestion failures)")
    messages: int | None = Field(default=None, description="raw messages published (pages of collected calls)")
    calls: list[CallOutcome] = Field(default_factory=list)


class CollectionResponse(Envelope):
    """Answer of a trigger. ``success`` is false when any call failed (``error.code`` COLLECTION_FAILED)."""

    data: CollectionData


class RetryData(CollectionData):
    """What a retry of a recorded failure did."""

    failure_id: int
    resolved: bool = Field(description="whether the failure is resolved now")


class RetryResponse(Envelope):
    """Answer of a failure retry."""

    data: RetryData


class FailureItem(_Body):
    """A row of ``ingestion_failures``: a call that still failed after all its tries."""

    id: int
    source: str
    kind: Kind
    endpoint: str
    params: dict[str, str]
    message_key: str | None
    error_class: str = Field(examples=["UpstreamUnavailable"])
    error_code: str | None = Field(description="the API's result code, if it sent one")
    error_message: str
    http_status: int | None
    attempts: int = Field(description="tries of the last failed collection")
    occurrences: int = Field(description="collections of the same call that failed while the row was open")
    retry_count: int
    max_retries: int = Field(description="the recovery job stops retrying after this many retries")
    resolved: bool
    resolved_at: dt.datetime | None
    created_at: dt.datetime = Field(description="first failure")
    last_failed_at: dt.datetime
    last_retry_at: dt.datetime | None


class FailuresResponse(Envelope):
    """Answer of the failure list (newest failure first)."""

    data: list[FailureItem]


class SourceKindStatus(_Body):
    """Collections of one source and kind for the race day."""

    source: str
    kind: Kind
    collected: int = Field(description="successful collections (calls) about this race day")
    failed: int = Field(description="failed collections (calls, retries included) about this race day")
    success_rate: float | None = Field(description="collected / (collected + failed), 0..1; null without calls")
    messages: int = Field(description="raw messages published by those collections")
    last_success_at: dt.datetime | None = Field(description="last successful collection about this race day")
    freshness_seconds: float | None = Field(description="seconds since lastSuccessAt (wall clock)")
    open_failures: int = Field(description="unresolved ingestion failures of this source and kind, any day")
    unarchived: int = Field(
        description="raw messages those collections published that the raw archive does not hold 30 s after "
        "publishing: lost by a broker that dropped acknowledged messages (the memory-only local broker on a "
        "restart), or not archived yet by an archiver that is behind"
    )
    unstored_seconds: float | None = Field(
        description="collected but not stored: age of the oldest collection with items (any day) since rows of this "
        "source and kind last landed in the tables; 0 when everything collected has landed"
    )


class DlqStatus(_Body):
    """Dead letters of one DLQ topic."""

    topic: str
    kind: Kind
    total: int = Field(description="records on the topic")
    on_date: int = Field(description="records whose first failure was on the race day (Asia/Seoul)")


class LagStatus(_Body):
    """How far one consumer group is behind on one topic (end offsets minus committed offsets, all partitions)."""

    stage: Literal["processors", "sink", "archiver"] = Field(
        description="processors and archiver read the raw topic of the kind, the sink its normalized topic"
    )
    group: str = Field(description="the consumer group")
    kind: Kind
    topic: str
    end_offset: int = Field(description="sum of the partitions' end offsets")
    committed_offset: int = Field(description="sum of the group's committed offsets (0 where it never committed)")
    lag: int = Field(description="messages waiting for the group: endOffset - committedOffset, per partition")


class StatusSummary(_Body):
    """Rows stored for the race day (the seed's summary)."""

    total_races: int = Field(description="races rows of the day, placeholders included")
    schedules_collected: int = Field(description="races of the day known from a schedule (status not unknown)")
    entries_collected: int = Field(description="entries rows of the day's races")
    odds_snapshots: int = Field(description="odds_snapshots rows of the day's races")
    results_collected: int = Field(description="results rows of the day's races")
    failure_count: int = Field(description="unresolved ingestion failures, any day")


class LastCollection(_Body):
    """Last successful collection about the race day, per kind (any source)."""

    schedules: dt.datetime | None = None
    entries: dt.datetime | None = None
    odds: dt.datetime | None = None
    results: dt.datetime | None = None


class StatusData(_Body):
    """Status of collection for one race day."""

    date: dt.date
    summary: StatusSummary
    last_collection: LastCollection
    sources: list[SourceKindStatus]
    dlq: list[DlqStatus] | None = Field(description="null when the broker could not be read (see warnings)")
    lag: list[LagStatus] | None = Field(
        description="consumer lag of each stage per kind, measured from the broker now; null when it could not be "
        "read (see warnings)"
    )
    warnings: list[str] = Field(default_factory=list)


class StatusResponse(Envelope):
    """Answer of the status."""

    data: StatusData


class RaceItem(_Body):
    """One stored race of a day, with how many odds rows it has."""

    race_id: str = Field(examples=["horse-seoul-3-20241210"])
    race_type: RaceType
    track_code: str
    race_no: int
    post_time: dt.datetime | None
    status: str
    race_name: str | None
    odds_snapshots: int = Field(description="odds_snapshots rows of the race (every pool, live and final)")
    pools: list[str] = Field(description="pools with odds rows, in the order WIN PLC QNL EXA QPL TLA TRI")


class RacesResponse(Envelope):
    """Answer of the race list (by post time, then track and race number)."""

    data: list[RaceItem]


# ---- operations (no envelope: what probes and scrapers read) --------------------------------------------------
class Liveness(BaseModel):
    """``/healthz``: the event loop answers."""

    status: Literal["alive"]


class CheckResult(BaseModel):
    """One readiness check."""

    ok: bool
    detail: str


class Readiness(BaseModel):
    """``/readyz``: every check with its verdict (``ready`` only when all are ok)."""

    status: Literal["ready", "not ready"]
    checks: dict[str, CheckResult]
