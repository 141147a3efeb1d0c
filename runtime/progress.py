"""A one-line progress bar for long commands (backfill, reprocess): done of total, rate, ETA and the command's own
counts; redrawn in place on a terminal, a line every few seconds otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import TextIO

WIDTH = 30
PLAIN_EVERY_S = 5.0


class Progress:
    """Progress of ``total`` units; ``initial`` of them done before (a resumed run: the rate counts this run's)."""

    def __init__(self, total: int, unit: str = "units", out: TextIO = sys.stderr, initial: int = 0) -> None:
        self.total, self.unit, self.out = total, unit, out
        self.done = self.initial = initial
        self.started = time.monotonic()
        self._last_print = 0.0
        self.tty = out.isatty()

    def advance(self, units: int = 1, final: bool = False, **counts: int) -> None:
        """``units`` more done; ``counts`` are shown after the bar (e.g. ``messages=12``)."""
        self.done += units
        now = time.monotonic()
        if not final and not self.tty and now - self._last_print < PLAIN_EVERY_S and self.done < self.total:
            return
        self._last_print = now
        rate = (self.done - self.initial) / max(now - self.started, 1e-6)
        eta = (self.total - self.done) / rate if rate else 0
        filled = int(WIDTH * min(self.done, self.total) / max(self.total, 1))
        extra = "".join(f"  {name.replace('_', ' ')} {value:,}" for name, value in counts.items())
        line = (
            f"[{'#' * filled}{'-' * (WIDTH - filled)}] {self.done:,}/{self.total:,} {self.unit}  {rate:,.2f}/s  "
            f"ETA {timedelta(seconds=int(eta))}{extra}"
        )
        self.out.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and (final or self.done >= self.total):
            self.out.write("\n")
        self.out.flush()
