"""Live odds through a database outage: PostgreSQL stopped for 60 s over a race's last five minutes.

The producers, processors and sink run as real processes against the simulator (10x) and the local stack; the
test stops the stack's PostgreSQL at T-5:30 (simulated) and starts it again 60 s later. A price not polled at its
slot cannot be fetched later: every 30 s slot of the last five minutes must be in ``odds_snapshots`` afterwards,
each poll recorded in ``poll_slots`` (once, done) and in ``collection_log``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import pytest

from producers.simulator.world import World
from runtime.db import connect
from runtime.settings import Settings

from .conftest import Endpoints, Worker, pipeline_env, simulator_env
from .test_producers import DAY, start_sim, store_schedule

pytestmark = pytest.mark.integration
SPEED = 10.0


async def sim_reaches(sim, at: datetime) -> None:
    while sim.clock.now() < at:  # noqa: ASYNC110 - the simulator's clock runs on its own
        await asyncio.sleep(0.05)


async def test_odds_slots_are_polled_while_the_database_is_down(
    settings: Settings, db_schema: str, endpoints: Endpoints
) -> None:
    if endpoints.local_stack is None:
        pytest.skip("needs the local stack to stop and start PostgreSQL")
    postgres = endpoints.local_stack.postgres
    world = World(seed=5)
    races = world.races("seoul", DAY)
    race = races[0]
    post = race.post_time
    sim, runner, base = await start_sim(world, post - timedelta(minutes=9), speed=SPEED)
    await store_schedule(settings, races)
    env = pipeline_env(
        settings,
        **simulator_env(base),
        RACELAB_PRODUCERS__CLOCK="simulator",
        RACELAB_PRODUCERS__TICK_S="0.2",
        RACELAB_PRODUCERS__RACE_TYPES='["horse"]',
        RACELAB_PRODUCERS__TRACKS='["seoul"]',
        RACELAB_DATABASE__CONNECT_TIMEOUT_S="2",
    )
    workers = [await Worker.start(role, env) for role in ("sink", "processors", "producers")]
    stopped = False
    found: set[datetime] = set()
    try:
        await sim_reaches(sim, post - timedelta(minutes=5, seconds=30))
        await asyncio.to_thread(postgres.stop, "fast")
        stopped = True
        await asyncio.sleep(60)
        await asyncio.to_thread(postgres.start)
        stopped = False
        await sim_reaches(sim, post + timedelta(minutes=3))
        slots = [post - timedelta(seconds=s) for s in range(300, -1, -30)]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(90):
                while len(found := await snapshot_slots(settings, race.race_id, slots)) < len(slots):  # noqa: ASYNC110
                    await asyncio.sleep(1)
    finally:
        if stopped:
            await asyncio.to_thread(postgres.start)
        ended = [w for w in workers if w.proc.returncode is not None]
        for worker in reversed(workers):
            await worker.stop(60)
        await runner.cleanup()
    reports = "\n".join([await w.report() for w in ended])
    assert not ended, f"a component ended during the test:\n{reports}"
    assert found == set(slots), "\n".join([await w.report() for w in workers])
    producers_log = await workers[-1].stderr()
    conn = await connect(settings.database)
    try:
        recorded = await conn.fetch(
            "SELECT slot, done, outcome FROM poll_slots WHERE task = 'odds' AND target = $1 AND slot = ANY($2)",
            race.race_id,
            slots,
        )
        logged = await conn.fetchval(
            "SELECT count(*) FROM collection_log WHERE kind = 'odds' AND message_key = $1 AND ok", race.race_id
        )
    finally:
        await conn.close()
    assert sorted(r["slot"] for r in recorded) == slots and all(r["done"] and r["outcome"] == "ok" for r in recorded)
    assert logged >= len(slots)
    assert "odds slots are claimed locally" in producers_log and "database back after" in producers_log


async def snapshot_slots(settings: Settings, race_id: str, slots: list[datetime]) -> set[datetime]:
    """The slots with an odds snapshot of the race taken within 30 s after them."""
    conn = await connect(settings.database)
    try:
        times = [
            r["time"] for r in await conn.fetch("SELECT DISTINCT time FROM odds_snapshots WHERE race_id = $1", race_id)
        ]
    finally:
        await conn.close()
    return {s for s in slots if any(s <= t < s + timedelta(seconds=30) for t in times)}
