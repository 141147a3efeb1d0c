from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import orjson
import pytest

from processors.errors import DecodeError, NormalizeError, ValidationFailed
from processors.normalize import common as c
from processors.normalize import normalize
from producers.simulator import envelope, render_kra, render_kspo
from producers.simulator.world import World
from schemas import endpoints as ep

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FETCHED = datetime(2024, 12, 14, 6, 0, tzinfo=UTC)
WORLD = World(seed=12)
SATURDAY, THURSDAY = date(2024, 12, 14), date(2024, 12, 12)


def ctx(endpoint: str, key: str = "k", source: str = "kra", **params: str) -> c.Context:
    return c.Context(source, endpoint, params, FETCHED, key)


def body(rows: list[dict]) -> bytes:
    return envelope.json_body(rows, 1, 1000, len(rows))


# ---- the real samples (field by field: test_real_payloads) ------------------------------------------------------
# ---- quirk helpers ----------------------------------------------------------------------------------------------
def test_quirk_helpers():
    assert c.clock_time("출발 :10:45") == time(10, 45) == c.clock_time('10"45') == c.clock_time("1045")
    assert c.race_seconds("1:12.3") == pytest.approx(72.3) and c.race_seconds(75.4) == 75.4
    assert c.race_seconds("0:00.0") is None and c.race_seconds(0) is None
    assert c.body_weight("511(+2)") == (511, 2) and c.body_weight("488(-6)") == (488, -6)
    assert c.body_weight("-") == (None, None)
    assert c.ymd(20250523) == c.ymd("2025.05.23") == c.ymd("0523", year=2025) == date(2025, 5, 23)
    assert c.iso_time("2025-05-03T10:35:00+09:00") == datetime(2025, 5, 3, 1, 35, tzinfo=UTC)
    assert [c.track_code(x) for x in ("부경", "부산경남", "영남", "광명  ", "부산", "미사리")] == [
        "busan",
        "busan",
        "busan",
        "gwangmyeong",
        "busan_cycle",
        "misari",
    ]
    assert c.result_status(1) == (1, "finished", None)
    assert [c.result_status(x)[1] for x in (91, 92, 95, 98, 99)] == [
        "disqualified",
        "did_not_finish",
        "scratched",
        "void",
        "cancelled",
    ]
    assert c.combos("(2-7-5)3.4") == [([2, 7, 5], 3.4)]
    assert c.combos("(2)1.2 (7)2.1") == [([2], 1.2), ([7], 2.1)]
    assert c.combos("①-②-⑥3.4") == [([1, 2, 6], 3.4)] and c.combos("①1.1") == [([1], 1.1)]
    assert c.circled_entry("②이길섭") == (2, "이길섭")
    assert c.selection("QNL", [7, 3, 0]) == "3-7" and c.selection("EXA", [7, 3, 0]) == "7-3"
    assert c.selection("TLA", [5, 7, 2]) == "2-5-7" and c.selection("WIN", [3, 0, 0]) == "3"
    assert c.integer("-") is None and c.integer("0051228") == 51228 and c.ident(118011, 6) == "118011"
    assert c.ident(80565, 6) == "080565"  # leading zeros lost by the JSON converter come back
    for bad in ("abc", "25:99"):
        with pytest.raises(NormalizeError):
            c.clock_time(bad)


# ---- every endpoint, through the simulator's renderings ------------------------------------------------------------
def test_kra_entry_sheet_and_plan():
    races = WORLD.races("seoul", SATURDAY)
    out = normalize(body(render_kra.entry_sheet_rows(races)), ctx(ep.KRA_ENTRY_SHEET.path))
    assert [r.race_id for r in out.races] == [r.race_id for r in races]
    assert [r.post_time for r in out.races] == [r.post_time for r in races]
    assert len(out.entries) == sum(len(r.runners) for r in races)
    runner, entry = races[0].runners[0], out.entries[0]
    assert (entry.entry_no, entry.participant_id, entry.participant_name, entry.jockey_id) == (
        runner.entry_no,
        runner.participant_id,
        runner.name,
        runner.jockey_id,
    )
    assert entry.owner_id == str(runner.owner_id) and entry.carried_weight_kg == runner.carried_weight
    assert entry.rating == (runner.rating or None)
    plan = normalize(body(render_kra.race_plan_rows(races)), ctx(ep.KRA_RACE_PLAN.path))
    assert [(r.race_id, r.post_time, r.field_size) for r in plan.races] == [
        (r.race_id, r.post_time, len(r.runners)) for r in races
    ]


