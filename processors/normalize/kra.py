"""KRA payloads -> normalized record dicts (validated against the models by :mod:`processors.normalize`)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from processors.errors import NormalizeError
from processors.normalize.common import (
    NOT_OUR_POOLS,
    POOL_CODES,
    Context,
    Row,
    body_weight,
    clock_time,
    ident,
    integer,
    iso_time,
    kst,
    number,
    race_seconds,
    result_status,
    selection,
    text,
    track_of,
    ymd,
)
from schemas.race_ids import race_id
from schemas.timezones import kst_moment

Out = dict[str, list[dict[str, Any]]]


def _race_key(row: Row) -> tuple[str, date, int, str]:
    found = track_of(row.get("meet"))
    track = found.code
    if found.race_type != "horse":
        raise NormalizeError(f"KRA row names a non-horse track {track!r}")
    day = ymd(row.get("rcDate"))
    race_no = integer(row.get("rcNo"))
    if race_no is None:
        raise NormalizeError("missing rcNo")
    return track, day, race_no, race_id("horse", track, race_no, day)


def _race(row: Row, ctx: Context, **extra: Any) -> dict[str, Any]:
    track, day, race_no, rid = _race_key(row)
    return {
        "race_id": rid,
        "race_type": "horse",
        "track_code": track,
        "race_date": day,
        "race_no": race_no,
        "distance_m": integer(row.get("rcDist"), zero_is_null=True),
        "grade": text(row.get("rank")),
        "race_name": text(row.get("rcName")),
        "source": "kra",
        "source_fetched_at": ctx.fetched_at,
        **extra,
    }


def _runner(row: Row) -> dict[str, Any]:
    weight, delta = body_weight(row.get("wgHr"))
    return {
        "entry_no": integer(row.get("chulNo")),
        "participant_id": ident(row.get("hrNo"), 7),
        "participant_name": text(row.get("hrName")),
        "jockey_id": ident(row.get("jkNo"), 6),
        "jockey_name": text(row.get("jkName")),
        "trainer_id": ident(row.get("trNo"), 6),
        "trainer_name": text(row.get("trName")),
        "owner_id": ident(row.get("owNo"), 6),
        "owner_name": text(row.get("owName")),
        "age": integer(row.get("age")),
        "sex": text(row.get("sex")),
        "carried_weight_kg": number(row.get("wgBudam"), zero_is_null=True),
        "body_weight_kg": weight,
        "body_weight_delta": delta,
        "rating": integer(row.get("rating"), zero_is_null=True),  # 0 = unrated in low grades
    }


def race_plan(rows: list[Row], ctx: Context) -> Out:
    """API72_2 racePlan_2."""
    races = []
    for row in rows:
        post = iso_time(row.get("schStTime")) if "T" in str(row.get("schStTime", "")) else None
        if post is None and row.get("schStTime") is not None:
            post = kst(ymd(row.get("rcDate")), clock_time(row.get("schStTime")))
        races.append(_race(row, ctx, post_time=post, field_size=integer(row.get("dusu")), status="scheduled"))
    return {"races": races}


def entry_sheet(rows: list[Row], ctx: Context) -> Out:
    """API26_2 entrySheet_2: the runners, and the race list with post times ("출발 :10:45")."""
    races: dict[str, dict[str, Any]] = {}
    entries = []
    for row in rows:
        race = _race(
            row,
            ctx,
            post_time=kst(ymd(row.get("rcDate")), clock_time(row.get("stTime"))),
            field_size=integer(row.get("dusu")),
            status="scheduled",
        )
        races.setdefault(race["race_id"], race)
        runner = _runner(row)
        entries.append(
            {
                "race_id": race["race_id"],
                **runner,
                "status": "declared",
                "source": "kra",
                "source_fetched_at": ctx.fetched_at,
                "details": {k: row[k] for k in ("prd", "ilsu", "budam") if k in row},
            }
        )
    return {"races": list(races.values()), "entries": entries}


def scratches(rows: list[Row], ctx: Context) -> Out:
    """API9_1 raceHorseCancelInfo_1: the runners withdrawn from a race."""
    entries = []
    for row in rows:
        _, _, _, rid = _race_key(row)
        entries.append(
            {
                "race_id": rid,
                "entry_no": integer(row.get("chulNo")),
                "participant_id": ident(row.get("hrNo"), 7),
                "participant_name": text(row.get("hrName")),
                "status": "scratched",
                "scratch_reason": text(row.get("cancelReason")),
                "source": "kra",
                "source_fetched_at": ctx.fetched_at,
            }
        )
    return {"entries": entries}


def _result(row: Row, ctx: Context, rid: str, is_final: bool) -> dict[str, Any]:
    position, status, code = result_status(integer(row.get("ord")))
    runner = _runner(row)
    return {
        "race_id": rid,
        "entry_no": runner["entry_no"],
        "finish_position": position,
        "status": status,
        "status_code": code,
        "finish_time_s": race_seconds(row.get("rcTime")) if position else None,
        "margin": text(row.get("diffUnit")),
        "participant_id": runner["participant_id"],
        "participant_name": runner["participant_name"],
        "jockey_id": runner["jockey_id"],
        "jockey_name": runner["jockey_name"],
        "win_odds": number(row.get("winOdds"), zero_is_null=True),
        "place_odds": number(row.get("plcOdds"), zero_is_null=True),
        "is_final": is_final,
        "source": "kra",
        "source_fetched_at": ctx.fetched_at,
        "details": {k: row[k] for k in ("track", "weather", "wgJk", "wgHr", "hrTool", "ordBigo") if text(row.get(k))},
    }


def race_result(rows: list[Row], ctx: Context) -> Out:
    """API214_1 RaceDetailResult_1: per-runner results (finality is not flagged here; API299 carries it)."""
    return {"results": [_result(row, ctx, _race_key(row)[3], is_final=False) for row in rows]}


def race_result_total(rows: list[Row], ctx: Context) -> Out:
    """API299 Race_Result_total: results with ``finalBit``, and the races' scheduled and actual post times."""
    races: dict[str, dict[str, Any]] = {}
    results = []
    for row in rows:
        final = integer(row.get("finalBit")) == 1
        cancelled = integer(row.get("noraceFlag")) == 1
        race = _race(
            row,
            ctx,
            post_time=iso_time(row.get("schStTime")),
            started_at=iso_time(row.get("stTime")),
            status="cancelled" if cancelled else ("official" if final else "finished"),
        )
        races.setdefault(race["race_id"], race)
        results.append(_result(row, ctx, race["race_id"], is_final=final))
    return {"races": list(races.values()), "results": results}


