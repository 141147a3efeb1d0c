"""Producers against the simulator, a real broker and a real database."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from producers import cadence
from producers.calls import kra_race_result_total
from producers.service import open_producers
from producers.simulator.clock import SimClock
from producers.simulator.faults import FaultInjector, FaultRule
from producers.simulator.server import Simulator, serve
from producers.simulator.world import World
from runtime.db import connect
from runtime.settings import Settings
from schemas.raw import RawHeaders
from schemas.topics import KINDS, TopicCatalogue

from .conftest import pipeline_env, simulator_env, start_component

pytestmark = pytest.mark.integration
STEP_S = 10.0
DAY = date(2024, 12, 14)


class SteppedClock:
    """A clock the test advances: the simulator and the producers share it, so timing is exact under any load."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


async def start_sim(world: World, start: datetime, speed: float) -> tuple[Simulator, web.AppRunner, str]:
    clock = SteppedClock(start) if speed == 0 else SimClock(start=start, speed=speed)
    sim = Simulator(world, clock, FaultInjector(seed=1))  # type: ignore[arg-type]
    runner = await serve(sim, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    return sim, runner, f"http://{host}:{port}"


def producer_settings(settings: Settings, base: str, **producers: object) -> Settings:
    fast = {"retry_base_delay_s": 0.01, "requests_per_second": 200, "max_concurrency": 8}
    return settings.model_copy(
        update={
            "kra": settings.kra.model_copy(update={"base_url": f"{base}/B551015", **fast}),
            "kspo": settings.kspo.model_copy(update={"base_url": f"{base}/B551014", **fast}),
            "odds_feed": settings.odds_feed.model_copy(update={"base_url": base, **fast}),
            "producers": settings.producers.model_copy(update=producers),
        }
    )


async def store_schedule(settings: Settings, races) -> None:
    """The stored schedule the pollers follow (in the full pipeline the sink writes it from raw.schedules)."""
    conn = await connect(settings.database)
    try:
        await conn.executemany(
            "INSERT INTO races (race_id, race_type, track_code, race_date, race_no, post_time, status, source) "
            "VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7)",
            [
                (
                    r.race_id,
                    r.race_type,
                    r.track,
                    r.day,
                    r.race_no,
                    r.post_time,
                    "kra" if r.race_type == "horse" else "kspo",
                )
                for r in races
            ],
        )
    finally:
        await conn.close()


async def consume_all(settings: Settings, topics: list[str], idle_s: float = 3.0) -> list:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.broker.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000))
            if not batch:
                return records
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()


