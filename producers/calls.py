"""A call to an upstream API as data: which endpoint, which parameters, which topic kind and message key.

Pollers, backfill and the failure recovery job all pass :class:`Call` values around: a failed call is stored
with its endpoint, parameters and key, and re-issued as the same call later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from producers import endpoints as ep
from schemas.topics import Kind

# KRA ``meet`` request code of each horse track; KSPO ``meet_nm`` of each cycle track.
KRA_MEET_CODES: dict[str, str] = {"seoul": "1", "jeju": "2", "busan": "3"}
CYCLE_MEET_NAMES: dict[str, str] = {"gwangmyeong": "광명", "changwon": "창원", "busan_cycle": "부산"}


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
    try:
        return KRA_MEET_CODES[track]
    except KeyError:
        raise ValueError(f"not a KRA track: {track!r} (expected one of {sorted(KRA_MEET_CODES)})") from None


def day_key(source: str, track: str, day: date) -> str:
    """Message key of a day-wide call."""
    return f"{source}:{track}:{day:%Y%m%d}"


def race_id(race_type: str, track: str, race_no: int, day: date) -> str:
    """``{race_type}-{track_code}-{race_no}-{YYYYMMDD}``."""
    return f"{race_type}-{track}-{race_no}-{day:%Y%m%d}"


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
    params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "meet_nm": CYCLE_MEET_NAMES[track]}
    return Call("kspo", kind, ep.CYCLE_ENTRIES.path, params, day_key("kspo", track, day))


def cycle_result(year: int, round_no: int, day_no: int, race_no: int, track: str, day: date) -> Call:
    params = {
        "stnd_yr": str(year),
        "meet_nm": CYCLE_MEET_NAMES[track],
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


def live_odds(race: str) -> Call:
    source = "kra" if race.startswith("horse-") else "kspo"
    return Call(source, "odds", ep.LIVE_ODDS_PATH, {"race_id": race}, race)