def closing_time(day: date) -> datetime:
    """Time of the closing (final dividends) snapshot: the end of the race day, Korean time.

    Deterministic, so the same final dividends collected twice (live run, backfill, replay) are one row.
    """
    return kst_moment(day, time(23, 59, 59))


def odds_rows(rows: list[Row], ctx: Context, is_final: bool) -> Out:
    """API160_1 integratedInfo_1 (final dividends) and the live-odds feed (same item shape).

    Hot path (up to ~4,400 rows per race): race-level values are worked out once per race, not per row.
    """
    out = []
    races: dict[tuple[Any, Any, Any], tuple[str, datetime, str]] = {}
    for row in rows:
        pool_name = row.get("pool")
        pool = POOL_CODES.get(pool_name) if isinstance(pool_name, str) else None
        if pool is None:
            name = text(pool_name)
            if name in NOT_OUR_POOLS:
                continue
            pool = POOL_CODES.get(name or "")
            if pool is None:
                raise NormalizeError(f"unknown pool {name!r}")
        race_key = (row.get("meet"), row.get("rcDate"), row.get("rcNo"))
        race = races.get(race_key)
        if race is None:
            found = track_of(race_key[0])
            track, race_type = found.code, found.race_type
            day = ymd(race_key[1])
            race_no = integer(race_key[2])
            if race_no is None:
                raise NormalizeError("missing rcNo")
            race = (
                race_id(race_type, track, race_no, day),
                closing_time(day) if is_final else ctx.fetched_at,
                found.source,
            )
            races[race_key] = race
        numbers = [integer(row.get("chulNo")) or 0, integer(row.get("chulNo2")) or 0, integer(row.get("chulNo3")) or 0]
        out.append(
            {
                "race_id": race[0],
                "time": race[1],
                "pool": pool,
                "selection": selection(pool, numbers),
                "odds": number(row.get("odds")),
                "is_final": is_final,
                "pool_total": integer(row.get("poolTotal")),
                "popularity_rank": integer(row.get("rank")) if "rank" in row else None,
                "source": race[2],
            }
        )
    return {"odds": out}


def final_dividends(rows: list[Row], ctx: Context) -> Out:
    return odds_rows(rows, ctx, is_final=True)


def live_odds(rows: list[Row], ctx: Context) -> Out:
    return odds_rows(rows, ctx, is_final=False)
