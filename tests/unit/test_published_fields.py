"""Nothing published is dropped: every field of every collected endpoint (schemas.fields, from the reference's
field tables) is either a typed column or kept verbatim in ``details``; and the simulator renders every one.

The rows come from the simulator because it must render the full shape; the values it renders are not what is
checked here (the real payloads are, in test_real_payloads): only where each field lands.
"""

from datetime import UTC, date, datetime

import pytest

from processors.normalize import TYPED_FIELDS, normalize
from processors.normalize import common as c
from producers.simulator import envelope, render_kra, render_kspo
from producers.simulator.world import World
from schemas import endpoints as ep
from schemas.fields import PUBLISHED

WORLD = World(seed=3)
SATURDAY, THURSDAY = date(2024, 12, 14), date(2024, 12, 12)
NOW = datetime(2024, 12, 15, tzinfo=UTC)
PENDING: set[str] = set()  # every collected endpoint is mapped


def _scratched_race():
    for day in (SATURDAY, date(2024, 12, 15), date(2024, 12, 21), date(2024, 12, 22)):
        for race in WORLD.races("seoul", day):
            if race.scratched:
                return race
    raise AssertionError("no scratch in the simulated weeks")


def rendered(endpoint: str) -> tuple[list[dict], c.Context]:
    """Rows of one endpoint as the simulator renders them, and the context of their message."""
    seoul, busan = list(WORLD.races("seoul", SATURDAY)), list(WORLD.races("busan", date(2024, 12, 13)))
    cycle = list(WORLD.races("gwangmyeong", SATURDAY))
    boat = list(WORLD.races("misari", THURSDAY))
    year, rnd, day_no = WORLD.round_of("cycle", SATURDAY)
    byear, brnd, bday = WORLD.round_of("boat", THURSDAY)
    boat_key = f"kspo:misari:{THURSDAY:%Y%m%d}"
    rows = {
        ep.KRA_RACE_PLAN.path: lambda: render_kra.race_plan_rows(tuple(seoul)),
        ep.KRA_ENTRY_SHEET.path: lambda: render_kra.entry_sheet_rows(tuple(seoul)),
        ep.KRA_SCRATCHES.path: lambda: render_kra.scratch_rows([_scratched_race()]),
        ep.KRA_FINAL_DIVIDENDS.path: lambda: render_kra.final_dividend_rows(seoul[0])[:40],
        ep.KRA_RACE_RESULT.path: lambda: (
            render_kra.race_result_rows(busan[:1]) + render_kra.race_result_rows(seoul[:1])
        ),
        ep.KRA_RACE_RESULT_TOTAL.path: lambda: render_kra.race_result_total_rows(seoul[:1], NOW),
        ep.KRA_HORSE_INFO.path: lambda: render_kra.horse_info_rows(seoul[:1]),
        ep.KRA_JOCKEY_INFO.path: lambda: render_kra.jockey_info_rows(seoul[:1]),
        ep.CYCLE_ENTRIES.path: lambda: render_kspo.cycle_entry_rows(cycle[:1], year, rnd, day_no),
        ep.CYCLE_RESULT.path: lambda: render_kspo.cycle_result_rows(cycle[:2], year, rnd, day_no),
        ep.CYCLE_RANK.path: lambda: render_kspo.rank_rows(cycle[:3], year, rnd, day_no),
        ep.CYCLE_PAYOFF.path: lambda: render_kspo.cycle_payoff_rows(cycle[:2], year, rnd, day_no),
        ep.BOAT_ENTRIES.path: lambda: render_kspo.boat_entry_rows(boat[:1], byear, brnd, bday),
        ep.BOAT_RESULT.path: lambda: render_kspo.boat_result_rows(boat[:2], byear, brnd, bday),
        ep.BOAT_RANK.path: lambda: render_kspo.rank_rows(boat[:1], byear, brnd, bday),
        ep.BOAT_PAYOFF.path: lambda: render_kspo.boat_payoff_rows(boat[:1], byear, brnd, bday),
    }[endpoint]()
    source = ep.BY_PATH[endpoint].source
    params = {"stnd_yr": str(year), "day_tcnt": str(bday)} if source == "kspo" else {}
    return rows, c.Context(source, endpoint, params, NOW, boat_key if "MBR" in endpoint else "k")


