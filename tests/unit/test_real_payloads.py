"""Real payloads normalize field by field to the values written out here (never computed by the normalizers).

Sources: ``tests/samples`` (copies of ``reference/samples``) and the verbatim rows quoted in
``reference/kra-kspo-apis.md`` §3 (Examples C, E and F). Expected values are read off the payloads by hand.
"""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from processors.errors import ProcessingError
from processors.normalize import common as c
from processors.normalize import normalize
from producers.simulator import envelope
from schemas import endpoints as ep

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FETCHED = datetime(2026, 8, 14, 6, 0, tzinfo=UTC)


def ctx(endpoint: str, key: str = "k", source: str = "kra", **params: str) -> c.Context:
    return c.Context(source, endpoint, params, FETCHED, key)


def body(rows: list[dict]) -> bytes:
    return envelope.json_body(rows, 1, 1000, len(rows))


# ---- API214_1, the real sample (JSON, and the same response as XML) ----------------------------------------------
# entry, position, time, margin, win, place, horse, jockey, trainer, owner, carried kg, body kg, change, allowance, sex
EXPECTED_214 = [
    (10, 1, 75.4, None, 3.0, 1.2, "0051228", "080565", "070180", "118011", 57.0, 511, 2, 0.0, "거"),
    (2, 2, 75.6, "½", 1.7, 1.1, "0051728", "080484", "070173", "124011", 57.0, 476, -1, 0.0, "거"),
    (11, 3, 76.8, "7", 12.9, 2.2, "0051060", "080403", "070246", "105040", 55.0, 495, -12, 0.0, "암"),
    (6, 4, 76.9, "½", 10.6, 2.0, "0054760", "080593", "070128", "121054", 57.0, 451, 6, 0.0, "수"),
    (4, 5, 77.0, "½", 19.7, 2.5, "0051796", "080516", "070186", "112006", 57.0, 474, -8, 0.0, "수"),
    (7, 6, 77.2, "1½", 55.3, 8.4, "0051617", "080532", "070176", "104117", 57.0, 467, -14, 0.0, "거"),
    (1, 7, 77.4, "1", 66.4, 15.1, "0051304", "080610", "070123", "111077", 55.0, 457, -1, -2.0, "수"),
    (5, 8, 77.5, "½", 40.4, 7.1, "0051519", "080551", "070194", "105133", 57.0, 515, -4, 0.0, "거"),
    (8, 9, 77.6, "¾", 74.2, 19.1, "0051902", "080483", "070126", "106229", 57.0, 485, -6, 0.0, "거"),
    (9, 10, 78.2, "4", 98.4, 19.6, "0050889", "080431", "070127", "112004", 55.0, 449, -3, 0.0, "암"),
]  # fmt: skip
EQUIPMENT_214 = {
    10: "망사,반가지큰,승인편자+,혀끈-",
    2: "계란형큰,망사",
    11: "계란형큰+,망사눈+",
    6: "망사눈,반가지큰",
    4: "계란형큰+,망사+,양털코+",
    7: "계란형큰,망사,혀끈",
    1: "계란형큰,망사눈",
    5: "망사눈,반가지큰",
    8: "망사눈,반가지큰",
    9: "계란형큰,망사",
}


@pytest.mark.parametrize("name", ["kra_api214_response.json", "kra_api214_response.xml"])
def test_api214_sample_runners(name):
    out = normalize((SAMPLES / name).read_bytes(), ctx(ep.KRA_RACE_RESULT.path))
    assert (out.entries, out.odds) == ([], [])
    got = [
        (
            r.entry_no,
            r.finish_position,
            r.finish_time_s,
            r.margin,
            r.win_odds,
            r.place_odds,
            r.participant_id,
            r.jockey_id,
            r.trainer_id,
            r.owner_id,
            r.carried_weight_kg,
            r.body_weight_kg,
            r.body_weight_delta,
            r.jockey_allowance_kg,
            r.sex,
        )
        for r in out.results
    ]
    assert got == EXPECTED_214
    assert {r.entry_no: r.equipment for r in out.results} == EQUIPMENT_214
    assert {(r.race_id, r.status, r.status_code, r.age, r.rating, r.is_final) for r in out.results} == {
        ("horse-busan-1-20250523", "finished", None, 3, None, False)  # "부경" is busan; rating 0 = unrated
    }


