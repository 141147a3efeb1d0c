"""The routes: ``/api/ingestion/...`` (behind ``X-Ingestion-Key``) and the operations endpoints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from racelab import charts
from racelab.api.auth import key_header
from racelab.api.models import (
    COUNTS_DOC,
    RACE_ID_FORMAT,
    CollectionData,
    CollectionResponse,
    ErrorInfo,
    ErrorResponse,
    FailuresResponse,
    Liveness,
    RacesResponse,
    RaceTrigger,
    Readiness,
    RetryResponse,
    ScheduleTrigger,
    StatusResponse,
)
from racelab.api.service import ControlService
from runtime.ops import Check, run_checks
from schemas import race_days
from schemas.race_ids import KNOWN_RACE_ID_PATTERN
from schemas.records import Pool
from schemas.topics import Kind
from sinks.queries import RaceNotFound

MAX_FAILURES = 500
MAX_TOP = 100
SVG = "image/svg+xml"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing or wrong X-Ingestion-Key; nothing was done"},
    422: {"model": ErrorResponse, "description": "invalid request (locations and reasons in error.details)"},
    500: {"model": ErrorResponse, "description": "internal or pipeline error (details in the control API's log)"},
    503: {"model": ErrorResponse, "description": "the database or the broker is unavailable"},
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "the body cannot be read as JSON text (not UTF-8); nothing was done"},
}


def service(request: Request) -> ControlService:
    """The service the app was started with (503 when it runs without one, e.g. to write the OpenAPI document)."""
    found: ControlService | None = request.app.state.service
    if found is None:
        raise HTTPException(503, "the control API is not connected to the pipeline")
    return found


Service = Annotated[ControlService, Depends(service)]


def _answer(data: CollectionData) -> CollectionResponse:
    if not data.errors:
        return CollectionResponse(success=True, data=data)
    ids = ", ".join(f"#{c.failure_id}" for c in data.calls if c.failure_id is not None)
    message = f"{data.errors} of {data.collected + data.errors} call(s) failed after all tries" + (
        f"; recorded as ingestion failure(s) {ids}" if ids else ""
    )
    return CollectionResponse(success=False, data=data, error=ErrorInfo(code="COLLECTION_FAILED", message=message))


def race_day(
    date: Annotated[
        str | None,
        Query(
            description="race day YYYY-MM-DD; default: today (Asia/Seoul)",
            json_schema_extra={"format": "date", "pattern": race_days.ISO_PATTERN},
        ),
    ] = None,
) -> dt.date | None:
    """The ``date`` query parameter, strictly ``YYYY-MM-DD`` and a race day (:mod:`schemas.race_days`)."""
    if date is None:
        return None
    try:
        return race_days.parse_iso(date)
    except ValueError as exc:
        problem = {"type": "date_parsing", "loc": ("query", "date"), "msg": str(exc), "input": None}
        raise RequestValidationError([problem]) from None


def ingestion_router() -> APIRouter:
    """``/api/ingestion``: triggers, status, failures and retries (in this order in the OpenAPI document)."""
    router = APIRouter(
        prefix="/api/ingestion", tags=["ingestion"], dependencies=[Security(key_header)], responses=ERRORS
    )
    _add_triggers(router)
    _add_status(router)
    _add_races(router)
    _add_failures(router)
    return router


def _add_triggers(router: APIRouter) -> None:
    """``POST /trigger/{schedules,entries,odds,results}``."""

    @router.post(
        "/trigger/schedules",
        summary="Collect a day's schedules now",
        description="The schedule calls of every track of the race types for the day, made now through the "
        "producers' collector (pages go to the raw schedules topic; failures are recorded and alerted like "
        "scheduled polls). The body is optional. " + COUNTS_DOC,
        operation_id="triggerSchedules",
        responses=BODY_ERRORS,
    )
    async def trigger_schedules(
        svc: Service, body: Annotated[ScheduleTrigger | None, Body()] = None
    ) -> CollectionResponse:
        body = body or ScheduleTrigger()
        return _answer(await svc.schedules(body.date, body.race_types))

    descriptions: dict[Kind, str] = {
        "entries": "The entry-sheet calls of each race's track and day (day-wide: races of one day share them).",
        "odds": "A live-odds snapshot while the race is not over (stored post time + 2 min) and a live-odds feed "
        "is configured; otherwise the final dividends (the closing snapshot; empty until published).",
        "results": "The result call of each race and, once its answer is final, the detail calls; details of a "
        "race whose result is not final yet are skipped.",
    }
    for kind, text in descriptions.items():
        router.add_api_route(
            f"/trigger/{kind}",
            _race_trigger(kind),
            methods=["POST"],
            summary=f"Collect {kind} of races now",
            description=text + " Calls are made now through the producers' collector; pages go to the raw "
            f"{kind} topic, failures are recorded and alerted like scheduled polls. " + COUNTS_DOC,
            operation_id=f"trigger{kind.capitalize()}",
            responses=BODY_ERRORS,
        )


def _add_status(router: APIRouter) -> None:
    """``GET /status``."""

    @router.get(
        "/status",
        summary="Collection status of a race day",
        description="Per source and kind: collections about the race day (collection_log: every upstream call "
        "of polls, backfill, triggers and retries), success rate, last success and its age, open failures; the "
        "rows stored for the day's races; and the dead letters per DLQ topic (read from the broker).",
        operation_id="ingestionStatus",
    )
    async def status(svc: Service, day: Annotated[dt.date | None, Depends(race_day)]) -> StatusResponse:
        return StatusResponse(success=True, data=await svc.status(day))


def _add_races(router: APIRouter) -> None:
    """``GET /races`` and ``GET /races/{race_id}/odds.svg``."""

    @router.get(
        "/races",
        summary="Stored races of a race day",
        description="The races table's rows of the day (by post time, track and race number), with the odds rows "
        "each race has and their pools.",
        operation_id="listRaces",
        responses={
            200: {
                "description": "the races",
                "links": {
                    "chartFirst": {
                        "operationId": "raceOddsChart",
                        "parameters": {"race_id": "$response.body#/data/0/raceId"},
                        "description": "the odds chart of the first race of the list",
                    }
                },
            }
        },
    )
    async def races(svc: Service, day: Annotated[dt.date | None, Depends(race_day)]) -> RacesResponse:
        return RacesResponse(success=True, data=await svc.day_races(day))

    @router.get(
        "/races/{race_id}/odds.svg",
        summary="Odds chart of a race (SVG)",
        description="Each selection's odds over time in one pool: one line per selection through its live "
        "snapshots, the post time as a dashed line, the final dividends as diamonds in a column of their own. "
        f"Pool: the one asked for, else WIN when the race has it, else the first pool with rows. WIN and PLC: every "
        f"selection; other pools: the {charts.DEFAULT_TOP} shortest-priced unless top says otherwise. The same "
        "drawing as `racelab query odds RACE_ID --plot FILE.svg`.",
        operation_id="raceOddsChart",
        response_class=Response,
        responses={
            200: {"content": {SVG: {"schema": {"type": "string"}}}, "description": "the chart (SVG, text as text)"},
            404: {"model": ErrorResponse, "description": "no such race stored, or it has no odds rows (in the pool)"},
        },
    )
    async def odds_chart(
        svc: Service,
        race_id: Annotated[str, Path(pattern=KNOWN_RACE_ID_PATTERN, description=f"race id ({RACE_ID_FORMAT})")],
        pool: Annotated[Pool | None, Query(description="the pool to draw")] = None,
        top: Annotated[
            int | None, Query(ge=1, le=MAX_TOP, description="draw only the N shortest-priced selections")
        ] = None,
    ) -> Response:
        try:
            image = await svc.odds_chart(race_id, pool, top)
        except (RaceNotFound, charts.NothingToDraw) as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(image, media_type=SVG, headers={"Cache-Control": "no-store"})


def _add_failures(router: APIRouter) -> None:
    """``GET /failures`` and ``POST /failures/{id}/retry``."""

    @router.get(
        "/failures",
        summary="List ingestion failures",
        description="Rows of ingestion_failures (calls that still failed after all tries), newest failure first.",
        operation_id="listFailures",
        responses={
            200: {
                "description": "the failures",
                "links": {
                    "retryFirst": {
                        "operationId": "retryFailure",
                        "parameters": {"failure_id": "$response.body#/data/0/id"},
                        "description": "retry the newest failure of the list",
                    }
                },
            }
        },
    )
    async def failures(
        svc: Service,
        resolved: Annotated[bool | None, Query(description="only resolved (true) or open (false) failures")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_FAILURES, description="at most this many rows")] = 50,
    ) -> FailuresResponse:
        return FailuresResponse(success=True, data=await svc.failures(resolved, limit))

    @router.post(
        "/failures/{failure_id}/retry",
        summary="Retry a recorded failure now",
        description="Re-issues the failed call through the producers' collector; on success its pages are published "
        "and the failure is marked resolved. A failure that is already resolved is not retried (skipped 1).",
        operation_id="retryFailure",
        responses={404: {"model": ErrorResponse, "description": "no failure with this id"}},
    )
    async def retry(
        svc: Service, failure_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="ingestion_failures.id")]
    ) -> RetryResponse:
        data = await svc.retry(failure_id)
        if data is None:
            raise HTTPException(404, f"no ingestion failure #{failure_id}")
        if data.errors:
            error = ErrorInfo(code="COLLECTION_FAILED", message=f"ingestion failure #{failure_id} still fails")
            return RetryResponse(success=False, data=data, error=error)
        return RetryResponse(success=True, data=data)


def _race_trigger(kind: Kind) -> Callable[[ControlService, RaceTrigger], Awaitable[CollectionResponse]]:
    async def trigger(svc: Service, body: RaceTrigger) -> CollectionResponse:
        return _answer(await svc.races(kind, body.races()))

    trigger.__name__ = f"trigger_{kind}"
    return trigger


def ops_router() -> APIRouter:
    """``/metrics``, ``/healthz`` (liveness) and ``/readyz`` (broker and database answer); no key needed."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics of this process")
    async def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz", summary="Liveness: the event loop answers")
    async def healthz() -> Liveness:
        return Liveness(status="alive")

    @router.get(
        "/readyz",
        summary="Readiness: the broker and the database answer (503 otherwise)",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "not ready; the failing checks are in the body"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks: Sequence[Check] = request.app.state.checks
        ready, body = await run_checks(checks)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": body}, status_code=200 if ready else 503
        )

    return router
