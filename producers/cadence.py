"""When to poll: pure functions of post time and the current time, no I/O.

Odds (the seed's cadence): T-60..T-15 every 5 min, T-15..T-5 every minute, T-5..T-0 every 30 s; the last slot is
the post time itself. Entries: from T-2h every 15 min until post time. Results: from post time + 5 min every 2 min,
at most 20 tries.

A loop asks :func:`due_slot` for the newest slot that is due and newer than the last one it polled. Missed slots
(the process was down, the clock jumped forward) are skipped, not replayed in a burst; a clock that jumps back
never yields a slot at or before the last one polled, so no slot is polled twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

ODDS_PHASES: tuple[tuple[int, int, int], ...] = (
    # (from seconds before post, down to (exclusive), step seconds)
    (3600, 900, 300),
    (900, 300, 60),
    (300, -1, 30),
)
ENTRIES_FROM = timedelta(hours=2)
ENTRIES_EVERY = timedelta(minutes=15)
RESULTS_AFTER = timedelta(minutes=5)
RESULTS_EVERY = timedelta(minutes=2)
RESULTS_MAX_TRIES = 20


def odds_offsets() -> list[int]:
    """Seconds before post time of every odds slot, earliest first (T-3600 ... T-0)."""
    offsets: list[int] = []
    for start, stop, step in ODDS_PHASES:
        offsets.extend(range(start, stop, -step))
    return offsets


def odds_slots(post_time: datetime) -> list[datetime]:
    """Every odds slot of a race."""
    return [post_time - timedelta(seconds=s) for s in odds_offsets()]


def entry_slots(post_time: datetime) -> list[datetime]:
    """Every entry-sheet slot of a race: T-2h, then every 15 min, and the post time."""
    slots, at = [], post_time - ENTRIES_FROM
    while at < post_time:
        slots.append(at)
        at += ENTRIES_EVERY
    return [*slots, post_time]


def result_slots(post_time: datetime) -> list[datetime]:
    """Result-poll slots: post + 5 min, then every 2 min, bounded."""
    return [post_time + RESULTS_AFTER + RESULTS_EVERY * i for i in range(RESULTS_MAX_TRIES)]


def due_slot(
    slots: Sequence[datetime], now: datetime, last_polled: datetime | None, grace: timedelta = timedelta(seconds=90)
) -> datetime | None:
    """The newest slot with ``slot <= now`` that is later than ``last_polled``, or None.

    ``grace`` drops slots that are too old to be worth polling (after a long outage, the next slot is better than a
    stale one).
    """
    best = None
    for slot in slots:
        if slot > now:
            break
        if last_polled is not None and slot <= last_polled:
            continue
        best = slot
    if best is None or now - best > grace:
        return None
    return best


def next_slot(slots: Sequence[datetime], now: datetime) -> datetime | None:
    """The first slot after ``now`` (for sleeping until then), or None when none is left."""
    return next((slot for slot in slots if slot > now), None)