@pytest.mark.parametrize("name", ["kra_api214_response.json", "kra_api214_response.xml"])
def test_api214_sample_race_once_per_race(name):
    out = normalize((SAMPLES / name).read_bytes(), ctx(ep.KRA_RACE_RESULT.path))
    (race,) = out.races
    assert race.model_dump(exclude={"details"}) == {
        "schema_version": 2,
        "race_id": "horse-busan-1-20250523",
        "race_type": "horse",
        "track_code": "busan",
        "race_date": date(2025, 5, 23),
        "race_no": 1,
        "post_time": None,
        "started_at": None,
        "distance_m": 1200,
        "grade": "국6등급",
        "race_name": "일반",
        "field_size": None,
        "status": "finished",
        "source": "kra",
        "source_fetched_at": FETCHED,
        "age_condition": "연령오픈",
        "sex_condition": None,
        "prize_condition": "R0~0",
        "weight_rule": "별정A",
        "prize_money_krw": [16500000, 6600000, 4200000, 1500000, 1200000],
        "bonus_money_krw": [0, 0, 0],
        "weather": "흐림",
        "track_condition": "건조",
        "track_moisture_pct": 2,
    }
    assert race.details == {"rcDay": "금요일"}


def test_api214_sample_first_runner_every_field():
    out = normalize((SAMPLES / "kra_api214_response.json").read_bytes(), ctx(ep.KRA_RACE_RESULT.path))
    first = out.results[0]
    assert (first.participant_name, first.jockey_name, first.trainer_name, first.owner_name) == (
        "올라운드원",
        "정도윤",
        "안우성",
        "김혜진",
    )
    # Busan publishes times and positions at the points (bu*AccTime, bu*Ord); Seoul's and Jeju's fields are 0.
    assert [s.model_dump() for s in first.sectionals] == [
        {"point": "S1F", "elapsed_s": 14.1, "position": 6},
        {"point": "G4F", "elapsed_s": 25.5, "position": 6},
        {"point": "G3F", "elapsed_s": 37.5, "position": 6},
        {"point": "G2F", "elapsed_s": 50.0, "position": 5},
        {"point": "G1F", "elapsed_s": 62.4, "position": 2},
    ]
    assert [s.model_dump() for s in first.split_times] == [
        {"start": "start", "end": "S1F", "seconds": 14.1},
        {"start": "G6F", "end": "G4F", "seconds": 25.5},
        {"start": "G4F", "end": "G2F", "seconds": 24.5},
        {"start": "G3F", "end": "finish", "seconds": 37.9},
        {"start": "G2F", "end": "finish", "seconds": 25.4},
        {"start": "G1F", "end": "finish", "seconds": 13.0},
    ]
    assert first.details == {
        "birthday": 20220303,
        "ilsu": 39,
        "name": "한국",
        "ordBigo": "-",
        "rankRise": 0,
        "wgBudamBigo": "-",
    }
    second = out.results[1]
    assert [(s.point, s.elapsed_s, s.position) for s in second.sectionals] == [
        ("S1F", 13.8, 2),
        ("G4F", 24.7, 1),
        ("G3F", 36.6, 1),
        ("G2F", 49.5, 1),
        ("G1F", 62.1, 1),
    ]


def test_api214_xml_keeps_the_published_text_in_details():
    out = normalize((SAMPLES / "kra_api214_response.xml").read_bytes(), ctx(ep.KRA_RACE_RESULT.path))
    assert out.results[0].details == {
        "birthday": "20220303",
        "ilsu": "39",
        "name": "한국",
        "ordBigo": "-",
        "rankRise": "0",
        "wgBudamBigo": "-",
    }


