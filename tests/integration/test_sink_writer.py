"""The batch writer against the real TimescaleDB: upsert rules, placeholders, idempotency, bad rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from processors.normalize import normalize
from processors.normalize.common import Context
from producers.simulator import envelope, render_kra
from producers.simulator.world import World
from runtime.db import connect
from runtime.metrics import SinkMetrics
from runtime.settings import Settings
from schemas import endpoints as ep
from schemas.records import EntryRecord, ResultRecord
from sinks import rollup
from sinks.writer import RowEncodingError, TimescaleWriter, rows_of_record

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
WORLD = World(seed=41)
DAY = date(2024, 12, 14)
T0 = datetime(2024, 12, 14, 1, 0, tzinfo=UTC)


def rows_of(endpoint: str, body_rows: list[dict], fetched: datetime, key: str = "k") -> list:
    out = normalize(envelope.json_body(body_rows, 1, 5000, len(body_rows)), Context("kra", endpoint, {}, fetched, key))
    return [row for recs in out.by_topic().values() for r in recs for row in rows_of_record(r, r)]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def writer(settings: Settings, db_schema: str, registry: CollectorRegistry):
    w = TimescaleWriter(settings.database, SinkMetrics(registry))
    await w.start()
    yield w
    await w.stop()


async def fetch(settings: Settings, sql: str, *args):
    conn = await connect(settings.database)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_odds_are_idempotent_and_races_appear_as_placeholders(settings: Settings, writer: TimescaleWriter):
    race = WORLD.races("seoul", DAY)[0]
    rows = rows_of(ep.KRA_FINAL_DIVIDENDS.path, render_kra.final_dividend_rows(race), T0)
    first = await writer.write(rows)
    assert first.rows["odds_snapshots"] == len(race.final_odds()) and not first.rejected
    again = await writer.write(rows)  # a replay
    assert again.rows["odds_snapshots"] == 0
    (count,) = await fetch(settings, "SELECT count(*) FROM odds_snapshots")
    assert count[0] == len(race.final_odds())
    (placeholder,) = await fetch(settings, "SELECT race_type, track_code, race_date, race_no, status FROM races")
    assert tuple(placeholder) == ("horse", "seoul", DAY, race.race_no, "unknown")


async def write_all(writer: TimescaleWriter, batches: list[list], together: bool) -> None:
    """Each batch in a write of its own, or all of them in one write (several versions of a row in one batch)."""
    for batch in [[row for b in batches for row in b]] if together else batches:
        result = await writer.write(batch)
        assert not result.rejected


@pytest.mark.parametrize("together", [False, True], ids=["separate-batches", "one-batch"])
async def test_newer_versions_win_older_ones_only_fill_gaps(settings: Settings, writer: TimescaleWriter, together):
    races = WORLD.races("seoul", DAY)
    sheet = render_kra.entry_sheet_rows(races[:1])
    # a newer entry sheet changes a jockey; a scratch arrives; an old copy of the sheet is replayed last
    changed = [dict(sheet[0], jkName="새기수", jkNo="080999"), *sheet[1:]]
    scratch = [
        {
            "meet": "서울",
            "rcDate": 20241214,
            "rcNo": races[0].race_no,
            "chulNo": sheet[1]["chulNo"],
            "hrName": sheet[1]["hrName"],
            "hrNo": sheet[1]["hrNo"],
            "cancelReason": "마체이상",
        }
    ]
    batches = [
        rows_of(ep.KRA_ENTRY_SHEET.path, sheet, T0),
        rows_of(ep.KRA_ENTRY_SHEET.path, changed, T0 + timedelta(minutes=30)),
        rows_of(ep.KRA_SCRATCHES.path, scratch, T0 + timedelta(minutes=40)),
        rows_of(ep.KRA_ENTRY_SHEET.path, sheet, T0 - timedelta(hours=1)),
    ]
    await write_all(writer, batches, together)
    entries = {
        r["entry_no"]: r for r in await fetch(settings, "SELECT * FROM entries WHERE race_id = $1", races[0].race_id)
    }
    first, second = entries[sheet[0]["chulNo"]], entries[sheet[1]["chulNo"]]
    assert (first["jockey_name"], first["jockey_id"]) == ("새기수", "080999")  # the older copy did not undo it
    assert (second["status"], second["scratch_reason"]) == ("scratched", "마체이상")
    assert second["participant_name"] == sheet[1]["hrName"] and second["jockey_name"]  # scratch kept the rest
    (race,) = await fetch(
        settings, "SELECT status, post_time, field_size FROM races WHERE race_id = $1", races[0].race_id
    )
    assert race["status"] == "scheduled" and race["post_time"] == races[0].post_time


@pytest.mark.parametrize("together", [False, True], ids=["separate-batches", "one-batch"])
async def test_results_become_final_and_races_official(settings: Settings, writer: TimescaleWriter, together):
    races = list(WORLD.races("seoul", DAY))
    after = datetime(2024, 12, 15, tzinfo=UTC)
    batches = [
        rows_of(ep.KRA_RACE_RESULT_TOTAL.path, render_kra.race_result_total_rows(races, after), after),
        rows_of(ep.KRA_RACE_RESULT.path, render_kra.race_result_rows(races), after + timedelta(1)),
        rows_of(ep.KRA_RACE_PLAN.path, render_kra.race_plan_rows(tuple(races)), after + timedelta(2)),
    ]
    await write_all(writer, batches, together)
    statuses = {r["status"] for r in await fetch(settings, "SELECT status FROM races")}
    assert statuses <= {"official", "cancelled"}  # a later schedule poll does not move status back
    (not_final,) = await fetch(settings, "SELECT count(*) FROM results WHERE NOT is_final")
    assert not_final[0] == 0  # API214_1 (no finality flag) came later and did not undo is_final
    winners = await fetch(settings, "SELECT race_id, entry_no FROM results WHERE finish_position = 1")
    assert {(w["race_id"], w["entry_no"]) for w in winners} == {
        (r.race_id, r.finish_order[0]) for r in races if not r.cancelled
    }


@pytest.mark.parametrize("together", [False, True], ids=["separate-batches", "one-batch"])
async def test_a_corrected_result_clears_the_position_it_replaces(settings, writer, together):
    race_id = "horse-seoul-1-20241214"

    def result(entry_no: int, position: int | None, status: str, at: datetime) -> list:
        record = ResultRecord(
            race_id=race_id,
            entry_no=entry_no,
            finish_position=position,
            status=status,
            participant_name=f"runner {entry_no}",
            is_final=True,
            source="kra",
            source_fetched_at=at,
        )
        return rows_of_record(record, record)

    first = result(1, 1, "finished", T0) + result(2, 2, "finished", T0)
    corrected = result(1, None, "disqualified", T0 + timedelta(hours=1)) + result(2, 1, "finished", T0 + timedelta(1))
    await write_all(writer, [first, corrected, first], together)  # the first copy comes back last (a replay)
    rows = await fetch(settings, "SELECT entry_no, finish_position, status FROM results ORDER BY entry_no")
    assert [tuple(r) for r in rows] == [(1, None, "disqualified"), (2, 1, "finished")]


async def test_a_value_its_column_cannot_hold_is_isolated(settings: Settings, writer: TimescaleWriter):
    def entry(entry_no: int, body_weight: int) -> list:
        record = EntryRecord(
            race_id="horse-seoul-2-20241214",
            entry_no=entry_no,
            participant_name=f"runner {entry_no}",
            body_weight_kg=body_weight,
            source="kra",
            source_fetched_at=T0,
        )
        return rows_of_record(record, f"entry-{entry_no}")

    rows = [row for n in range(1, 13) for row in entry(n, 40_000 if n == 5 else 480 + n)]  # smallint: 32,767 at most
    result = await writer.write_until_done(rows)
    assert [(r.source, type(e)) for r, e in result.rejected] == [("entry-5", RowEncodingError)]
    assert "int16" in str(result.rejected[0][1])
    (count,) = await fetch(settings, "SELECT count(*) FROM entries")
    assert count[0] == 11


async def test_a_connection_killed_inside_a_transaction_is_an_outage_that_the_write_waits_out(
    settings: Settings, writer: TimescaleWriter, registry
):
    """The server ends the writer's connection in the middle of a transaction (a restart, a failover): leaving the
    transaction then raises a plain InterfaceError; it must count as an outage, not as a bug."""
    conn = await connect(settings.database)
    try:
        await conn.execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$"
        )
        await conn.execute("CREATE TRIGGER slow AFTER INSERT ON races FOR EACH STATEMENT EXECUTE FUNCTION slow()")
        race = WORLD.races("seoul", DAY)[2]
        rows = rows_of(ep.KRA_FINAL_DIVIDENDS.path, render_kra.final_dividend_rows(race), T0)
        writing = asyncio.create_task(writer.write_until_done(rows, max_delay_s=0.2))
        find = (
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'racelab' AND pid <> pg_backend_pid() "
            "AND datname = current_database() AND state = 'active' AND query LIKE '%INSERT INTO races%'"
        )
        async with asyncio.timeout(10):
            while (pid := await conn.fetchval(find)) is None:  # noqa: ASYNC110 - polling the server
                await asyncio.sleep(0.02)
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        result = await asyncio.wait_for(writing, 30)
        assert result.retries >= 1 and not result.rejected and result.rows["odds_snapshots"] == len(rows)
        assert registry.get_sample_value("racelab_sink_db_errors_total", {"kind": "unavailable"}) >= 1
        assert await conn.fetchval("SELECT count(*) FROM odds_snapshots") == len(rows)
    finally:
        await conn.close()


async def test_a_bad_row_is_isolated_and_the_rest_lands(settings: Settings, writer: TimescaleWriter, registry):
    race = WORLD.races("seoul", DAY)[1]
    rows = rows_of(ep.KRA_FINAL_DIVIDENDS.path, render_kra.final_dividend_rows(race)[:200], T0)
    bad_values = list(rows[77].values)
    bad_values[3] = "1,2"  # selection breaks the table's CHECK constraint
    unknown_track = list(rows[150].values)
    unknown_track[1] = "horse-nowhere-1-20241214"  # the placeholder race hits the tracks foreign key
    rows[77] = type(rows[77])(rows[77].table, tuple(bad_values), "bad-77")
    rows[150] = type(rows[150])(rows[150].table, tuple(unknown_track), "bad-150")
    result = await writer.write_until_done(rows)
    assert [r.source for r, _ in result.rejected] == ["bad-77", "bad-150"]
    sample = registry.get_sample_value
    assert sample("racelab_sink_rows_written_total", {"table": "odds_snapshots"}) == 198
    assert sample("racelab_sink_rows_rejected_total", {"table": "odds_snapshots"}) == 2
    assert sample("racelab_sink_batch_records_count") == 1 and sample("racelab_sink_batch_records_sum") == 200
    assert sample("racelab_sink_db_errors_total", {"kind": "bad_data"}) >= 2
    assert result.rows["odds_snapshots"] == 198
    (count,) = await fetch(settings, "SELECT count(*) FROM odds_snapshots")
    assert count[0] == 198


async def test_the_day_rollup_counts_each_inserted_snapshot_once_whatever_the_order(
    settings: Settings, writer: TimescaleWriter
):
    """The incrementally kept day summary equals one computed from the stored snapshots, after out-of-order
    batches, a batch that mixes new and already stored snapshots (the upsert path), and a full replay."""
    conn = await connect(settings.database)
    try:
        if not await rollup.exists(conn):
            pytest.skip("a licensed server keeps a continuous aggregate instead of the rollup table")
    finally:
        await conn.close()
    race = WORLD.races("seoul", DAY)[1]
    snapshots = [race.post_time - timedelta(minutes=m) for m in (30, 20, 10, 5, 1)]
    batches = [rows_of(ep.LIVE_ODDS_PATH, render_kra.live_odds_rows(race, at), at, race.race_id) for at in snapshots]
    await writer.write(batches[2])
    await writer.write(batches[0])  # earlier than what is stored: moves the open
    await writer.write(batches[1] + batches[2])  # half already stored: only the new half is rolled up
    await writer.write(batches[4])
    await writer.write(batches[3])
    for batch in batches:
        await writer.write(batch)  # replay: inserts nothing, rolls up nothing
    kept = await fetch(settings, "SELECT * FROM odds_daily_summary ORDER BY day, race_id, pool, selection")
    conn = await connect(settings.database)
    try:
        assert await rollup.rebuild(conn) > 0
        computed = await conn.fetch("SELECT * FROM odds_daily_summary ORDER BY day, race_id, pool, selection")
        (stored,) = await conn.fetch("SELECT count(*) FROM odds_snapshots")
    finally:
        await conn.close()
    assert [tuple(r) for r in kept] == [tuple(r) for r in computed]
    assert sum(r["snapshots"] for r in kept) == stored[0] > 0
    assert any(r["open_odds"] != r["close_odds"] for r in kept)  # the live prices moved between snapshots


async def test_the_version_2_migrations_are_additive_and_keep_existing_rows(settings: Settings, tmp_path):
    """A database at version 0008 with results written by version 1 records: 0009-0017 add columns, tables and
    indexes, the rows keep every value, and a version 2 write of the same runner fills the new columns."""
    import shutil

    from sinks.migrate import MIGRATIONS_DIR, migrate

    old = tmp_path / "migrations"
    old.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name[:4] <= "0008":
            shutil.copy(path, old / path.name)
    await migrate(settings.database, old)
    conn = await connect(settings.database)
    try:
        await conn.execute(
            "INSERT INTO results (race_id, entry_no, finish_position, status, finish_time_s, participant_id, "
            "participant_name, is_final, details, source) VALUES ('horse-busan-1-20250523', 10, 1, 'finished', 75.4, "
            "'0051228', '올라운드원', false, '{\"wgHr\": \"511(+2)\"}', 'kra')"
        )
        before = dict(await conn.fetchrow("SELECT * FROM results"))
        applied = await migrate(settings.database)
        assert [m.version for m in applied] == [f"{n:04d}" for n in range(9, 19)]
        after = dict(await conn.fetchrow("SELECT * FROM results"))
        assert {k: after[k] for k in before} == before  # every old value kept
        assert after["body_weight_kg"] is None and after["sectionals"] is None  # the new columns start empty
        assert await conn.fetchval("SELECT name_ko FROM tracks WHERE code = 'yeongcheon'") == "영천"
        for table in ("race_ranks", "kspo_calendar", "kspo_payoffs", "horses", "jockeys"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
        newer = ResultRecord(
            race_id="horse-busan-1-20250523",
            entry_no=10,
            finish_position=1,
            status="finished",
            participant_name="올라운드원",
            body_weight_kg=511,
            body_weight_delta=2,
            is_final=False,
            source="kra",
            source_fetched_at=T0,
        )
        w = TimescaleWriter(settings.database)
        try:
            assert not (await w.write(rows_of_record(newer, newer))).rejected
        finally:
            await w.stop()
        row = await conn.fetchrow(
            "SELECT finish_time_s, participant_id, body_weight_kg, body_weight_delta FROM results"
        )
        assert tuple(row) == (pytest.approx(75.4), "0051228", 511, 2)  # old values kept, new ones filled
    finally:
        await conn.execute(f'DROP SCHEMA "{settings.database.schema_name}" CASCADE')
        await conn.close()


async def test_profiles_are_stored_by_id_the_newest_winning(settings: Settings, writer: TimescaleWriter):
    horse = (SAMPLES / "kra_api8_2_response.json").read_bytes()
    jockey = (SAMPLES / "kra_api12_response.json").read_bytes()
    for body, endpoint in ((horse, ep.KRA_HORSE_INFO.path), (jockey, ep.KRA_JOCKEY_INFO.path)):
        out = normalize(body, Context("kra", endpoint, {}, T0, "k"))
        assert not (await writer.write([row for r in out.entries for row in rows_of_record(r, r)])).rejected
    first = normalize(horse, Context("kra", ep.KRA_HORSE_INFO.path, {}, T0, "k")).entries[0]
    newer = first.model_copy(update={"grade": "국4", "source_fetched_at": T0 + timedelta(days=30)})
    assert not (await writer.write(rows_of_record(newer, newer))).rejected
    (h,) = await fetch(settings, "SELECT horse_id, name, grade, sire_name, owner_id, details->>'rcCntT' FROM horses")
    assert tuple(h) == ("0051228", "올라운드원", "국4", "사이먼퓨어", "118011", "2")
    (j,) = await fetch(settings, "SELECT jockey_id, name, debut_date, track_code FROM jockeys")
    assert tuple(j) == ("080405", "김용근", date(2005, 5, 4), "seoul")


async def test_the_rollup_of_one_row_per_selection_becomes_one_row_per_pool_with_the_same_summary(
    settings: Settings, tmp_path
):
    """Migration 0018 (Apache build): the day rollup kept by selection (0007) is regrouped by pool; the summary view
    reads the same rows, values and types as before."""
    import shutil

    from sinks.migrate import MIGRATIONS_DIR, migrate

    old = tmp_path / "migrations"
    old.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name[:4] <= "0017":
            shutil.copy(path, old / path.name)
    await migrate(settings.database, old)
    conn = await connect(settings.database)
    try:
        if not await rollup.exists(conn):
            pytest.skip("a licensed server keeps a continuous aggregate instead of the rollup table")
        await conn.execute(
            "INSERT INTO odds_daily_rollup VALUES "
            "('2024-12-13 15:00+00', 'horse-seoul-3-20241214', 'WIN', '7', 4.5, 3.9, 4.6, 3.8, 12, "
            "'2024-12-14 04:00+00', '2024-12-14 14:59:59+00'), "
            "('2024-12-13 15:00+00', 'horse-seoul-3-20241214', 'WIN', '10', 21.0, 25.5, 26.0, 20.5, 11, "
            "'2024-12-14 04:01+00', '2024-12-14 14:59:59+00'), "
            "('2024-12-13 15:00+00', 'horse-seoul-3-20241214', 'QNL', '3-7', 12.5, 12.5, 12.5, 12.5, 1, "
            "'2024-12-14 14:59:59+00', '2024-12-14 14:59:59+00')"
        )
        before = [tuple(r) for r in await conn.fetch("SELECT * FROM odds_daily_summary ORDER BY pool, selection")]
        assert [m.version for m in await migrate(settings.database)] == ["0018"]
        after = [tuple(r) for r in await conn.fetch("SELECT * FROM odds_daily_summary ORDER BY pool, selection")]
        pools = await conn.fetch("SELECT pool, selections FROM odds_daily_rollup ORDER BY pool")
    finally:
        await conn.close()
    assert after == before
    assert [(r["pool"], r["selections"]) for r in pools] == [("QNL", ["3-7"]), ("WIN", ["10", "7"])]
    assert [(r[2], r[3], r[5], r[8]) for r in after] == [
        ("QNL", "3-7", 12.5, 1),
        ("WIN", "10", 25.5, 11),
        ("WIN", "7", 3.9, 12),
    ]
