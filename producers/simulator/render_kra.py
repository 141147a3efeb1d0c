"""KRA rows as the real APIs spell them (field names and quirks from the API notes and the real samples).

Quirks reproduced: ``meet`` is a name and differs by API ("부경" in API214_1, "부산경남" elsewhere); dates are ints;
``hrNo``/``jkNo`` keep leading zeros as strings while ``owNo`` is an int; ``rating`` is ``"-"`` when unrated;
``stTime`` is ``"출발 :10:45"``; ``wgHr`` is ``"511(+2)"``; API299 times are ISO with ``+09:00``; ``ord`` carries
status codes 91 (disqualified), 92 (did not finish), 95 (scratched), 99 (race cancelled); API160_1 names pools in
Korean and some rows carry numbers as strings. Every field of the reference's field tables is rendered
(:mod:`schemas.fields`); sectional times go in the fields of the race's track (``se*`` Seoul, ``bu*`` Busan, ``je*``
Jeju) and the other tracks' fields are 0, as in the real API214_1 sample.
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


PRIZES = (16500000, 6600000, 4200000, 1500000, 1200000)


def _race_fields(race: Race) -> Row:
    return {
        "rcDate": int(f"{race.day:%Y%m%d}"),
        "rcDay": WEEKDAYS[race.day.weekday()],
        "rcNo": race.race_no,
        "rcDist": race.distance_m,
        "rank": race.grade,
        "rcName": race.name,
    }


def _conditions(race: Race) -> Row:
    """Race conditions and prize money, as the entry sheet and the result APIs repeat them on every row."""
    return {
        "ageCond": "연령오픈",
        "prizeCond": "R0~0",
        "budam": "별정A",
        **{f"chaksun{n}": prize for n, prize in enumerate(PRIZES, start=1)},
    }


def _going(race: Race) -> Row:
    moisture = 2 + race.race_no % 17
    return {
        "track": f"{'건조' if moisture < 6 else '양호' if moisture < 12 else '포화'} ({moisture}%)",
        "weather": ["맑음", "흐림", "비"][race.day.toordinal() % 3],
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
            **_conditions(r),
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
                    **_conditions(race),
                    "sexCond": "성별오픈",
                    "dusu": len(race.runners),
                    "stTime": f"출발 :{_kst(race.post_time):%H:%M}",
                    "prd": "한국",
                    "ilsu": 14 + r.entry_no,
                    "hrNameEn": f"HORSE {r.participant_id}",
                    "jkNameEn": f"JOCKEY {r.jockey_id}",
                    "trNameEn": f"TRAINER {r.trainer_id}",
                    "owNameEn": f"OWNER {r.owner_id}",
                    **_career(r),
                }
            )
    return rows


def _career(r: Runner) -> Row:
    """The card's career counters (a snapshot of today, as the real API gives them)."""
    starts = 3 + r.entry_no * 2
    wins, seconds, thirds = starts // 6, starts // 5, starts // 4
    return {
        "rcCntT": starts,
        "ord1CntT": wins,
        "ord2CntT": seconds,
        "ord3CntT": thirds,
        "rcCntY": starts // 2,
        "ord1CntY": wins // 2,
        "ord2CntY": seconds // 2,
        "ord3CntY": thirds // 2,
        "chaksunT": wins * 16500000 + seconds * 6600000,
        "chaksunY": wins // 2 * 16500000,
        "chaksun_6m": wins // 4 * 16500000,
    }


ZERO_SECTIONALS: Row = {
    **dict.fromkeys(("sjS1fOrd", "sj_1cOrd", "sj_2cOrd", "sj_3cOrd", "sj_4cOrd", "sjG3fOrd", "sjG1fOrd"), 0),
    **dict.fromkeys(("seS1fAccTime", "se_1cAccTime", "se_2cAccTime", "se_3cAccTime", "se_4cAccTime"), 0),
    **dict.fromkeys(("seG3fAccTime", "seG1fAccTime", "buS1fAccTime", "buS1fOrd", "buS1fTime"), 0),
    **{f"buG{n}f{what}": 0 for n in (8, 6, 4, 3, 2, 1) for what in ("AccTime", "Ord")},
    **dict.fromkeys(("bu_10_8fTime", "bu_8_6fTime", "bu_6_4fTime", "bu_4_2fTime", "bu_3fGTime"), 0),
    **dict.fromkeys(("bu_2fGTime", "bu_1fGTime"), 0),
    **dict.fromkeys(("jeS1fTime", "je_1cTime", "je_2cTime", "je_3cTime", "je_4cTime", "jeG3fTime", "jeG1fTime"), 0),
}