# ---- API8_2 and API12_1, the real profile samples (one row: ``item`` is an object) -----------------------------
def test_api8_2_horse_profile_sample():
    (horse,) = normalize((SAMPLES / "kra_api8_2_response.json").read_bytes(), ctx(ep.KRA_HORSE_INFO.path)).entries
    assert horse.model_dump(exclude={"source_fetched_at"}) == {
        "schema_version": 2,
        "horse_id": "0051228",
        "name": "올라운드원",
        "sex": "거",
        "birth_date": date(2022, 3, 3),
        "origin": "한국",
        "grade": "국5",
        "rating": None,  # 0: unrated
        "sire_id": "0031261",
        "sire_name": "사이먼퓨어",
        "dam_id": "0031853",
        "dam_name": "모닝퀸",
        "trainer_id": "070180",
        "trainer_name": "안우성",
        "owner_id": "118011",  # an int in the JSON
        "owner_name": "김혜진",
        "career_prize_krw": 18750000,
        "track_code": "busan",  # "부산경남"
        "source": "kra",
        "details": {
            "hrLastAmt": "30,000천원(경매)",
            "rcCntT": 2, "ord1CntT": 1, "ord2CntT": 0, "ord3CntT": 0,
            "rcCntY": 2, "ord1CntY": 1, "ord2CntY": 0, "ord3CntY": 0,
        },
    }  # fmt: skip


def test_api12_jockey_profile_sample():
    (jockey,) = normalize((SAMPLES / "kra_api12_response.json").read_bytes(), ctx(ep.KRA_JOCKEY_INFO.path)).entries
    assert jockey.model_dump(exclude={"source_fetched_at"}) == {
        "schema_version": 2,
        "jockey_id": "080405",
        "name": "김용근",
        "age": 43,
        "birth_date": date(1982, 2, 12),
        "debut_date": date(2005, 5, 4),
        "track_code": "seoul",
        "source": "kra",
        "details": {
            "part": "프리기수", "spDate": "-", "wgPart": 51, "wgOther": 51,
            "rcCntT": 6254, "ord1CntT": 968, "ord2CntT": 791, "ord3CntT": 685,
            "rcCntY": 415, "ord1CntY": 59, "ord2CntY": 48, "ord3CntY": 40,
        },
    }  # fmt: skip


# ---- API299, Example C (selected keys of a real item) ------------------------------------------------------------
EXAMPLE_C = {
    "chulNo": 3, "finalBit": 1, "hrName": "최강스피드", "hrNo": "0051367", "jkName": "씨씨웡", "jkNo": "080613",
    "meet": "서울", "noraceFlag": 0, "ord": 1, "rank": "국6등급", "rcDate": 20250503, "rcNo": 1, "rcTime": 75.3,
    "schStTime": "2025-05-03T10:35:00+09:00", "stTime": "2025-05-03T10:35:00+09:00",
    "stTimeChgReason": "-", "startTimeChg": "-", "track": "포화 (18%)", "wgBudam": 57, "wgHr": "488(-6)",
}  # fmt: skip


def test_api299_example_c():
    out = normalize(body([EXAMPLE_C]), ctx(ep.KRA_RACE_RESULT_TOTAL.path))
    (race,) = out.races
    assert (race.race_id, race.status, race.grade, race.post_time, race.started_at) == (
        "horse-seoul-1-20250503",
        "official",
        "국6등급",
        datetime(2025, 5, 3, 1, 35, tzinfo=UTC),
        datetime(2025, 5, 3, 1, 35, tzinfo=UTC),
    )
    assert (race.track_condition, race.track_moisture_pct, race.weather) == ("포화", 18, None)
    assert race.details == {"startTimeChg": "-", "stTimeChgReason": "-"}
    (result,) = out.results
    assert result.model_dump(exclude={"source_fetched_at"}) == {
        "schema_version": 2,
        "race_id": "horse-seoul-1-20250503",
        "entry_no": 3,
        "finish_position": 1,
        "status": "finished",
        "status_code": None,
        "finish_time_s": 75.3,
        "margin": None,
        "participant_id": "0051367",
        "participant_name": "최강스피드",
        "jockey_id": "080613",
        "jockey_name": "씨씨웡",
        "win_odds": None,
        "place_odds": None,
        "is_final": True,
        "source": "kra",
        "details": {},
        "trainer_id": None,
        "trainer_name": None,
        "owner_id": None,
        "owner_name": None,
        "age": None,
        "sex": None,
        "rating": None,
        "carried_weight_kg": 57.0,
        "jockey_allowance_kg": None,
        "body_weight_kg": 488,
        "body_weight_delta": -6,
        "equipment": None,
        "sectionals": None,
        "split_times": None,
    }


