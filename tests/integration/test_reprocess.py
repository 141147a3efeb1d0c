"""``racelab reprocess`` against the real TimescaleDB: the raw archive re-normalized with changed normalizers changes
exactly the rows the change affects (row digests and row versions of every table), a second run and a dry run change
nothing, corrected odds carry their day rollup along, and a run killed with -9 resumes to the same tables.

The history is real KRA payloads (``tests/samples``: a race's results, a horse, a jockey) plus a simulated race day
(entry sheet and final dividends), archived by the archive writer and landed by the live path (the processors'
routing, then the sink's writer), as the running pipeline would have.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from processors.dlq import DlqLimit
from processors.handler import BatchHandler
from processors.handler import RawMessage as ProcessorMessage
from processors.normalize import NORMALIZERS
from producers.simulator import envelope, render_kra
from producers.simulator.world import World
from racelab.reprocess import describe, reprocess
from runtime.db import connect
from runtime.delivery import Delivery
from runtime.kafka import ensure_topics, list_topics
from runtime.settings import Settings
from schemas import endpoints as ep
from schemas.topics import TopicCatalogue
from sinks.archive import ArchiveWriter, RawMessage
from sinks.reprocess import Selection
from sinks.rows import rows_of_message
from sinks.tables import KEYS
from sinks.writer import TimescaleWriter

from .conftest import pipeline_env, scalar, start_component
from .private_broker import PrivateBroker

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
RESULTS_AT = datetime(2025, 5, 23, 9, 0, tzinfo=UTC)  # 18:00 in Korea, the day of the sample's race
SIM_DAY = date(2025, 5, 24)  # a Saturday: Seoul races in the simulated world
TABLES = {**KEYS, "odds_daily_rollup": ("day", "race_id", "pool")}  # a row per pool, its selections in arrays
Digests = dict[str, dict[str, tuple[str, int]]]
UNNESTED = (
    "unnest(t.selections, t.open_odds, t.close_odds, t.high_odds, t.low_odds, t.snapshots, t.first_at, t.last_at) "
    "AS s(selection, open_odds, close_odds, high_odds, low_odds, snapshots, first_at, last_at)"
)


def _message(n: int, kind: str, endpoint: str, params: dict[str, str], body: bytes, at: datetime) -> RawMessage:
    headers = [
        ("source", b"kra"),
        ("kind", kind.encode()),
        ("endpoint", endpoint.encode()),
        ("params", orjson.dumps(params, option=orjson.OPT_SORT_KEYS)),
        ("fetched_at", at.isoformat(timespec="microseconds").replace("+00:00", "Z").encode()),
        ("poll_id", f"poll-{n:04d}".encode()),
        ("http_status", b"200"),
    ]
    return RawMessage(f"racelab.raw.{kind}", 0, n, None, f"key-{n}".encode(), body, headers)


def history(sim_days: int = 1) -> list[RawMessage]:
    """Real payloads (results polled twice, ten minutes apart; a horse; a jockey) and simulated Seoul days."""
    results = (SAMPLES / "kra_api214_response.json").read_bytes()
    params = {"meet": "3", "rc_date": "20250523", "rc_no": "1"}
    out = [
        _message(0, "results", ep.KRA_RACE_RESULT.path, params, results, RESULTS_AT),
        _message(1, "results", ep.KRA_RACE_RESULT.path, params, results, RESULTS_AT + timedelta(minutes=10)),
        _message(
            2,
            "entries",
            ep.KRA_HORSE_INFO.path,
            {"meet": "3"},
            (SAMPLES / "kra_api8_2_response.json").read_bytes(),
            RESULTS_AT,
        ),
        _message(
            3,
            "entries",
            ep.KRA_JOCKEY_INFO.path,
            {"meet": "3"},
            (SAMPLES / "kra_api12_response.json").read_bytes(),
            RESULTS_AT,
        ),
    ]
    world = World(seed=5)
    for d in range(sim_days):
        day = SIM_DAY + timedelta(days=7 * d)
        races = world.races("seoul", day)
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        rows = render_kra.entry_sheet_rows(races)
        body = envelope.json_body(rows, 1, len(rows), len(rows))
        out.append(
            _message(len(out), "entries", ep.KRA_ENTRY_SHEET.path, {"meet": "1", "rc_date": f"{day:%Y%m%d}"}, body, at)
        )
        for race in races:
            rows = render_kra.final_dividend_rows(race)
            for n in range(0, len(rows), 500):
                body = envelope.json_body(rows[n : n + 500], n // 500 + 1, 500, len(rows))
                race_params = {"meet": "1", "rc_date": f"{day:%Y%m%d}", "rc_no": str(race.race_no)}
                fetched = at + timedelta(hours=race.race_no, seconds=n // 500)
                out.append(_message(len(out), "odds", ep.KRA_FINAL_DIVIDENDS.path, race_params, body, fetched))
    return out


async def land(settings: Settings, messages: list[RawMessage]) -> None:
    """Archive the messages and land them as the live path does: processors' routing, then the sink's writer."""
    archive = ArchiveWriter(settings.database)
    await archive.write_until_done(messages)
    await archive.stop()
    topics = TopicCatalogue(settings.topics.prefix)
    writer = TimescaleWriter(settings.database)
    for message in messages:
        kind = dict(message.headers)["kind"].decode()
        handler = BatchHandler(cast(Any, kind), topics, cast(Delivery, None), DlqLimit())
        routed = ProcessorMessage(message.topic, 0, message.offset, message.key, message.value, list(message.headers))
        outgoing, result = handler.route([routed])
        assert result.dead_letters == 0
        rows = [row for topic, _, value, _ in outgoing for row in rows_of_message(topic.rsplit(".", 1)[1], value)]
        await writer.write_until_done(rows)
    await writer.stop()


async def digests(settings: Settings) -> Digests:
    """Per table, per key: the row's digest (every column but ``updated_at``) and its version (``xmin``)."""
    conn = await connect(settings.database)
    try:
        out: Digests = {}
        for table, keys in TABLES.items():
            key = " || '|' || ".join(f"t.{k}::text" for k in keys)
            digest = "md5((to_jsonb(t) - 'updated_at')::text)"
            source = f"{table} t"
            if table == "odds_daily_rollup":  # a pool's selections, in no particular order within its arrays
                digest = "md5(string_agg(to_jsonb(s)::text, ',' ORDER BY s.selection))"
                source += f", {UNNESTED} GROUP BY t.day, t.race_id, t.pool, t.xmin::text"
            found = await conn.fetch(
                f"SELECT {key} AS key, {digest} AS digest, t.xmin::text::bigint AS v FROM {source}"
            )
            out[table] = {r["key"]: (r["digest"], r["v"]) for r in found}
        return out
    finally:
        await conn.close()