def _published_value(value: object) -> bool:
    """Whether a value says something (the null sentinels and 0 for "not measured" do not)."""
    return c.text(value) is not None and value not in (0, 0.0, "0")


def test_the_catalogue_is_the_reference_s():
    sample_keys = 90  # every row of the real API214_1 sample has these 90 keys (test_real_payloads reads them)
    assert len(PUBLISHED[ep.KRA_RACE_RESULT.path]) == len(set(PUBLISHED[ep.KRA_RACE_RESULT.path])) == sample_keys
    assert len(PUBLISHED[ep.CYCLE_ENTRIES.path]) == 47  # "excerpt of 47 keys" (Example E)
    assert set(PUBLISHED) == {e.path for e in ep.ALL_ENDPOINTS}


def test_every_collected_endpoint_is_mapped():
    assert set(PUBLISHED) == set(TYPED_FIELDS) and not PENDING


@pytest.mark.parametrize("endpoint", sorted(PUBLISHED))
def test_the_simulator_renders_every_published_field(endpoint):
    rows, _ = rendered(endpoint)
    assert rows
    for row in rows:
        missing = [name for name in PUBLISHED[endpoint] if name not in row]
        assert not missing, f"{endpoint} rows lack {missing}"


def records_by_topic(rows: list[dict], context) -> dict[str, list]:
    """The records of a page by topic, odds as table rows (a board's prices carry the typed odds fields)."""
    out = normalize(envelope.json_body(rows, 1, 1000, len(rows)), context)
    return {**out.by_topic(), "odds": out.odds_records()}


def lost_fields(rows: list[dict], out: dict[str, list], published: tuple[str, ...], typed: dict[str, str]) -> list:
    """The published fields that land nowhere: typed but always empty, or neither typed nor in some ``details``."""
    lost = []
    for name in published:
        if name in typed:
            topic, column = typed[name].split(".")
            records = out[topic]
            if not records or not all(hasattr(r, column) for r in records):
                lost.append(f"{name} (no column {typed[name]})")
            elif any(_published_value(row.get(name)) for row in rows) and all(
                getattr(r, column) in (None, [], {}) for r in records
            ):
                lost.append(f"{name} (typed as {typed[name]}, always empty)")
            continue
        kept_in = [r.details for topic in ("races", "entries", "results") for r in out[topic] if name in r.details]
        if not kept_in:
            lost.append(f"{name} (neither typed nor in details)")
        elif not any(d[name] in [row[name] for row in rows] for d in kept_in):
            lost.append(f"{name} (details hold a value no row published)")
    return lost


@pytest.mark.parametrize("endpoint", sorted(set(PUBLISHED) - PENDING))
def test_every_published_field_is_typed_or_kept(endpoint):
    rows, context = rendered(endpoint)
    out = records_by_topic(rows, context)
    assert lost_fields(rows, out, PUBLISHED[endpoint], TYPED_FIELDS[endpoint]) == []


def test_the_check_fails_on_a_dropped_field():
    """The check reports a field it is told nobody types (a typed field is not repeated in details)."""
    rows, context = rendered(ep.KRA_RACE_RESULT.path)
    out = records_by_topic(rows, context)
    typed = dict(TYPED_FIELDS[ep.KRA_RACE_RESULT.path])
    del typed["wgHr"]
    assert lost_fields(rows, out, PUBLISHED[ep.KRA_RACE_RESULT.path], typed) == ["wgHr (neither typed nor in details)"]
    rows = [{**row, "newField": "x"} for row in rows]
    out = records_by_topic(rows, context)
    assert all(r.details["newField"] == "x" for r in out["results"])  # a field nobody knows is kept, not dropped
