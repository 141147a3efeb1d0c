"""The query layer and ``racelab query`` against the real TimescaleDB, on a small dataset with known answers.

The dataset is written straight into a fresh schema; every expected answer (orders, summaries, buckets, win rates)
is worked out here in Python from the same rows, independently of the SQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import asyncpg
import pytest

from racelab.query_cli import to_json
from runtime.db import connect
from runtime.settings import Settings
from sinks import queries as q
from sinks import rollup
from tests.integration.conftest import pipeline_env

pytestmark = pytest.mark.integration
KST = timezone(timedelta(hours=9))
D, D2 = date(2024, 12, 14), date(2024, 12, 15)
R1, R2, R3 = "horse-seoul-1-20241214", "horse-seoul-2-20241214", "cycle-gwangmyeong-1-20241214"
R4, R5 = "horse-busan-1-20241215", "horse-seoul-3-20241214"
ORIGIN = datetime(2000, 1, 3, tzinfo=KST)
NOT_A_START = {"scratched", "did_not_start", "void", "cancelled"}


def kst(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=KST)


# race id, type, track, date, number, post time, status, entries, finish order, other result statuses
RACES = [
    (R1, "horse", "seoul", D, 1, kst(D, 10, 35), "official", 6, [3, 1, 5, 2, 4], {}),
    (R2, "horse", "seoul", D, 2, kst(D, 11, 10), "official", 5, [1, 2, 3, 4], {5: "did_not_finish"}),
    (R3, "cycle", "gwangmyeong", D, 1, kst(D, 11, 0), "official", 7, [7, 2, 4], {}),
    (R5, "horse", "seoul", D, 3, kst(D, 11, 45), "cancelled", 3, [], {}),
    (R4, "horse", "busan", D2, 1, kst(D2, 10, 50), "official", 5, [2, 1, 3, 4], {5: "did_not_start"}),
]
SCRATCHED = {(R1, 6)}


@dataclass
class Dataset:
    """The rows written, in the tables' column order."""

    races: list[tuple] = field(default_factory=list)
    entries: list[tuple] = field(default_factory=list)
    results: list[tuple] = field(default_factory=list)
    odds: list[tuple] = field(default_factory=list)


def build(seed: int = 5) -> Dataset:
    rng = random.Random(seed)
    data = Dataset()
    horses, jockeys = [f"H{i:02d}" for i in range(1, 9)], [f"J{i:02d}" for i in range(1, 7)]
    for race_id, kind, track, day, no, post, status, size, order, others in RACES:
        source = "kra" if kind == "horse" else "kspo"
        data.races.append((race_id, kind, track, day, no, post, status, size, source))
        people = rng.sample(horses, size) if kind == "horse" else [f"C{i:02d}" for i in range(1, size + 1)]
        riders = rng.sample(jockeys, size) if kind == "horse" else [None] * size
        for entry_no, (pid, jid) in enumerate(zip(people, riders, strict=True), start=1):
            entry_status = "scratched" if (race_id, entry_no) in SCRATCHED else "declared"
            data.entries.append(
                (race_id, entry_no, pid, f"name {pid}", jid, jid and f"jockey {jid}", entry_status, source)
            )
            position = order.index(entry_no) + 1 if entry_no in order else None
            result_status = "finished" if position else others.get(entry_no)
            if result_status:
                data.results.append((race_id, entry_no, position, result_status, pid, f"name {pid}", jid, source))
        if status != "cancelled":
            data.odds += odds_of(rng, race_id, post, size, order, source, kind)
    return data