def _sectionals(race: Race) -> dict[int, Row]:
    """Per finisher: the sectional fields of the race's track (times at points, positions), the others 0.

    A runner's time at a point is its finish time scaled by the distance covered, with a pace that differs by
    runner (front-runners faster early); positions at a point follow those times.
    """
    finishers = [n for n in race.finish_order if n in race.finish_times]
    pace = {n: 1.0 + ((n * 37) % 11 - 5) / 400 for n in finishers}
    metres = race.distance_m

    def at(n: int, distance: float) -> float:
        share = distance / metres
        return round(race.finish_times[n] * share * (pace[n] if share < 1 else 1.0), 1)

    points = {  # point -> metres from the start
        "S1F": 200,
        "C1": metres * 0.25,
        "C2": metres * 0.45,
        "C3": metres * 0.6,
        "C4": metres * 0.75,
        **{f"G{k}F": metres - 200 * k for k in (8, 6, 4, 3, 2, 1) if metres - 200 * k > 200},
    }
    times = {p: {n: at(n, d) for n in finishers} for p, d in points.items()}
    places = {
        p: {n: i for i, n in enumerate(sorted(finishers, key=lambda n: (t[n], n)), start=1)} for p, t in times.items()
    }
    out = {}
    for n in finishers:
        row = dict(ZERO_SECTIONALS)
        if race.track == "seoul":
            row |= {"seS1fAccTime": times["S1F"][n], "seG3fAccTime": times.get("G3F", {}).get(n, 0)}
            row |= {f"se_{c}cAccTime": times[f"C{c}"][n] for c in range(1, 5)}
            row["seG1fAccTime"] = times["G1F"][n]
        elif race.track == "jeju":
            row |= {"jeS1fTime": times["S1F"][n], "jeG3fTime": times.get("G3F", {}).get(n, 0)}
            row |= {f"je_{c}cTime": times[f"C{c}"][n] for c in range(1, 5)}
            row["jeG1fTime"] = times["G1F"][n]
        else:
            row |= {"buS1fAccTime": times["S1F"][n], "buS1fOrd": places["S1F"][n], "buS1fTime": times["S1F"][n]}
            for k in (8, 6, 4, 3, 2, 1):
                if f"G{k}F" in times:
                    row |= {f"buG{k}fAccTime": times[f"G{k}F"][n], f"buG{k}fOrd": places[f"G{k}F"][n]}
            finish = race.finish_times[n]
            for k in (3, 2, 1):
                if f"G{k}F" in times:
                    row[f"bu_{k}fGTime"] = round(finish - times[f"G{k}F"][n], 1)
        if race.track != "busan":
            row |= {"sjS1fOrd": places["S1F"][n], "sjG1fOrd": places["G1F"][n]}
            row |= {f"sj_{c}cOrd": places[f"C{c}"][n] for c in range(1, 5)}
            if "G3F" in places:
                row["sjG3fOrd"] = places["G3F"][n]
        out[n] = row
    return out


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
        sectionals = _sectionals(race)
        for r, position, row in _result_rows(race):
            out.append({"meet": RESULT_MEET_NAMES[race.track], **_result_fields(race, r, position, row, sectionals)})
    return out


def _result_fields(race: Race, r: Runner, position: int, row: Row, sectionals: dict[int, Row]) -> Row:
    """The fields API214_1 and API299 share (the glossary of the reference)."""
    margin = "-" if position in (1,) or position > 90 else MARGINS[(r.entry_no * 7 + position) % len(MARGINS)]
    return {
        **_race_fields(race),
        **_conditions(race),
        **{f"buga{n}": 0 for n in (1, 2, 3)},
        **_going(race),
        **row,
        "ordBigo": "-",
        "diffUnit": margin,
        "birthday": 20200303 + r.entry_no,
        "name": "한국",
        "wgJk": -2 if r.entry_no % 9 == 0 else 0,
        "wgBudamBigo": "-",
        "hrTool": "망사,혀끈-",
        "ilsu": 14 + r.entry_no,
        "rankRise": 0,
        **sectionals.get(r.entry_no, ZERO_SECTIONALS),
    }