def test_kra_results_status_codes_and_finality():
    races = [r for d in (SATURDAY,) for r in WORLD.races("seoul", d)]
    after = datetime(2024, 12, 15, tzinfo=UTC)
    out = normalize(body(render_kra.race_result_total_rows(races, after)), ctx(ep.KRA_RACE_RESULT_TOTAL.path))
    assert {r.status for r in out.races} <= {"official", "cancelled"}
    for race in races:
        mine = [r for r in out.results if r.race_id == race.race_id]
        finishers = [r.entry_no for r in sorted(mine, key=lambda r: r.finish_position or 99) if r.finish_position]
        assert finishers == race.finish_order
        assert {r.entry_no for r in mine if r.status == "scratched"} == set(race.scratched)
        assert {r.entry_no for r in mine if r.status == "disqualified"} == race.disqualified
        assert all(r.is_final for r in mine)


def test_kra_final_dividends_and_live_odds():
    race = WORLD.races("seoul", SATURDAY)[1]
    out = normalize(body(render_kra.final_dividend_rows(race)), ctx(ep.KRA_FINAL_DIVIDENDS.path))
    assert len(out.odds_records()) == len(race.final_odds())
    got = {(o.pool, o.selection): o.odds for o in out.odds_records()}
    for (pool, sel), value in race.final_odds().items():
        assert got[(pool, "-".join(map(str, sel)))] == value  # string-typed rows included
    assert all(o.is_final and o.time == datetime(2024, 12, 14, 14, 59, 59, tzinfo=UTC) for o in out.odds_records())
    live_at = race.post_time
    live = normalize(
        body(render_kra.live_odds_rows(race, live_at)), c.Context("kra", ep.LIVE_ODDS_PATH, {}, live_at, race.race_id)
    )
    assert {o.pool for o in live.odds_records()} == {"WIN", "PLC", "QNL"}
    assert all(not o.is_final and o.time == live_at and o.pool_total for o in live.odds_records())


def test_kspo_cycle_entries_results_and_odds():
    year, rnd, day_no = WORLD.round_of("cycle", SATURDAY)
    races = list(WORLD.races("gwangmyeong", SATURDAY))
    out = normalize(
        body(render_kspo.cycle_entry_rows(races, year, rnd, day_no)), ctx(ep.CYCLE_ENTRIES.path, source="kspo")
    )
    assert [r.race_id for r in out.races] == [r.race_id for r in races]
    assert out.races[0].details == {"stnd_yr": year, "week_tcnt": rnd, "day_tcnt": day_no}
    assert out.races[0].post_time == races[0].post_time and out.races[0].field_size == 7
    result = normalize(
        body(render_kspo.cycle_result_rows(races, year, rnd, day_no)),
        ctx(ep.CYCLE_RESULT.path, source="kspo", stnd_yr=str(year)),
    )
    for race in (r for r in races if not r.cancelled):
        top = sorted((r for r in result.results if r.race_id == race.race_id), key=lambda r: r.finish_position)
        assert [r.entry_no for r in top] == race.finish_order[:3]
        odds = {(o.pool, o.selection): o.odds for o in result.odds_records() if o.race_id == race.race_id}
        for pool in ("WIN", "EXA", "QNL", "TLA", "TRI"):
            (sel,) = race.winning()[pool]
            assert odds[(pool, "-".join(map(str, sel)))] == race.final_odds()[(pool, sel)]
        assert sum(1 for p, _ in odds if p == "PLC") == 2


