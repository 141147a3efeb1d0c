"""What each collected endpoint publishes, as data: the field names of the reference's field tables and real rows.

Source: ``reference/kra-kspo-apis.md`` (§2.2 entrySheet_2 field list, §2.4 the API214_1/API299 glossary with the
keys of the real API214_1 payload, §3 the verbatim rows, §5 the KSPO catalogue). A test normalizes a row carrying
every field of an endpoint and fails on any field that is neither a typed column nor kept verbatim in ``details``;
another checks that the simulator renders every one of them.
"""

from __future__ import annotations

from schemas import endpoints as ep


def _numbered(prefix: str, first: int, last: int, suffix: str = "") -> tuple[str, ...]:
    return tuple(f"{prefix}{n}{suffix}" for n in range(first, last + 1))


# The keys of every row of the real API214_1 payload (reference/samples/kra_api214_response.json), 90 of them.
KRA_RESULT_FIELDS: tuple[str, ...] = (
    "meet", "rcDate", "rcDay", "rcNo", "rcName", "rcDist", "rank", "ageCond", "prizeCond", "budam",
    *_numbered("chaksun", 1, 5), *_numbered("buga", 1, 3), "track", "weather",
    "ord", "ordBigo", "chulNo", "hrName", "hrNo", "age", "sex", "birthday", "name", "jkName", "jkNo", "wgJk",
    "trName", "trNo", "owName", "owNo", "wgBudam", "wgBudamBigo", "wgHr", "rcTime", "diffUnit", "winOdds",
    "plcOdds", "hrTool", "ilsu", "rating", "rankRise",
    "sjS1fOrd", "sj_1cOrd", "sj_2cOrd", "sj_3cOrd", "sj_4cOrd", "sjG3fOrd", "sjG1fOrd",
    "seS1fAccTime", "se_1cAccTime", "se_2cAccTime", "se_3cAccTime", "se_4cAccTime", "seG3fAccTime", "seG1fAccTime",
    "buS1fAccTime", "buS1fOrd", "buS1fTime", "buG8fAccTime", "buG8fOrd", "buG6fAccTime", "buG6fOrd",
    "buG4fAccTime", "buG4fOrd", "buG3fAccTime", "buG3fOrd", "buG2fAccTime", "buG2fOrd", "buG1fAccTime", "buG1fOrd",
    "bu_10_8fTime", "bu_8_6fTime", "bu_6_4fTime", "bu_4_2fTime", "bu_3fGTime", "bu_2fGTime", "bu_1fGTime",
    "jeS1fTime", "je_1cTime", "je_2cTime", "je_3cTime", "je_4cTime", "jeG3fTime", "jeG1fTime",
)  # fmt: skip
# API299 carries the API214_1 fields plus the schedule, finality and the career counters the glossary names.
KRA_RESULT_TOTAL_ONLY: tuple[str, ...] = (
    "schStTime", "stTime", "startTimeChg", "stTimeChgReason", "finalBit", "noraceFlag",
    "hrOrd1CntT", "jkOrd1CntY", "trRcCntT", "jkAge", "jkCareer", "trCareer", "prdName",
)  # fmt: skip
KRA_ENTRY_SHEET_FIELDS: tuple[str, ...] = (
    "meet", "rcDate", "rcDay", "rcNo", "chulNo", "hrName", "hrNameEn", "hrNo", "prd", "sex", "age", "wgBudam",
    "rating", "jkName", "jkNameEn", "jkNo", "trName", "trNameEn", "trNo", "owName", "owNameEn", "owNo", "rcDist",
    "rank", "prizeCond", "ageCond", "sexCond", "budam", "rcName", "dusu", "stTime", "ilsu",
    *_numbered("chaksun", 1, 5), "chaksunT", "chaksunY", "chaksun_6m",
    "ord1CntT", "ord2CntT", "ord3CntT", "rcCntT", "ord1CntY", "ord2CntY", "ord3CntY", "rcCntY",
)  # fmt: skip
# No full racePlan_2 payload is known (§9): the fields the reference names (grade, prize, distance, start time),
# spelled as the other KRA APIs spell them.
KRA_RACE_PLAN_FIELDS: tuple[str, ...] = (
    "meet", "rcDate", "rcNo", "rcDist", "rank", "schStTime", *_numbered("chaksun", 1, 5),
)  # fmt: skip
KRA_SCRATCH_FIELDS: tuple[str, ...] = ("meet", "rcDate", "rcNo", "chulNo", "hrNo", "hrName", "cancelReason")
KRA_DIVIDEND_FIELDS: tuple[str, ...] = ("meet", "rcDate", "rcNo", "pool", "chulNo", "chulNo2", "chulNo3", "odds")

# The keys of the real profile samples (reference/samples/kra_api8_2_response.json, kra_api12_response.json).
KRA_HORSE_FIELDS: tuple[str, ...] = (
    "meet", "hrNo", "hrName", "name", "sex", "birthday", "rank", "rating", "faHrNo", "faHrName", "moHrNo", "moHrName",
    "trNo", "trName", "owNo", "owName", "hrLastAmt", "chaksunT", "rcCntT", "ord1CntT", "ord2CntT", "ord3CntT",
    "rcCntY", "ord1CntY", "ord2CntY", "ord3CntY",
)  # fmt: skip
KRA_JOCKEY_FIELDS: tuple[str, ...] = (
    "meet", "jkNo", "jkName", "age", "birthday", "debut", "part", "spDate", "wgPart", "wgOther",
    "rcCntT", "ord1CntT", "ord2CntT", "ord3CntT", "rcCntY", "ord1CntY", "ord2CntY", "ord3CntY",
)  # fmt: skip

