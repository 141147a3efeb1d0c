"""Which calls collect what, per race type: pure functions from a track/day or a stored race to :class:`Call` s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import orjson

from producers import calls
from producers.client import RawResponse
from producers.kspo import guess_round
from producers.state import RaceRef
from schemas.tracks import race_type_of


def kspo_round(race: RaceRef) -> tuple[int, int, int]:
    """(year, round, day of round) from the stored race, else guessed from the date."""
    d = race.details
    if all(k in d for k in ("stnd_yr", "week_tcnt", "day_tcnt")):
        return int(d["stnd_yr"]), int(d["week_tcnt"]), int(d["day_tcnt"])
    return guess_round(race.race_type, race.race_date)


def schedule_calls(track: str, day: date) -> list[calls.Call]:
    """Calls that give a day's race list and post times (topic kind ``schedules``)."""
    race_type = race_type_of(track)
    if race_type == "horse":
        return [calls.kra_race_plan(track, day), calls.kra_entry_sheet(track, day, kind="schedules")]
    year, round_no, _ = guess_round(race_type, day)
    if race_type == "cycle":
        return [calls.cycle_entries(year, round_no, track, day, kind="schedules")]
    return [calls.boat_entries(year, round_no, None, day, kind="schedules")]


def entry_calls(track: str, day: date, races: Sequence[RaceRef]) -> list[calls.Call]:
    """Calls that refresh a day's entry sheets (scratches, jockey changes)."""
    race_type = race_type_of(track)
    if race_type == "horse":
        return [calls.kra_entry_sheet(track, day), calls.kra_scratches(track, day)]
    year, round_no, day_no = kspo_round(races[0]) if races else guess_round(race_type, day)
    if race_type == "cycle":
        return [calls.cycle_entries(year, round_no, track, day)]
    return [calls.boat_entries(year, round_no, day_no, day)]


def result_call(race: RaceRef) -> calls.Call:
    """The call whose answer says whether a race's result is final."""
    if race.race_type == "horse":
        return calls.kra_race_result_total(race.track, race.race_date, race.race_no)
    year, round_no, day_no = kspo_round(race)
    if race.race_type == "cycle":
        return calls.cycle_result(year, round_no, day_no, race.race_no, race.track, race.race_date)
    return calls.boat_result(year, round_no, day_no, race.race_no, race.race_date)


def result_detail_calls(race: RaceRef) -> list[calls.Call]:
    """Calls made once a result is final: details and the full finishing order."""
    if race.race_type == "horse":
        return [calls.kra_race_result(race.track, race.race_date, race.race_no)]
    year, round_no, day_no = kspo_round(race)
    if race.race_type == "cycle":
        return [calls.cycle_rank(year, round_no, day_no, race.race_no, race.track, race.race_date)]
    return [calls.boat_rank(year, round_no, day_no, race.race_no, race.race_date)]


def final_odds_call(race: RaceRef) -> calls.Call:
    """Final dividends of a race (the closing odds snapshot)."""
    if race.race_type == "horse":
        return calls.kra_final_dividends(race.track, race.race_date, race.race_no)
    year, round_no, day_no = kspo_round(race)
    if race.race_type == "cycle":
        return calls.cycle_payoff(year, round_no, day_no, race.track, race.race_date)
    return calls.boat_payoff(year, round_no, day_no, race.race_no, race.race_date)


def result_is_final(race: RaceRef, pages: Sequence[RawResponse]) -> bool:
    """Whether the answer of :func:`result_call` holds the final result.

    KRA API299 flags it per row (``finalBit`` 1); the KSPO result APIs publish only final results.
    """
    if not pages or sum(p.item_count for p in pages) == 0:
        return False
    if race.race_type != "horse":
        return True
    for page in pages:
        try:
            items = orjson.loads(page.body)["response"]["body"]["items"]["item"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return False
        rows = items if isinstance(items, list) else [items]
        if not all(str(row.get("finalBit", "0")).strip() == "1" for row in rows if isinstance(row, dict)):
            return False
    return True