def test_kspo_boat_without_dates_uses_the_key():
    year, rnd, day_no = WORLD.round_of("boat", THURSDAY)
    races = list(WORLD.races("misari", THURSDAY))
    key = f"kspo:misari:{THURSDAY:%Y%m%d}"
    out = normalize(
        body(render_kspo.boat_entry_rows(races, year, rnd, day_no)),
        ctx(ep.BOAT_ENTRIES.path, key=key, source="kspo", day_tcnt=str(day_no)),
    )
    assert [r.race_id for r in out.races] == [r.race_id for r in races]
    assert len(out.entries) == 6 * len(races)
    result = normalize(
        body(render_kspo.boat_result_rows(races, year, rnd, day_no)),
        ctx(ep.BOAT_RESULT.path, key=key, source="kspo", day_tcnt=str(day_no)),
    )
    assert {r.race_id for r in result.results} == {r.race_id for r in races if not r.cancelled}
    payoff = render_kspo.boat_payoff_rows(races, year, rnd, day_no)
    paid = normalize(body(payoff), ctx(ep.BOAT_PAYOFF.path, key=key, source="kspo"))
    assert {(r.race_id, r.status) for r in paid.races} == {(r.race_id, "official") for r in races if not r.cancelled}
    ranks = normalize(body(render_kspo.rank_rows(races, year, rnd, day_no)), ctx(ep.BOAT_RANK.path, source="kspo"))
    run = [r for r in races if not r.cancelled]
    assert sum(len(r.finish_order) for r in run) == len(ranks.results)  # every finisher, not the top three
    assert {r.race_id for r in ranks.races} == {r.race_id for r in run}


def test_kspo_boat_rows_of_another_day_than_asked_are_an_error_not_a_date_worked_out():
    """Boat rows publish no date: only the day the call asked for (``day_tcnt``, dated by the calendar in its key)
    is dated; rows of the other day of a whole-round answer are never dated by weekdays."""
    year, rnd, _ = WORLD.round_of("boat", THURSDAY)
    wednesday = THURSDAY - timedelta(days=1)
    thursday = render_kspo.boat_entry_rows(list(WORLD.races("misari", THURSDAY)), year, rnd, 2)
    rows = [*render_kspo.boat_entry_rows(list(WORLD.races("misari", wednesday)), year, rnd, 1), *thursday]
    key = f"kspo:misari:{THURSDAY:%Y%m%d}"
    with pytest.raises(NormalizeError, match="field 'day_tcnt': a boat row of day 1 in an answer for day None"):
        normalize(body(rows), ctx(ep.BOAT_ENTRIES.path, key=key, source="kspo"))
    with pytest.raises(NormalizeError, match="a boat row of day 1 in an answer for day 2"):
        normalize(body(rows), ctx(ep.BOAT_ENTRIES.path, key=key, source="kspo", day_tcnt="2"))
    out = normalize(body(thursday), ctx(ep.BOAT_ENTRIES.path, key=key, source="kspo", day_tcnt="2"))
    assert {r.race_date for r in out.races} == {THURSDAY}


# ---- failures by stage ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff",
        b"{not json",
        b"[1]",
        b'{"response": 1}',
        envelope.gateway_error("22"),
        envelope.json_error("99", "ERROR"),
    ],
)
def test_unreadable_bodies_are_decode_errors(raw):
    with pytest.raises(DecodeError):
        normalize(raw, ctx(ep.KRA_RACE_RESULT.path))


def test_content_errors_by_stage():
    row = render_kra.final_dividend_rows(WORLD.races("seoul", SATURDAY)[0])[0]
    with pytest.raises(NormalizeError, match="unknown track"):
        normalize(body([{**row, "meet": "화성"}]), ctx(ep.KRA_FINAL_DIVIDENDS.path))
    with pytest.raises(NormalizeError, match="unknown pool"):
        normalize(body([{**row, "pool": "로또"}]), ctx(ep.KRA_FINAL_DIVIDENDS.path))
    with pytest.raises(ValidationFailed, match="odds"):
        normalize(body([{**row, "odds": -3}]), ctx(ep.KRA_FINAL_DIVIDENDS.path))
    with pytest.raises(NormalizeError, match="expected a number"):
        normalize(body([{**row, "odds": "lots"}]), ctx(ep.KRA_FINAL_DIVIDENDS.path))
    with pytest.raises(NormalizeError, match="no normalizer"):
        normalize(body([row]), ctx("API999/unknown"))


def test_records_serialize_with_schema_version_and_column_names():
    race = WORLD.races("seoul", SATURDAY)[0]
    out = normalize(body(render_kra.final_dividend_rows(race)[:1]), ctx(ep.KRA_FINAL_DIVIDENDS.path))
    doc = orjson.loads(out.odds_records()[0].model_dump_json())
    assert doc["schema_version"] == 2
    assert set(doc) == {
        "schema_version",
        "race_id",
        "time",
        "pool",
        "selection",
        "odds",
        "is_final",
        "pool_total",
        "popularity_rank",
        "source",
    }
