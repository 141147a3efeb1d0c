"""KRA payloads -> normalized record dicts (validated against the models by :mod:`processors.normalize`).

Every field a row publishes lands somewhere: in a typed column (the ``*_COLUMNS`` maps say which; the race-level
fields once per race, not per runner) or verbatim in the ``details`` of the race or the runner. ``TYPED`` lists
per endpoint which field feeds which ``topic.column``; a test holds it to the reference's field tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from processors.errors import NormalizeError, ValidationFailed
from processors.normalize.common import (
    NOT_OUR_POOLS,
    POOL_CODES,
    Context,
    Fields,
    Row,
    body_weight,
    clock_time,
    going,
    integer,
    iso_time,
    kept,
    kst,
    number,
    race_seconds,
    result_status,
    selection,
    text,
    track_of,
    ymd,
)
from processors.normalize.odds_items import OddsItem
from schemas import endpoints as ep
from schemas.race_ids import race_id, well_formed
from schemas.records import RACE_ID_PATTERN, SCHEMA_VERSION, SELECTION_PATTERN, OddsBoard
from schemas.timezones import kst_moment

Out = dict[str, list[Any]]  # per topic: mappings to validate, or records built from checked values
PRIZE_FIELDS = tuple(f"chaksun{n}" for n in range(1, 6))  # prize money of places 1-5 (KRW)
BONUS_FIELDS = tuple(f"buga{n}" for n in range(1, 4))  # extra prize money (KRW)
RACE_COLUMNS: dict[str, str] = {
    "meet": "track_code",
    "rcDate": "race_date",
    "rcNo": "race_no",
    "rcName": "race_name",
    "rcDist": "distance_m",
    "rank": "grade",
    "ageCond": "age_condition",
    "sexCond": "sex_condition",
    "prizeCond": "prize_condition",
    "budam": "weight_rule",
    **dict.fromkeys(PRIZE_FIELDS, "prize_money_krw"),
    **dict.fromkeys(BONUS_FIELDS, "bonus_money_krw"),
    "track": "track_condition",  # "건조 (2%)": condition and moisture
    "weather": "weather",
    "dusu": "field_size",
}
RACE_KEPT = ("rcDay", "startTimeChg", "stTimeChgReason")  # race-level fields kept in the race's details
RUNNER_COLUMNS: dict[str, str] = {
    "chulNo": "entry_no",
    "hrNo": "participant_id",
    "hrName": "participant_name",
    "jkNo": "jockey_id",
    "jkName": "jockey_name",
    "trNo": "trainer_id",
    "trName": "trainer_name",
    "owNo": "owner_id",
    "owName": "owner_name",
    "age": "age",
    "sex": "sex",
    "wgBudam": "carried_weight_kg",
    "wgHr": "body_weight_kg",  # "511(+2)": weight and its change
    "rating": "rating",
}
# Sectional fields -> (point, what): the same points for every track (schemas.records.Sectional). Seoul publishes
# times at the points (se*AccTime), Busan times and positions (bu*AccTime, bu*Ord), Jeju times (je*Time, read as
# the time at the point like Seoul's); sj*Ord are the positions of every track.
POINT_FIELDS: dict[str, tuple[str, str]] = {
    **{f"sj{p}Ord": (point, "position") for p, point in (("S1f", "S1F"), ("G3f", "G3F"), ("G1f", "G1F"))},
    **{f"sj_{n}cOrd": (f"C{n}", "position") for n in range(1, 5)},
    **{f"se{p}AccTime": (point, "elapsed_s") for p, point in (("S1f", "S1F"), ("G3f", "G3F"), ("G1f", "G1F"))},
    **{f"se_{n}cAccTime": (f"C{n}", "elapsed_s") for n in range(1, 5)},
    "buS1fAccTime": ("S1F", "elapsed_s"),
    "buS1fOrd": ("S1F", "position"),
    **{f"buG{n}fAccTime": (f"G{n}F", "elapsed_s") for n in (8, 6, 4, 3, 2, 1)},
    **{f"buG{n}fOrd": (f"G{n}F", "position") for n in (8, 6, 4, 3, 2, 1)},
    **{f"je{p}Time": (point, "elapsed_s") for p, point in (("S1f", "S1F"), ("G3f", "G3F"), ("G1f", "G1F"))},
    **{f"je_{n}cTime": (f"C{n}", "elapsed_s") for n in range(1, 5)},
}
POINT_ORDER = ("S1F", "C1", "C2", "C3", "C4", "G8F", "G6F", "G4F", "G3F", "G2F", "G1F")
# Split fields -> (from, to): Busan's furlong splits ("bu_4_2fTime": from 4 to 2 furlongs before the finish).
SPLIT_FIELDS: dict[str, tuple[str, str]] = {
    "buS1fTime": ("start", "S1F"),
    "bu_10_8fTime": ("G10F", "G8F"),
    "bu_8_6fTime": ("G8F", "G6F"),
    "bu_6_4fTime": ("G6F", "G4F"),
    "bu_4_2fTime": ("G4F", "G2F"),
    "bu_3fGTime": ("G3F", "finish"),
    "bu_2fGTime": ("G2F", "finish"),
    "bu_1fGTime": ("G1F", "finish"),
}
RESULT_COLUMNS: dict[str, str] = {
    **RUNNER_COLUMNS,
    "ord": "finish_position",  # and status, status_code (91-99)
    "rcTime": "finish_time_s",
    "diffUnit": "margin",
    "winOdds": "win_odds",
    "plcOdds": "place_odds",
    "wgJk": "jockey_allowance_kg",
    "hrTool": "equipment",
    **dict.fromkeys(POINT_FIELDS, "sectionals"),
    **dict.fromkeys(SPLIT_FIELDS, "split_times"),
}


def _topic(topic: str, columns: dict[str, str]) -> dict[str, str]:
    return {name: f"{topic}.{column}" for name, column in columns.items()}


_RACE_ID = dict.fromkeys(("meet", "rcDate", "rcNo"), "race_id")
TYPED: dict[str, dict[str, str]] = {
    ep.KRA_RACE_PLAN.path: _topic("races", RACE_COLUMNS) | {"schStTime": "races.post_time"},
    ep.KRA_ENTRY_SHEET.path: _topic("races", RACE_COLUMNS)
    | {"stTime": "races.post_time"}
    | _topic("entries", RUNNER_COLUMNS),
    ep.KRA_SCRATCHES.path: _topic(
        "entries",
        _RACE_ID
        | {"chulNo": "entry_no", "hrNo": "participant_id", "hrName": "participant_name"}
        | {"cancelReason": "scratch_reason"},
    ),
    ep.KRA_FINAL_DIVIDENDS.path: _topic(
        "odds",
        _RACE_ID | {"pool": "pool", "odds": "odds"} | dict.fromkeys(("chulNo", "chulNo2", "chulNo3"), "selection"),
    ),
    ep.KRA_RACE_RESULT.path: _topic("races", RACE_COLUMNS) | _topic("results", RESULT_COLUMNS),
    ep.KRA_HORSE_INFO.path: _topic(
        "entries",
        {"meet": "track_code", "hrNo": "horse_id", "hrName": "name", "name": "origin", "sex": "sex"}
        | {"birthday": "birth_date", "rank": "grade", "rating": "rating", "chaksunT": "career_prize_krw"}
        | {"faHrNo": "sire_id", "faHrName": "sire_name", "moHrNo": "dam_id", "moHrName": "dam_name"}
        | {"trNo": "trainer_id", "trName": "trainer_name", "owNo": "owner_id", "owName": "owner_name"},
    ),
    ep.KRA_JOCKEY_INFO.path: _topic(
        "entries",
        {"meet": "track_code", "jkNo": "jockey_id", "jkName": "name", "age": "age"}
        | {"birthday": "birth_date", "debut": "debut_date"},
    ),
    ep.KRA_RACE_RESULT_TOTAL.path: _topic("races", RACE_COLUMNS)
    | {"schStTime": "races.post_time", "stTime": "races.started_at", "noraceFlag": "races.status"}
    | _topic("results", RESULT_COLUMNS)
    | {"finalBit": "results.is_final"},
}
"""Per endpoint: published field -> the ``topic.column`` that holds it typed (all other fields: ``details``)."""


def _race_key(f: Fields) -> tuple[str, date, int, str]:
    found = f.read("meet", track_of)
    track = found.code
    if found.race_type != "horse":
        raise NormalizeError(f"field 'meet': KRA row names a non-horse track {track!r}")
    day = f.date("rcDate")
    race_no = f.required("rcNo")
    return track, day, race_no, race_id("horse", track, race_no, day)


def _money(f: Fields, names: tuple[str, ...]) -> list[int | None] | None:
    """Prize money of places 1..n, in place order; None when the row publishes none of the fields."""
    if not any(name in f.row for name in names):
        return None
    values = [f.integer(name) for name in names]
    while values and values[-1] is None:
        values.pop()
    return values


def _race(f: Fields, ctx: Context, **extra: Any) -> dict[str, Any]:
    track, day, race_no, rid = _race_key(f)
    condition, moisture = f.read("track", going)
    return {
        "race_id": rid,
        "race_type": "horse",
        "track_code": track,
        "race_date": day,
        "race_no": race_no,
        "distance_m": f.integer("rcDist", zero_is_null=True),
        "grade": f.text("rank"),
        "race_name": f.text("rcName"),
        "age_condition": f.text("ageCond"),
        "sex_condition": f.text("sexCond"),
        "prize_condition": f.text("prizeCond"),
        "weight_rule": f.text("budam"),
        "prize_money_krw": _money(f, PRIZE_FIELDS),
        "bonus_money_krw": _money(f, BONUS_FIELDS),
        "weather": f.text("weather"),
        "track_condition": condition,
        "track_moisture_pct": moisture,
        "field_size": f.integer("dusu"),
        "source": "kra",
        "source_fetched_at": ctx.fetched_at,
        "details": {k: f.row[k] for k in RACE_KEPT if k in f.row},
        **extra,
    }


def _runner(f: Fields) -> dict[str, Any]:
    weight, delta = f.read("wgHr", body_weight)
    return {
        "entry_no": f.integer("chulNo"),
        "participant_id": f.ident("hrNo", 7),
        "participant_name": f.text("hrName"),
        "jockey_id": f.ident("jkNo", 6),
        "jockey_name": f.text("jkName"),
        "trainer_id": f.ident("trNo", 6),
        "trainer_name": f.text("trName"),
        "owner_id": f.ident("owNo", 6),
        "owner_name": f.text("owName"),
        "age": f.integer("age"),
        "sex": f.text("sex"),
        "carried_weight_kg": f.number("wgBudam", zero_is_null=True),
        "body_weight_kg": weight,
        "body_weight_delta": delta,
        "rating": f.integer("rating", zero_is_null=True),  # 0 = unrated in low grades
    }


def _runner_details(row: Row, endpoint: str) -> dict[str, Any]:
    return kept(row, TYPED[endpoint].keys() | RACE_KEPT)


def race_plan(rows: list[Row], ctx: Context) -> Out:
    """API72_2 racePlan_2."""
    races = []
    for row in rows:
        f = Fields(row)
        raw_post = f.text("schStTime")
        if raw_post is not None and "T" in raw_post:
            post = f.read("schStTime", iso_time)
        else:
            post = kst(f.date("rcDate"), f.read("schStTime", clock_time))
        race = _race(f, ctx, post_time=post, status="scheduled")
        race["details"] |= kept(row, TYPED[ep.KRA_RACE_PLAN.path].keys() | RACE_KEPT)
        races.append(race)
    return {"races": races}


def entry_sheet(rows: list[Row], ctx: Context) -> Out:
    """API26_2 entrySheet_2: the runners, and the race list with post times ("출발 :10:45")."""
    races: dict[str, dict[str, Any]] = {}
    entries = []
    for row in rows:
        f = Fields(row)
        race = _race(f, ctx, post_time=kst(f.date("rcDate"), f.read("stTime", clock_time)), status="scheduled")
        races.setdefault(race["race_id"], race)
        entries.append(
            {
                "race_id": race["race_id"],
                **_runner(f),
                "status": "declared",
                "source": "kra",
                "source_fetched_at": ctx.fetched_at,
                "details": _runner_details(row, ep.KRA_ENTRY_SHEET.path),
            }
        )
    return {"races": list(races.values()), "entries": entries}


def scratches(rows: list[Row], ctx: Context) -> Out:
    """API9_1 raceHorseCancelInfo_1: the runners withdrawn from a race."""
    entries = []
    for row in rows:
        f = Fields(row)
        entries.append(
            {
                "race_id": _race_key(f)[3],
                "entry_no": f.integer("chulNo"),
                "participant_id": f.ident("hrNo", 7),
                "participant_name": f.text("hrName"),
                "status": "scratched",
                "scratch_reason": f.text("cancelReason"),
                "source": "kra",
                "source_fetched_at": ctx.fetched_at,
                "details": kept(row, TYPED[ep.KRA_SCRATCHES.path]),
            }
        )
    return {"entries": entries}


def _sectionals(f: Fields) -> list[dict[str, Any]] | None:
    """The runner at each point (time since the start, position); None when the row has no sectional field."""
    if not any(name in f.row for name in POINT_FIELDS):
        return None
    points: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}
    for name, (point, what) in POINT_FIELDS.items():
        if name not in f.row:
            continue
        value = f.integer(name, zero_is_null=True) if what == "position" else f.number(name, zero_is_null=True)
        if value is None:  # 0: not measured (another track's field)
            continue
        slot = points.setdefault(point, {"point": point})
        if what in slot and slot[what] != value:
            raise NormalizeError(f"fields {origin[(point, what)]!r} and {name!r} disagree ({slot[what]} vs {value})")
        slot[what] = value
        origin[(point, what)] = name
    return [points[p] for p in POINT_ORDER if p in points]


def _splits(f: Fields) -> list[dict[str, Any]] | None:
    if not any(name in f.row for name in SPLIT_FIELDS):
        return None
    out = []
    for name, (start, end) in SPLIT_FIELDS.items():
        seconds = f.number(name, zero_is_null=True) if name in f.row else None
        if seconds is not None:
            out.append({"start": start, "end": end, "seconds": seconds})
    return out


def _result(f: Fields, ctx: Context, rid: str, endpoint: str, is_final: bool) -> dict[str, Any]:
    position, status, code = result_status(f.integer("ord"))
    allowance = f.number("wgJk")
    return {
        "race_id": rid,
        **_runner(f),
        "finish_position": position,
        "status": status,
        "status_code": code,
        "finish_time_s": f.read("rcTime", race_seconds) if position else None,
        "margin": f.text("diffUnit"),
        "win_odds": f.number("winOdds", zero_is_null=True),
        "place_odds": f.number("plcOdds", zero_is_null=True),
        "jockey_allowance_kg": allowance,
        "equipment": f.text("hrTool"),
        "sectionals": _sectionals(f),
        "split_times": _splits(f),
        "is_final": is_final,
        "source": "kra",
        "source_fetched_at": ctx.fetched_at,
        "details": _runner_details(f.row, endpoint),
    }


def _results_and_races(rows: list[Row], ctx: Context, endpoint: str) -> Out:
    races: dict[str, dict[str, Any]] = {}
    results = []
    statuses: dict[str, set[str]] = {}
    for row in rows:
        f = Fields(row)
        final = f.integer("finalBit") == 1
        if endpoint == ep.KRA_RACE_RESULT_TOTAL.path:
            cancelled = f.integer("noraceFlag") == 1
            extra = {
                "post_time": f.read("schStTime", iso_time),
                "started_at": f.read("stTime", iso_time),
                "status": "cancelled" if cancelled else ("official" if final else "finished"),
            }
        else:
            extra = {"status": "finished"}
        race = _race(f, ctx, **extra)
        races.setdefault(race["race_id"], race)
        result = _result(f, ctx, race["race_id"], endpoint, is_final=final)
        statuses.setdefault(race["race_id"], set()).add(result["status"])
        results.append(result)
    for rid, seen in statuses.items():
        if seen == {"cancelled"}:  # every runner carries ord 99: the race was called off
            races[rid]["status"] = "cancelled"
    return {"races": list(races.values()), "results": results}


def race_result(rows: list[Row], ctx: Context) -> Out:
    """API214_1 RaceDetailResult_1: per-runner results and the race (finality is not flagged here; API299 has it)."""
    return _results_and_races(rows, ctx, ep.KRA_RACE_RESULT.path)


def race_result_total(rows: list[Row], ctx: Context) -> Out:
    """API299 Race_Result_total: results with ``finalBit``, and the races' scheduled and actual post times."""
    return _results_and_races(rows, ctx, ep.KRA_RACE_RESULT_TOTAL.path)


