"""The async HTTP client shared by the KRA, KSPO and live-odds clients.

One call = up to ``max_attempts`` tries (5), with exponential backoff and jitter between them (1, 2, 4, 8 s by
default), separate connect and read timeouts, and a rate limiter shared by every poller of the source. Errors are
classified by HTTP status and API result code (:mod:`producers.errors`), never by message text. Code 22 (daily
quota) blocks the client until midnight KST without further calls.

The service key is added to the query at send time only: it is not in :attr:`RawResponse.params`, not in any
message, and httpx's request log is silenced by :func:`runtime.logs.setup_logging`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Self

import httpx
import orjson

from producers.calls import Call
from producers.errors import (
    MalformedResponse,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    class_for_code,
    class_for_status,
)
from producers.ratelimit import RateLimiter
from runtime.metrics import ProducerMetrics
from runtime.settings import SourceSettings
from schemas.endpoints import BY_PATH
from schemas.envelope import EnvelopeError, PageInfo, Row, inspect_page
from schemas.timezones import KST

log = logging.getLogger(__name__)
MAX_PAGES = 10_000
SECRET_PARAM_NAMES = frozenset({"servicekey", "service_key"})
_KEY_IN_URL = re.compile(r"((?:service_?key)=)[^&\s\"']+", re.IGNORECASE)


class _RedactKeyFilter(logging.Filter):
    """httpx logs every request URL at INFO; the service key travels in that URL. Mask it at the source."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _KEY_IN_URL.search(message):
            record.msg, record.args = _KEY_IN_URL.sub(r"\1***", message), None
        return True


logging.getLogger("httpx").addFilter(_RedactKeyFilter())


@dataclass(frozen=True)
class RawResponse:
    """One page exactly as received, with where it came from."""

    source: str
    endpoint: str
    params: dict[str, str]
    body: bytes = field(repr=False)
    http_status: int
    fetched_at: datetime
    page_no: int
    total_count: int | None
    item_count: int
    attempts: int
    elapsed_s: float


