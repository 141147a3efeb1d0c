"""KSPO cycle and boat payloads -> normalized record dicts.

Final odds of KSPO races come from the result APIs, whose dividend texts name the winning combination
(``"(2-7-5)3.4"``, ``"①-②-⑥3.4"``). The PAYOFF APIs repeat the same values without saying which runners they
belong to: a boat payoff marks its race official and keeps every field in the race's details; the cycle payoff
rows do not name their track (the call asks for a day of every track): they become
:class:`~schemas.records.PayoffRecord` s, which the sink attaches to the one race they can belong to.
The RANK APIs give every finisher by racer id and name, without the entry number: they become
:class:`~schemas.records.RankRecord` s, which the sink joins to the cards by name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

from processors.errors import NormalizeError
from processors.normalize.common import (
    Context,
    Fields,
    Row,
    boards,
    circled_entry,
    clock_time,
    combos,
    day_from_key,
    integer,
    kept,
    kst,
    selection,
    track_code,
)
from processors.normalize.kra import closing_time
from schemas import endpoints as ep
from schemas.race_ids import race_id

Out = dict[str, list[dict[str, Any]]]
CYCLE_POOLS = {
    "pool1_val": "WIN",
    "pool2_val": "PLC",
    "pool4_val": "EXA",
    "pool5_val": "QNL",
    "pool6_val": "TLA",
    "pool7_val": "TRI",
}  # pool8: 쌍복승, not one of our pools
BOAT_POOLS = {
    "pool1_val": "WIN",
    "pool2_val": "PLC",
    "pool3_val": "PLC",
    "pool4_val": "EXA",
    "pool5_val": "QNL",
    "pool6_val": "TLA",
}


ROUND_FIELDS = ("stnd_yr", "week_tcnt", "day_tcnt")  # typed into the race's details as numbers


TYPED: dict[str, dict[str, str]] = {
    ep.CYCLE_ENTRIES.path: dict.fromkeys(ROUND_FIELDS, "races.details")
    | {
        "race_ymd": "races.race_date",
        "meet_nm": "races.track_code",
        "race_no": "races.race_no",
        "dptre_tm": "races.post_time",
        "race_len": "races.distance_m",
        "racer_grd_cd": "races.grade",
        "back_no": "entries.entry_no",
        "racer_nm": "entries.participant_name",
        "racer_age": "entries.age",
        "racer_grd_cur_cd": "entries.grade",
    },
    ep.BOAT_ENTRIES.path: dict.fromkeys(ROUND_FIELDS, "races.details")
    | {
        "race_no": "races.race_no",
        "dptre_tm": "races.post_time",
        "rmk2_rank": "races.grade",
        "race_reg_no": "entries.entry_no",
        "racer_nm": "entries.participant_name",
        "racer_age": "entries.age",
        "sex_cd": "entries.sex",
        "racer_grd_cd": "entries.grade",
        "wght": "entries.body_weight_kg",
    },
}
PAYOFF_VALUES = ("pool1_val", "pool2_1_val", "pool2_2_val", "pool4_val", "pool5_val", "pool6_val")
TYPED[ep.CYCLE_PAYOFF.path] = {
    "stnd_yr": "races.year",
    "week_tcnt": "races.round_no",
    "day_tcnt": "races.day_no",
    "race_no": "races.race_no",
    "race_ymd": "races.race_date",
    "meet_nm": "races.track_code",  # not in the real rows
}
TYPED[ep.BOAT_PAYOFF.path] = dict.fromkeys(ROUND_FIELDS, "races.details") | {
    "race_ymd": "races.race_date",
    "race_no": "races.race_no",
}
RESULT_TYPED = dict.fromkeys(ROUND_FIELDS, "races.details") | {
    "race_no": "races.race_no",
    **{f"rank{n}": "results.participant_name" for n in (1, 2, 3)},
}
TYPED[ep.CYCLE_RESULT.path] = (
    RESULT_TYPED
    | {"race_ymd": "races.race_date", "meet_nm": "races.track_code"}
    | {field: "odds.odds" for field in ("pool1_val", "pool2_val", "pool4_val", "pool5_val", "pool6_val", "pool7_val")}
)
RANK_TYPED = {
    "stnd_year": "races.details",
    "tms": "races.details",
    "day_ord": "races.details",
    "race_day": "races.race_date",
    "race_no": "races.race_no",
    "race_rank": "results.finish_position",
    "racer_no": "results.racer_id",
    "racer_nm": "results.racer_name",
}
TYPED[ep.CYCLE_RANK.path] = RANK_TYPED | {"meet_nm": "races.track_code"}
TYPED[ep.BOAT_RANK.path] = RANK_TYPED | {"mbr_nm": "races.track_code"}
TYPED[ep.CYCLE_ENTRIES.path] |= {"gear_rate": "entries.gear_ratio"} | {
    f"bf{n}_day{d}_rank": "entries.recent_ranks" for n in (1, 2, 3) for d in (1, 2, 3)
}
TYPED[ep.BOAT_RESULT.path] = RESULT_TYPED | {
    field: "odds.odds" for field in ("pool1_val", "pool2_val", "pool3_val", "pool4_val", "pool5_val", "pool6_val")
}
"""Per endpoint: published field -> the ``topic.column`` that holds it typed; every other field of an entry row is
kept in the entry's ``details``, of a result row in the race's."""


def _round(row: Row) -> dict[str, int]:
    f = Fields(row)
    out = {}
    for name in ROUND_FIELDS:
        value = f.integer(name)
        if value is not None:
            out[name] = value
    return out


def _boat_day(row: Row, ctx: Context) -> date:
    """Boat rows publish no date: a row is dated by its call, which asked for one day of a round (``day_tcnt``) of
    a date the calendar learned from a dated API (:mod:`producers.calendar`), and names that date in its key. A row
    of another day (an answer for a whole round) has no published date: an error, never a date worked out."""
    day = day_from_key(ctx.key)
    if day is None:
        raise NormalizeError(f"boat row without a date and key {ctx.key[:40]!r} names none")
    asked = integer(ctx.params.get("day_tcnt"))
    row_day_no = Fields(row).integer("day_tcnt")
    if asked is None or row_day_no != asked:
        raise NormalizeError(
            f"field 'day_tcnt': a boat row of day {row_day_no} in an answer for day {asked}: its date is not published"
        )
    return day


def _race_no(row: Row) -> int:
    return Fields(row).required("race_no")


def _with_field_sizes(races: dict[str, dict[str, Any]], entries: list[dict[str, Any]]) -> Out:
    sizes = Counter(e["race_id"] for e in entries)
    for race in races.values():
        race["field_size"] = sizes[race["race_id"]]
    return {"races": list(races.values()), "entries": entries}


def cycle_entries(rows: list[Row], ctx: Context) -> Out:
    """SRVC_OD_API_CRA_RACE_ORGAN: riders and the race list (``race_ymd`` "2026.01.02", ``dptre_tm`` 12"55)."""
    races: dict[str, dict[str, Any]] = {}
    entries = []
    typed = TYPED[ep.CYCLE_ENTRIES.path]
    for row in rows:
        f = Fields(row)
        track = f.read("meet_nm", track_code)
        day = f.date("race_ymd")
        no = _race_no(row)
        rid = race_id("cycle", track, no, day)
        races.setdefault(
            rid,
            {
                "race_id": rid,
                "race_type": "cycle",
                "track_code": track,
                "race_date": day,
                "race_no": no,
                "post_time": kst(day, f.read("dptre_tm", clock_time)),
                "distance_m": f.integer("race_len"),
                "grade": f.text("racer_grd_cd"),
                "status": "scheduled",
                "source": "kspo",
                "source_fetched_at": ctx.fetched_at,
                "details": _round(row),
            },
        )
        entries.append(
            {
                "race_id": rid,
                "entry_no": f.integer("back_no"),
                "participant_name": f.text("racer_nm"),
                "age": f.integer("racer_age"),
                "grade": f.text("racer_grd_cur_cd"),
                "gear_ratio": f.number("gear_rate", zero_is_null=True),
                "recent_ranks": _recent_ranks(f),
                "status": "declared",
                "source": "kspo",
                "source_fetched_at": ctx.fetched_at,
                "details": kept(row, typed),
            }
        )
    return _with_field_sizes(races, entries)


RECENT_RANKS = tuple(f"bf{n}_day{d}_rank" for n in (1, 2, 3) for d in (1, 2, 3))


def _recent_ranks(f: Fields) -> list[str] | None:
    """The card's recent results as published ("선발 4-5"), the last meeting first, its days in order."""
    if not any(name in f.row for name in RECENT_RANKS):
        return None
    return [value for value in (f.text(name) for name in RECENT_RANKS) if value is not None]


def boat_entries(rows: list[Row], ctx: Context) -> Out:
    """SRVC_OD_API_VWEB_MBR_RACE_INFO: boats by lane (``race_reg_no``) and the race list; no date field."""
    races: dict[str, dict[str, Any]] = {}
    entries = []
    typed = TYPED[ep.BOAT_ENTRIES.path]
    for row in rows:
        f = Fields(row)
        day = _boat_day(row, ctx)
        no = _race_no(row)
        rid = race_id("boat", "misari", no, day)
        races.setdefault(
            rid,
            {
                "race_id": rid,
                "race_type": "boat",
                "track_code": "misari",
                "race_date": day,
                "race_no": no,
                "post_time": kst(day, f.read("dptre_tm", clock_time)),
                "grade": f.text("rmk2_rank"),
                "status": "scheduled",
                "source": "kspo",
                "source_fetched_at": ctx.fetched_at,
                "details": _round(row),
            },
        )
        entries.append(
            {
                "race_id": rid,
                "entry_no": f.integer("race_reg_no"),
                "participant_name": f.text("racer_nm"),
                "age": f.integer("racer_age"),
                "sex": f.text("sex_cd"),
                "grade": f.text("racer_grd_cd"),
                "body_weight_kg": f.integer("wght"),
                "status": "declared",
                "source": "kspo",
                "source_fetched_at": ctx.fetched_at,
                "details": kept(row, typed),
            }
        )
    return _with_field_sizes(races, entries)


def _results_and_odds(rid: str, day: date, row: Row, ctx: Context, pools: dict[str, str]) -> Out:
    f = Fields(row)
    results = []
    for position in (1, 2, 3):
        if f.text(f"rank{position}") is None:
            continue
        entry_no, name = f.read(f"rank{position}", circled_entry)
        results.append(
            {
                "race_id": rid,
                "entry_no": entry_no,
                "finish_position": position,
                "status": "finished",
                "participant_name": name,
                "is_final": True,
                "source": "kspo",
                "source_fetched_at": ctx.fetched_at,
            }
        )
    odds = []
    for field, pool in pools.items():
        for numbers, value in f.read(field, combos):
            odds.append(
                {
                    "race_id": rid,
                    "time": closing_time(day),
                    "pool": pool,
                    "selection": selection(pool, [*numbers, 0, 0][:3]),
                    "odds": value,
                    "is_final": True,
                    "source": "kspo",
                }
            )
    return {"results": results, "odds": odds}


def _official_race(
    race_type: str, track: str, day: date, no: int, ctx: Context, details: dict[str, Any]
) -> dict[str, Any]:
    """The race of a KSPO row that says the race was run (a result, a rank, a payoff): official."""
    return {
        "race_id": race_id(race_type, track, no, day),
        "race_type": race_type,
        "track_code": track,
        "race_date": day,
        "race_no": no,
        "status": "official",
        "source": "kspo",
        "source_fetched_at": ctx.fetched_at,
        "details": details,
    }


def _official(
    rows: list[Row],
    ctx: Context,
    race_type: str,
    pools: dict[str, str],
    locate: Callable[[Row], tuple[str, date]],
    typed: dict[str, str],
) -> Out:
    """Top three, winning dividends and the race marked official, for each result row."""
    out: Out = {"results": [], "odds": [], "races": []}
    for row in rows:
        track, day = locate(row)
        no = _race_no(row)
        rid = race_id(race_type, track, no, day)
        part = _results_and_odds(rid, day, row, ctx, pools)
        out["results"] += part["results"]
        out["odds"] += part["odds"]
        out["races"].append(_official_race(race_type, track, day, no, ctx, _round(row) | kept(row, typed)))
    out["odds"] = boards(out["odds"])
    return out


def cycle_result(rows: list[Row], ctx: Context) -> Out:
    """SRVC_TODZ_CRA_RACE_RESULT: top three ("②이길섭") and the winning dividends ("(2-7-5)3.4")."""

    def locate(row: Row) -> tuple[str, date]:
        f = Fields(row)
        year = f.integer("stnd_yr") or integer(ctx.params.get("stnd_yr"))
        return f.read("meet_nm", track_code), f.date("race_ymd", year=year)

    return _official(rows, ctx, "cycle", CYCLE_POOLS, locate, TYPED[ep.CYCLE_RESULT.path])


def boat_result(rows: list[Row], ctx: Context) -> Out:
    """SRVC_OD_API_MBR_RACE_RESULT: top three ("①류해광") and dividends ("①-②-⑥3.4"); no date field."""
    return _official(
        rows, ctx, "boat", BOAT_POOLS, lambda row: ("misari", _boat_day(row, ctx)), TYPED[ep.BOAT_RESULT.path]
    )


def _ranks(rows: list[Row], ctx: Context, race_type: str, endpoint: str, track_field: str) -> Out:
    """Every finisher by racer (``race_rank`` "06", ``racer_no``), dated by ``race_day``; the race of each, with its
    round (``stnd_year``/``tms``/``day_ord``, stored under the entry sheets' names). The sink joins the racers to the
    card (:class:`~schemas.records.RankRecord`)."""
    typed = TYPED[endpoint]
    races: dict[str, dict[str, Any]] = {}
    ranks = []
    for row in rows:
        f = Fields(row)
        track = f.read(track_field, track_code)
        day = f.date("race_day")
        no = _race_no(row)
        rid = race_id(race_type, track, no, day)
        round_of = {
            "stnd_yr": f.required("stnd_year"),
            "week_tcnt": f.required("tms"),
            "day_tcnt": f.required("day_ord"),
        }
        races.setdefault(rid, _official_race(race_type, track, day, no, ctx, round_of))
        ranks.append(
            {
                "race_id": rid,
                "racer_id": f.text("racer_no"),
                "racer_name": f.text("racer_nm"),
                "finish_position": f.required("race_rank"),
                "source": "kspo",
                "source_fetched_at": ctx.fetched_at,
                "details": kept(row, typed),
            }
        )
    return {"races": list(races.values()), "results": ranks}


def cycle_rank(rows: list[Row], ctx: Context) -> Out:
    """SRVC_CRA_RACE_RANK: every finisher of a cycle race by racer."""
    return _ranks(rows, ctx, "cycle", ep.CYCLE_RANK.path, "meet_nm")


def boat_rank(rows: list[Row], ctx: Context) -> Out:
    """SRVC_MRA_RACE_RANK: every finisher of a boat race by racer (``racer_no`` "01-044", track ``mbr_nm``)."""
    return _ranks(rows, ctx, "boat", ep.BOAT_RANK.path, "mbr_nm")


def _readable_values(f: Fields) -> None:
    """Every dividend of a payoff row reads as a number, or the message goes to the DLQ naming the field."""
    for name in PAYOFF_VALUES:
        f.number(name)


def boat_payoff(rows: list[Row], ctx: Context) -> Out:
    """SRVC_OD_API_MBR_PAYOFF: one race's dividends as plain numbers, dated (``race_ymd`` "20260128"). The values
    repeat the result API's dividends without the combinations: the race is marked official and every field is
    kept verbatim in its details."""
    typed = TYPED[ep.BOAT_PAYOFF.path]
    races = []
    for row in rows:
        f = Fields(row)
        _readable_values(f)
        day, no = f.date("race_ymd"), _race_no(row)
        races.append(_official_race("boat", "misari", day, no, ctx, _round(row) | kept(row, typed)))
    return {"races": races}


def cycle_payoff(rows: list[Row], ctx: Context) -> Out:
    """SRVC_OD_API_CRA_PAYOFF: the dividends of a day's races as plain numbers (``race_ymd`` "20260102"), without
    the track: :class:`~schemas.records.PayoffRecord` s, which the sink attaches to their race."""
    typed = TYPED[ep.CYCLE_PAYOFF.path]
    payoffs = []
    for row in rows:
        f = Fields(row)
        _readable_values(f)
        named = f.text("meet_nm")
        payoffs.append(
            {
                "race_type": "cycle",
                "race_date": f.date("race_ymd"),
                "race_no": _race_no(row),
                "year": f.required("stnd_yr"),
                "round_no": f.required("week_tcnt"),
                "day_no": f.required("day_tcnt"),
                "track_code": f.read("meet_nm", track_code) if named is not None else None,
                "source": "kspo",
                "source_fetched_at": ctx.fetched_at,
                "details": kept(row, typed),
            }
        )
    return {"races": payoffs}
