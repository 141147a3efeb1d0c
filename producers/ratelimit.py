"""A rate limiter shared by all pollers of one source: requests per second and concurrent requests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


class RateLimiter:
    """Token bucket (``rate`` per second, burst 1) plus a cap on requests in flight.

    ``rate=None`` disables the per-second limit (benchmarks); the concurrency cap always applies.
    """

    def __init__(self, rate: float | None, concurrency: int) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._slots = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self._next_at = 0.0
        self.penalty_until = 0.0

    def slow_down(self, seconds: float) -> None:
        """Hold every caller of this source for ``seconds`` (after a per-second-limit answer)."""
        self.penalty_until = max(self.penalty_until, time.monotonic() + seconds)

    async def _wait_turn(self) -> None:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next_at, self.penalty_until)
            if self.rate is not None:
                self._next_at = start + 1.0 / self.rate
            delay = start - now
        if delay > 0:
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot and the next permitted start time, then hold the slot."""
        async with self._slots:
            await self._wait_turn()
            yield