def changed(before: Digests, after: Digests) -> dict[str, set[str]]:
    """The keys whose digest or version differs, per table (rows that appeared or went away included)."""
    out: dict[str, set[str]] = {}
    for table in TABLES:
        keys = set(before[table]) | set(after[table])
        diff = {k for k in keys if before[table].get(k) != after[table].get(k)}
        if diff:
            out[table] = diff
    return out


def renamed_trainers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed results normalizer: the trainers of runners 2 and 10 read as '수정'."""
    original = NORMALIZERS[ep.KRA_RACE_RESULT.path]

    def changed_normalizer(rows: Any, ctx: Any) -> Any:
        out = original(rows, ctx)
        for result in out["results"]:
            if result["entry_no"] in (2, 10):
                result["trainer_name"] = "수정"
        return out

    monkeypatch.setitem(NORMALIZERS, ep.KRA_RACE_RESULT.path, changed_normalizer)


SELECTION = Selection(date(2025, 5, 23), SIM_DAY)


async def test_reprocess_changes_exactly_the_rows_a_normalizer_change_affects(
    settings: Settings, db_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await land(settings, history())
    landed = await digests(settings)
    assert len(landed["results"]) == 10 and len(landed["horses"]) == 1 and len(landed["jockeys"]) == 1
    assert len(landed["odds_snapshots"]) > 1000 and len(landed["entries"]) > 50

    same = await reprocess(settings, SELECTION)  # today's normalizers are those that landed it: nothing to do
    assert same.report.responses == same.total > 30
    assert same.report.is_empty() and not same.report.failed
    assert changed(landed, await digests(settings)) == {}  # not even rewritten (same row versions)

    renamed_trainers(monkeypatch)
    runs_before = await scalar(settings, "SELECT count(*) FROM reprocess_runs")
    dry = await reprocess(settings, SELECTION, dry_run=True)
    assert dict(dry.report.changed) == {"results.trainer_name": 2}
    assert not dry.report.inserted
    assert sorted(dry.report.examples["results.trainer_name"]) == [
        [["horse-busan-1-20250523", 2], "구민성", "수정"],
        [["horse-busan-1-20250523", 10], "안우성", "수정"],
    ]
    assert "  trainer_name: 2 rows would be changed" in describe(dry, dry_run=True)
    assert changed(landed, await digests(settings)) == {}  # a dry run writes nothing
    assert await scalar(settings, "SELECT count(*) FROM reprocess_runs") == runs_before

    real = await reprocess(settings, SELECTION)
    assert dict(real.report.changed) == {"results.trainer_name": 2}
    after = await digests(settings)
    assert changed(landed, after) == {"results": {"horse-busan-1-20250523|2", "horse-busan-1-20250523|10"}}
    names = await scalar(
        settings,
        "SELECT string_agg(entry_no || ':' || trainer_name, ',' ORDER BY entry_no) FROM results "
        "WHERE entry_no IN (1, 2, 10)",
    )
    assert names == "1:김영관,2:수정,10:수정"

    again = await reprocess(settings, SELECTION)
    assert again.report.is_empty()
    assert changed(after, await digests(settings)) == {}


async def test_reprocess_corrects_odds_and_their_day_rollup(
    settings: Settings, db_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await land(settings, history())
    landed = await digests(settings)
    original = NORMALIZERS[ep.KRA_FINAL_DIVIDENDS.path]

    def changed_normalizer(rows: Any, ctx: Any) -> Any:  # the win price of runner 1 of race 1 read 10.0 higher
        out = original(rows, ctx)
        for board in out["odds"]:  # OddsBoard models; their prices are plain mappings
            for price in board.prices if board.race_id.startswith("horse-seoul-1-") else []:
                if price["pool"] == "WIN" and price["selection"] == "1":
                    price["odds"] += 10.0
        return out

    monkeypatch.setitem(NORMALIZERS, ep.KRA_FINAL_DIVIDENDS.path, changed_normalizer)
    stored = await scalar(
        settings,
        "SELECT odds FROM odds_snapshots WHERE race_id LIKE 'horse-seoul-1-%' AND pool = 'WIN' AND selection = '1'",
    )
    run = await reprocess(settings, Selection(SELECTION.start, SELECTION.end, kinds=("odds",)))
    assert dict(run.report.changed) == {"odds_snapshots.odds": 1}
    key = f"horse-seoul-1-{SIM_DAY:%Y%m%d}|WIN|1"
    diff = changed(landed, await digests(settings))
    assert {
        t: {k.rsplit("|", 1)[0] if t == "odds_snapshots" else k.split("|", 1)[1] for k in keys}
        for t, keys in diff.items()
    } == {
        "odds_snapshots": {key},
        "odds_daily_rollup": {key.rsplit("|", 1)[0]},  # the WIN pool of the race
    }
    rollup = await scalar(
        settings,
        "SELECT array[open_odds, close_odds, high_odds, low_odds, snapshots] FROM odds_daily_summary "
        "WHERE race_id LIKE 'horse-seoul-1-%' AND pool = 'WIN' AND selection = '1'",
    )
    assert rollup == [stored + 10.0, stored + 10.0, stored + 10.0, stored + 10.0, 1]


async def test_reprocess_rebuilds_the_tables_and_resumes_after_kill_9(settings: Settings, db_schema: str) -> None:
    messages = history(sim_days=4)
    await land(settings, messages)
    landed = await digests(settings)
    conn = await connect(settings.database)
    try:  # the tables lost; the archive kept
        await conn.execute(
            "TRUNCATE races, entries, results, odds_snapshots, race_ranks, kspo_payoffs, horses, jockeys, "
            "odds_daily_rollup"
        )
    finally:
        await conn.close()
    selection = ["--from", "2025-05-23", "--to", f"{SIM_DAY + timedelta(days=21)}"]
    command = [sys.executable, "-m", "racelab.cli", "reprocess", *selection, "--page-size", "3"]
    env = pipeline_env(settings)
    first = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        while (await scalar(settings, "SELECT max(done_responses) FROM reprocess_runs") or 0) < 5:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    done = await scalar(settings, "SELECT done_responses FROM reprocess_runs")
    assert 5 <= done < len(messages), "the run must be killed midway"

    second = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await second.communicate()
    assert second.returncode == 0, err.decode()
    assert "resuming run 1" in err.decode() and f"{done:,} of {len(messages):,} responses done" in err.decode()
    assert await scalar(settings, "SELECT done_responses FROM reprocess_runs WHERE finished_at IS NOT NULL") == len(
        messages
    )
    rebuilt = await digests(settings)
    assert {t: {k: d for k, (d, _) in rows.items()} for t, rows in rebuilt.items()} == {
        t: {k: d for k, (d, _) in rows.items()} for t, rows in landed.items()
    }


async def test_a_broker_restart_keeps_the_archive_and_reprocess_rebuilds_the_tables(
    settings: Settings, db_schema: str, tmp_path: Path
) -> None:
    """A broker of this test's own (the shared one must keep its topics), killed with -9 and started again: it
    comes back empty (the local broker keeps topics in memory), the archive still holds every message archived
    before, and reprocess rebuilds the tables from it to what the live path writes."""
    broker = PrivateBroker(tmp_path)
    await broker.start()
    private = broker.settings(settings)
    try:
        topics = TopicCatalogue(private.topics.prefix)
        await ensure_topics(private.broker, topics.all_names(), 4)
        messages = history()
        producer = AIOKafkaProducer(bootstrap_servers=private.broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for m in messages:
                kind = dict(m.headers)["kind"].decode()
                await producer.send(topics.raw(kind), value=m.value, key=m.key, headers=list(m.headers))
            await producer.flush()
        finally:
            await producer.stop()
        archiver = await start_component("archiver", pipeline_env(private))
        try:
            async with asyncio.timeout(90):
                while await scalar(private, "SELECT count(*) FROM raw_archive") < len(messages):  # noqa: ASYNC110
                    await asyncio.sleep(0.3)
        finally:
            archiver.send_signal(signal.SIGTERM)
            await asyncio.wait_for(archiver.wait(), 60)
        archived = await scalar(
            private, "SELECT md5(string_agg(body_sha256::text, ',' ORDER BY body_sha256)) FROM raw_archive"
        )

        await broker.kill()
        await broker.start()  # the same address, nothing in it
        assert not await list_topics(private.broker)

        assert await scalar(private, "SELECT count(*) FROM raw_archive") == len(messages)
        assert (
            await scalar(
                private, "SELECT md5(string_agg(body_sha256::text, ',' ORDER BY body_sha256)) FROM raw_archive"
            )
            == archived
        )
        rebuilt = await reprocess(private, SELECTION)
        assert rebuilt.report.responses == len(messages) and not rebuilt.report.failed
        assert sum(rebuilt.report.inserted.values()) > 1000
        before = await digests(private)
        await land(private, messages)  # the live path on top of the rebuilt tables: nothing to change
        assert changed(before, await digests(private)) == {}
    finally:
        await broker.stop()
