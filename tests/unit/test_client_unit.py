import asyncio
import logging
import random
import time

import httpx
import orjson
import pytest

from producers.client import DataGoKrClient, public_params
from producers.errors import AccessDenied, InvalidRequest, QuotaExceeded, RateLimited, UpstreamUnavailable
from producers.kra import KraClient
from producers.ratelimit import RateLimiter
from runtime.settings import KraSettings


def page(items: int, total: int, page_no: int = 1, size: int = 10) -> bytes:
    rows = [{"n": i} for i in range(items)]
    body = {"items": {"item": rows} if rows else "", "numOfRows": size, "pageNo": page_no, "totalCount": total}
    return orjson.dumps({"response": {"header": {"resultCode": "00", "resultMsg": "OK"}, "body": body}})


def settings(**kw) -> KraSettings:
    base = {
        "base_url": "http://api.test/B551015",
        "page_size": 10,
        "retry_base_delay_s": 1.0,
        "service_key": "SEKRIT-KEY-1",
        "requests_per_second": 1000,
    }
    return KraSettings(**{**base, **kw})


def test_backoff_schedule_is_exponential_with_bounded_jitter():
    client = DataGoKrClient(settings(), rng=random.Random(1))
    for attempt, nominal in enumerate([1, 2, 4, 8], start=1):
        delays = [client.backoff(attempt) for _ in range(200)]
        assert nominal * 0.75 <= min(delays) and max(delays) <= nominal * 1.25
        assert len(set(delays)) > 100  # jittered


async def test_paging_stops_at_total_and_on_short_pages(caplog):
    seen_pages = []

    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params["pageNo"])
        seen_pages.append(n)
        assert request.url.params["_type"] == "json"
        assert request.url.params["serviceKey"] == "SEKRIT-KEY-1"
        # totalCount says 35 but page 3 comes back short (4 of 10): never silently truncated, logged.
        return httpx.Response(200, content=page({1: 10, 2: 10, 3: 4}[n], 35, n))

    async with KraClient(settings(), transport=httpx.MockTransport(handler)) as client:
        with caplog.at_level(logging.WARNING):
            pages = await client.fetch_all("API26_2/entrySheet_2", {"meet": "1", "rc_date": "20241214"})
    assert seen_pages == [1, 2, 3]
    assert [p.item_count for p in pages] == [10, 10, 4]
    assert "totalCount is 35 but the pages held 24" in caplog.text
    assert all("serviceKey" not in p.params and p.params["_type"] == "json" for p in pages)


async def test_exact_multiple_of_page_size_does_not_ask_for_an_empty_page():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(int(request.url.params["pageNo"]))
        return httpx.Response(200, content=page(10, 20, calls[-1]))

    async with KraClient(settings(), transport=httpx.MockTransport(handler)) as client:
        pages = await client.fetch_all("API26_2/entrySheet_2", {})
    assert calls == [1, 2] and sum(p.item_count for p in pages) == 20


@pytest.mark.parametrize(
    ("status", "code", "cls", "tries"),
    [
        (503, None, UpstreamUnavailable, 3),
        (429, None, RateLimited, 3),
        (403, None, AccessDenied, 1),
        (404, None, InvalidRequest, 1),
        (200, "22", QuotaExceeded, 1),
        (200, "23", RateLimited, 3),
        (200, "30", AccessDenied, 1),
        (200, "12", InvalidRequest, 1),
        (200, "99", UpstreamUnavailable, 3),
    ],
)
async def test_errors_by_status_and_code(status, code, cls, tries):
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if code:
            return httpx.Response(
                200, content=orjson.dumps({"response": {"header": {"resultCode": code, "resultMsg": "whatever"}}})
            )
        return httpx.Response(status, text="oops")

    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    async with KraClient(
        settings(max_attempts=3, retry_base_delay_s=0.01), transport=httpx.MockTransport(handler), sleep=fake_sleep
    ) as c:
        with pytest.raises(cls) as caught:
            await c.fetch_page("API214_1/RaceDetailResult_1", {"meet": "1"})
    assert calls == tries and caught.value.attempts == tries and len(sleeps) == tries - 1
    assert "SEKRIT-KEY-1" not in str(caught.value)


async def test_quota_blocks_further_calls_without_requests():
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            200,
            content=b"<OpenAPI_ServiceResponse><cmmMsgHeader><returnReasonCode>22"
            b"</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>",
        )

    async with KraClient(settings(), transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(QuotaExceeded):
            await client.fetch_page("API214_1/RaceDetailResult_1", {})
        with pytest.raises(QuotaExceeded, match="no calls until"):
            await client.fetch_page("API26_2/entrySheet_2", {})
    assert calls == 1


def test_public_params_drop_the_key():
    assert public_params({"serviceKey": "x", "ServiceKey": "y", "meet": 1}) == {"meet": "1"}


async def test_rate_limiter_spaces_requests_and_caps_concurrency():
    limiter = RateLimiter(rate=50, concurrency=2)
    active = peak = 0

    async def one() -> None:
        nonlocal active, peak
        async with limiter.slot():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(11)))
    assert time.monotonic() - started >= 10 / 50 * 0.95
    assert peak <= 2


async def test_rate_limiter_off_and_penalty():
    limiter = RateLimiter(rate=None, concurrency=8)
    started = time.monotonic()
    for _ in range(100):
        async with limiter.slot():
            pass
    assert time.monotonic() - started < 0.1
    limiter.slow_down(0.2)
    started = time.monotonic()
    async with limiter.slot():
        pass
    assert time.monotonic() - started >= 0.19
