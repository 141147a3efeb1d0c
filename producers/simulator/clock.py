"""The simulator's clock: real time, or an accelerated clock starting at a chosen moment."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class SimClock:
    """``now() = start + (elapsed real time) * speed``; ``start=None`` and ``speed=1`` is the real clock."""

    start: datetime | None = None
    speed: float = 1.0
    _real_start: float = field(default_factory=lambda: time.monotonic(), repr=False)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")

    def now(self) -> datetime:
        if self.start is None and self.speed == 1.0:
            return datetime.now(UTC)
        if self.start is None:
            self.start = datetime.now(UTC)
        elapsed = time.monotonic() - self._real_start
        return (self.start + timedelta(seconds=elapsed * self.speed)).astimezone(UTC)
