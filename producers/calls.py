"""A call to an upstream API as data: which endpoint, which parameters, which topic kind and message key.

Pollers, backfill and the failure recovery job all pass :class:`Call` values around: a failed call is stored
with its endpoint, parameters and key, and re-issued as the same call later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from schemas import endpoints as ep
from schemas.race_ids import day_key, race_id, source_of_race
from schemas.topics import Kind
from schemas.tracks import BY_CODE, TRACKS


@dataclass(frozen=True)
class Call:
    """One upstream call and where its pages go."""

    source: str
    kind: Kind
    endpoint: str
    params: dict[str, str]
    key: str


def pad2(value: int | str) -> str:
    """Two-digit, zero-padded (``9`` -> ``"09"``): KSPO finds nothing for ``"9"``."""
    return f"{int(value):02d}"


def meet_code(track: str) -> str:
    """KRA ``meet`` request parameter for a track code."""
    found = BY_CODE.get(track)
    if found is None or found.kra_meet is None:
        known = sorted(t.code for t in TRACKS if t.kra_meet is not None)
        raise ValueError(f"not a KRA track: {track!r} (expected one of {known})")
    return str(found.kra_meet)


def cycle_meet(track: str) -> str:
    """KSPO ``meet_nm`` request parameter of a cycle track."""
    found = BY_CODE.get(track)
    if found is None or found.kspo_meet is None:
        raise KeyError(track)
    return found.kspo_meet


# ---- KRA ---------------------------------------------------------------------------------------------------------
def _kra_day(track: str, day: date) -> dict[str, str]:
    return {"meet": meet_code(track), "rc_date": f"{day:%Y%m%d}"}


def kra_race_plan(track: str, day: date) -> Call:
    return Call("kra", "schedules", ep.KRA_RACE_PLAN.path, _kra_day(track, day), day_key("kra", track, day))


def kra_entry_sheet(track: str, day: date, kind: Kind = "entries") -> Call:
    return Call("kra", kind, ep.KRA_ENTRY_SHEET.path, _kra_day(track, day), day_key("kra", track, day))


def kra_scratches(track: str, day: date) -> Call:
    return Call("kra", "entries", ep.KRA_SCRATCHES.path, _kra_day(track, day), day_key("kra", track, day))


def kra_final_dividends(track: str, day: date, race_no: int) -> Call:
    return Call(
        "kra",
        "odds",
        ep.KRA_FINAL_DIVIDENDS.path,
        {**_kra_day(track, day), "rc_no": str(race_no)},
        race_id("horse", track, race_no, day),
    )


def kra_race_result(track: str, day: date, race_no: int | None = None) -> Call:
    params = _kra_day(track, day) | ({"rc_no": str(race_no)} if race_no is not None else {})
    key = race_id("horse", track, race_no, day) if race_no is not None else day_key("kra", track, day)
    return Call("kra", "results", ep.KRA_RACE_RESULT.path, params, key)


def kra_race_result_total(track: str, day: date, race_no: int | None = None) -> Call:
    params = _kra_day(track, day) | ({"rc_no": str(race_no)} if race_no is not None else {})
    key = race_id("horse", track, race_no, day) if race_no is not None else day_key("kra", track, day)
    return Call("kra", "results", ep.KRA_RACE_RESULT_TOTAL.path, params, key)


# ---- KSPO --------------------------------------------------------------------------------------------------------
def cycle_entries(year: int, round_no: int, track: str, day: date, kind: Kind = "entries") -> Call:
    params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "meet_nm": cycle_meet(track)}
    return Call("kspo", kind, ep.CYCLE_ENTRIES.path, params, day_key("kspo", track, day))


def cycle_result(year: int, round_no: int, day_no: int, race_no: int, track: str, day: date) -> Call:
    params = {
        "stnd_yr": str(year),
        "meet_nm": cycle_meet(track),
        "week_tcnt": pad2(round_no),
        "day_tcnt": str(day_no),
        "race_no": pad2(race_no),
    }
    return Call("kspo", "results", ep.CYCLE_RESULT.path, params, race_id("cycle", track, race_no, day))


def cycle_rank(year: int, round_no: int, day_no: int, race_no: int | None, track: str, day: date) -> Call:
    params = {"stnd_year": str(year), "tms": pad2(round_no), "day_ord": str(day_no)}
    if race_no is not None:
        params["race_no"] = pad2(race_no)
    key = race_id("cycle", track, race_no, day) if race_no is not None else day_key("kspo", track, day)
    return Call("kspo", "results", ep.CYCLE_RANK.path, params, key)


def cycle_payoff(year: int, round_no: int, day_no: int, track: str, day: date) -> Call:
    params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "day_tcnt": str(day_no)}
    return Call("kspo", "odds", ep.CYCLE_PAYOFF.path, params, day_key("kspo", track, day))


def boat_entries(year: int, round_no: int, day_no: int | None, day: date, kind: Kind = "entries") -> Call:
    params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no)} | ({"day_tcnt": str(day_no)} if day_no else {})
    return Call("kspo", kind, ep.BOAT_ENTRIES.path, params, day_key("kspo", "misari", day))


def boat_result(year: int, round_no: int, day_no: int, race_no: int | None, day: date) -> Call:
    params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "day_tcnt": str(day_no)}
    if race_no is not None:
        params["race_no"] = pad2(race_no)
    key = race_id("boat", "misari", race_no, day) if race_no is not None else day_key("kspo", "misari", day)
    return Call("kspo", "results", ep.BOAT_RESULT.path, params, key)


def boat_rank(year: int, round_no: int, day_no: int, race_no: int | None, day: date) -> Call:
    params = {"stnd_year": str(year), "tms": pad2(round_no), "day_ord": str(day_no)}
    if race_no is not None:
        params["race_no"] = pad2(race_no)
    key = race_id("boat", "misari", race_no, day) if race_no is not None else day_key("kspo", "misari", day)
    return Call("kspo", "results", ep.BOAT_RANK.path, params, key)


def boat_payoff(year: int, round_no: int, day_no: int, race_no: int, day: date) -> Call:
    params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "day_tcnt": str(day_no), "race_no": pad2(race_no)}
    return Call("kspo", "odds", ep.BOAT_PAYOFF.path, params, race_id("boat", "misari", race_no, day))


def ranks_of_day(race_type: str, track: str, day: date) -> Call:
    """Every finisher of a date (the rank API's ``race_day`` filter): the rows name their round and track, so the
    answer also tells the calendar which round and day the date was, or that there was no racing."""
    endpoint = ep.CYCLE_RANK if race_type == "cycle" else ep.BOAT_RANK
    params = {"stnd_year": str(day.year), "race_day": f"{day:%Y%m%d}"}
    return Call("kspo", "results", endpoint.path, params, day_key("kspo", track, day))


def live_odds(race: str) -> Call:
    return Call(source_of_race(race), "odds", ep.LIVE_ODDS_PATH, {"race_id": race}, race)
