"""The upstream endpoints RaceLab calls, as data: the clients, pollers and the simulator all read this table.

Paths are relative to the source's base URL (``.../B551015`` for KRA, ``.../B551014`` for KSPO). KSPO operation
names are case-sensitive and written here exactly as the gateway expects them.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import RaceType, Source
from schemas.topics import Kind


@dataclass(frozen=True)
class Endpoint:
    """One API operation."""

    name: str
    source: Source
    path: str
    kind: Kind
    race_type: RaceType
    description: str


KRA_RACE_PLAN = Endpoint("kra_race_plan", "kra", "API72_2/racePlan_2", "schedules", "horse", "경주계획표 (race plan)")
KRA_ENTRY_SHEET = Endpoint("kra_entry_sheet", "kra", "API26_2/entrySheet_2", "entries", "horse", "출전표 (entry sheet)")
KRA_SCRATCHES = Endpoint(
    "kra_scratches", "kra", "API9_1/raceHorseCancelInfo_1", "entries", "horse", "출전취소 (scratches)"
)
KRA_FINAL_DIVIDENDS = Endpoint(
    "kra_final_dividends", "kra", "API160_1/integratedInfo_1", "odds", "horse", "확정배당율 통합 (final dividends)"
)
KRA_RACE_RESULT = Endpoint(
    "kra_race_result", "kra", "API214_1/RaceDetailResult_1", "results", "horse", "경주성적 (race result detail)"
)
KRA_RACE_RESULT_TOTAL = Endpoint(
    "kra_race_result_total", "kra", "API299/Race_Result_total", "results", "horse", "경주결과종합 (result summary)"
)
# Profiles (read when published to the raw topics, e.g. saved responses or a replay; no poll calls them yet).
KRA_HORSE_INFO = Endpoint("kra_horse_info", "kra", "API8_2/raceHorseInfo_2", "entries", "horse", "경주마 상세정보")
KRA_JOCKEY_INFO = Endpoint("kra_jockey_info", "kra", "API12_1/jockeyInfo_1", "entries", "horse", "기수 정보")

CYCLE_ENTRIES = Endpoint(
    "cycle_entries", "kspo", "SRVC_OD_API_CRA_RACE_ORGAN/TODZ_API_CRA_RACE_ORGAN_I", "entries", "cycle", "경륜 출주표"
)
CYCLE_RESULT = Endpoint(
    "cycle_result", "kspo", "SRVC_TODZ_CRA_RACE_RESULT/TODZ_API_CRA_RACE_RESULT", "results", "cycle", "경륜 경주결과"
)
CYCLE_RANK = Endpoint("cycle_rank", "kspo", "SRVC_CRA_RACE_RANK/TODZ_CRA_RACE_RANK", "results", "cycle", "경륜 순위")
CYCLE_PAYOFF = Endpoint(
    "cycle_payoff", "kspo", "SRVC_OD_API_CRA_PAYOFF/TODZ_API_CRA_PAYOFF_I", "odds", "cycle", "경륜 배당률"
)
BOAT_ENTRIES = Endpoint(
    "boat_entries", "kspo", "SRVC_OD_API_VWEB_MBR_RACE_INFO/TODZ_API_VWEB_MBR_RACE_I", "entries", "boat", "경정 출주표"
)
BOAT_RESULT = Endpoint(
    "boat_result", "kspo", "SRVC_OD_API_MBR_RACE_RESULT/TODZ_API_MBR_RACE_RESULT_I", "results", "boat", "경정 경주결과"
)
BOAT_RANK = Endpoint("boat_rank", "kspo", "SRVC_MRA_RACE_RANK/TODZ_MRA_RACE_RANK", "results", "boat", "경정 순위")
BOAT_PAYOFF = Endpoint(
    "boat_payoff", "kspo", "SRVC_OD_API_MBR_PAYOFF/TODZ_API_MBR_PAYOFF_I", "odds", "boat", "경정 배당률"
)

# Live odds exist only in a feed that has them (the simulator; a licensed feed could): not on data.go.kr.
LIVE_ODDS_PATH = "liveOdds"

ALL_ENDPOINTS: tuple[Endpoint, ...] = (
    KRA_RACE_PLAN,
    KRA_ENTRY_SHEET,
    KRA_SCRATCHES,
    KRA_FINAL_DIVIDENDS,
    KRA_RACE_RESULT,
    KRA_RACE_RESULT_TOTAL,
    KRA_HORSE_INFO,
    KRA_JOCKEY_INFO,
    CYCLE_ENTRIES,
    CYCLE_RESULT,
    CYCLE_RANK,
    CYCLE_PAYOFF,
    BOAT_ENTRIES,
    BOAT_RESULT,
    BOAT_RANK,
    BOAT_PAYOFF,
)
BY_PATH: dict[str, Endpoint] = {e.path: e for e in ALL_ENDPOINTS}
