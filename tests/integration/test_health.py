"""Liveness, readiness and lag of a real sink worker: the "alive but not consuming" case, and unreachable parts.

The sink is made to hang mid-batch by locking ``odds_snapshots`` from the test (the worker's loop stays responsive,
the database answers, but no offset moves): readiness must turn 503 on the consumer check alone, report the lag
the test produced, and recover once the lock is gone, with every row landed once.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.db import connect
from runtime.kafka import ensure_topics
from runtime.ops import OpsServer, broker_check, database_check
from runtime.settings import Settings
from schemas.topics import TopicCatalogue

from .conftest import pipeline_env, start_component
from .test_sink import db_count, expected_rows, odds_records, stream, wait_for_rows

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def wait_until(check, limit_s: float = 60.0, every_s: float = 0.5):
    async with asyncio.timeout(limit_s):
        while not (found := await check()):  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(every_s)
    return found


def lag_of(metrics_text: str, topic: str) -> float | None:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "racelab_consumer_lag":
            for sample in family.samples:
                if sample.labels.get("topic") == topic:
                    return sample.value
    return None


async def test_readiness_fails_when_the_sink_stops_consuming_and_recovers(settings: Settings, db_schema: str):
    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 4)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = pipeline_env(
        settings,
        RACELAB_OPS__SINK_PORT=str(port),
        RACELAB_OPS__LAG_INTERVAL_S="0.5",
        RACELAB_OPS__STUCK_AFTER_S="3",
    )
    records = odds_records(races=3)
    first, held = records[:20], records[20:]
    sink = await start_component("sink", env)
    lock = None
    try:
        await stream(settings, first, per_tick=20, tick_s=0)
        await wait_for_rows(settings, expected_rows(first))
        ready = await wait_until(lambda: _ready(base, 200))
        assert ready.json()["checks"]["consumer"]["ok"] is True
        assert (await get(f"{base}/healthz")).json() == {"status": "alive"}

        lock = await connect(settings.database)
        tx = lock.transaction()
        await tx.start()
        await lock.execute("LOCK TABLE odds_snapshots IN ACCESS EXCLUSIVE MODE")
        await stream(settings, held, per_tick=50, tick_s=0)
        stalled = await wait_until(lambda: _ready(base, 503), limit_s=30)
        checks = stalled.json()["checks"]
        assert checks["consumer"]["ok"] is False and "no committed offset moved" in checks["consumer"]["detail"]
        assert checks["database"]["ok"] is True and checks["broker"]["ok"] is True
        assert (await get(f"{base}/healthz")).status_code == 200  # alive, just not consuming
        lag = lag_of((await get(f"{base}/metrics")).text, topics.normalized("odds"))
        assert lag is not None and 0 < lag <= len(held)

        await tx.rollback()
        await lock.close()
        lock = None
        assert await wait_for_rows(settings, expected_rows(records)) == expected_rows(records)
        await wait_until(lambda: _ready(base, 200), limit_s=30)
        await wait_until(lambda: _lag_is(base, topics.normalized("odds"), 0.0), limit_s=30)
    finally:
        if lock is not None:
            await lock.close()
        if sink.returncode is None:
            sink.send_signal(signal.SIGTERM)
            await asyncio.wait_for(sink.wait(), 60)
    assert await db_count(settings) == expected_rows(records)


async def _ready(base: str, status: int) -> httpx.Response | None:
    try:
        response = await get(f"{base}/readyz")
    except httpx.HTTPError:
        return None
    return response if response.status_code == status else None


async def _lag_is(base: str, topic: str, value: float) -> bool:
    return lag_of((await get(f"{base}/metrics")).text, topic) == value


async def test_readiness_names_an_unreachable_broker_and_database(settings: Settings):
    dead = free_port()
    broken = settings.model_copy(
        update={
            "broker": settings.broker.model_copy(update={"bootstrap_servers": f"127.0.0.1:{dead}"}),
            "database": settings.database.model_copy(
                update={"url": settings.database.url.__class__(f"postgresql://racelab:secret@127.0.0.1:{dead}/x")}
            ),
            "ops": settings.ops.model_copy(update={"check_timeout_s": 2.0}),
        }
    )
    server = OpsServer("127.0.0.1", 0, [broker_check(broken), database_check(broken)])
    await server.start()
    try:
        response = await get(f"http://127.0.0.1:{server.port}/readyz")
    finally:
        await server.stop()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False and checks["database"]["ok"] is False
    assert "secret" not in response.text  # the password never shows
    ok = OpsServer("127.0.0.1", 0, [broker_check(settings), database_check(settings)])
    await ok.start()
    try:
        assert (await get(f"http://127.0.0.1:{ok.port}/readyz")).status_code == 200
    finally:
        await ok.stop()
