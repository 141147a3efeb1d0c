"""The KSPO rank join against the real TimescaleDB: every finisher of a cycle or boat race gets its result and its
racer id whichever of card and ranks arrives first, and a racer missing from the card is a dead letter, once."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry

from processors.normalize import normalize
from processors.normalize.common import Context
from producers.simulator import envelope, render_kspo
from producers.simulator.world import World
from runtime.db import connect
from runtime.metrics import SinkMetrics
from runtime.settings import Settings
from schemas import endpoints as ep
from sinks.writer import TimescaleWriter, rows_of_record
from tests.integration.conftest import pipeline_env

pytestmark = pytest.mark.integration
WORLD = World(seed=41)
SAT, THU = date(2024, 12, 14), date(2024, 12, 12)
T0 = datetime(2024, 12, 14, 1, 0, tzinfo=UTC)


def rows_of(endpoint: str, body_rows: list[dict], key: str = "k", **params: str) -> list:
    body = envelope.json_body(body_rows, 1, 5000, len(body_rows))
    out = normalize(body, Context("kspo", endpoint, params, T0, key))
    return [row for recs in out.by_topic().values() for r in recs for row in rows_of_record(r, r)]


@pytest.fixture
async def writer(settings: Settings, db_schema: str):
    w = TimescaleWriter(settings.database, SinkMetrics(CollectorRegistry()))
    await w.start()
    yield w
    await w.stop()


async def fetch(settings: Settings, sql: str, *args):
    conn = await connect(settings.database)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def cycle_day():
    races = [r for r in WORLD.races("gwangmyeong", SAT)[:3] if not r.cancelled]
    year, rnd, day_no = WORLD.round_of("cycle", SAT)
    card = rows_of(ep.CYCLE_ENTRIES.path, render_kspo.cycle_entry_rows(races, year, rnd, day_no))
    ranks = rows_of(ep.CYCLE_RANK.path, render_kspo.rank_rows(races, year, rnd, day_no))
    return races, card, ranks


@pytest.mark.parametrize("ranks_first", [True, False], ids=["ranks-first", "card-first"])
async def test_every_finisher_gets_its_result_and_racer_id_whichever_comes_first(
    settings: Settings, writer: TimescaleWriter, ranks_first: bool
):
    races, card, ranks = cycle_day()
    for batch in [ranks, card] if ranks_first else [card, ranks]:
        result = await writer.write(batch)
        assert not result.rejected
    assert writer.take_unmatched() == []
    stored = await fetch(
        settings,
        "SELECT race_id, entry_no, finish_position, participant_id, status, is_final FROM results "
        "ORDER BY race_id, finish_position",
    )
    expected = []
    for race in sorted(races, key=lambda r: r.race_id):
        ids = {r.entry_no: r.participant_id for r in race.runners}
        expected += [(race.race_id, n, p, ids[n], "finished", True) for p, n in enumerate(race.finish_order, 1)]
    assert stored == expected  # all seven riders of each race, not the top three
    on_entries = await fetch(settings, "SELECT count(*) FROM entries WHERE participant_id IS NOT NULL")
    assert on_entries == [(sum(len(r.finish_order) for r in races),)]


async def test_top_three_and_ranks_agree_on_one_row_per_runner(settings: Settings, writer: TimescaleWriter):
    races, card, ranks = cycle_day()
    year, rnd, day_no = WORLD.round_of("cycle", SAT)
    top = rows_of(ep.CYCLE_RESULT.path, render_kspo.cycle_result_rows(races, year, rnd, day_no), stnd_yr=str(year))
    for batch in (top, card, ranks):
        assert not (await writer.write(batch)).rejected
    counts = await fetch(settings, "SELECT race_id, count(*), count(participant_id) FROM results GROUP BY 1 ORDER BY 1")
    assert counts == [
        (r.race_id, len(r.finish_order), len(r.finish_order)) for r in sorted(races, key=lambda r: r.race_id)
    ]


async def test_a_racer_not_on_the_card_is_reported_once(settings: Settings, writer: TimescaleWriter):
    races, card, ranks = cycle_day()
    race = races[0]
    year, rnd, day_no = WORLD.round_of("cycle", SAT)
    stranger = render_kspo.rank_rows([race], year, rnd, day_no)[0] | {"racer_nm": "홍길동", "racer_no": "19990001"}
    await writer.write(rows_of(ep.CYCLE_RANK.path, [stranger]))
    assert writer.take_unmatched() == []  # no card yet: nothing to say
    await writer.write(card)
    (found,) = writer.take_unmatched()
    assert (found.race_id, found.racer_id, found.racer_name, found.matches) == (race.race_id, "19990001", "홍길동", 0)
    assert found.reason == f"racer 19990001 홍길동 (placed 1) is not on the card of {race.race_id}"
    await writer.mark_reported([found])
    await writer.write(ranks)  # the real ranks: joined; the stranger is not reported again
    assert writer.take_unmatched() == []
    assert await fetch(settings, "SELECT count(*) FROM results WHERE participant_id = '19990001'") == [(0,)]


async def test_boat_ranks_join_the_lanes(settings: Settings, writer: TimescaleWriter):
    races = [r for r in WORLD.races("misari", THU)[:2] if not r.cancelled]
    year, rnd, day_no = WORLD.round_of("boat", THU)
    key = f"kspo:misari:{THU:%Y%m%d}"
    card = rows_of(
        ep.BOAT_ENTRIES.path, render_kspo.boat_entry_rows(races, year, rnd, day_no), key, day_tcnt=str(day_no)
    )
    ranks = rows_of(ep.BOAT_RANK.path, render_kspo.rank_rows(races, year, rnd, day_no))
    for batch in (ranks, card):
        assert not (await writer.write(batch)).rejected
    stored = await fetch(settings, "SELECT race_id, entry_no, finish_position FROM results ORDER BY 1, 3")
    assert stored == [
        (r.race_id, n, p) for r in sorted(races, key=lambda r: r.race_id) for p, n in enumerate(r.finish_order, 1)
    ]


async def test_racer_stats_count_every_finish(settings: Settings, writer: TimescaleWriter):
    """Two race days of one rider: starts, wins and places from the joined ranks (worked out here from the world)."""
    from sinks import queries as q

    day2 = date(2024, 12, 15)
    for day in (SAT, day2):
        races = [r for r in WORLD.races("gwangmyeong", day) if not r.cancelled]
        year, rnd, day_no = WORLD.round_of("cycle", day)
        for batch in (
            rows_of(ep.CYCLE_ENTRIES.path, render_kspo.cycle_entry_rows(races, year, rnd, day_no)),
            rows_of(ep.CYCLE_RANK.path, render_kspo.rank_rows(races, year, rnd, day_no)),
        ):
            assert not (await writer.write(batch)).rejected
    race = next(r for r in WORLD.races("gwangmyeong", SAT) if not r.cancelled)
    racer = race.runners[0].participant_id
    starts = wins = places = 0
    for day in (SAT, day2):
        for r in WORLD.races("gwangmyeong", day):
            for runner in r.runners:
                if runner.participant_id == racer and not r.cancelled:
                    starts += 1
                    position = r.finish_order.index(runner.entry_no) + 1
                    wins += position == 1
                    places += position <= 3
    conn = await connect(settings.database)
    try:
        found = await q.racer_stats(conn, racer)
        assert found is not None
        assert (found.id, found.starts, found.wins, found.places) == (racer, starts, wins, places)
        assert await q.racer_stats(conn, "00000000") is None
    finally:
        await conn.close()
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "racelab.cli", "query", "racer", racer, "--format", "json",
        env=pipeline_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await done.communicate()
    assert done.returncode == 0, err.decode()
    assert orjson.loads(out)["starts"] == starts


def payoff_rows(races, year: int, rnd: int, day_no: int, named: bool) -> list:
    """The cycle payoff of a day; the real rows name no track (the simulator adds ``meet_nm``)."""
    rows = render_kspo.cycle_payoff_rows(races, year, rnd, day_no)
    return rows if named else [{k: v for k, v in row.items() if k != "meet_nm"} for row in rows]


@pytest.mark.parametrize("payoff_first", [True, False], ids=["payoff-first", "card-first"])
async def test_a_payoff_joins_the_one_race_it_fits(settings: Settings, writer: TimescaleWriter, payoff_first: bool):
    """One cycle track on the day: a payoff without a track fits one race; its fields land in the race's details."""
    races = [r for r in WORLD.races("gwangmyeong", SAT)[:2] if not r.cancelled]
    year, rnd, day_no = WORLD.round_of("cycle", SAT)
    card = rows_of(ep.CYCLE_ENTRIES.path, render_kspo.cycle_entry_rows(races, year, rnd, day_no))
    payoff = rows_of(ep.CYCLE_PAYOFF.path, payoff_rows(races, year, rnd, day_no, named=False))
    for batch in [payoff, card] if payoff_first else [card, payoff]:
        assert not (await writer.write(batch)).rejected
    stored = dict(await fetch(settings, "SELECT race_id, details->>'pool1_val' FROM races WHERE status = 'official'"))
    expected = {r.race_id: str(r.final_odds()[("WIN", r.winning()["WIN"][0])]) for r in races}
    assert stored == expected


async def test_a_payoff_that_fits_races_of_several_tracks_is_not_attached(settings: Settings, writer: TimescaleWriter):
    from sinks.audit import audit

    year, rnd, day_no = WORLD.round_of("cycle", SAT)
    both = [WORLD.races(t, SAT)[0] for t in ("gwangmyeong", "changwon")]  # race 1 of two tracks, same round and day
    card = rows_of(ep.CYCLE_ENTRIES.path, render_kspo.cycle_entry_rows(both, year, rnd, day_no))
    payoff = rows_of(ep.CYCLE_PAYOFF.path, payoff_rows(both[:1], year, rnd, day_no, named=False))
    for batch in (card, payoff):
        assert not (await writer.write(batch)).rejected
    assert await fetch(settings, "SELECT count(*) FROM races WHERE details ? 'pool1_val'") == [(0,)]
    conn = await connect(settings.database)
    try:
        (found,) = await audit(conn, SAT, SAT)
    finally:
        await conn.close()
    assert (found.rule, found.race_id) == ("payoff_placed", f"kspo:cycle:{SAT:%Y%m%d}#1")
    assert found.detail == (
        f"payoff of race 1 of round {rnd} day {day_no} fits 2 races: {both[1].race_id}, {both[0].race_id}"
    )
