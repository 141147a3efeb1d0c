"""The control API application: routes, the key guard, request metrics and error answers in the seed's envelope.

Every error is answered as ``{"success": false, "error": {"code", "message"}, "timestamp"}``: 401 UNAUTHORIZED,
404 NOT_FOUND, 422 INVALID_REQUEST (with ``details``: location, message and type of each problem, never the
submitted value), 503 UNAVAILABLE (database or broker down), 500 INTERNAL_ERROR (no exception text).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racelab import __version__
from racelab.api.auth import PAGE_PATH, PUBLIC_PATHS, IngestionKeyGuard
from racelab.api.models import ErrorDetail, ErrorInfo, ErrorResponse
from racelab.api.page import page_router
from racelab.api.routes import ingestion_router, ops_router
from racelab.api.service import ControlService
from runtime.metrics import ControlApiMetrics, control_api_metrics
from runtime.ops import Check, broker_check, database_check
from runtime.settings import Settings
from schemas.errors import PipelineError

log = logging.getLogger(__name__)
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    503: "UNAVAILABLE",
}
DESCRIPTION = """Control API of RaceLab ingest: collect now, see how collection stands, list and retry failures.

Every route but `/metrics`, `/healthz`, `/readyz` and the documentation needs the header `X-Ingestion-Key`;
without the right key the answer is 401 and nothing is done. Answers are envelopes
`{success, data, error, timestamp}` (camelCase fields, as in the seed's contract); request bodies also accept
snake_case names (`race_ids`, `race_types`). With the setting `api.page_enabled`, `/` serves a read-only status
page outside this document: a shell without data that asks for the key and reads these routes."""


def error_response(status: int, code: str, message: str, details: list[ErrorDetail] | None = None) -> JSONResponse:
    """An error answer in the envelope."""
    body = ErrorResponse(success=False, error=ErrorInfo(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=status)


async def _unauthorized(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(401, "UNAUTHORIZED", "missing or wrong X-Ingestion-Key")(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this type only
    answer = error_response(exc.status_code, CODES.get(exc.status_code, f"HTTP_{exc.status_code}"), str(exc.detail))
    answer.headers.update(exc.headers or {})
    return answer


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    details = [
        ErrorDetail(
            loc=[p for p in e.get("loc", ()) if isinstance(p, str | int)],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in exc.errors()
    ]
    first = details[0] if details else None
    message = f"invalid request: {'.'.join(map(str, first.loc))}: {first.msg}" if first else "invalid request"
    return error_response(422, "INVALID_REQUEST", message, details)


async def _pipeline_error(request: Request, exc: Exception) -> JSONResponse:
    # pipeline error messages carry no secrets (URLs are redacted where they are made)
    retriable = getattr(exc, "retriable", False)
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return error_response(503 if retriable else 500, "UNAVAILABLE" if retriable else "PIPELINE_ERROR", str(exc))


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "internal error; see the control API's log")


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template a request matches (bounded metric label), ``unmatched`` when none does."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "unmatched"))
        if match == Match.PARTIAL and partial is None:
            partial = str(getattr(route, "path", "unmatched"))
    return partial or "unmatched"


class RequestMetrics:
    """ASGI middleware: counts every request by route template and status code (outermost, so 401s count too)."""

    def __init__(self, app: ASGIApp, metrics: ControlApiMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # routing leaves the matched route in the scope; a request the key guard refused never got there
            template = getattr(scope.get("route"), "path", None) or route_template(self.routes, scope)
            self.metrics.requests.labels(str(template), str(status)).inc()


def create_app(
    settings: Settings,
    service: ControlService | None = None,
    *,
    registry: CollectorRegistry = REGISTRY,
    checks: Sequence[Check] | None = None,
) -> FastAPI:
    """The application; without ``service`` it serves only the OpenAPI document, the docs and the ops routes."""
    app = FastAPI(title="RaceLab ingest control API", version=__version__, description=DESCRIPTION)
    app.state.service = service
    app.state.registry = registry
    app.state.checks = list(checks) if checks is not None else [broker_check(settings), database_check(settings)]
    routers = [ingestion_router(), ops_router(), *([page_router()] if settings.api.page_enabled else [])]
    for router in routers:
        app.include_router(router)
    routes = [r for r in app.router.routes if hasattr(r, "path")] + [r for x in routers for r in x.routes]
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(PipelineError, _pipeline_error)
    app.add_exception_handler(Exception, _internal)
    metrics = control_api_metrics() if registry is REGISTRY else ControlApiMetrics(registry)
    public = PUBLIC_PATHS | {PAGE_PATH} if settings.api.page_enabled else PUBLIC_PATHS
    app.add_middleware(IngestionKeyGuard, expected=settings.api.ingestion_key, reject=_unauthorized, public=public)
    app.add_middleware(RequestMetrics, metrics=metrics, routes=routes)
    return app
