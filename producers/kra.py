"""KRA (Korea Racing Authority, horse racing) on data.go.kr: ``_type=json``, ``meet`` codes 1/2/3."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from producers import endpoints as ep
from producers.client import DataGoKrClient, RawResponse

# The KRA ``meet`` request code of each horse track.
MEET_CODES: dict[str, str] = {"seoul": "1", "jeju": "2", "busan": "3"}


def meet_code(track: str) -> str:
    """KRA ``meet`` request parameter for a track code."""
    try:
        return MEET_CODES[track]
    except KeyError:
        raise ValueError(f"not a KRA track: {track!r} (expected one of {sorted(MEET_CODES)})") from None


class KraClient(DataGoKrClient):
    """KRA endpoints; every method returns all pages as received."""

    source: ClassVar[str] = "kra"
    format_params: ClassVar[dict[str, str]] = {"_type": "json"}

    async def race_plan(self, track: str, day: date) -> list[RawResponse]:
        """Race plan (API72_2) of one track and day."""
        return await self.fetch_all(ep.KRA_RACE_PLAN.path, {"meet": meet_code(track), "rc_date": f"{day:%Y%m%d}"})

    async def entry_sheet(self, track: str, day: date) -> list[RawResponse]:
        """Entry sheet (API26_2) of every race of one track and day."""
        return await self.fetch_all(ep.KRA_ENTRY_SHEET.path, {"meet": meet_code(track), "rc_date": f"{day:%Y%m%d}"})

    async def scratches(self, track: str, day: date) -> list[RawResponse]:
        """Scratched horses (API9_1) around one day (the API returns about a month)."""
        return await self.fetch_all(ep.KRA_SCRATCHES.path, {"meet": meet_code(track), "rc_date": f"{day:%Y%m%d}"})

    async def final_dividends(self, track: str, day: date, race_no: int) -> list[RawResponse]:
        """Final dividends of every pool and combination (API160_1) of one race; often several pages."""
        params = {"meet": meet_code(track), "rc_date": f"{day:%Y%m%d}", "rc_no": str(race_no)}
        return await self.fetch_all(ep.KRA_FINAL_DIVIDENDS.path, params)

    async def race_result(self, track: str, day: date, race_no: int | None = None) -> list[RawResponse]:
        """Result details (API214_1) of one race, or of the whole day when ``race_no`` is None."""
        params = {"meet": meet_code(track), "rc_date": f"{day:%Y%m%d}"}
        if race_no is not None:
            params["rc_no"] = str(race_no)
        return await self.fetch_all(ep.KRA_RACE_RESULT.path, params)

    async def race_result_total(self, track: str, day: date, race_no: int | None = None) -> list[RawResponse]:
        """Result summary with scheduled/actual post times and ``finalBit`` (API299)."""
        params = {"meet": meet_code(track), "rc_date": f"{day:%Y%m%d}"}
        if race_no is not None:
            params["rc_no"] = str(race_no)
        return await self.fetch_all(ep.KRA_RACE_RESULT_TOTAL.path, params)