def rows_of(pages: Sequence[RawResponse]) -> list[dict[str, object]]:
    """The item rows of JSON pages (a single row comes as an object); pages that are not JSON give none."""
    rows: list[dict[str, object]] = []
    for page in pages:
        try:
            items = orjson.loads(page.body)["response"]["body"]["items"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        item = items.get("item") if isinstance(items, dict) else None
        rows.extend(r for r in (item if isinstance(item, list) else [item]) if isinstance(r, dict))
    return rows


def public_params(params: Mapping[str, object]) -> dict[str, str]:
    """Request parameters without any service key, as strings (what is stored with a message)."""
    return {k: str(v) for k, v in params.items() if k.lower() not in SECRET_PARAM_NAMES}


class DataGoKrClient:
    """Base client for data.go.kr-style APIs; subclasses set ``source`` and ``format_params``."""

    source: ClassVar[str] = "kra"
    key_param: ClassVar[str] = "serviceKey"
    format_params: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        settings: SourceSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] | None = None,
        metrics: ProducerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._now = now or (lambda: datetime.now(UTC))
        self.limiter = limiter or RateLimiter(settings.requests_per_second, settings.max_concurrency)
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._quota_blocked_until: datetime | None = None
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=settings.max_concurrency, max_keepalive_connections=settings.max_concurrency
            ),
            transport=transport,
            headers={"Accept": "application/json, application/xml;q=0.5"},
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def quota_exhausted(self) -> bool:
        """True while the daily quota (code 22) blocks this client."""
        return self._quota_blocked_until is not None and datetime.now(UTC) < self._quota_blocked_until

    def backoff(self, attempt: int) -> float:
        """Delay before try ``attempt + 1``: base * 2**(attempt-1), times a jitter factor in [0.75, 1.25]."""
        return float(self.settings.retry_base_delay_s * 2 ** (attempt - 1) * self._rng.uniform(0.75, 1.25))

    def _check_quota(self, endpoint: str) -> None:
        if self._quota_blocked_until is None:
            return
        if datetime.now(UTC) < self._quota_blocked_until:
            raise QuotaExceeded(
                f"daily quota used up; no calls until {self._quota_blocked_until.astimezone(KST):%Y-%m-%d %H:%M} KST",
                source=self.source,
                endpoint=endpoint,
                code="22",
            )
        self._quota_blocked_until = None

    def _block_until_tomorrow(self) -> None:
        tomorrow = (datetime.now(KST) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self._quota_blocked_until = tomorrow.astimezone(UTC)

    async def _try_once(self, endpoint: str, query: dict[str, str]) -> tuple[httpx.Response, PageInfo[Row]]:
        try:
            async with self.limiter.slot():
                response = await self._http.get(endpoint, params=query)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"no answer in time ({exc.__class__.__name__})", source=self.source, endpoint=endpoint
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"connection failed ({exc.__class__.__name__})", source=self.source, endpoint=endpoint
            ) from None
        if response.status_code != 200:
            cls = class_for_status(response.status_code)
            raise cls("HTTP error status", source=self.source, endpoint=endpoint, http_status=response.status_code)
        try:
            info = inspect_page(response.content)
        except EnvelopeError as exc:
            raise MalformedResponse(str(exc), source=self.source, endpoint=endpoint, http_status=200) from None
        if not info.ok:
            cls = class_for_code(info.code)
            raise cls(
                "API error result",
                source=self.source,
                endpoint=endpoint,
                code=info.code,
                http_status=200,
                api_message=info.message,
            )
        return response, info

    async def fetch_page(self, endpoint: str, params: Mapping[str, object], page_no: int = 1) -> RawResponse:
        """One page, retried on retriable errors; raises the last :class:`UpstreamError` when all tries fail."""
        stored = public_params({**params, "pageNo": page_no, "numOfRows": self.settings.page_size})
        query = {**stored, **self.format_params}
        key = self.settings.service_key.get_secret_value()
        if key:
            query[self.key_param] = key
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._check_quota(endpoint)
            tried = time.monotonic()
            try:
                response, info = await self._try_once(endpoint, query)
            except UpstreamError as exc:
                self._observe(
                    endpoint, time.monotonic() - tried, retried=exc.retriable and attempt < self.settings.max_attempts
                )
                exc.attempts = attempt
                if isinstance(exc, QuotaExceeded):
                    self._block_until_tomorrow()
                if not exc.retriable or attempt >= self.settings.max_attempts:
                    raise
                if isinstance(exc, RateLimited):
                    self.limiter.slow_down(self.settings.retry_base_delay_s)
                delay = self.backoff(attempt)
                log.warning("%s; retry %d/%d in %.1fs", exc, attempt, self.settings.max_attempts - 1, delay)
                await self._sleep(delay)
                continue
            self._observe(endpoint, time.monotonic() - tried, retried=False)
            return RawResponse(
                source=self.source,
                endpoint=endpoint,
                params={k: v for k, v in query.items() if k != self.key_param},
                body=response.content,
                http_status=response.status_code,
                fetched_at=self._now(),
                page_no=page_no,
                total_count=info.total_count,
                item_count=info.item_count,
                attempts=attempt,
                elapsed_s=time.monotonic() - started,
            )

    def _observe(self, endpoint: str, seconds: float, *, retried: bool) -> None:
        if self.metrics is None:
            return
        known = BY_PATH.get(endpoint)
        kind = known.kind if known is not None else "odds"  # the live-odds feed is the only other path
        self.metrics.request_seconds.labels(self.source, kind).observe(seconds)
        if retried:
            self.metrics.retries.labels(self.source, kind).inc()

    async def run(self, call: Call) -> list[RawResponse]:
        """Every page of a :class:`producers.calls.Call`."""
        return await self.fetch_all(call.endpoint, call.params)

    async def fetch_all(self, endpoint: str, params: Mapping[str, object]) -> list[RawResponse]:
        """Every page of a call: until ``totalCount`` items were seen, stopping early on a short page.

        A short page before ``totalCount`` is reached is logged as a warning (the API's counters disagree with
        its pages), never dropped silently: every page received is returned.
        """
        pages = [await self.fetch_page(endpoint, params, 1)]
        seen = pages[0].item_count
        total = pages[0].total_count
        size = self.settings.page_size
        while pages[-1].item_count >= size and (total is None or seen < total):
            if len(pages) >= MAX_PAGES:
                raise MalformedResponse(f"more than {MAX_PAGES} pages", source=self.source, endpoint=endpoint)
            pages.append(await self.fetch_page(endpoint, params, len(pages) + 1))
            seen += pages[-1].item_count
        if total is not None and seen < total:
            log.warning(
                "%s %s: totalCount is %d but the pages held %d items (short page %d)",
                self.source,
                endpoint,
                total,
                seen,
                len(pages),
            )
        return pages
