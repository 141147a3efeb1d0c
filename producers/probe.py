"""What a service key can reach: one small call to every endpoint the configured race types use (``racelab doctor``).

Each call goes through the project's client (:class:`~producers.kra.KraClient`, :class:`~producers.kspo.KspoClient`),
so the source's rate limiter applies and the key travels only in the query, with the smallest page the APIs allow
(``numOfRows=1``) and one try. Every endpoint gets a client of its own that shares the source's limiter: the client
stops calling a source after a code 22, and here each endpoint must answer for itself.

Verdicts, by the error's type and the API's code, never by message text:

- ``ok``: an answer (with data or without);
- ``not_approved``: code 30 (``SERVICE_KEY_IS_NOT_REGISTERED_ERROR``, what data.go.kr answers for a dataset the key
  has not been approved for), code 20 (``SERVICE_ACCESS_DENIED_ERROR``), or HTTP 403 without a code (how the KSPO
  gateway refuses an unapproved API);
- ``quota``: code 22, the daily quota is used up;
- ``error``: anything else, with the API's code and message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import httpx

from producers import calls
from producers.calls import Call
from producers.client import DataGoKrClient
from producers.errors import AccessDenied, QuotaExceeded, UpstreamError
from producers.kra import KraClient
from producers.kspo import KspoClient
from producers.pollers import tracks_in_use
from producers.ratelimit import RateLimiter
from runtime.settings import ProducerSettings, Settings, SourceSettings
from schemas import endpoints as ep
from schemas.records import RaceType
from schemas.tracks import POLLED_BY_RACE_TYPE

Verdict = Literal["ok", "not_approved", "quota", "error"]
NOT_APPROVED_CODES = frozenset({"20", "30"})
MESSAGE_LIMIT = 120

# The endpoints the producers call per race type (producers.plans; a unit test checks the two agree).
ENDPOINTS_IN_USE: dict[RaceType, tuple[ep.Endpoint, ...]] = {
    "horse": (
        ep.KRA_RACE_PLAN,
        ep.KRA_ENTRY_SHEET,
        ep.KRA_SCRATCHES,
        ep.KRA_RACE_RESULT_TOTAL,
        ep.KRA_RACE_RESULT,
        ep.KRA_FINAL_DIVIDENDS,
    ),
    "cycle": (ep.CYCLE_ENTRIES, ep.CYCLE_RESULT, ep.CYCLE_RANK, ep.CYCLE_PAYOFF),
    "boat": (ep.BOAT_ENTRIES, ep.BOAT_RESULT, ep.BOAT_RANK, ep.BOAT_PAYOFF),
}


@dataclass(frozen=True)
class Probe:
    """What one endpoint answered."""

    endpoint: ep.Endpoint
    verdict: Verdict
    code: str | None = None
    http_status: int | None = None
    message: str = ""  # the API's message, or what failed; never the key
    error_class: str = ""
    total_count: int | None = None
    key_set: bool = True  # whether a service key was configured for the source


def verdict_of(exc: UpstreamError) -> Verdict:
    """The verdict of a failed call."""
    if isinstance(exc, QuotaExceeded):
        return "quota"
    if isinstance(exc, AccessDenied) and (
        exc.code in NOT_APPROVED_CODES or (exc.code is None and exc.http_status == 403)
    ):
        return "not_approved"
    return "error"


def secret_free(text: str, secret: str) -> str:
    """``text`` on one line, at most :data:`MESSAGE_LIMIT` characters, with ``secret`` masked."""
    if secret:
        text = text.replace(secret, "***")
    return " ".join(text.split())[:MESSAGE_LIMIT]


def failed(endpoint: ep.Endpoint, exc: UpstreamError, key: str) -> Probe:
    """The probe of a call that raised ``exc``."""
    message = exc.api_message or (str(exc.args[0]) if exc.args else "")
    return Probe(
        endpoint,
        verdict_of(exc),
        code=exc.code,
        http_status=exc.http_status,
        message=secret_free(message, key),
        error_class=type(exc).__name__,
        key_set=bool(key),
    )


def race_types_in_use(settings: ProducerSettings) -> list[RaceType]:
    """The configured race types that keep a track the producers collect (:func:`producers.pollers.tracks_in_use`)."""
    return [race_type for race_type in settings.race_types if tracks_in_use(settings, [race_type])]


def probe_track(settings: ProducerSettings, race_type: RaceType) -> str:
    """The track a race type's probe calls name: the first one collected (the first polled one when none is)."""
    return (tracks_in_use(settings, [race_type]) or list(POLLED_BY_RACE_TYPE[race_type]))[0]


