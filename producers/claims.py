"""Slot claims (``poll_slots``) that survive a database outage.

A live price that is not polled at its slot cannot be fetched later, so the odds polls must not wait for the
database. While it is unreachable, claims are kept in the process: a slot is claimed once locally and polled as
usual, and its outcome is kept too. When the database answers again the local claims are written to
``poll_slots`` (recorded afterwards, as done, with their outcome) and claiming goes back to the database, where two
producers never get the same slot. During the outage itself each producer only knows its own claims: two producers
may both poll a slot then (a duplicate snapshot, stored once by the sink's unique key), never none.

While offline no claim waits for the database: :meth:`SlotClaims.reconcile` (run in the background by the poller)
is what tries it again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from producers.state import ProducerStore
from schemas.errors import DatabaseUnavailable

log = logging.getLogger(__name__)
Key = tuple[str, str, datetime]
OFFLINE_TASKS = frozenset({"odds"})  # claimed locally while the database is away; the others wait for it


class SlotClaims:
    """Claims of one producer process: in ``poll_slots``, or here while the database is unreachable."""

    def __init__(self, store: ProducerStore) -> None:
        self.store = store
        self.local: dict[Key, str | None] = {}  # claimed while offline -> its outcome once finished
        self.offline_since: float | None = None

    @property
    def offline(self) -> bool:
        return self.offline_since is not None

    @property
    def to_reconcile(self) -> bool:
        """Offline, or holding finished local claims that are not in ``poll_slots`` yet."""
        return self.offline or any(outcome is not None for outcome in self.local.values())

    def went_offline(self, exc: DatabaseUnavailable) -> None:
        if self.offline_since is None:
            self.offline_since = time.monotonic()
            log.warning("%s; odds slots are claimed locally and recorded when the database is back", exc)

    def _needs_database(self, task: str, exc: DatabaseUnavailable | None = None) -> None:
        """Raise for a task that is not claimed offline (after noting the outage)."""
        if exc is not None:
            self.went_offline(exc)
        if task not in OFFLINE_TASKS:
            raise exc or DatabaseUnavailable(f"the database is unreachable; {task} slots wait for it")

    async def last_slot(self, task: str, target: str) -> datetime | None:
        """The newest slot claimed for a target: the database's, or the newest local one while offline."""
        local = max((slot for t, g, slot in self.local if t == task and g == target), default=None)
        if self.offline:
            self._needs_database(task)
            return local
        try:
            stored = await self.store.last_slot(task, target)
        except DatabaseUnavailable as exc:
            self._needs_database(task, exc)
            return local
        return max((s for s in (stored, local) if s is not None), default=None)

    async def claim(self, task: str, target: str, slot: datetime) -> bool:
        """Claim a slot; False when it is taken (in the database, or locally while offline). Raises
        :class:`DatabaseUnavailable` for a task that waits for the database."""
        key = (task, target, slot)
        if key in self.local:
            return False
        if self.offline:
            self._needs_database(task)
        else:
            try:
                return await self.store.claim(task, target, slot)
            except DatabaseUnavailable as exc:
                self._needs_database(task, exc)
        self.local[key] = None
        return True

    async def finish(self, task: str, target: str, slot: datetime, outcome: str) -> None:
        """Mark a claimed slot done; kept locally when it was claimed offline or the database is away now."""
        key = (task, target, slot)
        if key in self.local or self.offline:
            self.local[key] = outcome
            return
        try:
            await self.store.finish(task, target, slot, outcome)
        except DatabaseUnavailable as exc:
            self.went_offline(exc)
            self.local[key] = outcome

    async def reconcile(self) -> int:
        """Write the finished local claims to ``poll_slots``; back online once they are all in. Returns how many
        were written; leaves them for the next time when the database is still unreachable."""
        done = [(key, outcome) for key, outcome in self.local.items() if outcome is not None]
        written = 0
        try:
            if done:
                written = await self.store.record_slots([(*key, outcome) for key, outcome in done])
            elif self.offline:
                await self.store.ping()
        except DatabaseUnavailable:
            return 0
        for key, _ in done:
            self.local.pop(key, None)
        if self.offline_since is not None:
            log.warning(
                "database back after %.0fs: %d slots polled meanwhile recorded in poll_slots",
                time.monotonic() - self.offline_since,
                len(done),
            )
            self.offline_since = None
        return written
