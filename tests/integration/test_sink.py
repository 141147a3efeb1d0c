"""The sink worker (real processes) against the real broker and TimescaleDB, under faults.

Each test streams normalized records at a steady rate and counts what is in the database at the end against what
was produced: kill -9 of the worker ten times, PostgreSQL stopped for 30 s, and a replay from the beginning.
"""

from __future__ import annotations

import asyncio
import random
import signal
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from processors.normalize import normalize
from processors.normalize.common import Context
from producers import endpoints as ep
from producers.simulator import envelope, render_kra
from producers.simulator.world import World
from racelab.kafka import ensure_topics
from racelab.settings import Settings
from schemas.records import OddsBoard
from schemas.topics import TopicCatalogue
from sinks.db import connect

from .conftest import Endpoints, pipeline_env, start_component

pytestmark = pytest.mark.integration
WORLD = World(seed=51)


def odds_records(races: int, prices_per_message: int = 50) -> list[tuple[bytes, bytes]]:
    """(key, JSON) of odds boards (final boards and live snapshots), cut into messages of a few dozen prices."""
    out = []
    for track, day in (("seoul", date(2024, 12, 14)), ("busan", date(2024, 12, 15)), ("jeju", date(2024, 12, 13))):
        for race in WORLD.races(track, day):
            if len(out) and len({k for k, _ in out}) >= races:
                return out
            for at, rows, endpoint in (
                (race.post_time, render_kra.final_dividend_rows(race), ep.KRA_FINAL_DIVIDENDS),
                (
                    race.post_time - timedelta(minutes=5),
                    render_kra.live_odds_rows(race, race.post_time - timedelta(minutes=5)),
                    None,
                ),
            ):
                path = endpoint.path if endpoint else ep.LIVE_ODDS_PATH
                body = envelope.json_body(rows, 1, 5000, len(rows))
                for board in OddsBoard.boards_of(normalize(body, Context("kra", path, {}, at, race.race_id)).odds):
                    for i in range(0, len(board.prices), prices_per_message):
                        part = board.model_copy(update={"prices": board.prices[i : i + prices_per_message]})
                        out.append((race.race_id.encode(), part.model_dump_json().encode()))
    return out


def sink_env(settings: Settings, **extra: str) -> dict[str, str]:
    return pipeline_env(
        settings, **{"RACELAB_SINK__BATCH_SIZE": "2000", "RACELAB_SINK__RETRY_MAX_DELAY_S": "2", **extra}
    )


async def stream(settings: Settings, records: list[tuple[bytes, bytes]], per_tick: int, tick_s: float) -> None:
    topic = TopicCatalogue(settings.topics.prefix).normalized("odds")
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        for start in range(0, len(records), per_tick):
            futures = [await producer.send(topic, value=v, key=k) for k, v in records[start : start + per_tick]]
            await asyncio.gather(*futures)
            await asyncio.sleep(tick_s)
    finally:
        await producer.stop()


async def db_count(settings: Settings) -> int:
    conn = await connect(settings.database)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM odds_snapshots"))
    finally:
        await conn.close()


async def wait_for_rows(settings: Settings, expected: int, limit_s: float = 180) -> int:
    async with asyncio.timeout(limit_s):
        while await db_count(settings) < expected:  # noqa: ASYNC110 - polling another process's work
            await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # and nothing more arrives
    return await db_count(settings)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)


def expected_rows(records: list[tuple[bytes, bytes]]) -> int:
    keys = set()
    for _, value in records:
        board = orjson.loads(value)
        keys |= {(board["race_id"], p["pool"], p["selection"], board["time"]) for p in board["prices"]}
    return len(keys)


async def test_kill_9_ten_times_during_a_steady_stream(settings: Settings, db_schema: str):
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    records = odds_records(races=14)
    expected = expected_rows(records)
    env = sink_env(settings)
    producing = asyncio.create_task(stream(settings, records, per_tick=8, tick_s=0.25))
    rng = random.Random(7)
    sink = await start_component("sink", env)
    kills = 0
    try:
        while kills < 10:
            await asyncio.sleep(rng.uniform(1.5, 3.5))
            sink.send_signal(signal.SIGKILL)
            await sink.wait()
            kills += 1
            sink = await start_component("sink", env)
        await producing
        count = await wait_for_rows(settings, expected)
        assert sink.returncode is None
    finally:
        producing.cancel()
        await stop(sink)
    assert kills == 10
    assert count == expected  # every record once: nothing lost, the unique key absorbed every redelivery


async def test_postgres_down_for_30_seconds(settings: Settings, db_schema: str, endpoints: Endpoints):
    if endpoints.local_stack is None:
        pytest.skip("needs the local stack to stop and start PostgreSQL")
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    records = odds_records(races=8)
    expected = expected_rows(records)
    sink = await start_component("sink", sink_env(settings))
    postgres = endpoints.local_stack.postgres
    producing = asyncio.create_task(stream(settings, records, per_tick=6, tick_s=0.25))
    try:
        await asyncio.sleep(4)
        await asyncio.to_thread(postgres.stop, "fast")
        stopped_at = datetime.now(UTC)
        await asyncio.sleep(30)
        assert sink.returncode is None, "the sink must wait for the database, not exit"
        await asyncio.to_thread(postgres.start)
        await producing
        count = await wait_for_rows(settings, expected)
        assert sink.returncode is None
    finally:
        producing.cancel()
        if not postgres.running():
            await asyncio.to_thread(postgres.start)
        await stop(sink)
    assert count == expected
    assert datetime.now(UTC) - stopped_at >= timedelta(seconds=30)
    stderr = (await sink.stderr.read()).decode()
    assert "database unavailable" in stderr and "database back after" in stderr


async def test_replay_from_the_beginning_changes_no_count(settings: Settings, db_schema: str):
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    records = odds_records(races=4)
    expected = expected_rows(records)
    await stream(settings, records, per_tick=40, tick_s=0)
    first = await start_component("sink", sink_env(settings))
    try:
        assert await wait_for_rows(settings, expected) == expected
    finally:
        await stop(first)
    replay = await start_component("sink", sink_env(settings, RACELAB_SINK__CONSUMER_GROUP="sink-replay"))
    try:
        await asyncio.sleep(12)  # joins a new group and reads every topic from offset 0
    finally:
        await stop(replay)
    assert await db_count(settings) == expected
    stderr = (await replay.stderr.read()).decode()
    assert "Traceback" not in stderr
