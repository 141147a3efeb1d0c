"""``racelab audit`` and the sink's audit metric against the real TimescaleDB: each rule finds the race that breaks
it (written here on purpose, one broken rule per race) and nothing in the clean races next to it."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime

import asyncpg
import pytest

from runtime.db import connect
from runtime.settings import Settings
from sinks.audit import RULE_NAMES, Violation, audit, counts
from tests.integration.conftest import pipeline_env

pytestmark = pytest.mark.integration
SAT, SUN, MON = date(2024, 12, 14), date(2024, 12, 15), date(2024, 12, 16)
FETCHED = datetime(2024, 12, 14, 12, tzinfo=UTC)
CLOSE = datetime(2024, 12, 14, 14, 59, 59, tzinfo=UTC)

# race id, track, day, number, status, field size, entries (entry no -> status), results (entry -> position, time,
# win odds), final WIN odds (entry -> odds)
RACES = [
    # clean: 4 runners, one scratched, finish times grow, win odds agree with the WIN board
    ("horse-seoul-1-20241214", "seoul", SAT, 1, "official", 4, {1: "d", 2: "d", 3: "d", 4: "s"},
     {1: (2, 75.6, None), 2: (1, 75.4, 3.0), 3: (3, 75.6, None)}, {1: 4.1, 2: 3.0, 3: 9.9}),
    # positions 1, 2, 2 (a second runner placed 2nd, none 3rd)
    ("horse-seoul-2-20241214", "seoul", SAT, 2, "official", 3, {1: "d", 2: "d", 3: "d"},
     {1: (1, 70.0, None), 2: (2, 70.5, None), 3: (2, 70.5, None)}, {}),
    # 3rd in 77.1 s, ahead of... the 2nd in 77.4 s: the later finisher is faster
    ("horse-seoul-3-20241214", "seoul", SAT, 3, "official", 3, {1: "d", 2: "d", 3: "d"},
     {1: (1, 77.0, None), 2: (2, 77.4, None), 3: (3, 77.1, None)}, {}),
    # the winner's win odds 3.0 against a final WIN price of 3.5
    ("horse-seoul-4-20241214", "seoul", SAT, 4, "official", 2, {1: "d", 2: "d"},
     {1: (1, 60.0, 3.0), 2: (2, 60.2, None)}, {1: 3.5, 2: 1.4}),
    # field size 5 declared, 4 on the sheet
    ("horse-seoul-5-20241214", "seoul", SAT, 5, "scheduled", 5, {1: "d", 2: "d", 3: "d", 4: "d"}, {}, {}),
    # official with results for 3 of its 4 runners
    ("cycle-gwangmyeong-10-20241214", "gwangmyeong", SAT, 10, "official", 4, {1: "d", 2: "d", 3: "d", 4: "d"},
     {1: (1, None, None), 2: (2, None, None), 3: (3, None, None)}, {}),
    # Seoul races on Saturdays and Sundays, not on a Monday
    ("horse-seoul-1-20241216", "seoul", MON, 1, "scheduled", None, {}, {}, {}),
    # clean, on Sunday
    ("horse-seoul-1-20241215", "seoul", SUN, 1, "official", 2, {1: "d", 2: "d"},
     {1: (2, 61.0, None), 2: (1, 60.0, 2.2)}, {2: 2.2}),
]  # fmt: skip
EXPECTED = [
    Violation("positions", "horse-seoul-2-20241214", "positions 1,2,2"),
    Violation("finish_times", "horse-seoul-3-20241214", "#3 placed 3 in 77.1 s, after #2 placed 2 in 77.4 s"),
    Violation("win_dividend", "horse-seoul-4-20241214", "winner #1: win odds 3, final WIN odds 3.5"),
    Violation("field_size", "horse-seoul-5-20241214", "field size 5, 4 runners on the entry sheet"),
    Violation("finisher_results", "cycle-gwangmyeong-10-20241214", "1 of 4 runners without a result (#4)"),
    Violation("race_day", "horse-seoul-1-20241216", "seoul races on Monday"),
    Violation("payoff_placed", "kspo:cycle:20241214#10", "payoff of race 10 of round 1 day 1 fits 0 races"),
]


async def _write(conn: asyncpg.Connection) -> None:
    for rid, track, day, no, status, size, entries, results, board in RACES:
        race_type, source = ("horse", "kra") if track == "seoul" else ("cycle", "kspo")
        await conn.execute(
            "INSERT INTO races (race_id, race_type, track_code, race_date, race_no, status, field_size, source, "
            "source_fetched_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            rid, race_type, track, day, no, status, size, source, FETCHED,
        )  # fmt: skip
        for entry, state in entries.items():
            await conn.execute(
                "INSERT INTO entries (race_id, entry_no, participant_name, status, source) VALUES ($1, $2, $3, $4, $5)",
                rid, entry, f"runner {entry}", "declared" if state == "d" else "scratched", source,
            )  # fmt: skip
        for entry, (position, seconds, win) in results.items():
            await conn.execute(
                "INSERT INTO results (race_id, entry_no, finish_position, status, finish_time_s, participant_name, "
                "win_odds, is_final, source) VALUES ($1, $2, $3, 'finished', $4, $5, $6, true, $7)",
                rid, entry, position, seconds, f"runner {entry}", win, source,
            )  # fmt: skip
        for entry, odds in board.items():
            await conn.execute(
                "INSERT INTO odds_snapshots (time, race_id, pool, selection, odds, is_final, source) "
                "VALUES ($1, $2, 'WIN', $3, $4, true, $5)",
                CLOSE, rid, str(entry), odds, source,
            )  # fmt: skip
    # a cycle payoff (no track) whose round and day no stored race has
    await conn.execute(
        "INSERT INTO kspo_payoffs (race_type, race_date, race_no, year, round_no, day_no, source) "
        "VALUES ('cycle', $1, 10, 2024, 1, 1, 'kspo')",
        SAT,
    )


@pytest.fixture
async def audited(settings: Settings, db_schema: str) -> Settings:
    conn = await connect(settings.database)
    try:
        await _write(conn)
    finally:
        await conn.close()
    return settings


async def test_each_rule_finds_the_race_that_breaks_it(audited: Settings):
    conn = await connect(audited.database)
    try:
        found = await audit(conn, SAT, MON)
        assert found == EXPECTED
        assert counts(found) == dict.fromkeys(RULE_NAMES, 1)
        assert await audit(conn, SUN, SUN) == []  # the clean Sunday alone
    finally:
        await conn.close()


async def racelab_audit(settings: Settings, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "racelab.cli", "audit", *args,
        env=pipeline_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_lists_violations_and_exits_non_zero(audited: Settings):
    code, out, err = await racelab_audit(audited)
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0].split() == ["rule", "race_id", "detail"]
    assert [line.split()[:2] for line in lines[1:]] == [[v.rule, v.race_id] for v in EXPECTED]
    assert "auditing races from 2024-12-14 to 2024-12-16" in err and "7 violation(s)" in err
    assert "  finish_times           1  finish times non-decreasing with position\n" in err

    code, out, err = await racelab_audit(audited, "--from", "2024-12-15", "--to", "2024-12-15")
    assert (code, out) == (0, ""), err
    assert "0 violation(s)" in err


async def test_the_sink_exports_the_audit_as_metrics(audited: Settings):
    from prometheus_client import REGISTRY

    from sinks.agent import SinkApp

    sink = SinkApp(audited)
    await sink.run_audit(today=MON)  # the last 7 days up to Monday: every race written above
    for rule in RULE_NAMES:
        assert REGISTRY.get_sample_value("racelab_audit_violations", {"rule": rule}) == 1
    assert REGISTRY.get_sample_value("racelab_audit_last_run_timestamp_seconds") > 0
    await sink.run_audit(today=date(2024, 12, 30))  # a week without races: clean
    assert {REGISTRY.get_sample_value("racelab_audit_violations", {"rule": r}) for r in RULE_NAMES} == {0}