def odds_of(rng: random.Random, race_id: str, post: datetime, size: int, order: list[int], source: str, kind: str):
    rows = []
    starters = [n for n in range(1, size + 1) if (race_id, n) not in SCRATCHED]
    moments = [post - timedelta(minutes=m) for m in (60, 30, 10, 5, 0)]
    if race_id == R1:
        moments.append(kst(D, 0, 30))  # Korean day D, still the day before in UTC
    for at in moments:
        for pool, n in itertools.product(("WIN", "PLC"), starters):
            rows.append((at, race_id, pool, str(n), round(rng.uniform(1.2, 40.0), 1), False, rng.randint(1, 9) * 1000))
    closing = kst(post.astimezone(KST).date(), 23, 59, 59)
    if kind == "horse":
        finals = [(pool, str(n)) for pool, n in itertools.product(("WIN", "PLC"), starters)]
        finals += [("QNL", f"{a}-{b}") for a, b in itertools.combinations(starters[:4], 2)]
    else:
        finals = [("WIN", str(order[0])), ("PLC", str(order[0])), ("PLC", str(order[1]))]
        finals += [("QNL", "-".join(map(str, sorted(order[:2])))), ("TRI", "-".join(map(str, order[:3])))]
    rows += [(closing, race_id, pool, sel, round(rng.uniform(1.0, 90.0), 1), True, None) for pool, sel in finals]
    if race_id == R1:
        rows.append((kst(D2, 0, 10), race_id, "WIN", "3", 4.4, False, 1000))  # a late row, next Korean day
    return [(*row, None, source) for row in rows]


async def write(conn: asyncpg.Connection, data: Dataset) -> None:
    columns = {
        "races": "race_id race_type track_code race_date race_no post_time status field_size source",
        "entries": "race_id entry_no participant_id participant_name jockey_id jockey_name status source",
        "results": "race_id entry_no finish_position status participant_id participant_name jockey_id source",
        "odds_snapshots": "time race_id pool selection odds is_final pool_total popularity_rank source",
    }
    for table, cols in columns.items():
        records = getattr(data, table.split("_")[0])
        await conn.copy_records_to_table(table, records=records, columns=cols.split())
    await rollup.rebuild(conn)  # the bulk load bypassed the writer, which keeps the day rollup otherwise


@pytest.fixture
async def dataset(settings: Settings, db_schema: str) -> AsyncIterator[tuple[asyncpg.Connection, Dataset]]:
    data = build()
    conn = await connect(settings.database)
    try:
        await write(conn, data)
        yield conn, data
    finally:
        await conn.close()


# --- expectations, worked out in Python ---------------------------------------------------------------------


def odds_rows(data: Dataset, race_id: str | None = None) -> list[tuple]:
    return [r for r in data.odds if race_id is None or r[1] == race_id]


