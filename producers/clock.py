"""The producers' notion of now: the system clock, or the simulator's (possibly accelerated) clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

from producers.errors import UpstreamUnavailable


class Clock(Protocol):
    """Anything with ``now()`` returning an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatorClock:
    """Follows ``GET {base}/_sim/clock`` (time and speed), extrapolated locally between syncs."""

    def __init__(self, anchor: datetime, speed: float) -> None:
        self.anchor, self.speed, self._at = anchor, speed, time.monotonic()

    @classmethod
    async def from_simulator(cls, base_url: str) -> SimulatorClock:
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
                data = (await http.get("/_sim/clock")).raise_for_status().json()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise UpstreamUnavailable(
                f"cannot read the simulator clock ({exc.__class__.__name__})", source="kra", endpoint="_sim/clock"
            ) from None
        return cls(datetime.fromisoformat(data["now"]), float(data["speed"]))

    def now(self) -> datetime:
        return self.anchor + timedelta(seconds=(time.monotonic() - self._at) * self.speed)

    def real_seconds(self, simulated: timedelta) -> float:
        """How long a simulated span takes in real time."""
        return simulated.total_seconds() / self.speed
