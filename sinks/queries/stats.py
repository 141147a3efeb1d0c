"""Form statistics per horse (or cycle/boat rider) and per jockey, from entries, races and results.

A start is a declared (not scratched) entry of a race that was run (race status ``finished`` or ``official``),
unless its own result says it did not start (``scratched``, ``did_not_start``, ``void``, ``cancelled``). A win is
finish position 1, a place a finish in the first three (wins included). Rates are per start.

Three views: the leaders of a period (:func:`entry_stats`), one horse or jockey (:func:`horse_win_rate`,
:func:`jockey_stats`), and the entries of one race with their form before it (:func:`race_form`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import asyncpg

from sinks.queries.base import Executor, Sql, race_day
from sinks.queries.models import EntryForm, ParticipantStats

By = Literal["participant", "jockey"]
WINS = "count(*) FILTER (WHERE x.finish_position = 1)"
KEYS: dict[str, tuple[str, str]] = {
    "participant": ("e.participant_id", "e.participant_name"),
    "jockey": ("e.jockey_id", "e.jockey_name"),
}


STARTS = (
    "FROM entries e JOIN races r ON r.race_id = e.race_id "
    "LEFT JOIN results x ON x.race_id = e.race_id AND x.entry_no = e.entry_no "
    "WHERE e.status = 'declared' AND r.status IN ('finished', 'official') "
    "AND (x.status IS NULL OR x.status NOT IN ('scratched', 'did_not_start', 'void', 'cancelled'))"
)


def _stats_sql(by: By, start: date | None, end: date | None) -> Sql:
    key, name = KEYS[by]
    return (
        Sql(
            f"SELECT {key} AS id, (array_agg({name} ORDER BY r.race_date DESC, r.race_no DESC))[1] AS name, "
            f"count(*) AS starts, {WINS} AS wins, "
            f"count(*) FILTER (WHERE x.finish_position <= 3) AS places {STARTS} AND {key} IS NOT NULL"
        )
        .where("r.race_date >= {}", start)
        .where("r.race_date <= {}", end)
    )


def _model(row: asyncpg.Record) -> ParticipantStats:
    key, name, starts, wins, places = row
    return ParticipantStats(key, name, starts, wins, places, wins / starts, places / starts)


async def entry_stats(
    db: Executor,
    by: By,
    start: date,
    end: date,
    *,
    race_type: str | None = None,
    track: str | None = None,
    min_starts: int = 1,
    limit: int = 20,
) -> list[ParticipantStats]:
    """The leaders of a date range (inclusive): most wins, then best win rate, then most starts."""
    key = KEYS[by][0]
    sql = _stats_sql(by, start, end).where("r.race_type = {}", race_type).where("r.track_code = {}", track)
    sql.then(f"GROUP BY {key} HAVING count(*) >= {sql.param(min_starts)}")
    sql.then(f"ORDER BY wins DESC, {WINS}::float8 / count(*) DESC, starts DESC, id LIMIT {sql.param(limit)}")
    return [_model(row) for row in await db.fetch(sql.text, *sql.args)]


async def horse_win_rate(
    db: Executor, participant_id: str, start: date | None = None, end: date | None = None
) -> ParticipantStats | None:
    """Starts, wins, places and rates of one horse (or cycle/boat rider); None when it has no start."""
    return await _one(db, "participant", participant_id, start, end)


async def racer_stats(
    db: Executor, racer_id: str, start: date | None = None, end: date | None = None
) -> ParticipantStats | None:
    """Starts, wins, places and rates of one cycle or boat racer (KSPO racer id, "20100013" or "01-044"); None when
    the racer has no start. Racer ids reach the entries from the rank APIs (:mod:`sinks.ranks`)."""
    column = KEYS["participant"][0]
    sql = (
        _stats_sql("participant", start, end)
        .where("r.race_type = ANY({})", ["cycle", "boat"])
        .where(f"{column} = {{}}", racer_id)
        .then(f"GROUP BY {column}")
    )
    row = await db.fetchrow(sql.text, *sql.args)
    return None if row is None else _model(row)


async def jockey_stats(
    db: Executor, jockey_id: str, start: date | None = None, end: date | None = None
) -> ParticipantStats | None:
    """Starts, wins, places and rates of one jockey; None when the jockey has no start."""
    return await _one(db, "jockey", jockey_id, start, end)


async def _one(db: Executor, by: By, key: str, start: date | None, end: date | None) -> ParticipantStats | None:
    column = KEYS[by][0]
    sql = _stats_sql(by, start, end).where(f"{column} = {{}}", key).then(f"GROUP BY {column}")
    row = await db.fetchrow(sql.text, *sql.args)
    return None if row is None else _model(row)


RACE_FORM_SQL = f"""
WITH field AS (SELECT * FROM entries WHERE race_id = $1),
starts AS (
    SELECT e.participant_id, e.jockey_id, x.finish_position {STARTS}
    AND r.race_date >= $2 AND r.race_date < $3
    AND (e.participant_id IN (SELECT participant_id FROM field) OR e.jockey_id IN (SELECT jockey_id FROM field))
)
SELECT f.entry_no, f.participant_id, f.participant_name, f.jockey_id, f.jockey_name, f.status,
       h.starts, h.wins, h.places, j.starts, j.wins
FROM field f
CROSS JOIN LATERAL (
    SELECT count(*) AS starts, count(*) FILTER (WHERE finish_position = 1) AS wins,
           count(*) FILTER (WHERE finish_position <= 3) AS places
    FROM starts s WHERE s.participant_id = f.participant_id
) h
CROSS JOIN LATERAL (
    SELECT count(*) AS starts, count(*) FILTER (WHERE finish_position = 1) AS wins
    FROM starts s WHERE s.jockey_id = f.jockey_id
) j
ORDER BY f.entry_no
"""


async def race_form(db: Executor, race_id: str, days: int = 365) -> list[EntryForm]:
    """The entries of a race with each runner's and each jockey's record over the ``days`` before the race day
    (the race day itself not included, so a finished race shows the form it was run on)."""
    day = race_day(race_id)
    rows = await db.fetch(RACE_FORM_SQL, race_id, day - timedelta(days=days), day)
    out = []
    for no, pid, name, jid, jname, status, starts, wins, places, j_starts, j_wins in rows:
        rate = wins / starts if starts else None
        j_rate = j_wins / j_starts if j_starts else None
        out.append(EntryForm(no, pid, name, jid, jname, status, starts, wins, places, rate, j_starts, j_wins, j_rate))
    return out