def expected_history(data: Dataset, race_id: str, pool: str | None = None) -> list[tuple]:
    rows = [r for r in odds_rows(data, race_id) if pool is None or r[2] == pool]
    return sorted((r[0], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows)


def ohlc(points: list[tuple[datetime, float]]) -> tuple[float, float, float, float, int]:
    points = sorted(points)
    values = [v for _, v in points]
    return points[0][1], points[-1][1], max(values), min(values), len(points)


def expected_summary(rows: list[tuple]) -> list[tuple]:
    groups: dict[tuple, list] = defaultdict(list)
    for at, race_id, pool, sel, odds, *_ in rows:
        groups[(at.astimezone(KST).date(), race_id, pool, sel)].append((at, odds))
    out = []
    for key, points in sorted(groups.items()):
        open_, close, high, low, n = ohlc(points)
        out.append((*key, open_, close, high, low, round(close - open_, 6), n))
    return out


def expected_buckets(data: Dataset, race_id: str, width: timedelta, pool: str | None) -> list[tuple]:
    groups: dict[tuple, list] = defaultdict(list)
    for at, _, p, sel, odds, *_ in odds_rows(data, race_id):
        if pool is None or p == pool:
            groups[(ORIGIN + (at - ORIGIN) // width * width, p, sel)].append((at, odds))
    return [(*key, *ohlc(points)) for key, points in sorted(groups.items())]


def expected_stats(
    data: Dataset, by: str, start: date, end: date, track: str | None = None
) -> dict[str, tuple[int, int, int]]:
    races = {r[0]: r for r in data.races}
    results = {(r[0], r[1]): r for r in data.results}
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for race_id, entry_no, pid, _, jid, _, status, _ in data.entries:
        race = races[race_id]
        key = pid if by == "participant" else jid
        result = results.get((race_id, entry_no))
        if key is None or status != "declared" or race[6] not in ("finished", "official"):
            continue
        if not start <= race[3] <= end or (track and race[2] != track) or (result and result[3] in NOT_A_START):
            continue
        position = result[2] if result else None
        stats[key][0] += 1
        stats[key][1] += position == 1
        stats[key][2] += position is not None and position <= 3
    return {key: (s, w, p) for key, (s, w, p) in stats.items()}


# --- races, entries, results --------------------------------------------------------------------------------


async def test_races_by_date_with_filters(dataset):
    conn, _ = dataset
    assert [r.race_id for r in await q.races_by_date(conn, D)] == [R1, R3, R2, R5]  # by post time
    assert [r.race_id for r in await q.races_by_date(conn, D, race_type="horse")] == [R1, R2, R5]
    assert [r.race_id for r in await q.races_by_date(conn, D, track="gwangmyeong")] == [R3]
    assert [r.race_id for r in await q.races_by_date(conn, D, race_type="boat")] == []
    (busan,) = await q.races_by_date(conn, D2)
    assert (busan.race_id, busan.track_code, busan.race_no, busan.status) == (R4, "busan", 1, "official")
    assert busan.post_time == kst(D2, 10, 50) and busan.race_date == D2
    assert await q.races_by_date(conn, date(2024, 12, 16)) == []


async def test_race_with_entries_results_and_unknown_ids(dataset):
    conn, data = dataset
    detail = await q.race(conn, R1)
    assert detail is not None and detail.race.race_id == R1 and detail.race.field_size == 6
    expected = sorted((e[1], e[2], e[4], e[6]) for e in data.entries if e[0] == R1)
    assert [(e.entry_no, e.participant_id, e.jockey_id, e.status) for e in detail.entries] == expected
    assert [(e.entry_no, e.status) for e in await q.entries(conn, R1)][-1] == (6, "scratched")
    results = await q.results(conn, R2)
    assert [(r.entry_no, r.finish_position, r.status) for r in results] == [
        (1, 1, "finished"),
        (2, 2, "finished"),
        (3, 3, "finished"),
        (4, 4, "finished"),
        (5, None, "did_not_finish"),
    ]
    assert [r.entry_no for r in await q.results(conn, R3)] == [7, 2, 4]
    assert await q.race(conn, "horse-seoul-9-20241214") is None
    assert await q.results(conn, R5) == []
    with pytest.raises(q.RaceNotFound, match="horse-seoul-9-20241214"):
        await q.require_race(conn, "horse-seoul-9-20241214")
    for bad in ("seoul-1", "horse-seoul-1-20241399", "horse-seoul-1-2024121"):
        with pytest.raises(q.InvalidRaceId):
            await q.odds_history(conn, bad)


# --- odds ---------------------------------------------------------------------------------------------------


async def test_odds_history_raw_all_pools_and_one_pool(dataset):
    conn, data = dataset
    history = await q.odds_history(conn, R1)
    got = [(s.time, s.pool, s.selection, s.odds, s.is_final, s.pool_total, s.popularity_rank) for s in history]
    assert got == expected_history(data, R1)
    assert {s.time for s in history} >= {kst(D, 0, 30), kst(D2, 0, 10)}  # both ends of the window
    win = await q.odds_history(conn, R3, pool="WIN")
    assert [(s.time, s.selection, s.odds) for s in win] == [r[:1] + r[2:4] for r in expected_history(data, R3, "WIN")]
    assert await q.odds_history(conn, R5) == []


@pytest.mark.parametrize(
    ("width", "pool"), [(timedelta(minutes=15), None), (timedelta(hours=1), "WIN"), (timedelta(days=1), None)]
)
async def test_odds_history_bucketed(dataset, width, pool):
    conn, data = dataset
    buckets = await q.odds_history_bucketed(conn, R1, width, pool=pool)
    got = [(b.bucket, b.pool, b.selection, b.open, b.close, b.high, b.low, b.samples) for b in buckets]
    assert got == expected_buckets(data, R1, width, pool)
    assert any(b.samples > 1 for b in buckets)  # buckets really aggregate
    with pytest.raises(q.QueryError):
        await q.odds_history_bucketed(conn, R1, timedelta(0))


async def test_odds_summary_of_a_race_and_of_a_day(dataset):
    conn, data = dataset
    race = await q.odds_summary(conn, R1)
    fields = ("day", "race_id", "pool", "selection", "open", "close", "high", "low", "change", "snapshots")
    assert [tuple(getattr(s, f) for f in fields) for s in race] == expected_summary(odds_rows(data, R1))
    assert {s.day for s in race} == {D, D2}  # Korean days: 00:30 KST is day D, the late row day D2
    qnl = await q.odds_summary(conn, R1, pool="QNL")
    assert [s.selection for s in qnl] == ["1-2", "1-3", "1-4", "2-3", "2-4", "3-4"]
    day = await q.odds_day_summary(conn, D)
    on_d = [r for r in data.odds if r[0].astimezone(KST).date() == D]
    assert [tuple(getattr(s, f) for f in fields) for s in day] == expected_summary(on_d)
    assert {s.race_id for s in day} == {R1, R2, R3}
    live = await q.odds_day_summary(conn, D, pools=["WIN", "TRI"])
    assert {(s.pool, s.race_id) for s in live if s.pool == "TRI"} == {("TRI", R3)}
    assert len(live) == len([s for s in day if s.pool in ("WIN", "TRI")])
    assert {s.race_id for s in await q.odds_day_summary(conn, D, race_type="cycle")} == {R3}
    assert {s.race_id for s in await q.odds_day_summary(conn, D, track="seoul")} == {R1, R2}
    next_day = await q.odds_day_summary(conn, D2)
    assert {s.race_id for s in next_day} == {R1, R4}
    assert await q.odds_day_summary(conn, date(2024, 12, 20)) == []


async def test_wide_view_of_a_race(dataset):
    conn, data = dataset
    cells: dict[tuple, dict[str, float]] = defaultdict(dict)
    for at, _, pool, sel, odds, *_ in odds_rows(data, R2):
        if pool in ("WIN", "PLC"):
            cells[(at, int(sel))][pool] = odds
    expected = [(at, no, v.get("WIN"), v.get("PLC")) for (at, no), v in sorted(cells.items())]
    wide = await q.odds_wide(conn, R2)
    assert [(w.time, w.entry_no, w.odds_win, w.odds_place) for w in wide] == expected
    assert {w.race_id for w in wide} == {R2}


# --- statistics ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["participant", "jockey"])
async def test_entry_stats_and_rates(dataset, by):
    conn, data = dataset
    expected = expected_stats(data, by, D, D2)
    ranked = sorted(expected.items(), key=lambda kv: (-kv[1][1], -kv[1][1] / kv[1][0], -kv[1][0], kv[0]))
    got = await q.entry_stats(conn, by, D, D2, limit=50)
    assert [(s.id, s.starts, s.wins, s.places) for s in got] == [(k, *v) for k, v in ranked]
    assert all(s.win_rate == s.wins / s.starts and s.place_rate == s.places / s.starts for s in got)
    assert [s.id for s in await q.entry_stats(conn, by, D, D2, limit=3)] == [k for k, _ in ranked[:3]]
    several = [k for k, v in ranked if v[0] >= 2]
    assert [s.id for s in await q.entry_stats(conn, by, D, D2, min_starts=2, limit=50)] == several
    only_d = expected_stats(data, by, D, D)
    got_d = {s.id: (s.starts, s.wins, s.places) for s in await q.entry_stats(conn, by, D, D, limit=50)}
    assert got_d == only_d
    seoul = await q.entry_stats(conn, by, D, D2, track="seoul", limit=50)
    assert {s.id: (s.starts, s.wins, s.places) for s in seoul} == expected_stats(data, by, D, D2, track="seoul")
    cycle = await q.entry_stats(conn, by, D, D2, race_type="cycle", limit=50)
    assert {s.id for s in cycle} == ({f"C{i:02d}" for i in range(1, 8)} if by == "participant" else set())


async def test_horse_win_rate_and_jockey_stats(dataset):
    conn, data = dataset
    horses = expected_stats(data, "participant", D, D2)
    for horse, (starts, wins, places) in horses.items():
        found = await q.horse_win_rate(conn, horse)
        assert found is not None and (found.starts, found.wins, found.places) == (starts, wins, places)
        assert found.win_rate == pytest.approx(wins / starts) and found.name == f"name {horse}"
    jockeys = expected_stats(data, "jockey", D, D)
    for jockey, (starts, wins, places) in jockeys.items():
        found = await q.jockey_stats(conn, jockey, D, D)
        assert found is not None and (found.starts, found.wins, found.places) == (starts, wins, places)
    assert await q.horse_win_rate(conn, "H99") is None
    assert await q.jockey_stats(conn, "J01", date(2025, 1, 1), date(2025, 1, 31)) is None


@pytest.mark.parametrize("race_id", [R4, R1])
async def test_race_form_counts_only_the_days_before_the_race(dataset, race_id):
    conn, data = dataset
    day = next(r[3] for r in data.races if r[0] == race_id)
    horses = expected_stats(data, "participant", day - timedelta(days=365), day - timedelta(days=1))
    jockeys = expected_stats(data, "jockey", day - timedelta(days=365), day - timedelta(days=1))
    field = sorted(e for e in data.entries if e[0] == race_id)
    got = await q.race_form(conn, race_id)
    assert [(f.entry_no, f.participant_id, f.jockey_id, f.status) for f in got] == [
        (e[1], e[2], e[4], e[6]) for e in field
    ]
    for form in got:
        starts, wins, places = horses.get(form.participant_id, (0, 0, 0))
        assert (form.starts, form.wins, form.places) == (starts, wins, places)
        assert form.win_rate == (wins / starts if starts else None)
        j_starts, j_wins, _ = jockeys.get(form.jockey_id, (0, 0, 0))
        assert (form.jockey_starts, form.jockey_wins) == (j_starts, j_wins)
    if race_id == R4:  # the day before had races: the busan runners that ran at seoul on D have a record
        assert any(f.starts for f in got) and any(f.jockey_wins for f in got)
    else:  # nothing before D
        assert all(f.starts == f.jockey_starts == 0 and f.win_rate is None for f in got)
    assert await q.race_form(conn, R4, days=0) == [
        dataclasses.replace(
            f, starts=0, wins=0, places=0, win_rate=None, jockey_starts=0, jockey_wins=0, jockey_win_rate=None
        )
        for f in await q.race_form(conn, R4)
    ]


# --- the command line ---------------------------------------------------------------------------------------


async def racelab(settings: Settings, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "racelab.cli",
        "query",
        *args,
        env=pipeline_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_table_is_aligned(settings: Settings, dataset):
    code, out, err = await racelab(settings, "races", "2024-12-14", "--type", "horse")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split() == [
        "race_id", "race_type", "track_code", "race_date", "race_no", "post_time", "status", "distance_m",
        "grade", "race_name", "field_size",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines] == [R1, R2, R5]
    status_at = header.index("status")
    assert [line[status_at:].split()[0] for line in lines] == ["official", "official", "cancelled"]
    assert "2024-12-14 10:35:00+09:00" in lines[0]  # Korean time
    no_end = header.index("race_no") + len("race_no")
    assert [line[:no_end].split()[-1] for line in lines] == ["1", "2", "3"]  # numbers right-aligned


async def test_cli_json_output(settings: Settings, dataset):
    _, data = dataset
    code, out, err = await racelab(settings, "summary", R1, "--pool", "WIN", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    expected = [r for r in expected_summary(odds_rows(data, R1)) if r[2] == "WIN"]
    assert [(d["day"], d["selection"], d["open"], d["close"], d["change"], d["snapshots"]) for d in doc] == [
        (r[0].isoformat(), r[3], r[4], r[5], r[8], r[9]) for r in expected
    ]
    code, out, err = await racelab(settings, "race", R2, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["race"]["race_id"] == R2 and doc["race"]["post_time"] == "2024-12-14T02:10:00+00:00"
    assert [e["entry_no"] for e in doc["entries"]] == [1, 2, 3, 4, 5]
    code, out, _ = await racelab(settings, "odds", R3, "--bucket", "1h", "--pool", "WIN", "--format", "json")
    assert code == 0
    assert [d["open"] for d in json.loads(out)] == [b[3] for b in expected_buckets(data, R3, timedelta(hours=1), "WIN")]


CLI_CASES = {
    "races": (("races", "2024-12-14", "--track", "seoul"), lambda c: q.races_by_date(c, D, track="seoul")),
    "race": (("race", R2), lambda c: q.race(c, R2)),
    "entries": (("entries", R1), lambda c: q.entries(c, R1)),
    "results": (("results", R2), lambda c: q.results(c, R2)),
    "form": (("form", R4, "--days", "30"), lambda c: q.race_form(c, R4, days=30)),
    "odds": (("odds", R1, "--pool", "PLC"), lambda c: q.odds_history(c, R1, pool="PLC")),
    "summary": (("summary", R3), lambda c: q.odds_summary(c, R3)),
    "day-summary": (
        ("day-summary", "2024-12-14", "--pool", "WIN", "--pool", "QNL", "--type", "horse"),
        lambda c: q.odds_day_summary(c, D, pools=["WIN", "QNL"], race_type="horse"),
    ),
    "wide": (("wide", R1), lambda c: q.odds_wide(c, R1)),
    "stats": (
        ("stats", "--by", "jockey", "--from", "2024-12-14", "--to", "2024-12-15", "--min-starts", "2"),
        lambda c: q.entry_stats(c, "jockey", D, D2, min_starts=2),
    ),
    "horse": (("horse", "H01"), lambda c: q.horse_win_rate(c, "H01")),
    "jockey": (
        ("jockey", "J01", "--from", "2024-12-14", "--to", "2024-12-14"),
        lambda c: q.jockey_stats(c, "J01", D, D),
    ),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
async def test_every_query_command_prints_what_its_function_returns(settings: Settings, dataset, name):
    conn, _ = dataset
    args, call = CLI_CASES[name]
    expected = await call(conn)
    assert expected, "the case must have rows to compare"
    code, out, err = await racelab(settings, *args, "--format", "json")
    assert code == 0, err
    assert json.loads(out) == json.loads(to_json(expected))
    code, out, err = await racelab(settings, *args)  # and as a table: a header line and one line per row
    assert code == 0, err
    rows = len(expected) if isinstance(expected, list) else None
    if rows is not None:
        assert len(out.splitlines()) == rows + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("races", "2024-13-01"), "racelab: error: bad date '2024-13-01': expected YYYY-MM-DD"),
        (("odds", "horse-seoul-9-20241214"), "racelab: error: unknown race id: horse-seoul-9-20241214"),
        (("results", "seoul-9"), "racelab: error: not a race id: 'seoul-9' (expected e.g. horse-seoul-3-20241210)"),
        (("odds", R1, "--bucket", "soon"), "racelab: error: bad bucket 'soon': expected e.g. 30s, 5m, 1h, 1d"),
    ],
)
async def test_cli_errors_are_one_line_and_exit_2(settings: Settings, dataset, args, message):
    code, out, err = await racelab(settings, *args)
    assert (code, out, err.strip()) == (2, "", message)
