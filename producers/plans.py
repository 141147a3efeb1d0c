"""Which calls collect what, per race type: pure functions from a track/day or a stored race to :class:`Call` s.

KSPO calls name a race day by (year, round, day of round): they are planned from the :class:`Calendar` (what the
APIs published, :mod:`producers.calendar`), never from a guess. A KSPO day the calendar does not know gets the calls
that teach it (the day's ranks by ``race_day``; for cycle tracks also the entry sheets of the rounds that may hold
it; with an empty calendar also the ranks of the week before, which name the latest round), and nothing else until
it is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import orjson

from producers import calls
from producers.calendar import Calendar, RaceDay
from producers.client import RawResponse
from producers.state import RaceRef
from schemas.tracks import race_type_of

BOOTSTRAP_DAYS = 7  # with an empty calendar, the ranks of the week before teach the latest round


def kspo_round(race: RaceRef, calendar: Calendar | None = None) -> RaceDay | None:
    """(year, round, day of round) of a stored KSPO race: from its row's published round, else the calendar."""
    d = race.details
    if all(k in d for k in ("stnd_yr", "week_tcnt", "day_tcnt")):
        return RaceDay(
            race.race_type, race.track, race.race_date, int(d["stnd_yr"]), int(d["week_tcnt"]), int(d["day_tcnt"])
        )
    return calendar.day(race.track, race.race_date) if calendar is not None else None


def learning_calls(track: str, day: date, calendar: Calendar) -> list[calls.Call]:
    """Calls whose answers tell the calendar about a KSPO day it does not know (none when it knows the day)."""
    race_type = race_type_of(track)
    if race_type == "horse" or calendar.day(track, day) is not None:
        return []
    out = [calls.ranks_of_day(race_type, track, day)]
    if calendar.latest_before(track, day) is None:  # nothing known yet: the week before names the latest round
        out += [calls.ranks_of_day(race_type, track, day - timedelta(days=n)) for n in range(1, BOOTSTRAP_DAYS + 1)]
    if race_type == "cycle":  # the cards carry their dates (race_ymd) before the races are run
        out += [
            calls.cycle_entries(year, rnd, track, day, kind="schedules")
            for year, rnd in calendar.rounds_to_ask(track, day)
        ]
    return out


def schedule_calls(track: str, day: date, calendar: Calendar | None = None) -> list[calls.Call]:
    """Calls that give a day's race list and post times (topic kind ``schedules``)."""
    race_type = race_type_of(track)
    if race_type == "horse":
        return [calls.kra_race_plan(track, day), calls.kra_entry_sheet(track, day, kind="schedules")]
    known = calendar.day(track, day) if calendar is not None else None
    if known is None:
        return learning_calls(track, day, calendar or Calendar())
    if race_type == "cycle":
        return [calls.cycle_entries(known.year, known.round_no, track, day, kind="schedules")]
    return [calls.boat_entries(known.year, known.round_no, known.day_no, day, kind="schedules")]


def entry_calls(track: str, day: date, races: Sequence[RaceRef], calendar: Calendar | None = None) -> list[calls.Call]:
    """Calls that refresh a day's entry sheets (scratches, jockey changes); none for a KSPO day not yet known."""
    race_type = race_type_of(track)
    if race_type == "horse":
        return [calls.kra_entry_sheet(track, day), calls.kra_scratches(track, day)]
    known = next((k for r in races if (k := kspo_round(r)) is not None), None)
    if known is None and calendar is not None:
        known = calendar.day(track, day)
    if known is None:
        return []
    if race_type == "cycle":
        return [calls.cycle_entries(known.year, known.round_no, track, day)]
    return [calls.boat_entries(known.year, known.round_no, known.day_no, day)]


def result_call(race: RaceRef, calendar: Calendar | None = None) -> calls.Call | None:
    """The call whose answer says whether a race's result is final (None: the KSPO day is not known)."""
    if race.race_type == "horse":
        return calls.kra_race_result_total(race.track, race.race_date, race.race_no)
    known = kspo_round(race, calendar)
    if known is None:
        return None
    if race.race_type == "cycle":
        return calls.cycle_result(known.year, known.round_no, known.day_no, race.race_no, race.track, race.race_date)
    return calls.boat_result(known.year, known.round_no, known.day_no, race.race_no, race.race_date)


def result_detail_calls(race: RaceRef, calendar: Calendar | None = None) -> list[calls.Call]:
    """Calls made once a result is final: details and the full finishing order."""
    if race.race_type == "horse":
        return [calls.kra_race_result(race.track, race.race_date, race.race_no)]
    known = kspo_round(race, calendar)
    if known is None:
        return []
    if race.race_type == "cycle":
        return [calls.cycle_rank(known.year, known.round_no, known.day_no, race.race_no, race.track, race.race_date)]
    return [calls.boat_rank(known.year, known.round_no, known.day_no, race.race_no, race.race_date)]


def final_odds_call(race: RaceRef, calendar: Calendar | None = None) -> calls.Call | None:
    """Final dividends of a race (the closing odds snapshot)."""
    if race.race_type == "horse":
        return calls.kra_final_dividends(race.track, race.race_date, race.race_no)
    known = kspo_round(race, calendar)
    if known is None:
        return None
    if race.race_type == "cycle":
        return calls.cycle_payoff(known.year, known.round_no, known.day_no, race.track, race.race_date)
    return calls.boat_payoff(known.year, known.round_no, known.day_no, race.race_no, race.race_date)


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
