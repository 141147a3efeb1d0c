"""The DLQ circuit breaker of the processors (the DLQ records themselves: :mod:`schemas.dlq`).

The breaker (after Arroyo's ``DlqLimit``) trips when the DLQ share of the last ``window`` messages passes
``max_ratio`` (once at least ``window`` were seen), or after ``max_consecutive`` DLQ records in a row: a bad deploy
or a changed API must stop the worker, not drain every partition into the DLQ.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from processors.errors import DlqLimitExceeded


@dataclass
class DlqLimit:
    """Counts outcomes and raises :class:`DlqLimitExceeded` when the DLQ share gets out of hand."""

    max_ratio: float = 0.5
    window: int = 200
    max_consecutive: int = 100
    _recent: deque[bool] = field(default_factory=deque, repr=False)
    consecutive: int = 0

    def record(self, failed: bool) -> None:
        self._recent.append(failed)
        if len(self._recent) > self.window:
            self._recent.popleft()
        self.consecutive = self.consecutive + 1 if failed else 0
        if self.consecutive >= self.max_consecutive:
            raise DlqLimitExceeded(
                f"{self.consecutive} messages in a row went to the DLQ (limit {self.max_consecutive})"
            )
        if len(self._recent) >= self.window:
            ratio = sum(self._recent) / len(self._recent)
            if ratio > self.max_ratio:
                raise DlqLimitExceeded(
                    f"{ratio:.0%} of the last {len(self._recent)} messages went to the DLQ (limit {self.max_ratio:.0%})"
                )
