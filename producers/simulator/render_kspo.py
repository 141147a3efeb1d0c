"""KSPO cycle (경륜) and boat (경정) rows as the gateway spells them.

Quirks reproduced: everything is a string, zero-padded (``race_no: "01"``) except where the real payloads show
ints (``week_tcnt: 1`` in results); ``meet_nm`` carries trailing spaces in the entry sheets (``"광명  "``); dates are
``"2026.01.02"`` (cycle entries), ``"0102"`` (cycle results: month and day only), ``"20260102"`` (payoffs);
departure times are ``12"55`` (cycle) or ``11:40`` (boat); results name riders with circled numbers
(``"②이길섭"``); cycle dividends are ``"(2-7)9.4"`` and boat dividends ``"①-②1.9"``; the boat entry sheet's
``race_reg_no`` is the lane and it has no date field.
"""

from __future__ import annotations

from producers.simulator.envelope import Row
from producers.simulator.world import TRACKS, Race
from schemas.timezones import KST

CIRCLED = "⓪①②③④⑤⑥⑦⑧⑨"
# Cycle pool fields: 1 단승 WIN, 2 연승 PLC (two values), 4 쌍승 EXA, 5 복승 QNL, 6 삼복승 TLA, 7 삼쌍승 TRI,
# 8 쌍복승 (first exact, second and third any order; not one of our pools but sent as the real API does).
CYCLE_POOLS = {"pool1_val": "WIN", "pool4_val": "EXA", "pool5_val": "QNL", "pool6_val": "TLA", "pool7_val": "TRI"}
BOAT_POOLS = {"pool1_val": "WIN", "pool4_val": "EXA", "pool5_val": "QNL", "pool6_val": "TLA"}


def _winning_odds(race: Race, pool: str) -> tuple[tuple[int, ...], float]:
    selection = race.winning()[pool][0]
    return selection, race.final_odds()[(pool, selection)]


def _round_fields(race: Race, year: int, round_no: int, day_no: int) -> Row:
    return {"stnd_yr": str(year), "week_tcnt": round_no, "day_tcnt": day_no, "race_no": f"{race.race_no:02d}"}


def _recent(r: Race, n: int) -> Row:
    """A rider's last three meetings (track, first day "MMDD", the ranks of its days "선발 4-5")."""
    rows: Row = {}
    for k in (1, 2, 3):
        rows[f"bf{k}_meet_nm"] = ["광명", "창원", "부산"][(n + k) % 3]
        rows[f"bf{k}_day1_ymd"] = f"{(r.day.month - k - 1) % 12 + 1:02d}{10 + k:02d}"
        for d in (1, 2, 3):
            rows[f"bf{k}_day{d}_rank"] = f"{r.grade} {1 + (n + k + d) % 7}-{1 + (n * d) % 7}"
    return rows


