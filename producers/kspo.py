"""KSPO (cycle and boat racing) on the data.go.kr gateway: ``resultType=json`` (required), zero-padded numbers.

KSPO identifies a race day by year, round (``week_tcnt``/``tms``: the n-th race week of the year) and day of the
round (``day_tcnt``/``day_ord``). ``race_no``, ``week_tcnt`` and ``tms`` must be two-digit strings: ``"9"``
silently returns no rows where ``"09"`` returns them.
"""

from __future__ import annotations

from typing import ClassVar

from producers import endpoints as ep
from producers.client import DataGoKrClient, RawResponse

# KSPO ``meet_nm`` of each cycle track (boat racing has one track, 미사리, and no meet parameter).
CYCLE_MEET_NAMES: dict[str, str] = {"gwangmyeong": "광명", "changwon": "창원", "busan_cycle": "부산"}


def pad2(value: int | str) -> str:
    """Two-digit, zero-padded (``9`` -> ``"09"``)."""
    return f"{int(value):02d}"


class KspoClient(DataGoKrClient):
    """KSPO cycle (경륜) and boat (경정) endpoints; every method returns all pages as received."""

    source: ClassVar[str] = "kspo"
    format_params: ClassVar[dict[str, str]] = {"resultType": "json"}

    async def cycle_entries(self, year: int, round_no: int, track: str | None = None) -> list[RawResponse]:
        """Cycle entry sheets (출주표) of one round, optionally of one track."""
        params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no)}
        if track is not None:
            params["meet_nm"] = CYCLE_MEET_NAMES[track]
        return await self.fetch_all(ep.CYCLE_ENTRIES.path, params)

    async def cycle_result(self, year: int, round_no: int, day_no: int, race_no: int, track: str) -> list[RawResponse]:
        """Top three and dividends of one cycle race (all five parameters are required)."""
        params = {
            "stnd_yr": str(year),
            "meet_nm": CYCLE_MEET_NAMES[track],
            "week_tcnt": pad2(round_no),
            "day_tcnt": str(day_no),
            "race_no": pad2(race_no),
        }
        return await self.fetch_all(ep.CYCLE_RESULT.path, params)

    async def cycle_rank(self, year: int, round_no: int, day_no: int, race_no: int | None = None) -> list[RawResponse]:
        """Full finishing order of cycle races (``stnd_year/tms/day_ord`` naming family)."""
        params = {"stnd_year": str(year), "tms": pad2(round_no), "day_ord": str(day_no)}
        if race_no is not None:
            params["race_no"] = pad2(race_no)
        return await self.fetch_all(ep.CYCLE_RANK.path, params)

    async def cycle_payoff(self, year: int, round_no: int, day_no: int) -> list[RawResponse]:
        """Final dividends of a whole cycle race day (one call)."""
        params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "day_tcnt": str(day_no)}
        return await self.fetch_all(ep.CYCLE_PAYOFF.path, params)

    async def boat_entries(self, year: int, round_no: int, day_no: int | None = None) -> list[RawResponse]:
        """Boat entry sheets (출주표) of one round, optionally one day."""
        params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no)}
        if day_no is not None:
            params["day_tcnt"] = str(day_no)
        return await self.fetch_all(ep.BOAT_ENTRIES.path, params)

    async def boat_result(self, year: int, round_no: int, day_no: int, race_no: int | None = None) -> list[RawResponse]:
        """Top three and dividends of boat races."""
        params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "day_tcnt": str(day_no)}
        if race_no is not None:
            params["race_no"] = pad2(race_no)
        return await self.fetch_all(ep.BOAT_RESULT.path, params)

    async def boat_rank(self, year: int, round_no: int, day_no: int, race_no: int | None = None) -> list[RawResponse]:
        """Full finishing order of boat races."""
        params = {"stnd_year": str(year), "tms": pad2(round_no), "day_ord": str(day_no)}
        if race_no is not None:
            params["race_no"] = pad2(race_no)
        return await self.fetch_all(ep.BOAT_RANK.path, params)

    async def boat_payoff(self, year: int, round_no: int, day_no: int, race_no: int) -> list[RawResponse]:
        """Final dividends of one boat race (one race per call; all four parameters are required)."""
        params = {"stnd_yr": str(year), "week_tcnt": pad2(round_no), "day_tcnt": str(day_no), "race_no": pad2(race_no)}
        return await self.fetch_all(ep.BOAT_PAYOFF.path, params)