def _profile_track(f: Fields) -> str | None:
    return f.read("meet", track_of).code if f.text("meet") is not None else None


def horse_info(rows: list[Row], ctx: Context) -> Out:
    """API8_2 raceHorseInfo_2: horse profiles (pedigree, connections, grade, rating; counters kept as a snapshot)."""
    horses = []
    for row in rows:
        f = Fields(row)
        horses.append(
            {
                "horse_id": f.ident("hrNo", 7),
                "name": f.text("hrName"),
                "sex": f.text("sex"),
                "birth_date": f.optional_date("birthday"),
                "origin": f.text("name"),
                "grade": f.text("rank"),
                "rating": f.integer("rating", zero_is_null=True),
                "sire_id": f.ident("faHrNo", 7),
                "sire_name": f.text("faHrName"),
                "dam_id": f.ident("moHrNo", 7),
                "dam_name": f.text("moHrName"),
                "trainer_id": f.ident("trNo", 6),
                "trainer_name": f.text("trName"),
                "owner_id": f.ident("owNo", 6),
                "owner_name": f.text("owName"),
                "career_prize_krw": f.integer("chaksunT"),
                "track_code": _profile_track(f),
                "source": "kra",
                "source_fetched_at": ctx.fetched_at,
                "details": kept(row, TYPED[ep.KRA_HORSE_INFO.path]),
            }
        )
    return {"entries": horses}


