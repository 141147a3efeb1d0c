"""What a worker's own consumer did lately (its offset commits and its partition assignment), and a way to make it
rejoin its group.

The group's committed offsets are measured from outside (:mod:`runtime.lag`); this is the inside view readiness
needs besides: a commit that has not returned (aiokafka retries a commit the broker refuses, for instance to a
partition that no longer exists, without end), a commit that failed, and how long the worker has been without
partitions. Written from the consumer's thread, read from the worker's loop: plain attribute writes only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CommitWatch:
    clock: Callable[[], float] = time.time
    pending_since: float | None = None  # a commit call that has not returned yet started then
    last_ok: float | None = None
    last_failed: float | None = None
    failures: int = 0
    partitions: int = 0  # how many partitions the consumer has now
    assigned_at: float = 0.0  # when the group last handed it partitions
    unassigned_since: float | None = field(default=None)
    rejoin: Callable[[], None] | None = field(default=None, repr=False)  # asks the consumer to rejoin its group

    def __post_init__(self) -> None:
        self.unassigned_since = self.clock()

    def commit_started(self) -> None:
        if self.pending_since is None:
            self.pending_since = self.clock()

    def commit_finished(self, ok: bool) -> None:
        self.pending_since = None
        if ok:
            self.last_ok = self.clock()
        else:
            self.last_failed = self.clock()
            self.failures += 1

    def assigned(self, partitions: int) -> None:
        self.partitions = partitions
        if partitions == 0:
            self.unassigned_since = self.unassigned_since or self.clock()
        else:
            self.unassigned_since = None
            self.assigned_at = self.clock()

    def request_rejoin(self) -> None:
        """Ask the consumer to rejoin its group: its partitions are handed out again and it reads from the committed
        offsets, or from the beginning where none are (a recreated topic)."""
        if self.rejoin is not None:
            self.rejoin()

    def commit_stuck_for(self) -> float:
        """Seconds the current commit has been waiting for the broker (0 when none waits)."""
        return 0.0 if self.pending_since is None else max(0.0, self.clock() - self.pending_since)

    def failing(self) -> bool:
        """The last commit that returned failed."""
        return self.last_failed is not None and (self.last_ok is None or self.last_failed > self.last_ok)

    def unassigned_for(self) -> float:
        return 0.0 if self.unassigned_since is None else max(0.0, self.clock() - self.unassigned_since)