def probe_call(endpoint: ep.Endpoint, track: str, day: date) -> Call:
    """The pipeline's own call of ``endpoint`` for ``day`` (KSPO: round 1, day 1, race 1 of the year)."""
    year = day.year
    builders: dict[ep.Endpoint, Callable[[], Call]] = {
        ep.KRA_RACE_PLAN: lambda: calls.kra_race_plan(track, day),
        ep.KRA_ENTRY_SHEET: lambda: calls.kra_entry_sheet(track, day),
        ep.KRA_SCRATCHES: lambda: calls.kra_scratches(track, day),
        ep.KRA_RACE_RESULT_TOTAL: lambda: calls.kra_race_result_total(track, day, 1),
        ep.KRA_RACE_RESULT: lambda: calls.kra_race_result(track, day, 1),
        ep.KRA_FINAL_DIVIDENDS: lambda: calls.kra_final_dividends(track, day, 1),
        ep.CYCLE_ENTRIES: lambda: calls.cycle_entries(year, 1, track, day),
        ep.CYCLE_RESULT: lambda: calls.cycle_result(year, 1, 1, 1, track, day),
        ep.CYCLE_RANK: lambda: calls.ranks_of_day("cycle", track, day),
        ep.CYCLE_PAYOFF: lambda: calls.cycle_payoff(year, 1, 1, track, day),
        ep.BOAT_ENTRIES: lambda: calls.boat_entries(year, 1, 1, day),
        ep.BOAT_RESULT: lambda: calls.boat_result(year, 1, 1, 1, day),
        ep.BOAT_RANK: lambda: calls.ranks_of_day("boat", track, day),
        ep.BOAT_PAYOFF: lambda: calls.boat_payoff(year, 1, 1, 1, day),
    }
    return builders[endpoint]()


def _one_try_one_row(source: SourceSettings) -> SourceSettings:
    return source.model_copy(update={"page_size": 1, "max_attempts": 1})


async def probe_endpoint(
    client_type: type[DataGoKrClient],
    source: SourceSettings,
    limiter: RateLimiter,
    endpoint: ep.Endpoint,
    call: Call,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Probe:
    """One call of ``endpoint`` (first page, one row, one try) and its verdict."""
    key = source.service_key.get_secret_value()
    async with client_type(_one_try_one_row(source), limiter=limiter, transport=transport) as client:
        try:
            page = await client.fetch_page(call.endpoint, call.params)
        except UpstreamError as exc:
            return failed(endpoint, exc, key)
    return Probe(endpoint, "ok", http_status=page.http_status, total_count=page.total_count, key_set=bool(key))


async def probe_endpoints(
    settings: Settings,
    race_types: Sequence[RaceType],
    day: date,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Probe]:
    """Every endpoint the race types use, once each, in catalogue order per race type."""
    sources: dict[str, tuple[type[DataGoKrClient], SourceSettings]] = {
        "kra": (KraClient, settings.kra),
        "kspo": (KspoClient, settings.kspo),
    }
    limiters = {
        name: RateLimiter(source.requests_per_second, source.max_concurrency) for name, (_, source) in sources.items()
    }
    jobs = []
    for race_type in race_types:
        track = probe_track(settings.producers, race_type)
        for endpoint in ENDPOINTS_IN_USE[race_type]:
            client_type, source = sources[endpoint.source]
            call = probe_call(endpoint, track, day)
            jobs.append(probe_endpoint(client_type, source, limiters[endpoint.source], endpoint, call, transport))
    return list(await asyncio.gather(*jobs))