def cycle_entry_rows(races: list[Race], year: int, round_no: int, day_no: int) -> list[Row]:
    """SRVC_OD_API_CRA_RACE_ORGAN: one row per rider, every field of the reference's list (47)."""
    rows: list[Row] = []
    for race in races:
        post = race.post_time.astimezone(KST)
        for r in race.runners:
            wins = int(r.strength * 20)
            rows.append(
                {
                    **_round_fields(race, year, round_no, day_no),
                    "week_tcnt": f"{round_no:02d}",
                    "day_tcnt": str(day_no),
                    "race_ymd": f"{race.day:%Y.%m.%d}",
                    "meet_nm": TRACKS[race.track].name_ko + "  ",
                    "back_no": str(r.entry_no),
                    "racer_nm": r.name,
                    "racer_age": str(r.age),
                    "racer_grd_cd": race.grade,
                    "racer_grd_cur_cd": r.grade,
                    "gear_rate": f"{3.8 + r.entry_no / 50:.2f}",
                    "race_len": str(race.distance_m),
                    "dptre_tm": f'{post:%H}"{post:%M}',
                    "win_rate": str(int(r.strength * 20)),
                    "rec_200m_scr": '11"45',
                    "tot_tms_avg_scr": f"{70 + r.strength * 10:.3f}",
                    "round_cnt": "5",
                    "period_no": str(r.age - 19),
                    "racer_grd_bef_cd": r.grade,
                    "high_rate": str(min(100, wins * 2)),
                    "high_3_rate": str(min(100, wins * 3)),
                    "pre_win_cnt": str(wins // 4),
                    "pas_win_cnt": str(wins // 5),
                    "brk_win_cnt": str(wins // 6),
                    "mrk_win_cnt": str(wins // 7),
                    "area_tms3_avg_scr": f"{68 + r.strength * 10:.3f}",
                    "color_nm": ["흰색", "검정", "빨강", "파랑", "노랑", "초록", "분홍"][(r.entry_no - 1) % 7],
                    "trng_plc_nm": TRACKS[race.track].name_ko,
                    **_recent(race, r.entry_no),
                    "run_day_tcnt": str(30 + r.entry_no),
                    "win_tot_tcnt": str(wins),
                    "row_num": len(rows) + 1,
                }
            )
    return rows


def _circled(no: int) -> str:
    return CIRCLED[no] if no < len(CIRCLED) else f"({no})"


def _ranks(race: Race) -> Row:
    names = {r.entry_no: r.name for r in race.runners}
    return {f"rank{i}": f"{_circled(no)}{names[no]}" for i, no in enumerate(race.finish_order[:3], start=1)}


def cycle_result_rows(races: list[Race], year: int, round_no: int, day_no: int) -> list[Row]:
    """SRVC_TODZ_CRA_RACE_RESULT: top three and the winning dividends, ``(2-7-5)3.4`` style."""
    rows: list[Row] = []
    for race in races:
        if race.cancelled:
            continue
        row = {
            **_round_fields(race, year, round_no, day_no),
            "race_ymd": f"{race.day:%m%d}",
            "meet_nm": TRACKS[race.track].name_ko,
            "row_num": len(rows) + 1,
            **_ranks(race),
        }
        for field, pool in CYCLE_POOLS.items():
            selection, odds = _winning_odds(race, pool)
            row[field] = f"({'-'.join(map(str, selection))}){odds}"
        places = race.winning()["PLC"][:2]
        row["pool2_val"] = " ".join(f"({s[0]}){race.final_odds()[('PLC', s)]}" for s in places)
        first, second, third = race.finish_order[:3]
        row["pool8_val"] = (
            f"({first}-{second}-{third}){max(1.0, round(race.final_odds()[('TRI', (first, second, third))] / 3.2, 1))}"
        )
        rows.append(row)
    return rows


def cycle_payoff_rows(races: list[Race], year: int, round_no: int, day_no: int) -> list[Row]:
    """SRVC_OD_API_CRA_PAYOFF: the winning dividends of a whole day as plain numbers.

    The real rows carry no track name; the simulator adds ``meet_nm`` so rows of a multi-track day can be told
    apart (the real samples come from single-track days).
    """
    rows = [
        _payoff_row(race, year, round_no, day_no) | {"meet_nm": TRACKS[race.track].name_ko}
        for race in races
        if not race.cancelled
    ]
    return [row | {"row_num": n} for n, row in enumerate(rows, start=1)]


def _payoff_row(race: Race, year: int, round_no: int, day_no: int) -> Row:
    row = {**_round_fields(race, year, round_no, day_no), "race_ymd": f"{race.day:%Y%m%d}"}
    for field, pool in (("pool1_val", "WIN"), ("pool4_val", "EXA"), ("pool5_val", "QNL"), ("pool6_val", "TLA")):
        row[field] = str(_winning_odds(race, pool)[1])
    places = race.winning()["PLC"]
    row["pool2_1_val"] = str(race.final_odds()[("PLC", places[0])])
    row["pool2_2_val"] = str(race.final_odds()[("PLC", places[1])])
    return row


def rank_rows(races: list[Race], year: int, round_no: int, day_no: int) -> list[Row]:
    """SRVC_CRA_RACE_RANK / SRVC_MRA_RACE_RANK: full finishing order (``stnd_year/tms/day_ord`` naming)."""
    rows: list[Row] = []
    for race in races:
        ids = {r.entry_no: r for r in race.runners}
        for position, no in enumerate(race.finish_order, start=1):
            r = ids[no]
            row: Row = {
                "stnd_year": str(year),
                "tms": f"{round_no:02d}",
                "day_ord": str(day_no),
                "race_day": f"{race.day:%Y%m%d}",
                "race_no": f"{race.race_no:02d}",
                "race_rank": f"{position:02d}",
                "racer_nm": r.name,
            }
            if race.race_type == "boat":
                row |= {"racer_no": f"{r.participant_id[2:4]}-{r.participant_id[-3:]}", "mbr_nm": "미사리"}
            else:
                row |= {"racer_no": r.participant_id, "meet_nm": TRACKS[race.track].name_ko, "row_num": len(rows) + 1}
            rows.append(row)
    return rows


def boat_entry_rows(races: list[Race], year: int, round_no: int, day_no: int) -> list[Row]:
    """SRVC_OD_API_VWEB_MBR_RACE_INFO: one row per boat; ``race_reg_no`` is the lane; no date field."""
    rows: list[Row] = []
    for race in races:
        post = race.post_time.astimezone(KST)
        for r in race.runners:
            rows.append(
                {
                    "stnd_yr": str(year),
                    "week_tcnt": f"{round_no:02d}",
                    "day_tcnt": str(day_no),
                    "race_no": f"{race.race_no:02d}",
                    "race_reg_no": str(r.entry_no),
                    "racer_nm": r.name,
                    "racer_grd_cd": r.grade,
                    "sex_cd": r.sex,
                    "racer_age": str(r.age),
                    "wght": str(r.body_weight),
                    "dptre_tm": f"{post:%H:%M}",
                    "rmk2_rank": race.grade,
                    "st_mthd_cd": "002   ",
                    "motor_no": f"{(r.owner_id % 150):03d}",
                    "boat_no": f"{(r.owner_id % 120):03d}",
                    "mot_high_rank_ratio": f"{r.strength * 30:.1f}",
                    "fl_tcnt": "F0L0",
                    **{
                        f"mm_6_{n}_race_high_rank_ratio": f"{(r.strength * 10 * n) % 100:.1f}/{n + 3}"
                        for n in range(1, 7)
                    },
                    "tms_8_rank_ord_no": f"{r.entry_no}{(r.entry_no + 2) % 6 + 1}{r.entry_no % 6 + 1}3 3222",
                    "mot_bf_racer_1_no": f"{r.jockey_name}/{r.owner_id % 900 + 100}",
                }
            )
    return rows


def boat_result_rows(races: list[Race], year: int, round_no: int, day_no: int) -> list[Row]:
    """SRVC_OD_API_MBR_RACE_RESULT: top three and dividends with circled lanes (``①-②-⑥3.4``)."""
    rows: list[Row] = []
    for race in races:
        if race.cancelled:
            continue
        row = {
            **_round_fields(race, year, round_no, day_no),
            "day_tcnt": str(day_no),
            "row_num": len(rows) + 1,
            **_ranks(race),
        }
        for field, pool in BOAT_POOLS.items():
            selection, odds = _winning_odds(race, pool)
            row[field] = "-".join(_circled(n) for n in selection) + str(odds)
        places = race.winning()["PLC"]
        row["pool2_val"] = f"{_circled(places[0][0])}{race.final_odds()[('PLC', places[0])]}"
        row["pool3_val"] = f"{_circled(places[1][0])}{race.final_odds()[('PLC', places[1])]}"
        rows.append(row)
    return rows


def boat_payoff_rows(races: list[Race], year: int, round_no: int, day_no: int) -> list[Row]:
    """SRVC_OD_API_MBR_PAYOFF: the winning dividends of one race as plain numbers."""
    rows = [_payoff_row(race, year, round_no, day_no) for race in races if not race.cancelled]
    return [row | {"row_num": n} for n, row in enumerate(rows, start=1)]
