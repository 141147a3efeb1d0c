"""Races, entries and results."""

from __future__ import annotations

from datetime import date

from sinks.queries.base import Executor, RaceNotFound, Sql, column_list, race_day
from sinks.queries.models import Entry, Race, RaceDetail, Result, names

RACE_COLUMNS = column_list(names(Race))
ENTRY_COLUMNS = column_list(names(Entry), reals=("carried_weight_kg",))
RESULT_COLUMNS = column_list(names(Result), reals=("finish_time_s", "win_odds", "place_odds"))


async def races_by_date(
    db: Executor, day: date, *, race_type: str | None = None, track: str | None = None
) -> list[Race]:
    """The races of one day (optionally of one race type and/or track), by post time, track and number."""
    sql = (
        Sql(f"SELECT {RACE_COLUMNS} FROM races WHERE race_date = $1", day)
        .where("race_type = {}", race_type)
        .where("track_code = {}", track)
        .then("ORDER BY post_time NULLS LAST, track_code, race_no")
    )
    return [Race(*row) for row in await db.fetch(sql.text, *sql.args)]


async def race(db: Executor, race_id: str) -> RaceDetail | None:
    """A race with its entries; None when there is no such race (raises InvalidRaceId for a malformed id)."""
    race_day(race_id)
    row = await db.fetchrow(f"SELECT {RACE_COLUMNS} FROM races WHERE race_id = $1", race_id)
    if row is None:
        return None
    return RaceDetail(Race(*row), tuple(await entries(db, race_id)))


async def require_race(db: Executor, race_id: str) -> Race:
    """The race, or :class:`RaceNotFound` (for callers that must tell "no race" from "no rows yet")."""
    race_day(race_id)
    row = await db.fetchrow(f"SELECT {RACE_COLUMNS} FROM races WHERE race_id = $1", race_id)
    if row is None:
        raise RaceNotFound(race_id)
    return Race(*row)


async def entries(db: Executor, race_id: str) -> list[Entry]:
    """The entries of a race, by entry number (scratched runners included, with their status)."""
    rows = await db.fetch(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE race_id = $1 ORDER BY entry_no", race_id)
    return [Entry(*row) for row in rows]


async def results(db: Executor, race_id: str) -> list[Result]:
    """The results of a race: finishers by position, then the others by entry number."""
    rows = await db.fetch(
        f"SELECT {RESULT_COLUMNS} FROM results WHERE race_id = $1 ORDER BY finish_position NULLS LAST, entry_no",
        race_id,
    )
    return [Result(*row) for row in rows]