def jockey_info(rows: list[Row], ctx: Context) -> Out:
    """API12_1 jockeyInfo_1: jockey profiles (counters and weights kept as published)."""
    jockeys = []
    for row in rows:
        f = Fields(row)
        jockeys.append(
            {
                "jockey_id": f.ident("jkNo", 6),
                "name": f.text("jkName"),
                "age": f.integer("age"),
                "birth_date": f.optional_date("birthday"),
                "debut_date": f.optional_date("debut"),
                "track_code": _profile_track(f),
                "source": "kra",
                "source_fetched_at": ctx.fetched_at,
                "details": kept(row, TYPED[ep.KRA_JOCKEY_INFO.path]),
            }
        )
    return {"entries": jockeys}


def closing_time(day: date) -> datetime:
    """Time of the closing (final dividends) snapshot: the end of the race day, Korean time.

    Deterministic, so the same final dividends collected twice (live run, backfill, replay) are one row.
    """
    return kst_moment(day, time(23, 59, 59))


def _field(name: str, parse: Any, value: Any) -> Any:
    """``parse(value)``, its error naming the field (the odds hot path, without a :class:`Fields` per row)."""
    try:
        return parse(value)
    except NormalizeError as exc:
        raise NormalizeError(f"field {name!r}: {exc}") from None