def race_result_total_rows(races: list[Race], now: datetime) -> list[Row]:
    """API299 Race_Result_total: like API214_1 plus ISO post times, ``finalBit`` and ``noraceFlag``."""
    out = []
    for race in races:
        post = _kst(race.post_time).isoformat()
        sectionals = _sectionals(race)
        for r, position, row in _result_rows(race):
            out.append(
                {
                    "meet": MEET_NAMES[race.track],
                    **_result_fields(race, r, position, row, sectionals),
                    "schStTime": post,
                    "stTime": post,
                    "startTimeChg": "-",
                    "stTimeChgReason": "-",
                    "finalBit": int(race.result_final(now)),
                    "noraceFlag": int(race.cancelled),
                    "hrOrd1CntT": _career(r)["ord1CntT"],
                    "jkOrd1CntY": 20 + int(r.jockey_id) % 40,
                    "trRcCntT": 300 + int(r.trainer_id) % 500,
                    "jkAge": 20 + int(r.jockey_id) % 25,
                    "jkCareer": 1 + int(r.jockey_id) % 20,
                    "trCareer": 1 + int(r.trainer_id) % 30,
                    "prdName": "한국",
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


def horse_info_rows(races: list[Race]) -> list[Row]:
    """API8_2 raceHorseInfo_2: the profile of every horse of the races (pedigree ids are made up from the horse's)."""
    rows: dict[str, Row] = {}
    for race in races:
        for r in race.runners:
            career = _career(r)
            rows.setdefault(
                r.participant_id,
                {
                    "meet": MEET_NAMES[race.track],
                    "hrNo": r.participant_id,
                    "hrName": r.name,
                    "name": "한국",
                    "sex": r.sex,
                    "birthday": 20200303 + r.entry_no,
                    "rank": race.grade.replace("등급", ""),
                    "rating": "-" if r.rating is None else r.rating,
                    "faHrNo": f"{int(r.participant_id) % 9000 + 30000:07d}",
                    "faHrName": f"{r.name}부",
                    "moHrNo": f"{int(r.participant_id) % 9000 + 40000:07d}",
                    "moHrName": f"{r.name}모",
                    "trNo": r.trainer_id,
                    "trName": r.trainer_name,
                    "owNo": r.owner_id,
                    "owName": r.owner_name,
                    "hrLastAmt": f"{20000 + r.entry_no * 1000:,}천원(경매)",
                    **{k: career[k] for k in ("chaksunT", "rcCntT", "ord1CntT", "ord2CntT", "ord3CntT")},
                    **{k: career[k] for k in ("rcCntY", "ord1CntY", "ord2CntY", "ord3CntY")},
                },
            )
    return list(rows.values())


def jockey_info_rows(races: list[Race]) -> list[Row]:
    """API12_1 jockeyInfo_1: the profile of every jockey of the races."""
    rows: dict[str, Row] = {}
    for race in races:
        for r in race.runners:
            number = int(r.jockey_id)
            rows.setdefault(
                r.jockey_id,
                {
                    "meet": MEET_NAMES[race.track],
                    "jkNo": r.jockey_id,
                    "jkName": r.jockey_name,
                    "age": 20 + number % 25,
                    "birthday": 19900101 + number % 12 * 100,
                    "debut": 20100504 + number % 10 * 10000,
                    "part": "프리기수" if number % 2 else "소속기수",
                    "spDate": "-",
                    "wgPart": 50 + number % 5,
                    "wgOther": 50 + number % 5,
                    "rcCntT": 1000 + number % 3000,
                    "ord1CntT": 100 + number % 300,
                    "ord2CntT": 90 + number % 250,
                    "ord3CntT": 80 + number % 200,
                    "rcCntY": 100 + number % 300,
                    "ord1CntY": 10 + number % 30,
                    "ord2CntY": 9 + number % 25,
                    "ord3CntY": 8 + number % 20,
                },
            )
    return list(rows.values())
