"""The control API on the simulator, a real broker and a real TimescaleDB (in process and as ``racelab run api``)."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from datetime import UTC, date, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from producers.simulator.faults import FaultRule
from producers.simulator.world import TRACKS, World
from racelab.api.app import create_app
from racelab.api.service import open_control_service
from runtime.db import connect
from runtime.kafka import ensure_topics
from runtime.settings import Settings
from schemas.raw import RawHeaders
from schemas.topics import KINDS, TopicCatalogue

from .conftest import pipeline_env, simulator_env, start_component
from .test_producers import consume_all, producer_settings, start_sim, store_schedule

pytestmark = pytest.mark.integration
KEY = "integration-ingestion-key-5e1d7c0a"
H = {"X-Ingestion-Key": KEY}
DAY = date(2024, 12, 14)
# seoul on DAY (world seed 5): race 1 off at 01:35Z (final by now), race 2 at 02:10Z, race 3 at 02:45Z
AT = datetime(2024, 12, 14, 2, 5, tzinfo=UTC)


def rid(track: str, race_no: int, race_type: str = "horse") -> str:
    return f"{race_type}-{track}-{race_no}-{DAY:%Y%m%d}"


@pytest.fixture
async def sim():
    world = World(seed=5)
    simulator, runner, base = await start_sim(world, AT, speed=0)
    yield world, simulator, base
    await runner.cleanup()


@pytest.fixture
def cfg(settings: Settings, sim) -> Settings:
    configured = producer_settings(settings, sim[2])
    return configured.model_copy(update={"api": configured.api.model_copy(update={"ingestion_key": SecretStr(KEY)})})


@pytest.fixture
async def api(cfg: Settings, sim, db_schema: str):
    async with open_control_service(cfg, clock=sim[1].clock) as service:
        app = create_app(cfg, service, registry=CollectorRegistry())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            yield http


async def raw(cfg: Settings, *kinds: str) -> list:
    topics = TopicCatalogue(cfg.topics.prefix)
    return await consume_all(cfg, [topics.raw(k) for k in kinds or KINDS], idle_s=1.5)  # type: ignore[arg-type]


async def fetch(cfg: Settings, sql: str, *args):
    conn = await connect(cfg.database)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def endpoint_and_key(records) -> Counter:
    return Counter((RawHeaders.from_kafka(r.headers).endpoint, r.key.decode()) for r in records)


async def test_without_the_right_key_nothing_happens(api, cfg, sim):
    race = rid("seoul", 1)
    for headers in ({}, {"X-Ingestion-Key": "not-the-key"}, {"X-Ingestion-Key": KEY[:-1]}):
        for method, path, body in (
            ("POST", "/api/ingestion/trigger/schedules", {"date": "2024-12-14"}),
            ("POST", "/api/ingestion/trigger/entries", {"raceIds": [race]}),
            ("POST", "/api/ingestion/trigger/odds", {"raceIds": [race]}),
            ("POST", "/api/ingestion/trigger/results", {"raceIds": [race]}),
            ("GET", "/api/ingestion/status", None),
            ("GET", "/api/ingestion/failures", None),
            ("POST", "/api/ingestion/failures/1/retry", None),
        ):
            answer = await api.request(method, path, json=body, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.json()["error"]["code"] == "UNAUTHORIZED" and KEY not in answer.text
    assert sim[1].requests == {}  # no upstream call
    assert await raw(cfg) == []  # nothing published
    assert (await fetch(cfg, "SELECT count(*) AS n FROM collection_log"))[0]["n"] == 0
    assert (await fetch(cfg, "SELECT count(*) AS n FROM ingestion_failures"))[0]["n"] == 0


async def test_invalid_body_is_422_and_calls_nothing(api, cfg, sim):
    answer = await api.post("/api/ingestion/trigger/results", json={"raceIds": ["horse-seoul-1-2024"]}, headers=H)
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["loc"] == ["body", "raceIds", 0]
    answer = await api.post("/api/ingestion/trigger/schedules", json={"date": "14.12.2024"}, headers=H)
    assert answer.status_code == 422
    assert sim[1].requests == {}


async def test_trigger_schedules_counts_what_it_published(api, cfg):
    answer = await api.post(
        "/api/ingestion/trigger/schedules", json={"date": "2024-12-14", "raceTypes": ["horse"]}, headers=H
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True and body["error"] is None
    data = body["data"]
    assert (data["collected"], data["skipped"], data["errors"]) == (6, 0, 0)  # race plan + entry sheet per track
    records = await raw(cfg, "schedules")
    assert data["messages"] == len(records) == sum(c["pages"] for c in data["calls"])
    assert {r.key.decode() for r in records} == {f"kra:{t}:20241214" for t in ("seoul", "busan", "jeju")}
    logged = await fetch(cfg, "SELECT ok, race_date, pages FROM collection_log")
    assert len(logged) == 6 and all(r["ok"] and r["race_date"] == DAY for r in logged)
    assert sum(r["pages"] for r in logged) == len(records)

    # no body: today on the producers' clock (2024-12-14 in Asia/Seoul), every configured race type
    answer = await api.post("/api/ingestion/trigger/schedules", headers=H)
    data = answer.json()["data"]
    # horse: race plan + entry sheet per track (6). KSPO: the calendar is empty, so Saturday's ranks and those of the
    # week before are asked (8 cycle, shared by the three cycle tracks: 16 skipped; 8 boat); they name Friday as
    # round 47, day 1; the cards of rounds 47 and 48 of each cycle track (6) then hold Saturday.
    assert (data["collected"], data["skipped"], data["errors"]) == (28, 16, 0)
    cards = {(c["params"]["meet_nm"], c["params"]["week_tcnt"]) for c in data["calls"] if "RACE_ORGAN" in c["endpoint"]}
    assert cards == {(m, w) for m in ("광명", "창원", "부산") for w in ("47", "48")}
    calendar = await fetch(cfg, "SELECT track_code, race_date, year, round_no, day_no FROM kspo_calendar")
    known = {(r["track_code"], r["race_date"]): (r["year"], r["round_no"], r["day_no"]) for r in calendar}
    for track in ("gwangmyeong", "changwon", "busan_cycle"):
        assert known[(track, DAY)] == (2024, 47, 2) == world_round("cycle", DAY)
    assert ("misari", DAY) not in known and known[("misari", date(2024, 12, 12))] == world_round(
        "boat", date(2024, 12, 12)
    )
    assert len(await raw(cfg, "schedules")) + len(await raw(cfg, "results")) == len(records) + data["messages"]


def world_round(race_type: str, day: date) -> tuple[int, int, int]:
    return World(seed=5).round_of(race_type, day)


async def test_trigger_entries_makes_day_wide_calls_once(api, cfg):
    ids = [rid("seoul", 1), rid("seoul", 2), rid("gwangmyeong", 1, "cycle"), rid("seoul", 1)]
    data = (await api.post("/api/ingestion/trigger/entries", json={"race_ids": ids}, headers=H)).json()["data"]
    # seoul: entry sheet + scratches for race 1, the same two calls for race 2 (skipped). gwangmyeong: its day is
    # not in the (empty) calendar: the ranks of Saturday and the week before (8), then the cards of rounds 47 and 48
    # (2) teach it; its entry call is the card of round 47 already made (skipped)
    assert (data["collected"], data["skipped"], data["errors"]) == (12, 3, 0)
    skipped = [c for c in data["calls"] if c["outcome"] == "skipped"]
    assert sorted(c["endpoint"] for c in skipped) == [
        "API26_2/entrySheet_2",
        "API9_1/raceHorseCancelInfo_1",
        "SRVC_OD_API_CRA_RACE_ORGAN/TODZ_API_CRA_RACE_ORGAN_I",
    ]
    records = await raw(cfg, "entries")
    assert {r.key.decode() for r in records} == {"kra:seoul:20241214"}
    cards = await raw(cfg, "schedules")
    assert {r.key.decode() for r in cards} == {"kspo:gwangmyeong:20241214"} and len(cards) == 2


async def test_trigger_results_collects_details_only_when_final(api, cfg):
    ids = [rid("seoul", 1), rid("seoul", 2)]
    data = (await api.post("/api/ingestion/trigger/results", json={"raceIds": ids}, headers=H)).json()["data"]
    # race 1: result (final) + details; race 2 (not run yet): result (empty), details skipped
    assert (data["collected"], data["skipped"], data["errors"]) == (3, 1, 0)
    assert [c["reason"] for c in data["calls"] if c["outcome"] == "skipped"] == ["result not final yet"]
    records = await raw(cfg, "results")
    assert data["messages"] == len(records)
    assert endpoint_and_key(records) == Counter(
        {
            ("API299/Race_Result_total", ids[0]): 1,
            ("API214_1/RaceDetailResult_1", ids[0]): 1,
            ("API299/Race_Result_total", ids[1]): 1,
        }
    )


async def test_trigger_odds_live_before_the_race_final_after(api, cfg, sim):
    world = sim[0]
    await store_schedule(cfg, world.races("seoul", DAY)[:3])
    ids = [rid("seoul", 1), rid("seoul", 3), rid("seoul", 4)]  # over / stored and ahead / not stored
    data = (await api.post("/api/ingestion/trigger/odds", json={"raceIds": ids}, headers=H)).json()["data"]
    assert (data["collected"], data["skipped"], data["errors"]) == (3, 0, 0)
    assert [c["endpoint"] for c in data["calls"]] == [
        "API160_1/integratedInfo_1",
        "liveOdds",
        "API160_1/integratedInfo_1",
    ]
    records = await raw(cfg, "odds")
    assert data["messages"] == len(records)
    by_call = endpoint_and_key(records)
    assert by_call[("liveOdds", ids[1])] == 1 and by_call[("API160_1/integratedInfo_1", ids[0])] >= 1
    items = {c["messageKey"]: c["items"] for c in data["calls"]}
    assert items[ids[0]] > 0 and items[ids[1]] > 0 and items[ids[2]] == 0  # race 4: no dividends yet


async def put_dead_letters(cfg: Settings, kind: str, failed_at: list[str]) -> None:
    topic = TopicCatalogue(cfg.topics.prefix).dlq(kind)  # type: ignore[arg-type]
    await ensure_topics(cfg.broker, [topic], 1, 1)
    producer = AIOKafkaProducer(bootstrap_servers=cfg.broker.bootstrap_servers)
    await producer.start()
    try:
        for at in failed_at:
            headers = [("dlq.first_failed_at", at.encode()), ("dlq.stage", b"validate")]
            await producer.send_and_wait(topic, b"{}", key=b"k", headers=headers)
    finally:
        await producer.stop()


async def test_status_numbers_come_from_the_database_and_the_dlq(api, cfg, sim):
    world, simulator, _ = sim
    await store_schedule(cfg, world.races("seoul", DAY))
    conn = await connect(cfg.database)
    try:
        await conn.executemany(
            "INSERT INTO entries (race_id, entry_no, participant_name, source) VALUES ($1, $2, 'x', 'kra')",
            [(rid("seoul", 1), 1), (rid("seoul", 1), 2), (rid("seoul", 2), 1)],
        )
        await conn.execute(
            "INSERT INTO results (race_id, entry_no, status, participant_name, source) "
            "VALUES ($1, 1, 'finished', 'x', 'kra')",
            rid("seoul", 1),
        )
        await conn.execute(
            "INSERT INTO odds_snapshots (time, race_id, pool, selection, odds, source) "
            "VALUES (now(), $1, 'WIN', '1', 2.5, 'kra'), (now(), $1, 'WIN', '2', 4.5, 'kra')",
            rid("seoul", 1),
        )
    finally:
        await conn.close()
    await api.post("/api/ingestion/trigger/schedules", json={"date": "2024-12-14", "raceTypes": ["horse"]}, headers=H)
    simulator.faults.replace([FaultRule("API214_1/*", "http_503")])
    await api.post("/api/ingestion/trigger/results", json={"raceIds": [rid("seoul", 1)]}, headers=H)
    simulator.faults.replace([])
    await put_dead_letters(cfg, "results", ["2024-12-14T03:00:00Z", "2024-12-13T14:59:00Z"])

    answer = await api.get("/api/ingestion/status", params={"date": "2024-12-14"}, headers=H)
    assert answer.status_code == 200
    status = answer.json()["data"]
    assert status["date"] == "2024-12-14" and status["warnings"] == []
    expected = {
        (r["source"], r["kind"]): r
        for r in await fetch(
            cfg,
            "SELECT source, kind, count(*) FILTER (WHERE ok) AS ok, count(*) FILTER (WHERE NOT ok) AS failed, "
            "coalesce(sum(pages) FILTER (WHERE ok), 0) AS pages, max(collected_at) FILTER (WHERE ok) AS last "
            "FROM collection_log WHERE race_date = $1 GROUP BY source, kind",
            DAY,
        )
    }
    assert {(s["source"], s["kind"]) for s in status["sources"]} == {(s, k) for s in ("kra", "kspo") for k in KINDS}
    for entry in status["sources"]:
        row = expected.get((entry["source"], entry["kind"]))
        if row is None:
            assert (entry["collected"], entry["failed"], entry["successRate"], entry["lastSuccessAt"]) == (
                0,
                0,
                None,
                None,
            )
            continue
        assert (entry["collected"], entry["failed"], entry["messages"]) == (row["ok"], row["failed"], row["pages"])
        assert entry["successRate"] == round(row["ok"] / (row["ok"] + row["failed"]), 4)
        assert datetime.fromisoformat(entry["lastSuccessAt"]) == row["last"]
        assert 0 <= entry["freshnessSeconds"] < 120
    by = {(s["source"], s["kind"]): s for s in status["sources"]}
    assert (by[("kra", "schedules")]["collected"], by[("kra", "results")]["collected"]) == (6, 1)
    assert by[("kra", "results")]["failed"] == 1 and by[("kra", "results")]["successRate"] == 0.5
    assert by[("kra", "results")]["openFailures"] == 1
    assert status["summary"] == {
        "totalRaces": len(world.races("seoul", DAY)),
        "schedulesCollected": len(world.races("seoul", DAY)),
        "entriesCollected": 3,
        "oddsSnapshots": 2,
        "resultsCollected": 1,
        "failureCount": 1,
    }
    assert status["lastCollection"]["results"] == by[("kra", "results")]["lastSuccessAt"]
    assert status["lastCollection"]["odds"] is None
    dlq = {d["kind"]: d for d in status["dlq"]}
    assert (dlq["results"]["total"], dlq["results"]["onDate"]) == (2, 1)
    assert all(dlq[k]["total"] == 0 for k in ("schedules", "entries", "odds"))

    default_day = (await api.get("/api/ingestion/status", headers=H)).json()["data"]
    assert default_day["date"] == "2024-12-14"  # today (Asia/Seoul) on the producers' clock
    other = (await api.get("/api/ingestion/status", params={"date": "2024-12-15"}, headers=H)).json()["data"]
    assert sum(s["collected"] + s["failed"] for s in other["sources"]) == 0
    assert other["summary"]["totalRaces"] == 0 and other["summary"]["failureCount"] == 1
    assert {d["kind"]: d["onDate"] for d in other["dlq"]}["results"] == 0


async def test_triggered_collections_flow_through_the_running_pipeline_into_the_status(api, cfg, sim):
    """Processors and sink run as real processes: what the triggers collect is normalized and written, and the
    status's rows of the day are what the database holds (race 1's counts known from the simulated world)."""
    world = sim[0]
    race = world.races("seoul", DAY)[0]
    workers = [await start_component(role, pipeline_env(cfg)) for role in ("processors", "sink")]
    try:
        answer = await api.post("/api/ingestion/trigger/schedules", json={"date": "2024-12-14"}, headers=H)
        assert answer.json()["success"] is True
        for kind in ("entries", "odds", "results"):
            answer = await api.post(f"/api/ingestion/trigger/{kind}", json={"raceIds": [race.race_id]}, headers=H)
            assert answer.json()["success"] is True and answer.json()["data"]["errors"] == 0, answer.text
        count = "SELECT count(*) FROM {} WHERE race_id = $1"
        async with asyncio.timeout(90):
            while True:
                got = [(await fetch(cfg, count.format(t), race.race_id))[0][0] for t in ("entries", "results")]
                odds = (await fetch(cfg, count.format("odds_snapshots") + " AND is_final", race.race_id))[0][0]
                if got == [len(race.runners), len(race.runners)] and odds == len(race.final_odds()):
                    break
                assert all(w.returncode is None for w in workers)
                await asyncio.sleep(0.5)
        await asyncio.sleep(1.5)  # nothing more in flight
        (db,) = await fetch(
            cfg,
            "WITH day AS (SELECT race_id, status FROM races WHERE race_date = $1) SELECT "
            "(SELECT count(*) FROM day WHERE status <> 'unknown') AS races, "
            "(SELECT count(*) FROM entries JOIN day USING (race_id)) AS entries, "
            "(SELECT count(*) FROM odds_snapshots JOIN day USING (race_id)) AS odds, "
            "(SELECT count(*) FROM results JOIN day USING (race_id)) AS results",
            DAY,
        )
        summary = (await api.get("/api/ingestion/status", params={"date": "2024-12-14"}, headers=H)).json()["data"]
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await asyncio.wait_for(worker.wait(), 60)
    counts = summary["summary"]
    scheduled = sum(len(world.races(track, DAY)) for track in TRACKS)  # every race type: raceTypes left out
    assert counts["schedulesCollected"] == db["races"] == scheduled
    assert (counts["entriesCollected"], counts["oddsSnapshots"], counts["resultsCollected"]) == (
        db["entries"],
        db["odds"],
        db["results"],
    )
    assert db["odds"] >= len(race.final_odds()) and db["results"] == len(race.runners)
    assert [w.returncode for w in workers] == [0, 0]


async def test_failures_are_listed_and_retried(api, cfg, sim):
    simulator = sim[1]
    race = rid("seoul", 1)
    simulator.faults.replace([FaultRule("API299/*", "http_503")])
    answer = await api.post("/api/ingestion/trigger/results", json={"raceIds": [race]}, headers=H)
    body = answer.json()
    assert answer.status_code == 200 and body["success"] is False
    assert body["error"]["code"] == "COLLECTION_FAILED"
    assert (body["data"]["collected"], body["data"]["skipped"], body["data"]["errors"]) == (0, 1, 1)
    rows = await fetch(cfg, "SELECT id, endpoint, resolved FROM ingestion_failures")
    assert len(rows) == 1 and rows[0]["endpoint"] == "API299/Race_Result_total"
    failure_id = rows[0]["id"]
    assert body["data"]["calls"][0]["failureId"] == failure_id and f"#{failure_id}" in body["error"]["message"]
    assert await raw(cfg, "results") == []

    listed = (await api.get("/api/ingestion/failures", params={"resolved": "false"}, headers=H)).json()["data"]
    assert [f["id"] for f in listed] == [failure_id]
    item = listed[0]
    assert (item["source"], item["kind"], item["errorClass"], item["httpStatus"]) == (
        "kra",
        "results",
        "UpstreamUnavailable",
        503,
    )
    assert item["messageKey"] == race and item["params"]["rc_no"] == "1" and item["resolved"] is False
    assert item["maxRetries"] == cfg.producers.recovery_max_retries and item["retryCount"] == 0
    assert (await api.get("/api/ingestion/failures", params={"resolved": "true"}, headers=H)).json()["data"] == []

    missing = await api.post(f"/api/ingestion/failures/{failure_id + 1000}/retry", headers=H)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"

    still = (await api.post(f"/api/ingestion/failures/{failure_id}/retry", headers=H)).json()
    assert still["success"] is False and still["data"]["resolved"] is False and still["data"]["errors"] == 1

    simulator.faults.replace([])  # the API is back
    healed = (await api.post(f"/api/ingestion/failures/{failure_id}/retry", headers=H)).json()
    assert healed["success"] is True and healed["error"] is None
    assert (healed["data"]["collected"], healed["data"]["resolved"], healed["data"]["failureId"]) == (
        1,
        True,
        failure_id,
    )
    row = (await fetch(cfg, "SELECT resolved, retry_count FROM ingestion_failures WHERE id = $1", failure_id))[0]
    assert (row["resolved"], row["retry_count"]) == (True, 2)
    records = await raw(cfg, "results")
    assert [r.key.decode() for r in records] == [race]
    resolved = (await api.get("/api/ingestion/failures", params={"resolved": "true"}, headers=H)).json()["data"]
    assert [f["id"] for f in resolved] == [failure_id] and resolved[0]["resolvedAt"] is not None

    again = (await api.post(f"/api/ingestion/failures/{failure_id}/retry", headers=H)).json()["data"]
    assert (again["collected"], again["skipped"], again["resolved"]) == (0, 1, True)
    assert len(await raw(cfg, "results")) == 1


async def _listening_url(proc: asyncio.subprocess.Process, lines: list[str]) -> str:
    assert proc.stderr is not None
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stderr.readline()).decode()
            if not line:
                raise AssertionError("racelab run api ended before listening:\n" + "".join(lines))
            lines.append(line)
            found = re.search(r"control API on (http://\S+)", line)
            if found:
                return found[1]


async def test_run_api_command_serves_and_stops_on_sigterm(settings: Settings, db_schema: str):
    _, runner, base = await start_sim(World(seed=5), AT, speed=1)
    env = pipeline_env(
        settings,
        **simulator_env(base),
        RACELAB_API__INGESTION_KEY=KEY,
        RACELAB_API__PORT="0",
    )
    proc = await start_component("api", env)
    lines: list[str] = []
    try:
        url = await _listening_url(proc, lines)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            assert (await http.get("/healthz")).json() == {"status": "alive"}
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert (await http.post("/api/ingestion/trigger/schedules", json={})).status_code == 401
            answer = await http.post(
                "/api/ingestion/trigger/schedules", json={"date": "2024-12-14", "raceTypes": ["horse"]}, headers=H
            )
            assert answer.status_code == 200, answer.text
            data = answer.json()["data"]
            assert (data["collected"], data["errors"]) == (6, 0)
            assert (await http.get("/openapi.json")).json()["paths"].keys() >= {"/api/ingestion/status"}
            metrics = (await http.get("/metrics")).text
        assert 'racelab_control_requests_total{route="/api/ingestion/trigger/schedules",status="200"} 1.0' in metrics
        assert 'racelab_control_requests_total{route="/api/ingestion/trigger/schedules",status="401"} 1.0' in metrics
        assert 'racelab_polls_total{kind="schedules",outcome="ok",source="kra"} 6.0' in metrics
        assert len(await raw(settings, "schedules")) == data["messages"]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 40) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        await runner.cleanup()
    assert proc.stderr is not None
    stderr = "".join(lines) + (await proc.stderr.read()).decode()
    assert "control API stopped" in stderr and "Traceback" not in stderr
    assert KEY not in stderr