async def test_simulated_race_day(settings: Settings, db_schema: str):
    world = World(seed=5)
    races = world.races("seoul", DAY)
    first = races[0]
    start = first.post_time - timedelta(minutes=70)
    end = first.post_time + timedelta(minutes=14)
    sim, runner, base = await start_sim(world, start, speed=0)
    cfg = producer_settings(settings, base, race_types=("horse",), tracks=("seoul",))
    await store_schedule(cfg, races)
    try:
        async with open_producers(cfg, clock=sim.clock) as parts:
            while sim.clock.now() < end:
                await parts.poller.tick()
                sim.clock.advance(STEP_S)
            stop_at = sim.clock.now()
    finally:
        await runner.cleanup()

    topics = TopicCatalogue(cfg.topics.prefix)
    records = await consume_all(cfg, [topics.raw(k) for k in KINDS])
    by = defaultdict(list)
    for rec in records:
        headers = RawHeaders.from_kafka(rec.headers)
        assert headers.kind == rec.topic.rsplit(".", 1)[1] and "serviceKey" not in headers.params
        by[(headers.kind, headers.endpoint, rec.key.decode())].append((headers, rec))

    day_key = f"kra:seoul:{DAY:%Y%m%d}"
    # schedules: caught up once at start (the 06:00 run was missed), race plan + entry sheet
    assert len(by[("schedules", "API72_2/racePlan_2", day_key)]) == 1
    assert len(by[("schedules", "API26_2/entrySheet_2", day_key)]) == 1

    # odds: every cadence slot of race 1 (T-60 .. T-0), each fetched in its slot
    odds_1 = sorted(h.fetched_at for h, _ in by[("odds", "liveOdds", first.race_id)])
    slots = cadence.odds_slots(first.post_time)
    assert len(odds_1) == len(slots) == 30
    for fetched, slot in zip(odds_1, slots, strict=True):
        assert timedelta(0) <= fetched - slot < timedelta(seconds=STEP_S), (fetched, slot)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(odds_1)]
    assert all(290 <= g <= 310 for g in gaps[:9]) and all(50 <= g <= 70 for g in gaps[10:18])
    assert all(20 <= g <= 40 for g in gaps[20:])
    # later races: only the slots that came due before the end
    for race in races[1:3]:
        expected = [s for s in cadence.odds_slots(race.post_time) if s < stop_at]
        got = by[("odds", "liveOdds", race.race_id)]
        assert len(got) == len(expected), race.race_id

    # results of race 1: polled from +5 min every 2 min until final (+10), then details and final dividends once
    results = by[("results", "API299/Race_Result_total", first.race_id)]
    assert len(results) == 4
    assert len(by[("results", "API214_1/RaceDetailResult_1", first.race_id)]) == 1
    dividends = by[("odds", "API160_1/integratedInfo_1", first.race_id)]
    assert len(dividends) == -(-len(first.final_odds()) // 1000)
    rows = sum(len(orjson.loads(r.value)["response"]["body"]["items"]["item"]) for _, r in dividends)
    assert rows == len(first.final_odds())
    assert not any(k[2] == races[1].race_id and k[0] == "results" for k in by)  # race 2 not over yet

    # entries: day-wide entry sheet + scratches at each entry slot that came due
    entry_slots = sorted(
        {
            s
            for r in races
            for s in cadence.entry_slots(r.post_time)
            if start - timedelta(seconds=90) <= s <= stop_at - timedelta(seconds=20)
        }
    )
    entries = by[("entries", "API26_2/entrySheet_2", day_key)]
    assert len(entry_slots) <= len(entries) <= len(entry_slots) + 1
    assert len(by[("entries", "API9_1/raceHorseCancelInfo_1", day_key)]) == len(entries)

    # one race's messages share a key, so they stay in order on one partition
    assert len({r.partition for _, r in by[("odds", "liveOdds", first.race_id)] + results}) == 1


class SlackStandIn:
    """A real HTTP server on loopback that records what an incoming webhook would receive."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.messages.append((await request.json())["text"])
        return web.Response(text="ok")


@pytest.fixture
async def slack() -> AsyncIterator[tuple[SlackStandIn, str]]:
    stand_in = SlackStandIn()
    app = web.Application()
    app.router.add_post("/hook/T000/B000/secret", stand_in.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield stand_in, f"http://{host}:{port}/hook/T000/B000/secret"
    await runner.cleanup()


async def test_faults_retry_then_one_failure_row_one_alert_then_recovery(settings: Settings, db_schema: str, slack):
    stand_in, hook = slack
    world = World(seed=5)
    race = world.races("seoul", DAY)[0]
    sim, runner, base = await start_sim(world, race.post_time + timedelta(hours=1), speed=1)
    cfg = producer_settings(settings, base).model_copy(
        update={
            "alerts": settings.alerts.model_copy(update={"slack_webhook_url": SecretStr(hook), "min_interval_s": 300})
        }
    )
    sim.faults.replace([FaultRule("API299/*", "http_503")])
    call = kra_race_result_total("seoul", DAY, race.race_no)
    try:
        async with open_producers(cfg, clock=sim.clock) as parts:
            for _ in range(3):  # three poll slots in a row hit the outage
                assert await parts.collector.collect(call) is None
            assert sim.requests["API299/Race_Result_total"] == 15  # 5 tries each
            conn = await connect(cfg.database)
            try:
                rows = await conn.fetch("SELECT * FROM ingestion_failures")
                assert len(rows) == 1
                row = rows[0]
                assert (row["source"], row["kind"], row["endpoint"]) == ("kra", "results", "API299/Race_Result_total")
                assert (row["attempts"], row["occurrences"], row["http_status"]) == (5, 3, 503)
                assert row["error_class"] == "UpstreamUnavailable" and not row["resolved"]
                assert orjson.loads(row["params"]) == call.params
                assert len(stand_in.messages) == 1 and "#" + str(row["id"]) in stand_in.messages[0]
                assert "secret" not in stand_in.messages[0]

                sim.faults.replace([])  # the API is back: the recovery job resolves the failure
                assert await parts.collector.recover() == (1, 0)
                resolved = await conn.fetchrow("SELECT resolved, retry_count FROM ingestion_failures")
                assert tuple(resolved) == (True, 1)
                assert await parts.collector.recover() == (0, 0)
            finally:
                await conn.close()
    finally:
        await runner.cleanup()
    records = await consume_all(cfg, [TopicCatalogue(cfg.topics.prefix).raw("results")])
    assert len(records) == 1 and records[0].key.decode() == race.race_id
    assert datetime.now(UTC) > RawHeaders.from_kafka(records[0].headers).fetched_at  # simulator clock (2024)


class StopAfter:
    """Wraps the store: sets ``stop`` once ``n`` units were checkpointed (an operator pressing Ctrl+C)."""

    def __init__(self, store, n: int, stop: asyncio.Event) -> None:
        self._store, self._n, self._stop = store, n, stop

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def mark_checkpoint(self, *args) -> None:
        await self._store.mark_checkpoint(*args)
        self._n -= 1
        if self._n <= 0:
            self._stop.set()


def message_set(records) -> list[tuple]:
    out = []
    for rec in records:
        h = RawHeaders.from_kafka(rec.headers)
        out.append((rec.topic.rsplit(".", 1)[1], rec.key, h.endpoint, tuple(sorted(h.params.items())), rec.value))
    return out


async def test_backfill_resumes_without_duplicates(settings: Settings, db_schema: str):
    import io

    from producers.backfill import Backfill

    world = World(seed=8)
    sim, runner, base = await start_sim(world, datetime.fromisoformat("2024-12-20T12:00+09:00"), speed=1)
    tracks = ["seoul", "gwangmyeong", "misari"]
    start, end = date(2024, 12, 12), date(2024, 12, 14)

    async def run_job(cfg: Settings, stop_after: int | None) -> tuple:
        out = io.StringIO()
        async with open_producers(cfg, clock=sim.clock) as parts:
            stop = asyncio.Event()
            store = StopAfter(parts.collector.store, stop_after, stop) if stop_after else parts.collector.store
            summary = await Backfill(parts.collector, store, tracks).run(start, end, stop, out=out)
        return summary, out.getvalue()

    try:
        cfg = producer_settings(settings, base)
        first, progress = await run_job(cfg, stop_after=10)
        assert first.stopped and first.units_done == 10 and first.units_total == 36
        assert "ETA" in progress and "10/36" in progress
        second, _ = await run_job(cfg, stop_after=None)
        assert second.stopped is None and second.units_skipped == 10 and second.units_done == 26
        assert second.job_id == first.job_id and second.failures == 0

        reference_cfg = cfg.model_copy(
            update={
                "topics": cfg.topics.model_copy(update={"prefix": cfg.topics.prefix + "r"}),
                "database": cfg.database.model_copy(update={"schema_name": db_schema}),
            }
        )
        conn = await connect(cfg.database)
        await conn.execute("DELETE FROM backfill_checkpoints")
        await conn.execute("DELETE FROM kspo_calendar")  # the reference run learns the race days again
        await conn.close()
        reference, _ = await run_job(reference_cfg, stop_after=None)
        assert reference.units_done == 36
    finally:
        await runner.cleanup()

    resumed = message_set(await consume_all(cfg, [TopicCatalogue(cfg.topics.prefix).raw(k) for k in KINDS]))
    clean = message_set(await consume_all(cfg, [TopicCatalogue(reference_cfg.topics.prefix).raw(k) for k in KINDS]))
    assert len(resumed) == len(set(resumed)) == first.messages + second.messages  # no duplicates
    assert sorted(resumed) == sorted(clean)  # nothing missing either
    kinds = {m[0] for m in resumed}
    assert kinds == set(KINDS)
    # every race of the range got its final dividends (horse per race, boat per race, cycle day-wide)
    seoul_races = [r for d in (start, start + timedelta(1), end) for r in world.races("seoul", d) if not r.cancelled]
    horse_dividend_keys = {m[1].decode() for m in resumed if m[2] == "API160_1/integratedInfo_1"}
    assert horse_dividend_keys == {r.race_id for r in seoul_races}


async def test_a_week_of_boat_backfill_asks_only_for_race_days_by_their_published_round(
    settings: Settings, db_schema: str
):
    """The boat card publishes no date: the backfill learns each day's round from the rank API (race_day) and asks
    for cards only of the days that raced, by the round the API named. The simulator's rounds skip break weeks, so
    they are not ISO week numbers (the old guess asked for round = ISO week on every day of the week)."""
    import io

    from processors.normalize import normalize
    from processors.normalize.common import Context
    from producers.backfill import Backfill

    world = World(seed=8)
    monday, sunday = date(2024, 12, 9), date(2024, 12, 15)
    sim, runner, base = await start_sim(world, datetime.fromisoformat("2024-12-20T12:00+09:00"), speed=1)
    try:
        cfg = producer_settings(settings, base)
        async with open_producers(cfg, clock=sim.clock) as parts:
            summary = await Backfill(parts.collector, parts.collector.store, ["misari"]).run(
                monday, sunday, out=io.StringIO()
            )
    finally:
        await runner.cleanup()
    assert summary.failures == 0
    records = await consume_all(cfg, [TopicCatalogue(cfg.topics.prefix).raw(k) for k in KINDS])
    cards = [(RawHeaders.from_kafka(r.headers), r) for r in records]
    cards = [(h, r) for h, r in cards if h.endpoint == "SRVC_OD_API_VWEB_MBR_RACE_INFO/TODZ_API_VWEB_MBR_RACE_I"]
    race_days = [d for d in world.race_days("misari", monday, sunday)]
    assert race_days == [date(2024, 12, 11), date(2024, 12, 12)]  # Wednesday and Thursday
    asked = sorted({(r.key.decode(), h.params["week_tcnt"], h.params["day_tcnt"]) for h, r in cards})
    expected = [
        (f"kspo:misari:{d:%Y%m%d}", f"{world.round_of('boat', d)[1]:02d}", str(world.round_of("boat", d)[2]))
        for d in race_days
    ]
    assert asked == expected
    assert {w for _, w, _ in asked} == {"47"} != {str(monday.isocalendar()[1])}  # round 47 in ISO week 50
    stored = set()
    for h, r in cards:
        out = normalize(r.value, Context("kspo", h.endpoint, h.params, h.fetched_at, r.key.decode()))
        stored |= {(race.race_id, race.race_date) for race in out.races}
    assert stored == {(race.race_id, race.day) for d in race_days for race in world.races("misari", d)}


async def test_run_producers_command_starts_polls_and_stops_on_sigterm(settings: Settings, db_schema: str):
    import signal

    world = World(seed=5)
    _, runner, base = await start_sim(world, datetime.fromisoformat("2024-12-14T09:30+09:00"), speed=60)
    env = pipeline_env(
        settings,
        **simulator_env(base),
        RACELAB_PRODUCERS__RACE_TYPES='["horse"]',
        RACELAB_PRODUCERS__TICK_S="0.2",
    )
    proc = await start_component("producers", env)
    try:
        records = []
        async with asyncio.timeout(60):
            while len(records) < 6:  # race plan + entry sheet for each of the day's horse tracks
                await asyncio.sleep(1)
                records = await consume_all(
                    settings, [TopicCatalogue(settings.topics.prefix).raw("schedules")], idle_s=0.5
                )
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        await runner.cleanup()
    stderr = (await proc.stderr.read()).decode()
    assert "producers running (clock SimulatorClock" in stderr and "Traceback" not in stderr
    keys = {r.key.decode() for r in records}
    assert keys == {"kra:seoul:20241214", "kra:busan:20241214", "kra:jeju:20241214"}


async def test_two_producers_and_a_restart_never_poll_a_slot_twice(settings: Settings, db_schema: str):
    world = World(seed=5)
    races = world.races("seoul", DAY)
    first = races[0]
    start, end = first.post_time - timedelta(minutes=6, seconds=10), first.post_time + timedelta(seconds=40)
    sim, runner, base = await start_sim(world, start, speed=0)
    cfg = producer_settings(settings, base, race_types=("horse",), tracks=("seoul",))
    await store_schedule(cfg, races[:1])
    try:
        async with open_producers(cfg, clock=sim.clock) as a:
            async with open_producers(cfg, clock=sim.clock) as b:
                halfway = first.post_time - timedelta(minutes=3)
                while sim.clock.now() < halfway:
                    await asyncio.gather(a.poller.tick(), b.poller.tick())
                    sim.clock.advance(STEP_S)
            # b "crashes"; a new producer c starts with empty memory and works beside a
            async with open_producers(cfg, clock=sim.clock) as c:
                while sim.clock.now() < end:
                    await asyncio.gather(a.poller.tick(), c.poller.tick())
                    sim.clock.advance(STEP_S)
    finally:
        await runner.cleanup()
    records = await consume_all(cfg, [TopicCatalogue(cfg.topics.prefix).raw("odds")])
    fetched = sorted(RawHeaders.from_kafka(r.headers).fetched_at for r in records if r.key.decode() == first.race_id)
    slots = cadence.odds_slots(first.post_time)
    polled = [max(s for s in slots if s <= got) for got in fetched]
    assert len(polled) == len(set(polled)), "a slot was polled twice"
    # from the first polled slot to the post time, every slot was polled once, each within its slot
    assert polled == [s for s in slots if polled[0] <= s], polled
    assert polled[0] == first.post_time - timedelta(minutes=7)  # the slot just before start, within grace
    assert len(polled) == 13
    assert all(timedelta(0) <= got - slot <= timedelta(seconds=70) for got, slot in zip(fetched, polled, strict=True))