# ---- KSPO cycle, Example E (probed live 2026-08-14) --------------------------------------------------------------
CYCLE_RESULT_ROW = {
    "race_no": "01", "pool4_val": "(2-7)9.4", "week_tcnt": 1, "pool6_val": "(2-7-5)3.4", "day_tcnt": 1,
    "pool1_val": "(2)2.5", "pool2_val": "(2)1.2 (7)2.1", "pool8_val": "(2-7-5)6.4", "row_num": 1,
    "race_ymd": "0102", "meet_nm": "광명", "rank1": "②이길섭", "rank2": "⑦김용남", "pool5_val": "(2-7)5.6",
    "rank3": "⑤최원재", "stnd_yr": "2026", "pool7_val": "(2-7-5)20.5",
}  # fmt: skip
CYCLE_ENTRY_ROW = {
    "race_no": "01", "gear_rate": "3.92", "race_len": "1691", "dptre_tm": "12\"55", "racer_nm": "신용수",
    "race_ymd": "2026.01.02", "meet_nm": "광명  ", "back_no": "1", "stnd_yr": "2026", "win_rate": "0",
    "racer_grd_cd": "선발", "racer_grd_cur_cd": "B3", "week_tcnt": "01", "day_tcnt": "1", "rec_200m_scr": "12\"00",
    "tot_tms_avg_scr": "81.744", "round_cnt": "5", "bf1_day1_rank": "선발 4-5", "bf1_day1_ymd": "1205",
}  # fmt: skip


def test_cycle_result_example_e():
    out = normalize(body([CYCLE_RESULT_ROW]), ctx(ep.CYCLE_RESULT.path, source="kspo", stnd_yr="2026"))
    (race,) = out.races
    assert (race.race_id, race.race_date, race.status) == ("cycle-gwangmyeong-1-20260102", date(2026, 1, 2), "official")
    assert race.details == {"stnd_yr": 2026, "week_tcnt": 1, "day_tcnt": 1, "row_num": 1, "pool8_val": "(2-7-5)6.4"}
    assert [(r.entry_no, r.finish_position, r.participant_name, r.status) for r in out.results] == [
        (2, 1, "이길섭", "finished"),
        (7, 2, "김용남", "finished"),
        (5, 3, "최원재", "finished"),
    ]
    assert sorted((o.pool, o.selection, o.odds) for o in out.odds_records()) == [
        ("EXA", "2-7", 9.4),
        ("PLC", "2", 1.2),
        ("PLC", "7", 2.1),
        ("QNL", "2-7", 5.6),
        ("TLA", "2-5-7", 3.4),
        ("TRI", "2-7-5", 20.5),
        ("WIN", "2", 2.5),
    ]
    assert {(o.is_final, o.time) for o in out.odds_records()} == {(True, datetime(2026, 1, 2, 14, 59, 59, tzinfo=UTC))}


def test_cycle_entry_example_e():
    out = normalize(body([CYCLE_ENTRY_ROW]), ctx(ep.CYCLE_ENTRIES.path, source="kspo"))
    (race,) = out.races
    assert (race.race_id, race.post_time, race.distance_m, race.grade, race.field_size) == (
        "cycle-gwangmyeong-1-20260102",
        datetime(2026, 1, 2, 3, 55, tzinfo=UTC),  # 12"55 Korean time
        1691,
        "선발",
        1,
    )
    assert race.details == {"stnd_yr": 2026, "week_tcnt": 1, "day_tcnt": 1}
    (entry,) = out.entries
    assert (entry.entry_no, entry.participant_name, entry.grade, entry.age, entry.status) == (
        1,
        "신용수",
        "B3",
        None,
        "declared",
    )
    assert (entry.gear_ratio, entry.recent_ranks) == (3.92, ["선발 4-5"])
    assert entry.details == {
        "win_rate": "0",
        "rec_200m_scr": '12"00',
        "tot_tms_avg_scr": "81.744",
        "round_cnt": "5",
        "bf1_day1_ymd": "1205",
    }


CYCLE_RANK_ROW = {
    "race_day": "20260613", "meet_nm": "광명", "race_no": "15", "day_ord": "2", "race_rank": "06",
    "racer_no": "20100013", "row_num": 1, "tms": "24", "racer_nm": "유태복", "stnd_year": "2026",
}  # fmt: skip