# The pool and selection of the rows already read, by (pool, chulNo, chulNo2, chulNo3) as published (ints or texts,
# "7" as often as 7): a race's board repeats the same few thousand combinations, and reading them again was a third of
# the odds normalizer's time (texts: two thirds). An int and a text are never equal keys, so a key always reads the
# same; the runner numbers of a key are exact ints or texts (not a bool, not a float: 3.0 == 3 would share 3's key).
_POOL_SELECTIONS: dict[tuple[Any, Any, Any, Any], tuple[str, str]] = {}
_SELECTIONS_MAX = 100_000
_KEYS = (int, str)
_INF = float("inf")
_SELECTION = re.compile(SELECTION_PATTERN)
# Prices written as text ("2.0"), as read: the same few thousand texts on every board.
_PRICE_TEXTS: dict[str, float] = {}


def _selection(pool: str, a: Any, b: Any, c: Any) -> str:
    """The selection of runner numbers (``3``, ``3-7``, ``3-7-5``), checked against the model's pattern."""
    return _checked_selection(selection(pool, [integer(a) or 0, integer(b) or 0, integer(c) or 0]))


def _price(value: Any) -> float:
    """The odds of a row that are not a finite float >= 0 already: a text ("2.0", remembered), an int, or an error."""
    if type(value) is str:
        found = _PRICE_TEXTS.get(value)
        if found is not None:
            return found
    odds = number(value)
    if odds is None or odds < 0:
        raise ValidationFailed(f"invalid odds field: odds must be a number >= 0, got {value!r}")
    if type(value) is str:
        if len(_PRICE_TEXTS) >= _SELECTIONS_MAX:
            _PRICE_TEXTS.clear()
        _PRICE_TEXTS[value] = odds
    return odds


