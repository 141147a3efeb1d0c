"""The raw archive against the real broker and TimescaleDB: every raw message stored exactly once, whatever the
archiver goes through (kill -9 mid-stream, a redelivery, a replay of the same message), and ``racelab raw show``."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from runtime.db import connect
from runtime.kafka import ensure_topics
from runtime.settings import Settings
from schemas.topics import KINDS, TopicCatalogue

from .conftest import pipeline_env, start_component

pytestmark = pytest.mark.integration
T0 = datetime(2024, 12, 14, 1, 0, tzinfo=UTC)
N = 2400


def raw_message(n: int) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """(kind, key, body, headers) of the n-th raw message: a page of a poll, as the producers publish it."""
    kind = KINDS[n % 4]
    race = f"horse-seoul-{n % 12 + 1}-20241214"
    body = orjson.dumps({"response": {"header": {"resultCode": "00"}, "body": {"items": {"item": [{"n": n}]}}}})
    headers = [
        ("source", b"kra"),
        ("kind", kind.encode()),
        ("endpoint", b"API214_1/RaceDetailResult_1"),
        ("params", orjson.dumps({"meet": "1", "rc_date": "20241214", "rc_no": str(n % 12 + 1)})),
        ("fetched_at", (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z").encode()),
        ("poll_id", f"poll-{n // 2}".encode()),  # two pages per poll
        ("http_status", b"200"),
    ]
    return kind, race.encode(), body, headers


async def publish(settings: Settings, numbers: range, rate_per_s: float = 0) -> None:
    topics = TopicCatalogue(settings.topics.prefix)
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for n in numbers:
            kind, key, body, headers = raw_message(n)
            await producer.send(topics.raw(kind), value=body, key=key, headers=headers)
            if rate_per_s and n % 50 == 0:
                await asyncio.sleep(50 / rate_per_s)
        await producer.flush()
    finally:
        await producer.stop()


async def counts(settings: Settings) -> tuple[int, int]:
    conn = await connect(settings.database)
    try:
        row = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT (poll_id, body_sha256, fetched_at)) FROM raw_archive"
        )
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def wait_for(settings: Settings, n: int, limit_s: float = 120) -> tuple[int, int]:
    async with asyncio.timeout(limit_s):
        while (await counts(settings))[0] < n:  # noqa: ASYNC110 - polling another process's work
            await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # and nothing more arrives
    return await counts(settings)


async def test_every_raw_message_is_archived_once_through_kill_9_and_replays(settings: Settings, db_schema: str):
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    env = pipeline_env(settings, RACELAB_ARCHIVER__BATCH_SIZE="200", RACELAB_ARCHIVER__BATCH_WITHIN_S="0.2")
    feeding = asyncio.create_task(publish(settings, range(N), rate_per_s=400))
    rng = random.Random(7)
    kills = 0
    archiver = await start_component("archiver", env)
    try:
        for _ in range(3):  # kill -9 while it writes; a new worker takes over and reads the unacknowledged batches
            await asyncio.sleep(rng.uniform(2.5, 4.0))
            archiver.send_signal(signal.SIGKILL)
            await archiver.wait()
            kills += 1
            archiver = await start_component("archiver", env)
        await feeding
        total, distinct = await wait_for(settings, N)
        assert (total, distinct) == (N, N)
        await publish(settings, range(0, N, 3))  # the same messages again (a replay): nothing new is stored
        await asyncio.sleep(6)
        assert await counts(settings) == (N, N)
        assert archiver.returncode is None
    finally:
        feeding.cancel()
        if archiver.returncode is None:
            archiver.send_signal(signal.SIGTERM)
            await asyncio.wait_for(archiver.wait(), 60)
    assert kills == 3
    conn = await connect(settings.database)
    try:
        row = await conn.fetchrow(
            "SELECT kind, endpoint, params, http_status, headers, body, message_key FROM raw_archive "
            "WHERE poll_id = 'poll-5' ORDER BY fetched_at LIMIT 1"
        )
    finally:
        await conn.close()
    kind, key, body, headers = raw_message(10)
    assert (row["kind"], row["endpoint"], row["http_status"], row["message_key"]) == (
        kind,
        "API214_1/RaceDetailResult_1",
        200,
        key.decode(),
    )
    assert bytes(row["body"]) == body  # the bytes as received
    assert orjson.loads(row["headers"]) == {k: v.decode() for k, v in headers}  # every header
    assert orjson.loads(row["params"]) == {"meet": "1", "rc_date": "20241214", "rc_no": "11"}


async def test_raw_show_lists_the_responses_behind_a_race(settings: Settings, db_schema: str):
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    await publish(settings, range(48))
    archiver = await start_component("archiver", pipeline_env(settings))
    try:
        await wait_for(settings, 48)
    finally:
        archiver.send_signal(signal.SIGTERM)
        await asyncio.wait_for(archiver.wait(), 60)

    async def raw_show(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "racelab.cli", "raw", "show", *args,
            env=pipeline_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await raw_show("--race", "horse-seoul-3-20241214")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["fetched_at", "topic", "msg_offset"]
    assert len(lines) == 1 + 4  # messages 2, 14, 26, 38 are keyed by race 3
    assert "4 archived response(s) of race horse-seoul-3-20241214" in err
    code, out, err = await raw_show("--poll-id", "poll-1", "--body")
    assert code == 0, err
    assert out.count("== ") == 2 and '"poll_id"' not in out and "poll_id: poll-1" in out
    assert '{"response":{"header":{"resultCode":"00"},"body":{"items":{"item":[{"n":2}]}}}}' in out
    code, _, err = await raw_show("--race", "horse-seoul-3-2024")
    assert code == 2 and "not a race id" in err
