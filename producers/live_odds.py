"""A live-odds feed: the one source the odds cadence can really exercise.

The public APIs publish final dividends only. A feed with live values (the simulator serves one; a licensed feed
could be adapted) answers ``GET {base}/liveOdds?race_id=...`` with the data.go.kr JSON envelope whose items have
the API160_1 shape (``pool``, ``chulNo``, ``chulNo2``, ``chulNo3``, ``odds``) plus ``poolTotal``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from producers.calls import live_odds
from producers.client import DataGoKrClient, RawResponse


class LiveOddsClient(DataGoKrClient):
    """Client of a live-odds feed; ``source`` in the messages is the race's source (kra or kspo)."""

    source: ClassVar[str] = "kra"
    format_params: ClassVar[dict[str, str]] = {"_type": "json"}

    async def live_odds(self, race_id: str) -> list[RawResponse]:
        """Current odds of every pool the feed has for one race."""
        call = live_odds(race_id)
        return [dataclasses.replace(page, source=call.source) for page in await self.run(call)]