def _checked_selection(text: str) -> str:
    if not _SELECTION.fullmatch(text):
        raise ValidationFailed(f"invalid odds field: selection {text[:20]!r} does not match {SELECTION_PATTERN}")
    return text


def odds_rows(rows: list[OddsItem], ctx: Context, is_final: bool) -> Out:
    """API160_1 integratedInfo_1 (final dividends) and the live-odds feed (same item shape): one board per race.

    Hot path (up to ~4,400 rows per race): race-level values are worked out once per race, not per row, and a price
    is a plain mapping. Every value is checked here against :class:`schemas.records.OddsBoard` as it is read (a
    selection once per combination), so the boards are built without validating them again (measured: 0.6 us a
    price less); a value the model would refuse is a :class:`ValidationFailed` naming the field.
    """
    boards: dict[tuple[str, datetime, str], dict[str, Any]] = {}
    prices_of: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = {}
    known = _POOL_SELECTIONS
    for row in rows:
        a, b, c = row.chulNo, row.chulNo2, row.chulNo3
        key = (row.pool, a, b, c) if type(a) in _KEYS and type(b) in _KEYS and type(c) in _KEYS else None
        found = known.get(key) if key is not None else None
        if found is None:
            pool, chosen = _pool(row.pool), None
            if pool is None:
                continue
        else:
            pool, chosen = found
        race_key = (row.meet, row.rcDate, row.rcNo)
        prices = prices_of.get(race_key)
        if prices is None:
            prices = prices_of[race_key] = _board(boards, race_key, ctx, is_final)["prices"]
        odds, pool_total, rank = row.odds, row.poolTotal, row.rank
        try:
            if type(odds) is not float or not 0 <= odds < _INF:
                odds = _price(odds)  # a text, an int, a negative or infinite float
            if pool_total is not None and type(pool_total) is not int:
                pool_total = integer(pool_total)
            if rank is not None and type(rank) is not int:
                rank = integer(rank)
            if chosen is None:
                chosen = _selection(pool, a, b, c)
                if key is not None and type(row.pool) is str:
                    if len(known) >= _SELECTIONS_MAX:
                        known.clear()
                    known[key] = (pool, chosen)
        except NormalizeError as exc:
            raise NormalizeError(f"field {_failing(row)!r}: {exc}") from None
        prices.append(
            {"pool": pool, "selection": chosen, "odds": odds, "pool_total": pool_total, "popularity_rank": rank}
        )
    return {"odds": [OddsBoard.model_construct(schema_version=SCHEMA_VERSION, **b) for b in boards.values()]}


