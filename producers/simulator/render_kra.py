"""KRA rows as the real APIs spell them (field names and quirks from the API notes and the real samples).

Quirks reproduced: ``meet`` is a name and differs by API ("부경" in API214_1, "부산경남" elsewhere); dates are ints;
``hrNo``/``jkNo`` keep leading zeros as strings while ``owNo`` is an int; ``rating`` is ``"-"`` when unrated;
``stTime`` is ``"출발 :10:45"``; ``wgHr`` is ``"511(+2)"``; API299 times are ISO with ``+09:00``; ``ord`` carries
status codes 91 (disqualified), 92 (did not finish), 95 (scratched), 99 (race cancelled); API160_1 names pools in
Korean and some rows carry numbers as strings.
"""

from __future__ import annotations

from datetime import datetime

from producers.simulator.envelope import Row
from producers.simulator.world import TRACKS, Race, Runner
from schemas import tracks
from schemas.timezones import KST

WEEKDAYS = ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"]
POOL_NAMES = {
    "WIN": "단승식",
    "PLC": "연승식",
    "QNL": "복승식",
    "EXA": "쌍승식",
    "QPL": "복연승식",
    "TLA": "삼복승식",
    "TRI": "삼쌍승식",
}
MEET_NAMES = {t.code: t.name_ko for t in tracks.TRACKS if t.race_type == "horse"}
RESULT_MEET_NAMES = MEET_NAMES | {"busan": "부경"}  # API214_1 spells Busan-Gyeongnam "부경"
MARGINS = ["-", "코", "머리", "목", "½", "¾", "1", "1½", "2", "3", "5", "7", "대"]


def _kst(moment: datetime) -> datetime:
    return moment.astimezone(KST)


def _race_fields(race: Race) -> Row:
    return {
        "rcDate": int(f"{race.day:%Y%m%d}"),
        "rcDay": WEEKDAYS[race.day.weekday()],
        "rcNo": race.race_no,
        "rcDist": race.distance_m,
        "rank": race.grade,
        "rcName": race.name,
    }


def _runner_fields(r: Runner) -> Row:
    return {
        "chulNo": r.entry_no,
        "hrName": r.name,
        "hrNo": r.participant_id,
        "age": r.age,
        "sex": r.sex,
        "jkName": r.jockey_name,
        "jkNo": r.jockey_id,
        "trName": r.trainer_name,
        "trNo": r.trainer_id,
        "owName": r.owner_name,
        "owNo": r.owner_id,
        "wgBudam": r.carried_weight,
        "rating": "-" if r.rating is None else r.rating,
    }


def race_plan_rows(races: tuple[Race, ...]) -> list[Row]:
    """API72_2 racePlan_2: one row per race."""
    return [
        {
            "meet": MEET_NAMES[r.track],
            **_race_fields(r),
            "ageCond": "연령오픈",
            "budam": "별정A",
            "schStTime": _kst(r.post_time).isoformat(),
            "dusu": len(r.runners),
        }
        for r in races
    ]


def entry_sheet_rows(races: tuple[Race, ...]) -> list[Row]:
    """API26_2 entrySheet_2: one row per declared runner of every race of the day."""
    rows = []
    for race in races:
        for r in race.runners:
            rows.append(
                {
                    "meet": MEET_NAMES[race.track],
                    **_race_fields(race),
                    **_runner_fields(r),
                    "dusu": len(race.runners),
                    "stTime": f"출발 :{_kst(race.post_time):%H:%M}",
                    "prd": "한국",
                    "ilsu": 14 + r.entry_no,
                    "chaksun1": 16500000,
                    "chaksun2": 6600000,
                    "chaksun3": 4200000,
                }
            )
    return rows


def scratch_rows(races: list[Race]) -> list[Row]:
    """API9_1 raceHorseCancelInfo_1: scratched runners (the API returns about a month around the date)."""
    return [
        {
            "meet": MEET_NAMES[race.track],
            "rcDate": int(f"{race.day:%Y%m%d}"),
            "rcNo": race.race_no,
            "chulNo": no,
            "hrName": next(r.name for r in race.runners if r.entry_no == no),
            "hrNo": next(r.participant_id for r in race.runners if r.entry_no == no),
            "cancelReason": reason,
        }
        for race in races
        for no, reason in sorted(race.scratched.items())
    ]