CYCLE_ENTRY_FIELDS: tuple[str, ...] = (
    "stnd_yr", "week_tcnt", "day_tcnt", "race_ymd", "meet_nm", "race_no", "back_no", "racer_nm", "racer_age",
    "period_no", "racer_grd_cd", "racer_grd_bef_cd", "racer_grd_cur_cd", "gear_rate", "rec_200m_scr", "win_rate",
    "high_rate", "high_3_rate", "pre_win_cnt", "pas_win_cnt", "brk_win_cnt", "mrk_win_cnt", "tot_tms_avg_scr",
    "area_tms3_avg_scr", "race_len", "round_cnt", "dptre_tm", "color_nm", "trng_plc_nm",
    *(f"bf{n}_meet_nm" for n in (1, 2, 3)), *(f"bf{n}_day1_ymd" for n in (1, 2, 3)),
    *(f"bf{n}_day{d}_rank" for n in (1, 2, 3) for d in (1, 2, 3)),
    "run_day_tcnt", "win_tot_tcnt", "row_num",
)  # fmt: skip
CYCLE_RESULT_FIELDS: tuple[str, ...] = (
    "stnd_yr", "week_tcnt", "day_tcnt", "race_no", "race_ymd", "meet_nm", "row_num", "rank1", "rank2", "rank3",
    "pool1_val", "pool2_val", "pool4_val", "pool5_val", "pool6_val", "pool7_val", "pool8_val",
)  # fmt: skip
CYCLE_RANK_FIELDS: tuple[str, ...] = (
    "stnd_year", "tms", "day_ord", "race_day", "meet_nm", "race_no", "race_rank", "racer_no", "racer_nm", "row_num",
)  # fmt: skip
PAYOFF_FIELDS: tuple[str, ...] = (
    "stnd_yr", "week_tcnt", "day_tcnt", "race_no", "race_ymd", "row_num",
    "pool1_val", "pool2_1_val", "pool2_2_val", "pool4_val", "pool5_val", "pool6_val",
)  # fmt: skip
# The boat entry sheet's rows are placed by round, day and race like the other KSPO rows (§5.2 lists the request
# parameters; the rows carry them too).
BOAT_ENTRY_FIELDS: tuple[str, ...] = (
    "stnd_yr", "week_tcnt", "day_tcnt", "race_no", "race_reg_no", "racer_nm", "racer_grd_cd", "sex_cd",
    "racer_age", "wght", "dptre_tm", "rmk2_rank", "st_mthd_cd", "motor_no", "boat_no", "mot_high_rank_ratio",
    *(f"mm_6_{n}_race_high_rank_ratio" for n in range(1, 7)), "fl_tcnt", "tms_8_rank_ord_no", "mot_bf_racer_1_no",
)  # fmt: skip
BOAT_RESULT_FIELDS: tuple[str, ...] = (
    "stnd_yr", "week_tcnt", "day_tcnt", "race_no", "row_num", "rank1", "rank2", "rank3",
    "pool1_val", "pool2_val", "pool3_val", "pool4_val", "pool5_val", "pool6_val",
)  # fmt: skip
BOAT_RANK_FIELDS: tuple[str, ...] = (
    "stnd_year", "tms", "day_ord", "race_day", "race_no", "race_rank", "racer_no", "racer_nm", "mbr_nm",
)  # fmt: skip

PUBLISHED: dict[str, tuple[str, ...]] = {
    ep.KRA_RACE_PLAN.path: KRA_RACE_PLAN_FIELDS,
    ep.KRA_ENTRY_SHEET.path: KRA_ENTRY_SHEET_FIELDS,
    ep.KRA_SCRATCHES.path: KRA_SCRATCH_FIELDS,
    ep.KRA_FINAL_DIVIDENDS.path: KRA_DIVIDEND_FIELDS,
    ep.KRA_RACE_RESULT.path: KRA_RESULT_FIELDS,
    ep.KRA_RACE_RESULT_TOTAL.path: KRA_RESULT_FIELDS + KRA_RESULT_TOTAL_ONLY,
    ep.KRA_HORSE_INFO.path: KRA_HORSE_FIELDS,
    ep.KRA_JOCKEY_INFO.path: KRA_JOCKEY_FIELDS,
    ep.CYCLE_ENTRIES.path: CYCLE_ENTRY_FIELDS,
    ep.CYCLE_RESULT.path: CYCLE_RESULT_FIELDS,
    ep.CYCLE_RANK.path: CYCLE_RANK_FIELDS,
    ep.CYCLE_PAYOFF.path: PAYOFF_FIELDS,
    ep.BOAT_ENTRIES.path: BOAT_ENTRY_FIELDS,
    ep.BOAT_RESULT.path: BOAT_RESULT_FIELDS,
    ep.BOAT_RANK.path: BOAT_RANK_FIELDS,
    ep.BOAT_PAYOFF.path: PAYOFF_FIELDS,
}
"""Every field each collected endpoint publishes."""