def _board(
    boards: dict[tuple[str, datetime, str], dict[str, Any]], race_key: tuple[Any, Any, Any], ctx: Context, final: bool
) -> dict[str, Any]:
    """The board of a race (meet, rcDate, rcNo), created on its first row: the final dividends stand at the race
    day's closing time, live odds at the time they were fetched."""
    found = _field("meet", track_of, race_key[0])
    day = _field("rcDate", ymd, race_key[1])
    race_no = _field("rcNo", integer, race_key[2])
    if race_no is None:
        raise NormalizeError("field 'rcNo': missing")
    key = (
        race_id(found.race_type, found.code, race_no, day),
        closing_time(day) if final else ctx.fetched_at,
        found.source,
    )
    board = boards.get(key)
    if board is None:
        if not well_formed(key[0]):
            raise ValidationFailed(f"invalid odds field: race_id {key[0][:60]!r} does not match {RACE_ID_PATTERN}")
        if key[1].utcoffset() is None:
            raise ValidationFailed("invalid odds field: time has no time zone")
        board = boards[key] = {"race_id": key[0], "time": key[1], "is_final": final, "source": key[2], "prices": []}
    return board


def _pool(published: Any) -> str | None:
    """The pool code of a pool as published; None for a pool that is not stored (:data:`NOT_OUR_POOLS`)."""
    pool = POOL_CODES.get(published) if isinstance(published, str) else None
    if pool is None:
        name = text(published)
        if name in NOT_OUR_POOLS:
            return None
        pool = POOL_CODES.get(name or "")
        if pool is None:
            raise NormalizeError(f"field 'pool': unknown pool {name!r}")
    return pool


def _failing(row: OddsItem) -> str:
    """The field of an odds row that does not read, in the order :func:`odds_rows` reads them (to name it in the
    error); ``selection`` when the runner numbers read but do not make one."""
    for name, parse in _NUMERIC:
        try:
            parse(getattr(row, name))
        except NormalizeError:
            return name
    return "selection"


_NUMERIC: tuple[tuple[str, Callable[[Any], object]], ...] = (
    ("odds", number),
    ("poolTotal", integer),
    ("rank", integer),
    ("chulNo", integer),
    ("chulNo2", integer),
    ("chulNo3", integer),
)


def final_dividends(rows: list[OddsItem], ctx: Context) -> Out:
    return odds_rows(rows, ctx, is_final=True)


def live_odds(rows: list[OddsItem], ctx: Context) -> Out:
    return odds_rows(rows, ctx, is_final=False)