def test_cycle_rank_example_e():
    out = normalize(body([CYCLE_RANK_ROW]), ctx(ep.CYCLE_RANK.path, source="kspo"))
    (race,) = out.races
    assert (race.race_id, race.race_date, race.status) == (
        "cycle-gwangmyeong-15-20260613",
        date(2026, 6, 13),
        "official",
    )
    assert race.details == {"stnd_yr": 2026, "week_tcnt": 24, "day_tcnt": 2}  # round 24, day 2 of 2026
    (rank,) = out.results
    assert rank.model_dump(exclude={"source_fetched_at"}) == {
        "schema_version": 2,
        "race_id": "cycle-gwangmyeong-15-20260613",
        "racer_id": "20100013",
        "racer_name": "유태복",
        "finish_position": 6,
        "source": "kspo",
        "details": {"row_num": 1},
    }


# ---- KSPO boat, Example F ----------------------------------------------------------------------------------------
BOAT_RESULT_ROW = {
    "race_no": "01", "pool4_val": "①-②1.9", "week_tcnt": 1, "pool6_val": "①-②-⑥3.4", "day_tcnt": "1",
    "pool1_val": "①1.1", "pool2_val": "①1.1", "row_num": 1, "rank1": "①류해광", "rank2": "②곽현성",
    "pool5_val": "①-②1.5", "rank3": "⑥김인혜", "pool3_val": "②1.4", "stnd_yr": "2026",
}  # fmt: skip


def test_boat_result_example_f():
    # The row has no date: the call's key names the day (day 1 of round 1 of 2026 was asked for on 2026-01-07).
    key = "boat-misari-1-20260107"
    out = normalize(body([BOAT_RESULT_ROW]), ctx(ep.BOAT_RESULT.path, key=key, source="kspo", day_tcnt="1"))
    (race,) = out.races
    assert (race.race_id, race.status) == ("boat-misari-1-20260107", "official")
    assert race.details == {"stnd_yr": 2026, "week_tcnt": 1, "day_tcnt": 1, "row_num": 1}
    assert [(r.entry_no, r.finish_position, r.participant_name) for r in out.results] == [
        (1, 1, "류해광"),
        (2, 2, "곽현성"),
        (6, 3, "김인혜"),
    ]
    assert sorted((o.pool, o.selection, o.odds) for o in out.odds_records()) == [
        ("EXA", "1-2", 1.9),
        ("PLC", "1", 1.1),
        ("PLC", "2", 1.4),
        ("QNL", "1-2", 1.5),
        ("TLA", "1-2-6", 3.4),
        ("WIN", "1", 1.1),
    ]


BOAT_PAYOFF_ROW = {
    "race_no": "01", "pool4_val": "8.3", "pool5_val": "7.9", "week_tcnt": 5, "pool6_val": "22.2", "day_tcnt": 1,
    "pool1_val": "1.7", "pool2_2_val": "3.9", "stnd_yr": "2026", "row_num": 1, "race_ymd": "20260128",
    "pool2_1_val": "1.1",
}  # fmt: skip


def test_boat_payoff_example_f():
    out = normalize(body([BOAT_PAYOFF_ROW]), ctx(ep.BOAT_PAYOFF.path, source="kspo"))
    (race,) = out.races
    assert (race.race_id, race.race_date, race.status) == ("boat-misari-1-20260128", date(2026, 1, 28), "official")
    assert race.details == {
        "stnd_yr": 2026, "week_tcnt": 5, "day_tcnt": 1, "row_num": 1,
        "pool1_val": "1.7", "pool2_1_val": "1.1", "pool2_2_val": "3.9", "pool4_val": "8.3", "pool5_val": "7.9",
        "pool6_val": "22.2",
    }  # fmt: skip
    assert (out.results, out.odds) == ([], [])


