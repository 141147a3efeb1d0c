"""The whole pipeline through two broker restarts, and a sink whose topic is deleted.

The broker is a local broker of the test's own (memory only: a restart comes back empty, like a failover to a fresh
cluster), killed with -9 twice while the simulator (120x), the producers, the processors, the archiver and the sink
run as real processes. What must hold: every worker is not ready while the broker is away and ready again within
60 s after it is back; every page a producer fetched during an outage (kept, published once the broker was back)
and every raw message published after a restart is in the raw archive; everything collected lands in the tables;
and no process logs a flood (repeats are summarized).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from producers.simulator.world import World
from racelab.api.store import ControlStore
from runtime.db import connect, create_pool
from runtime.kafka import ensure_topics
from runtime.settings import Settings
from schemas.raw import RawHeaders
from schemas.timezones import KST

from .conftest import Worker, pipeline_env, scalar, simulator_env, start_component
from .private_broker import PrivateBroker
from .test_health import free_port
from .test_producers import start_sim

pytestmark = pytest.mark.integration
ROLES = ("archiver", "sink", "processors", "producers")
RECOVERY_LIMIT_S = 60.0
ARCHIVE_CATCH_UP_S = 30.0  # the archiver, busy or not, reads what was published after a restart within it


async def readiness(ports: dict[str, int]) -> dict[str, tuple[int, str]]:
    """Each role's /readyz status code and body (0 when it does not answer)."""
    async with httpx.AsyncClient(timeout=5) as http:

        async def one(port: int) -> tuple[int, str]:
            try:
                response = await http.get(f"http://127.0.0.1:{port}/readyz")
            except httpx.HTTPError as exc:
                return 0, type(exc).__name__
            return response.status_code, response.text

        answers = await asyncio.gather(*(one(p) for p in ports.values()))
    return dict(zip(ports, answers, strict=True))


async def wait_for(ports: dict[str, int], status: int, limit_s: float) -> float:
    """Seconds until every role answers ``status``; fails past ``limit_s`` naming the roles that did not."""
    started = time.monotonic()
    answers: dict[str, tuple[int, str]] = {}
    while time.monotonic() - started < limit_s:
        answers = await readiness(ports)
        if all(code == status for code, _ in answers.values()):
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    late = {role: answer for role, answer in answers.items() if answer[0] != status}
    raise AssertionError(f"not all {status} within {limit_s:.0f}s: {late}")


def lines_per_minute(path: Path) -> int:
    """The most lines a log had in any minute (by the time each line was read by the test)."""
    stamps = [float(line.split(" ", 1)[0]) for line in path.read_text(errors="replace").splitlines() if line]
    return max((sum(1 for t in stamps if s <= t < s + 60) for s in stamps), default=0)


async def start_role(
    role: str, env: dict[str, str], log: Path
) -> tuple[asyncio.subprocess.Process, asyncio.Task[None]]:
    """``racelab run ROLE``; its output lines go to ``log``, each stamped with the time the test read it."""
    process = await start_component(role, env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)

    async def copy() -> None:
        assert process.stdout is not None
        with log.open("w") as out:
            async for line in process.stdout:
                out.write(f"{time.time():.3f} {line.decode(errors='replace')}")
                out.flush()

    return process, asyncio.create_task(copy())


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[PrivateBroker]:
    b = PrivateBroker(tmp_path)
    yield b
    await b.stop()


