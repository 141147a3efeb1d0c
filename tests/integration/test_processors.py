"""Faust workers (real processes) against the real broker: garbage, dead letters, workers killed, the breaker."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from datetime import UTC, date, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from processors.normalize import normalize
from processors.normalize.common import Context
from producers.simulator import envelope, render_kra, render_kspo
from producers.simulator.world import World
from runtime.kafka import ensure_topics
from runtime.settings import Settings
from schemas import endpoints as ep
from schemas.raw import RawHeaders
from schemas.topics import KINDS, TopicCatalogue

from .conftest import pipeline_env, start_component

pytestmark = pytest.mark.integration
WORLD = World(seed=31)
SATURDAY, THURSDAY = date(2024, 12, 14), date(2024, 12, 12)
FETCHED = datetime(2024, 12, 15, 1, 0, tzinfo=UTC)


def headers(kind: str, endpoint: str, source: str = "kra", **params: str) -> list[tuple[str, bytes]]:
    return RawHeaders(
        source=source,
        kind=kind,
        endpoint=endpoint,
        params=params,
        fetched_at=FETCHED,  # type: ignore[arg-type]
        poll_id="t",
        http_status=200,
    ).to_kafka()


def good_messages() -> list[tuple[str, bytes, bytes, list]]:
    """(kind, key, body, headers) of real-shaped responses for every raw topic."""
    races = WORLD.races("seoul", SATURDAY)
    year, rnd, day_no = WORLD.round_of("cycle", SATURDAY)
    cycle = list(WORLD.races("gwangmyeong", SATURDAY))
    byear, brnd, bday = WORLD.round_of("boat", THURSDAY)
    boats = list(WORLD.races("misari", THURSDAY))
    day_key = f"kra:seoul:{SATURDAY:%Y%m%d}".encode()
    body = lambda rows: envelope.json_body(rows, 1, 1000, len(rows))  # noqa: E731
    out = [
        ("schedules", day_key, body(render_kra.race_plan_rows(races)), headers("schedules", ep.KRA_RACE_PLAN.path)),
        ("entries", day_key, body(render_kra.entry_sheet_rows(races)), headers("entries", ep.KRA_ENTRY_SHEET.path)),
        (
            "results",
            day_key,
            body(render_kra.race_result_total_rows(list(races), FETCHED)),
            headers("results", ep.KRA_RACE_RESULT_TOTAL.path),
        ),
        (
            "entries",
            f"kspo:gwangmyeong:{SATURDAY:%Y%m%d}".encode(),
            body(render_kspo.cycle_entry_rows(cycle, year, rnd, day_no)),
            headers("entries", ep.CYCLE_ENTRIES.path, "kspo"),
        ),
        (
            "results",
            f"kspo:misari:{THURSDAY:%Y%m%d}".encode(),
            body(render_kspo.boat_result_rows(boats, byear, brnd, bday)),
            headers("results", ep.BOAT_RESULT.path, "kspo", day_tcnt=str(bday)),
        ),
    ]
    for race in races[:4]:
        rows = render_kra.final_dividend_rows(race)
        for start in range(0, len(rows), 1000):
            out.append(
                (
                    "odds",
                    race.race_id.encode(),
                    body(rows[start : start + 1000]),
                    headers("odds", ep.KRA_FINAL_DIVIDENDS.path),
                )
            )
        out.append(
            (
                "odds",
                race.race_id.encode(),
                body(render_kra.live_odds_rows(race, race.post_time)),
                headers("odds", ep.LIVE_ODDS_PATH),
            )
        )
    return out


def expected_records(messages) -> Counter:
    counts: Counter = Counter()
    for _kind, key, value, hdrs in messages:
        h = RawHeaders.from_kafka(hdrs)
        out = normalize(value, Context(h.source, h.endpoint, h.params, h.fetched_at, key.decode()))
        for topic, records in out.by_topic().items():  # odds: one board per race and time
            counts.update((topic, r.model_dump_json()) for r in records)
    return counts


def garbage(n: int) -> list[bytes]:
    """Payloads from hypothesis: random bytes, random text, JSON of the wrong shape, and envelopes with bad rows."""
    found: list[bytes] = []
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    )
    strategy = st.one_of(
        st.binary(max_size=512),
        st.text(max_size=200).map(str.encode),
        json_values.map(orjson.dumps),
        st.lists(
            st.dictionaries(
                st.sampled_from(["meet", "rcDate", "rcNo", "pool", "odds", "chulNo", "race_no"]),
                st.one_of(st.text(max_size=6), st.integers(-5, 99999)),
                min_size=1,
            ),
            min_size=1,
            max_size=4,
        ).map(lambda rows: envelope.json_body(rows, 1, 10, len(rows))),
    )

    @hsettings(max_examples=n, database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(payload: bytes) -> None:
        found.append(payload)

    collect()
    return found


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return pipeline_env(
        settings, **{"RACELAB_PROCESSORS__BATCH_WITHIN_S": "0.1", "RACELAB_PROCESSORS__BATCH_SIZE": "50", **extra}
    )


async def produce(settings: Settings, messages, topics: TopicCatalogue) -> list[tuple[str, int, int]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker.bootstrap_servers, acks="all", max_request_size=8 * 1024 * 1024
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topics.raw(kind), value=value, key=key, headers=hdrs)
            for kind, key, value, hdrs in messages
        ]
        return [(m.topic, m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def collect(settings: Settings, topic_names: list[str], until, limit_s: float = 120.0) -> list:
    consumer = AIOKafkaConsumer(
        *topic_names,
        bootstrap_servers=settings.broker.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(limit_s):
            while not until(records):
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(recs)
        for recs in (await consumer.getmany(timeout_ms=1500)).values():  # anything extra (duplicates) shows too
            records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def test_garbage_goes_to_the_dlq_and_good_messages_are_normalized_once(settings: Settings):
    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 4)
    good = good_messages()
    expected = expected_records(good)
    bad = []
    for i, payload in enumerate(garbage(120)):
        kind = KINDS[i % 4]
        endpoint = [
            ep.KRA_RACE_PLAN.path,
            ep.KRA_ENTRY_SHEET.path,
            ep.KRA_FINAL_DIVIDENDS.path,
            ep.KRA_RACE_RESULT.path,
        ][i % 4]
        bad.append((kind, f"bad-{i}".encode(), payload, headers(kind, endpoint)))
    good_body = good[0][2]
    bad += [
        ("schedules", b"trunc", good_body[: len(good_body) // 2], headers("schedules", ep.KRA_RACE_PLAN.path)),
        ("odds", b"big", b'{"response":' + b" " * (3 * 1024 * 1024) + b"]", headers("odds", ep.LIVE_ODDS_PATH)),
        ("entries", b"binary", bytes(range(256)) * 4, headers("entries", ep.KRA_ENTRY_SHEET.path)),
        ("results", b"no-headers", good[2][2], []),
        ("odds", b"bad-endpoint", good_body, headers("odds", "API999/nothing")),
    ]
    # interleave so bad messages sit between good ones on the same partitions
    mixed = [m for pair in zip(good + [None] * len(bad), bad, strict=False) for m in pair if m is not None]
    mixed += good[len(bad) :]
    env = worker_env(settings, RACELAB_PROCESSORS__DLQ_MAX_CONSECUTIVE="10000", RACELAB_PROCESSORS__DLQ_MAX_RATIO="1")
    worker = await start_component("processors", env)
    try:
        coordinates = dict(zip([id(m) for m in mixed], await produce(settings, mixed, topics), strict=True))
        normalized = [topics.normalized(k) for k in KINDS]
        dlqs = [topics.dlq(k) for k in KINDS]
        total = sum(expected.values())
        records = await collect(settings, normalized + dlqs, lambda rs: len(rs) >= total + len(bad))
        assert worker.returncode is None, "the worker must stay up"
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 60)
    got = Counter((r.topic.split(".", 1)[1], r.value.decode()) for r in records if not r.topic.endswith(".dlq"))
    assert got == expected  # every good message normalized exactly once, nothing else
    dead = [r for r in records if r.topic.endswith(".dlq")]
    assert len(dead) == len(bad)
    by_key = {r.key: r for r in dead}
    for message in bad:
        kind, key, value, hdrs = message
        letter = by_key[key]
        h = dict(letter.headers)
        topic, partition, offset = coordinates[id(message)]
        assert letter.topic == topics.dlq(kind) and letter.value == value  # original bytes
        assert (h["dlq.original.topic"], h["dlq.original.partition"], h["dlq.original.offset"]) == (
            topic.encode(),
            str(partition).encode(),
            str(offset).encode(),
        )
        assert h["dlq.stage"] in (b"decode", b"validate", b"normalize") and h["dlq.attempts"] == b"1"
        assert h["dlq.exception.class"] and h["dlq.pipeline_version"] and h["dlq.first_failed_at"]
        assert all(h[k] == v for k, v in hdrs)  # original headers kept
    stages = Counter(dict(r.headers)["dlq.stage"] for r in dead)
    assert stages[b"decode"] > 0 and stages[b"validate"] + stages[b"normalize"] > 0


async def test_two_workers_share_partitions_and_a_killed_one_hands_over(settings: Settings):
    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 4)
    waves = [good_messages() for _ in range(3)]
    expected = expected_records(waves[0])
    env = worker_env(settings)
    first, second = await start_component("processors", env), await start_component("processors", env)
    try:
        await produce(settings, waves[0], topics)
        normalized = [topics.normalized(k) for k in KINDS]
        await collect(settings, normalized, lambda rs: len(rs) >= sum(expected.values()))
        first.send_signal(signal.SIGKILL)  # kill -9 mid-stream: its partitions must move to the other worker
        await first.wait()
        await produce(settings, waves[1] + waves[2], topics)
        records = await collect(settings, normalized, lambda rs: len(rs) >= 3 * sum(expected.values()), limit_s=180)
        assert second.returncode is None
    finally:
        for proc in (first, second):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 60)
    got = Counter((r.topic.split(".", 1)[1], r.value.decode()) for r in records)
    # each record of the three identical waves is there at least three times: nothing lost
    assert all(got[k] >= 3 * v for k, v in expected.items())
    assert set(got) == set(expected)


async def test_dlq_breaker_stops_the_worker_without_committing_the_batch(settings: Settings):
    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 1)
    bad = [("odds", f"b{i}".encode(), b"not json at all", headers("odds", ep.LIVE_ODDS_PATH)) for i in range(60)]
    await produce(settings, bad, topics)
    env = worker_env(settings, RACELAB_PROCESSORS__DLQ_MAX_CONSECUTIVE="25", RACELAB_TOPICS__PARTITIONS="1")
    worker = await start_component("processors", env)
    code = await asyncio.wait_for(worker.wait(), 90)
    stderr = (await worker.stderr.read()).decode()
    assert code == 3, stderr[-2000:]
    assert "DLQ circuit breaker" in stderr and "25 messages in a row" in stderr
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.broker.bootstrap_servers,
        group_id=f"{settings.topics.prefix}-processors",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(topics.raw("odds"), 0))
    finally:
        await consumer.stop()
    assert committed is None or committed < 25  # the tripping batch was not acked


def racelab(settings: Settings, *args: str) -> tuple[int, str, str]:
    import subprocess

    env = worker_env(settings)
    done = subprocess.run(
        [sys.executable, "-m", "racelab.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, done.stdout, done.stderr


async def test_dlq_list_and_replay_back_through_a_worker(settings: Settings):
    from processors.errors import ValidationFailed
    from schemas.dlq import dlq_headers

    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 4)
    good = [m for m in good_messages() if m[0] == "odds"][:3]
    expected = expected_records(good)
    # dead letters of a (pretend) bad deploy: good bytes that failed validation, plus real garbage that decodes badly
    letters = [
        (
            "odds",
            key,
            value,
            dlq_headers(
                hdrs,
                topic=topics.raw("odds"),
                partition=0,
                offset=i,
                error=ValidationFailed("bad deploy"),
                stage="validate",
            ),
        )
        for i, (_, key, value, hdrs) in enumerate(good)
    ]
    letters.append(
        (
            "odds",
            b"junk",
            b"\x00junk",
            dlq_headers(
                headers("odds", ep.LIVE_ODDS_PATH),
                topic=topics.raw("odds"),
                partition=1,
                offset=9,
                error=ValueError("x"),
                stage="decode",
            ),
        )
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers)
    await producer.start()
    for _, key, value, hdrs in letters:
        await producer.send_and_wait(topics.dlq("odds"), value=value, key=key, headers=hdrs)
    await producer.stop()

    code, out, err = await asyncio.to_thread(racelab, settings, "dlq", "list")
    assert code == 0, err
    assert f"{topics.dlq('odds')}" in out and "validate" in out and "ValidationFailed" in out
    assert "4 dead letter(s)" in out
    code, out, _ = await asyncio.to_thread(racelab, settings, "dlq", "replay", "--stage", "validate", "--dry-run")
    assert code == 0 and f"would replay 3 to {topics.raw('odds')}" in out

    worker = await start_component("processors", worker_env(settings))
    try:
        code, out, err = await asyncio.to_thread(
            racelab,
            settings,
            "dlq",
            "replay",
            "--stage",
            "validate",
            "--exception-class",
            "ValidationFailed",
            "--rate",
            "50",
        )
        assert code == 0 and f"replayed 3 to {topics.raw('odds')}" in out, err
        records = await collect(settings, [topics.normalized("odds")], lambda rs: len(rs) >= sum(expected.values()))
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 60)
    assert Counter(("odds", r.value.decode()) for r in records) == expected
    replayed = await collect(settings, [topics.raw("odds")], lambda rs: len(rs) >= 3)
    assert all(dict(r.headers)["dlq.replayed_from"].startswith(topics.dlq("odds").encode()) for r in replayed)


def test_cli_normalize_and_schema_export(tmp_path):
    import subprocess

    sample = "tests/samples/kra_api214_response.json"
    done = subprocess.run(
        [sys.executable, "-m", "racelab.cli", "normalize", "results", sample],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [line["topic"] for line in lines] == ["racelab.races"] + ["racelab.results"] * 10  # the race, once
    assert {line["record"]["race_id"] for line in lines} == {"horse-busan-1-20250523"}
    assert lines[0]["record"]["track_moisture_pct"] == 2
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"<html>502</html>")
    done = subprocess.run(
        [sys.executable, "-m", "racelab.cli", "normalize", "results", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and "error:" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "racelab.cli", "schemas", "export", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    odds_schema = orjson.loads((tmp_path / "s" / "racelab.odds.schema.json").read_bytes())
    assert set(odds_schema["properties"]) >= {"schema_version", "race_id", "time", "is_final", "prices"}
    price = odds_schema["$defs"]["OddsPrice"]
    assert set(price["properties"]) >= {"pool", "selection", "odds"}
    assert price["properties"]["pool"]["enum"] == ["WIN", "PLC", "QNL", "EXA", "QPL", "TLA", "TRI"]
    results_schema = orjson.loads((tmp_path / "s" / "racelab.results.schema.json").read_bytes())
    assert results_schema["anyOf"] == [{"$ref": "#/$defs/ResultRecord"}, {"$ref": "#/$defs/RankRecord"}]
    result = results_schema["$defs"]["ResultRecord"]
    assert result["properties"]["schema_version"]["enum"] == [1, 2]  # version 2; version 1 still reads
    assert {"trainer_id", "body_weight_delta", "sectionals", "split_times"} <= set(result["properties"])
    assert set(results_schema["$defs"]["Sectional"]["properties"]) == {"point", "elapsed_s", "position"}
    assert {"racer_id", "racer_name", "finish_position"} <= set(results_schema["$defs"]["RankRecord"]["properties"])
