"""Every track, as data: the one table the pipeline reads to know a track.

A track has a code (the ``track_code`` of race ids and tables), its Korean name and every other spelling the APIs
use for it (``"부경"``, ``"부산경남"``, ``"영남"`` for Busan-Gyeongnam; names are looked up after ``strip()``), its race
type (which gives its source), the KRA ``meet`` request code of a horse track, the KSPO ``meet_nm`` of a cycle
track, and the weekdays it usually races on. Adding a track is one row here plus a migration that inserts it into
the ``tracks`` table (a test checks that the two agree).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import get_args

from schemas.records import RaceType, Source

RACE_TYPES: tuple[RaceType, ...] = get_args(RaceType)
SOURCE_OF_RACE_TYPE: dict[RaceType, Source] = {"horse": "kra", "cycle": "kspo", "boat": "kspo"}


@dataclass(frozen=True)
class Track:
    """One track."""

    code: str
    name_ko: str
    race_type: RaceType
    aliases: tuple[str, ...] = ()  # other spellings of the name in API responses
    kra_meet: int | None = None  # KRA ``meet`` request code (horse tracks)
    kspo_meet: str | None = None  # KSPO ``meet_nm`` request value (cycle tracks; boat has one track and no meet)
    weekdays: tuple[int, ...] = ()  # usual race days, Monday = 0
    polled: bool = True  # collected by default; a track that is not is collected only when named (RACELAB_TRACKS)

    @property
    def source(self) -> Source:
        return SOURCE_OF_RACE_TYPE[self.race_type]

    def spellings(self) -> tuple[str, ...]:
        """Every text that names this track in a response: the name, its aliases and the KRA meet code."""
        code = (str(self.kra_meet),) if self.kra_meet is not None else ()
        return (self.name_ko, *self.aliases, *code)


TRACKS: tuple[Track, ...] = (
    Track("seoul", "서울", "horse", kra_meet=1, weekdays=(5, 6)),
    Track("busan", "부산경남", "horse", aliases=("부경", "영남", "부산경남경마공원"), kra_meet=3, weekdays=(4, 6)),
    Track("jeju", "제주", "horse", kra_meet=2, weekdays=(4, 5)),
    Track("yeongcheon", "영천", "horse", kra_meet=4, polled=False),  # newer datasets only; no race days known yet
    Track("gwangmyeong", "광명", "cycle", kspo_meet="광명", weekdays=(4, 5, 6)),
    Track("changwon", "창원", "cycle", kspo_meet="창원", weekdays=(4, 5, 6)),
    Track("busan_cycle", "부산", "cycle", kspo_meet="부산", weekdays=(4, 5, 6)),
    Track("misari", "미사리", "boat", weekdays=(2, 3)),
)
BY_CODE: dict[str, Track] = {t.code: t for t in TRACKS}
BY_SPELLING: dict[str, Track] = {spelling: t for t in TRACKS for spelling in t.spellings()}
CODES_BY_RACE_TYPE: dict[str, tuple[str, ...]] = {
    race_type: tuple(t.code for t in TRACKS if t.race_type == race_type) for race_type in RACE_TYPES
}
POLLED_BY_RACE_TYPE: dict[str, tuple[str, ...]] = {
    race_type: tuple(t.code for t in TRACKS if t.race_type == race_type and t.polled) for race_type in RACE_TYPES
}


def track(code: str) -> Track:
    """The track of a code; ``KeyError`` names the known codes."""
    try:
        return BY_CODE[code]
    except KeyError:
        raise KeyError(f"unknown track code {code!r} (known: {', '.join(BY_CODE)})") from None


def race_type_of(code: str) -> RaceType:
    """The race type of a track code (``KeyError`` for an unknown one)."""
    return track(code).race_type


def by_spelling(name: str) -> Track | None:
    """The track an API names (any spelling, surrounding blanks ignored), or None."""
    return BY_SPELLING.get(name.strip())


def of_race_types(race_types: Iterable[str]) -> list[str]:
    """Codes of every track of the given race types, in table order."""
    wanted = set(race_types)
    return [t.code for t in TRACKS if t.race_type in wanted]