async def test_two_broker_restarts_mid_stream_lose_nothing_published_after_them(
    settings: Settings, db_schema: str, broker: PrivateBroker, tmp_path: Path
) -> None:
    await broker.start()
    cfg = broker.settings(settings)
    world = World(seed=11, every_day=True)
    start = datetime.now(KST).replace(hour=10, minute=20, second=0, microsecond=0)
    _, runner, base = await start_sim(world, start, speed=120)
    ports = {role: free_port() for role in ROLES}
    env = pipeline_env(
        cfg,
        **simulator_env(base),
        RACELAB_PRODUCERS__CLOCK="simulator",
        RACELAB_PRODUCERS__TICK_S="0.2",
        RACELAB_PRODUCERS__TRACKS='["seoul", "gwangmyeong"]',
        RACELAB_OPS__LAG_INTERVAL_S="1",
        RACELAB_OPS__STUCK_AFTER_S="20",
        **{f"RACELAB_OPS__{r.upper()}_PORT": str(p) for r, p in ports.items()},
    )
    running = [await start_role(role, env, tmp_path / f"{role}.log") for role in ROLES]
    recovered: list[float] = []
    restarts: list[datetime] = []
    caught_up: datetime | None = None  # the archive held everything published since the first restart by then
    try:
        await wait_for(ports, 200, 90)
        async with asyncio.timeout(60):
            while not await scalar(cfg, "SELECT count(*) FROM raw_archive WHERE kind = 'odds'"):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        for _ in range(2):
            await asyncio.sleep(8)
            if restarts:  # the archive has caught up since the first restart before the second one
                # (a second back: a page collected before it was published and logged by now)
                caught_up = await db_now(cfg) - timedelta(seconds=1)
                await archived_until(cfg, restarts[0], caught_up, ARCHIVE_CATCH_UP_S)
            await broker.kill()
            await wait_for(ports, 503, 30)  # every worker says so while the broker is away
            await asyncio.sleep(8)
            restarts.append(await db_now(cfg))
            await broker.start()
            back = time.monotonic()
            await wait_for(ports, 200, RECOVERY_LIMIT_S)
            recovered.append(time.monotonic() - back)
        await asyncio.sleep(10)
        producers, _ = running[-1]
        producers.send_signal(signal.SIGTERM)  # nothing new; what was published drains into the archive and tables
        await asyncio.wait_for(producers.wait(), 60)
        await drained(cfg, restarts[-1])
    finally:
        for process, copying in reversed(running):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 60)
            await copying
        await runner.cleanup()
    print(f"recovered within {', '.join(f'{s:.1f}s' for s in recovered)} after the broker was back")

    # After the last restart every published page is in the archive. Between the restarts, the second one could
    # take with it what the broker held but the archiver had not read yet (the local broker keeps messages in
    # memory): only pages published after the archive last caught up, and the status reports each of them.
    published, archived = await coverage(cfg, restarts[1])
    assert published >= 10 and archived == published, (published, archived)
    assert caught_up is not None
    published, archived = await coverage(cfg, restarts[0], caught_up)
    assert published >= 10 and archived == published, (published, archived)
    everything, archived_all = await coverage(cfg, start - timedelta(days=1))
    pool = await create_pool(cfg.database)
    try:
        store = ControlStore(pool, cfg.database)
        # the status counts a page as missing 30 s after it was published: the lost ones are older than a second
        reported = sum(c.unarchived for c in await store.collection_counts(start.date(), archive_grace_s=1.0))
        unstored = await store.unstored()
    finally:
        await pool.close()
    assert reported == everything - archived_all
    assert set(unstored.values()) == {0.0}
    print(f"published {everything} pages, {everything - archived_all} lost by the broker's restarts")
    # Pages fetched while the broker was away were kept, published once it was back (after more than 3 s), and
    # every one of them is in the archive.
    kept = await scalar(cfg, "SELECT coalesce(sum(pages), 0) FROM collection_log WHERE ok AND publish_seconds > 3")
    kept_archived = await scalar(
        cfg,
        "SELECT count(*) FROM raw_archive r JOIN collection_log c USING (poll_id) WHERE c.ok AND c.publish_seconds > 3",
    )
    assert kept > 0 and kept_archived == kept, (kept, kept_archived)
    assert await scalar(cfg, "SELECT count(*) FROM collection_log WHERE ok AND pages > 0 AND poll_id IS NULL") == 0
    for role in ROLES:
        assert lines_per_minute(tmp_path / f"{role}.log") < 120, (tmp_path / f"{role}.log").read_text()[-3000:]


async def db_now(settings: Settings) -> datetime:
    value: datetime = await scalar(settings, "SELECT now()")
    return value


async def archived_until(settings: Settings, since: datetime, until: datetime, limit_s: float) -> None:
    """Wait until every page published between ``since`` and ``until`` is in the archive; fails past ``limit_s``."""
    published = archived = 0
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        published, archived = await coverage(settings, since, until)
        if archived == published:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{archived} of {published} pages published after the restart archived in {limit_s:.0f}s")


