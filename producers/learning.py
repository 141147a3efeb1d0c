"""Ask about KSPO days the calendar does not know, until it knows them or has nothing more to ask.

Two rounds at most: the first asks for the days' ranks (and, with an empty calendar, those of the week before, which
name the latest round); the second for the cycle cards of the rounds that may hold the days, which the first made
known. Every answer teaches the calendar as it is collected (:meth:`producers.collector.Collector.collect`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date
from typing import Any

from producers import plans
from producers.calendar import Calendar
from producers.calls import Call

ROUNDS = 2


async def learn(
    days: Iterable[tuple[str, date]],
    calendar: Callable[[], Awaitable[Calendar]],
    collect: Callable[[Sequence[Call]], Awaitable[Any]],
) -> tuple[Calendar, list[Call]]:
    """The calendar once the days were asked about, and the calls made to learn them."""
    wanted = sorted(set(days))
    known = await calendar()
    asked: list[Call] = []
    for _ in range(ROUNDS):
        todo = [c for track, day in wanted for c in plans.learning_calls(track, day, known) if c not in asked]
        if not todo:
            break
        await collect(todo)
        asked += todo
        known = await calendar()
    return known, asked
