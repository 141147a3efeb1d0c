"""Data-quality rules on what is stored (``racelab audit``, and the sink's periodic audit behind the
``racelab_audit_violations`` metric).

Each rule is one SQL query over the races of a date range and returns its violations, one per race (or runner):

- ``positions``: the finish positions of a race's finishers are unique and run 1, 2, 3 ... without a gap;
- ``finish_times``: a finisher is never faster than one placed ahead of it;
- ``win_dividend``: the winner's win odds equal the final WIN odds of its number;
- ``field_size``: a race's declared field size equals the runners on its entry sheet;
- ``finisher_results``: an official race has a result for every runner that was not scratched;
- ``race_day``: no race on a weekday its track does not race on (tracks with known race days only);
- ``payoff_placed``: every KSPO cycle payoff (its rows name no track) fits exactly one stored race.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from schemas import race_ids
from schemas.timezones import kst_midnight
from schemas.tracks import TRACKS
from sinks.payoffs import UNPLACED_SQL
from sinks.queries.base import Executor

# Races of the range: every rule reads only these ($1, $2 = first and last race date).
IN_RANGE = "SELECT race_id FROM races WHERE race_date BETWEEN $1 AND $2"
ODDS_TOLERANCE = 0.05  # odds are published to one decimal: a smaller difference is rounding, not a disagreement


@dataclass(frozen=True)
class Violation:
    """One broken rule: which, where, and what was found."""

    rule: str
    race_id: str
    detail: str


@dataclass(frozen=True)
class Rule:
    """A rule, its query (rows of race id and detail text) and what it says."""

    name: str
    description: str
    sql: str


def _weekday_cases() -> str:
    known = [t for t in TRACKS if t.weekdays]
    # PostgreSQL's isodow: Monday = 1; schemas.tracks: Monday = 0.
    cases = " ".join(f"WHEN '{t.code}' THEN ARRAY{[d + 1 for d in t.weekdays]}" for t in known)
    return f"CASE r.track_code {cases} END"


RULES: tuple[Rule, ...] = (
    Rule(
        "positions",
        "finish positions unique and contiguous among finishers",
        f"""
        SELECT race_id, 'positions ' || array_to_string(array_agg(finish_position ORDER BY finish_position), ',')
        FROM results WHERE status = 'finished' AND race_id IN ({IN_RANGE})
        GROUP BY race_id
        HAVING count(DISTINCT finish_position) <> count(*) OR min(finish_position) <> 1
            OR max(finish_position) <> count(*)
        """,
    ),
    Rule(
        "finish_times",
        "finish times non-decreasing with position",
        f"""
        SELECT race_id, format('#%s placed %s in %s s, after #%s placed %s in %s s',
                               entry_no, finish_position, finish_time_s, prev_entry, prev_position, prev_time)
        FROM (
            SELECT race_id, entry_no, finish_position, finish_time_s,
                   lag(entry_no) OVER w AS prev_entry, lag(finish_position) OVER w AS prev_position,
                   lag(finish_time_s) OVER w AS prev_time
            FROM results
            WHERE status = 'finished' AND finish_time_s IS NOT NULL AND race_id IN ({IN_RANGE})
            WINDOW w AS (PARTITION BY race_id ORDER BY finish_position, entry_no)
        ) x
        WHERE finish_time_s < prev_time
        """,
    ),
    Rule(
        "win_dividend",
        "the winner's win odds equal the final WIN odds row",
        f"""
        SELECT x.race_id, format('winner #%s: win odds %s, final WIN odds %s',
                                 x.entry_no, x.win_odds, coalesce(o.odds::text, 'missing'))
        FROM results x
        JOIN races r ON r.race_id = x.race_id
        LEFT JOIN odds_snapshots o
               ON o.race_id = x.race_id AND o.pool = 'WIN' AND o.is_final AND o.selection = x.entry_no::text
              AND o.time >= $3 AND o.time < $4
        WHERE x.finish_position = 1 AND x.win_odds IS NOT NULL AND x.race_id IN ({IN_RANGE})
          AND EXISTS (SELECT 1 FROM odds_snapshots b WHERE b.race_id = x.race_id AND b.pool = 'WIN' AND b.is_final
                      AND b.time >= $3 AND b.time < $4)
          AND (o.odds IS NULL OR abs(o.odds - x.win_odds) > {ODDS_TOLERANCE})
        """,
    ),
    Rule(
        "field_size",
        "field size equals declared entries",
        f"""
        SELECT r.race_id, format('field size %s, %s runners on the entry sheet', r.field_size, count(e.entry_no))
        FROM races r JOIN entries e ON e.race_id = r.race_id
        WHERE r.field_size IS NOT NULL AND r.race_id IN ({IN_RANGE})
        GROUP BY r.race_id, r.field_size
        HAVING count(e.entry_no) <> r.field_size
        """,
    ),
    Rule(
        "finisher_results",
        "every official race has results for every finisher",
        f"""
        SELECT r.race_id, format('%s of %s runners without a result (#%s)', count(*), max(n.runners),
                                 string_agg(e.entry_no::text, ', #' ORDER BY e.entry_no))
        FROM races r
        JOIN entries e ON e.race_id = r.race_id AND e.status = 'declared'
        JOIN (SELECT race_id, count(*) AS runners FROM entries WHERE status = 'declared' GROUP BY race_id) n
             ON n.race_id = r.race_id
        LEFT JOIN results x ON x.race_id = e.race_id AND x.entry_no = e.entry_no
        WHERE r.status = 'official' AND x.race_id IS NULL AND r.race_id IN ({IN_RANGE})
        GROUP BY r.race_id
        """,
    ),
    Rule(
        "race_day",
        "no race on a day its track does not race",
        f"""
        SELECT r.race_id, format('%s races on %s', r.track_code, to_char(r.race_date, 'FMDay'))
        FROM races r
        WHERE r.race_id IN ({IN_RANGE}) AND {_weekday_cases()} IS NOT NULL
          AND NOT extract(isodow FROM r.race_date)::int = ANY({_weekday_cases()})
        """,
    ),
    Rule("payoff_placed", "every cycle payoff fits exactly one race", UNPLACED_SQL),
)
RULE_NAMES = tuple(rule.name for rule in RULES)


def _params(rule: Rule, start: date, end: date) -> list[object]:
    params: list[object] = [start, end]
    if "$3" in rule.sql:  # odds are stamped on the race day (Korean time): a window that keeps to its chunks
        params += [kst_midnight(start) - timedelta(days=1), kst_midnight(end) + timedelta(days=2)]
    return params


async def audit(
    conn: Executor, start: date, end: date, progress: Callable[[Rule, int], None] | None = None
) -> list[Violation]:
    """Every violation of every rule among the races from ``start`` to ``end`` (race dates), by rule and race."""
    found: list[Violation] = []
    for rule in RULES:
        rows = await conn.fetch(rule.sql, *_params(rule, start, end))
        broken = sorted((Violation(rule.name, row[0], row[1]) for row in rows), key=_race_order)
        if progress is not None:
            progress(rule, len(broken))
        found += broken
    return found


def _race_order(v: Violation) -> tuple[object, ...]:
    """Races by day, track and race number (2 before 10), the text of an unreadable id last."""
    try:
        key = race_ids.parse(v.race_id)
    except ValueError:
        return (date.max, v.race_id, 0, v.detail)
    return (key.day, key.track, key.race_no, v.detail)


def counts(violations: list[Violation]) -> dict[str, int]:
    """Violations per rule, every rule present (0 when clean)."""
    out = dict.fromkeys(RULE_NAMES, 0)
    for v in violations:
        out[v.rule] += 1
    return out