# ---- KRA API160 integratedInfo, Example D (a data.go.kr-doc-style example, string-typed) -------------------------
def test_final_dividends_example_d():
    row = {"meet": "서울", "rcDate": "20190601", "rcNo": "1", "pool": "단승식", "chulNo": "7", "chulNo2": "0",
           "chulNo3": "0", "odds": "2.0"}  # fmt: skip
    (odds,) = normalize(body([row]), ctx(ep.KRA_FINAL_DIVIDENDS.path)).odds_records()
    assert odds.model_dump(exclude={"schema_version"}) == {
        "race_id": "horse-seoul-1-20190601",
        "time": datetime(2019, 6, 1, 14, 59, 59, tzinfo=UTC),  # the closing snapshot: 23:59:59 Korean time
        "pool": "WIN",
        "selection": "7",
        "odds": 2.0,
        "is_final": True,
        "pool_total": None,
        "popularity_rank": None,
        "source": "kra",
    }


def test_final_dividends_written_as_text_read_the_same_every_time():
    """Selections and prices are remembered by their published text: the second board reads as the first, and a
    text the first did not have is still checked."""
    example = {"meet": "서울", "rcDate": "20190601", "rcNo": "1", "pool": "단승식", "chulNo": "7", "chulNo2": "0",
               "chulNo3": "0", "odds": "2.0"}  # fmt: skip
    quinella = {**example, "pool": "복승식", "chulNo": "7", "chulNo2": "3", "odds": "1,234.5"}
    by_int = {**quinella, "chulNo": 7, "chulNo2": 3, "odds": 1234.5}
    for _ in range(2):
        out = normalize(body([example, quinella, by_int]), ctx(ep.KRA_FINAL_DIVIDENDS.path)).odds_records()
        assert [(o.pool, o.selection, o.odds) for o in out] == [
            ("WIN", "7", 2.0),
            ("QNL", "3-7", 1234.5),
            ("QNL", "3-7", 1234.5),
        ]
    for bad, field in (({"odds": "2.0배"}, "odds"), ({"odds": "-2.0"}, "odds"), ({"chulNo2": "3번"}, "chulNo2")):
        for _ in range(2):
            with pytest.raises(ProcessingError, match=f"field {field!r}|{field} must be"):
                normalize(body([example, {**quinella, **bad}]), ctx(ep.KRA_FINAL_DIVIDENDS.path))


# ---- a value in an unknown format names its field ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "row", "field"),
    [
        (ep.KRA_RACE_RESULT_TOTAL.path, {**EXAMPLE_C, "wgHr": "488kg"}, "wgHr"),
        (ep.KRA_RACE_RESULT_TOTAL.path, {**EXAMPLE_C, "track": "포화 (180%)"}, "track"),
        (ep.KRA_RACE_RESULT_TOTAL.path, {**EXAMPLE_C, "wgBudam": "57,5"}, "wgBudam"),
        (ep.KRA_RACE_RESULT_TOTAL.path, {**EXAMPLE_C, "rcNo": "1R"}, "rcNo"),
        (ep.KRA_RACE_RESULT_TOTAL.path, {**EXAMPLE_C, "schStTime": "10시 35분"}, "schStTime"),
        (ep.KRA_RACE_RESULT.path, {**EXAMPLE_C, "buG1fAccTime": "1:02.4"}, "buG1fAccTime"),
        (ep.CYCLE_RESULT.path, {**CYCLE_RESULT_ROW, "pool4_val": "(2-7)9.4배"}, "pool4_val"),
        (ep.CYCLE_RESULT.path, {**CYCLE_RESULT_ROW, "rank2": "김용남"}, "rank2"),
        (ep.CYCLE_ENTRIES.path, {**CYCLE_ENTRY_ROW, "race_len": "1.691km"}, "race_len"),
        (ep.CYCLE_ENTRIES.path, {**CYCLE_ENTRY_ROW, "race_ymd": "1월 2일"}, "race_ymd"),
    ],
)
def test_a_value_in_an_unknown_format_names_its_field(endpoint, row, field):
    with pytest.raises(c.NormalizeError, match=f"field '{field}'"):
        normalize(body([row]), ctx(endpoint, source="kspo" if "kspo" in endpoint.lower() else "kra", stnd_yr="2026"))


def test_disagreeing_sectional_fields_are_an_error_not_a_choice():
    row = {**EXAMPLE_C, "sjS1fOrd": 3, "buS1fOrd": 6}
    with pytest.raises(c.NormalizeError, match="'sjS1fOrd' and 'buS1fOrd' disagree"):
        normalize(body([row]), ctx(ep.KRA_RACE_RESULT.path))