def _ord(race: Race, entry_no: int) -> int:
    if race.cancelled:
        return 99
    if entry_no in race.scratched:
        return 95
    if entry_no in race.disqualified:
        return 91
    if entry_no in race.did_not_finish:
        return 92
    return race.finish_order.index(entry_no) + 1


def _result_rows(race: Race) -> list[tuple[Runner, int, Row]]:
    odds = race.final_odds()
    rows = []
    for r in race.runners:
        position = _ord(race, r.entry_no)
        finished = position < 90
        row = {
            **_runner_fields(r),
            "ord": position,
            "rcTime": race.finish_times.get(r.entry_no, 0) if finished else 0,
            "wgHr": f"{r.body_weight}({r.body_weight_delta:+d})",
            "winOdds": odds.get(("WIN", (r.entry_no,)), 0),
            "plcOdds": odds.get(("PLC", (r.entry_no,)), 0),
        }
        rows.append((r, position, row))
    return sorted(rows, key=lambda item: (item[1], item[0].entry_no))


def race_result_rows(races: list[Race]) -> list[Row]:
    """API214_1 RaceDetailResult_1: one row per runner, in finishing order."""
    out = []
    for race in races:
        for r, position, row in _result_rows(race):
            margin = "-" if position in (1,) or position > 90 else MARGINS[(r.entry_no * 7 + position) % len(MARGINS)]
            out.append(
                {
                    "meet": RESULT_MEET_NAMES[race.track],
                    **_race_fields(race),
                    **row,
                    "ordBigo": "-",
                    "diffUnit": margin,
                    "birthday": 20200303 + r.entry_no,
                    "name": "한국",
                    "wgJk": 0,
                    "wgBudamBigo": "-",
                    "budam": "별정A",
                    "track": "건조 (2%)",
                    "weather": "맑음",
                    "hrTool": "망사,혀끈-",
                    "buS1fOrd": 0,
                    "seS1fAccTime": 0,
                    "jeS1fTime": 0,
                }
            )
    return out


def race_result_total_rows(races: list[Race], now: datetime) -> list[Row]:
    """API299 Race_Result_total: like API214_1 plus ISO post times, ``finalBit`` and ``noraceFlag``."""
    out = []
    for race in races:
        post = _kst(race.post_time).isoformat()
        for _r, _position, row in _result_rows(race):
            out.append(
                {
                    "meet": MEET_NAMES[race.track],
                    **_race_fields(race),
                    **row,
                    "schStTime": post,
                    "stTime": post,
                    "startTimeChg": "-",
                    "stTimeChgReason": "-",
                    "finalBit": int(race.result_final(now)),
                    "noraceFlag": int(race.cancelled),
                    "track": "건조 (2%)",
                }
            )
    return out


def _odds_rows(
    race: Race, values: dict[tuple[str, tuple[int, ...]], float], totals: dict[tuple[str, tuple[int, ...]], int] | None
) -> list[Row]:
    rows = []
    for (pool, selection), odds in values.items():
        padded = (*selection, 0, 0)[:3]
        row: Row = {
            "meet": TRACKS[race.track].name_ko,
            "rcDate": int(f"{race.day:%Y%m%d}"),
            "rcNo": race.race_no,
            "pool": POOL_NAMES[pool],
            "chulNo": padded[0],
            "chulNo2": padded[1],
            "chulNo3": padded[2],
            "odds": odds,
        }
        if sum(selection) % 11 == 0:  # type drift: some rows come as strings
            row.update(rcNo=str(race.race_no), chulNo=str(padded[0]), odds=f"{odds:.1f}")
        if totals is not None:
            row["poolTotal"] = totals[(pool, selection)]
        rows.append(row)
    return rows


def final_dividend_rows(race: Race) -> list[Row]:
    """API160_1 integratedInfo_1: the final odds board of every pool and combination of one race."""
    return _odds_rows(race, race.final_odds(), None)


def live_odds_rows(race: Race, now: datetime) -> list[Row]:
    """The live-odds feed: WIN, PLC and QNL now, with pool totals (same item shape as API160_1)."""
    live = race.live_odds(now)
    return _odds_rows(race, {k: v[0] for k, v in live.items()}, {k: v[1] for k, v in live.items()})
