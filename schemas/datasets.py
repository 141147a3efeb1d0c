"""The data.go.kr datasets behind the endpoints: a service key is approved per dataset (활용신청), by its number.

Numbers and Korean names as the API notes (``reference/kra-kspo-apis.md``) give them. Where the notes give no
number (API72_2 경주계획표, the KRA profile APIs) ``number`` is None: it is looked up on data.go.kr by the API's
name, never guessed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import endpoints as ep


@dataclass(frozen=True)
class Dataset:
    """One data.go.kr dataset (one 활용신청)."""

    number: str | None
    name: str

    @property
    def page(self) -> str | None:
        """The dataset's page on data.go.kr, where the key is applied for."""
        return f"https://www.data.go.kr/data/{self.number}/openapi.do" if self.number else None

    def label(self) -> str:
        """``출전표 상세정보 15058677``, or the name and ``(no. not in reference)``."""
        return f"{self.name} {self.number}" if self.number else f"{self.name} (no. not in reference)"


DATASETS: dict[str, Dataset] = {
    ep.KRA_RACE_PLAN.path: Dataset(None, "경주계획표"),
    ep.KRA_ENTRY_SHEET.path: Dataset("15058677", "출전표 상세정보"),
    ep.KRA_SCRATCHES.path: Dataset("15056779", "경주마 출전취소 정보"),
    ep.KRA_FINAL_DIVIDENDS.path: Dataset("15058559", "확정배당율 통합 정보"),
    ep.KRA_RACE_RESULT.path: Dataset("15063979", "경주성적정보"),
    ep.KRA_RACE_RESULT_TOTAL.path: Dataset("15119524", "경마시행당일_경주결과종합"),
    ep.KRA_HORSE_INFO.path: Dataset(None, "경주마 상세정보"),
    ep.KRA_JOCKEY_INFO.path: Dataset(None, "기수 정보"),
    ep.CYCLE_ENTRIES.path: Dataset("15107830", "경륜 출주표"),
    ep.CYCLE_RESULT.path: Dataset("15107816", "경륜 경주결과"),
    ep.CYCLE_RANK.path: Dataset("15143989", "경륜 경주결과순위"),
    ep.CYCLE_PAYOFF.path: Dataset("15107845", "경륜 배당률"),
    ep.BOAT_ENTRIES.path: Dataset("15107808", "경정 출주표"),
    ep.BOAT_RESULT.path: Dataset("15107847", "경정 경주결과"),
    ep.BOAT_RANK.path: Dataset("15143984", "경정 순위"),
    ep.BOAT_PAYOFF.path: Dataset("15107811", "경정 배당률"),
}


def dataset_of(endpoint: ep.Endpoint) -> Dataset:
    """The dataset an endpoint belongs to (every endpoint of the catalogue has one; a unit test checks it)."""
    return DATASETS[endpoint.path]