async def coverage(settings: Settings, since: datetime, until: datetime | None = None) -> tuple[int, int]:
    """Pages the producers published between ``since`` and ``until`` (by their collection_log rows), and how many
    of them the archive holds."""
    conn = await connect(settings.database)
    try:
        row = await conn.fetchrow(
            "SELECT coalesce(sum(c.pages), 0) AS published, coalesce(sum(a.n), 0) AS archived "
            "FROM collection_log c CROSS JOIN LATERAL (SELECT count(*) AS n FROM raw_archive r "
            "WHERE r.poll_id = c.poll_id) a WHERE c.ok AND c.pages > 0 AND c.collected_at > $1 "
            "AND c.collected_at < coalesce($2::timestamptz, 'infinity')",
            since,
            until,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["published"]), int(row["archived"])


async def missing(settings: Settings, since: datetime) -> list[dict[str, object]]:
    """The collections since ``since`` whose pages are not all in the archive (for the failure message)."""
    conn = await connect(settings.database)
    try:
        rows = await conn.fetch(
            "SELECT c.kind, c.endpoint, c.message_key, c.pages, c.collected_at, c.publish_seconds, a.n AS archived "
            "FROM collection_log c CROSS JOIN LATERAL (SELECT count(*) AS n FROM raw_archive r "
            "WHERE r.poll_id = c.poll_id) a WHERE c.ok AND c.pages > 0 AND c.collected_at > $1 AND a.n < c.pages "
            "ORDER BY c.collected_at",
            since,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def archived_ranges(settings: Settings, since: datetime) -> list[tuple[str, int, int, int, int]]:
    """(topic, partition, first offset, last offset, messages) in the archive of what was published since ``since``:
    a partition whose first offset is not 0, or whose count falls short of its range, shows where a loss is."""
    conn = await connect(settings.database)
    try:
        rows = await conn.fetch(
            "SELECT r.topic, r.msg_partition, min(r.msg_offset), max(r.msg_offset), count(*) FROM raw_archive r "
            "JOIN collection_log c USING (poll_id) WHERE c.ok AND c.collected_at > $1 GROUP BY 1, 2 ORDER BY 1, 2",
            since,
        )
    finally:
        await conn.close()
    return [(r[0].rsplit(".", 2)[-1], r[1], r[2], r[3], r[4]) for r in rows]


async def drained(settings: Settings, since: datetime, limit_s: float = 90) -> None:
    """Until the archive holds every page published since ``since`` and every collection with items has landed."""
    deadline = time.monotonic() + limit_s
    while True:
        published, archived = await coverage(settings, since)
        conn = await connect(settings.database)
        try:
            unstored = await conn.fetch(
                "SELECT c.source, c.kind, c.endpoint, c.message_key, c.items, c.collected_at FROM collection_log c "
                "WHERE c.ok AND c.items > 0 AND c.collected_at > coalesce((SELECT l.landed_at FROM landings l "
                "WHERE l.source = c.source AND l.kind = c.kind), '-infinity') ORDER BY c.collected_at LIMIT 5"
            )
        finally:
            await conn.close()
        if published == archived and not unstored:
            return
        assert time.monotonic() < deadline, (  # as text: pytest shortens any other message
            f"{archived} of {published} pages published since {since} archived; not landed: "
            f"{[dict(r) for r in unstored]}; not archived: {await missing(settings, since)}; "
            f"archived (kind, partition, first, last, count): {await archived_ranges(settings, since)}"
        )
        await asyncio.sleep(1)


async def publish_odds(settings: Settings, tag: str, per_partition: int, partitions: int = 4) -> None:
    """``per_partition`` raw odds messages into each partition, poll ids ``TAG-PARTITION-N``."""
    topic = settings.topics.catalogue().raw("odds")
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for n in range(per_partition):
            for partition in range(partitions):
                poll_id = f"{tag}-{partition}-{n}"
                headers = RawHeaders(
                    source="kra",
                    kind="odds",
                    endpoint="API160_1/integratedInfo_1",
                    params={},
                    fetched_at=datetime.now(UTC),
                    poll_id=poll_id,
                    http_status=200,
                ).to_kafka()
                await producer.send(topic, poll_id.encode(), key=b"odds", partition=partition, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def archived_offsets(settings: Settings, tag: str, n: int, limit_s: float) -> dict[int, list[int]]:
    """The archived offsets per partition of the messages tagged ``tag``, once there are ``n`` (or after
    ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while True:
        conn = await connect(settings.database)
        try:
            rows = await conn.fetch(
                "SELECT msg_partition, msg_offset FROM raw_archive WHERE poll_id LIKE $1 ORDER BY 1, 2", f"{tag}-%"
            )
        finally:
            await conn.close()
        if len(rows) >= n or time.monotonic() > deadline:
            found: dict[int, list[int]] = {}
            for partition, offset in rows:
                found.setdefault(partition, []).append(offset)
            return found
        await asyncio.sleep(0.3)


async def test_a_batch_finished_while_the_group_rejoins_an_empty_broker_does_not_skip_the_new_topics_start(
    settings: Settings, db_schema: str, broker: PrivateBroker
) -> None:
    """The archiver holds a batch (its table locked) when the broker goes away and comes back empty. The rejoin that
    follows waits for that batch and then commits its offsets, which belong to the lost topics: the empty broker
    would take that commit from a consumer that is not a member of the group, and the group would then read the new
    topics from offset 9 on. Nothing may be skipped: every message published after the restart is archived, from
    offset 0 of every partition."""
    await broker.start()
    cfg = broker.settings(settings)
    catalogue = cfg.topics.catalogue()
    names = catalogue.all_names()
    await ensure_topics(cfg.broker, names, 4, configs=catalogue.configs())
    archiver = await Worker.start("archiver", pipeline_env(cfg, RACELAB_OPS__LAG_INTERVAL_S="1"))
    lock = await connect(cfg.database)
    try:
        await publish_odds(cfg, "before", 4)  # the group commits offsets 4 (known to the broker that goes away)
        assert sum(map(len, (await archived_offsets(cfg, "before", 16, 60)).values())) == 16
        held = lock.transaction()
        await held.start()
        await lock.execute("LOCK TABLE raw_archive IN ACCESS EXCLUSIVE MODE")
        await publish_odds(cfg, "held", 5)  # offsets 4-8: read, and waiting for the table
        async with asyncio.timeout(30):
            while not await lock.fetchval(  # noqa: ASYNC110 - another process's write
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'raw_archive'::regclass"
            ):
                await asyncio.sleep(0.2)
        await broker.kill()
        await broker.start()
        await ensure_topics(cfg.broker, names, 4, configs=catalogue.configs())
        await asyncio.sleep(10)  # the group learns it is gone (heartbeat, lag) and starts rejoining: it waits
        await held.rollback()  # the batch of offsets 4-8 is stored, and acked during the rejoin
        await publish_odds(cfg, "after", 20)
        after = await archived_offsets(cfg, "after", 80, 60)
        assert after == {p: list(range(20)) for p in range(4)}, {p: o[:3] for p, o in after.items()}
        assert archiver.proc.returncode is None, await archiver.report()
    finally:
        await lock.close()
        await archiver.stop(30)
    assert "not committing offsets" in await archiver.stderr()


async def test_a_sink_whose_topic_was_deleted_is_not_ready_and_says_which(
    settings: Settings, db_schema: str, broker: PrivateBroker, tmp_path: Path
) -> None:
    await broker.start()
    cfg = broker.settings(settings)
    catalogue = cfg.topics.catalogue()
    await ensure_topics(cfg.broker, catalogue.all_names(), 4, configs=catalogue.configs())
    port = free_port()
    env = pipeline_env(
        cfg, RACELAB_OPS__SINK_PORT=str(port), RACELAB_OPS__LAG_INTERVAL_S="3", RACELAB_OPS__STUCK_AFTER_S="20"
    )
    sink, copying = await start_role("sink", env, tmp_path / "sink.log")
    try:
        await wait_for({"sink": port}, 200, 60)
        admin = AIOKafkaAdminClient(bootstrap_servers=cfg.broker.bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([catalogue.normalized("odds")])
        finally:
            await admin.close()
        seen: list[str] = []
        async with asyncio.timeout(30), httpx.AsyncClient(timeout=5) as http:
            while True:
                response = await http.get(f"http://127.0.0.1:{port}/readyz")
                if response.status_code == 503:
                    seen.append(response.json()["checks"]["topics"]["detail"])
                    break
                await asyncio.sleep(0.1)
        assert catalogue.normalized("odds") in seen[0], seen
        await wait_for({"sink": port}, 200, RECOVERY_LIMIT_S)  # recreated from the catalogue, and assigned again
    finally:
        sink.send_signal(signal.SIGTERM)
        await asyncio.wait_for(sink.wait(), 60)
        await copying
    log = (tmp_path / "sink.log").read_text()
    assert f"topic {catalogue.normalized('odds')} was missing on the broker; created it from the catalogue" in log
