"""The race-day poller: one pass (:meth:`RaceDayPoller.tick`) decides what is due and collects it.

- schedules: daily at ``schedule_time_kst`` for the day (caught up at start), and on demand;
- entries: per track and day, from T-2h before each race, every 15 min and at each post time;
- odds: per race on the cadence of :mod:`producers.cadence` (live-odds feed), until post time;
- results: per race from post + 5 min, every 2 min, until final (20 tries); then the details and, once, the final
  dividends (the closing odds snapshot).

Every slot is claimed in ``poll_slots`` before it is polled, so restarts and several producers never poll a slot
twice, and missed slots are skipped rather than replayed in a burst.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from producers import cadence, learning, plans
from producers.calendar import Calendar
from producers.calls import Call, live_odds
from producers.claims import SlotClaims
from producers.clock import Clock
from producers.collector import Collector
from producers.state import ProducerStore, RaceRef
from runtime.settings import ProducerSettings
from schemas.errors import DatabaseUnavailable
from schemas.timezones import kst_date, kst_moment
from schemas.tracks import CODES_BY_RACE_TYPE, POLLED_BY_RACE_TYPE, race_type_of

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOOK_BACK = timedelta(hours=2)
LEARN_EVERY = timedelta(minutes=30)  # a KSPO race day not yet in the calendar is asked about this often (09-21 KST)
LOOK_AHEAD = timedelta(hours=2, minutes=5)


@dataclass
class Outcome:
    """What an on-demand collection did."""

    collected: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def tracks_in_use(
    settings: ProducerSettings, race_types: Sequence[str] | None = None, tracks: Sequence[str] | None = None
) -> list[str]:
    """The tracks collected for ``race_types`` (default: the configured ones): the named ``tracks`` (default: the
    configured ones), polled by default or not, else every track polled by default; in catalogue order."""
    types = race_types or settings.race_types
    wanted = tracks or settings.tracks
    if wanted:
        return [t for rt in types for t in CODES_BY_RACE_TYPE[rt] if t in wanted]
    return [t for rt in types for t in POLLED_BY_RACE_TYPE[rt]]


class RaceDayPoller:
    """Decides, from the stored schedule and the clock, which calls are due, and makes them."""

    def __init__(
        self,
        settings: ProducerSettings,
        collector: Collector,
        store: ProducerStore,
        clock: Clock,
        live_odds_enabled: bool,
    ) -> None:
        self.settings = settings
        self.collector = collector
        self.store = store
        self.clock = clock
        self.live_odds_enabled = live_odds_enabled
        self.claims = SlotClaims(store)
        self._reconciling: asyncio.Task[None] | None = None
        self._races: list[RaceRef] = []  # the stored schedule around now, as last read (odds poll on it offline)
        self._last: dict[tuple[str, str], datetime | None] = {}
        self._final: set[str] = set()
        self._known_days: set[tuple[str, date]] = set()  # KSPO (track, day) pairs the calendar knows

    def tracks(self, race_types: Sequence[str] | None = None, tracks: Sequence[str] | None = None) -> list[str]:
        return tracks_in_use(self.settings, race_types, tracks)

    async def collect_calls(self, calls: Sequence[Call]) -> Outcome:
        outcome = Outcome()
        for call, pages in zip(calls, await asyncio.gather(*(self.collector.collect(c) for c in calls)), strict=True):
            if pages is None:
                outcome.errors.append(f"{call.source} {call.endpoint} {call.params}")
            else:
                outcome.collected += 1
        return outcome

    async def calendar(self) -> Calendar:
        """The known KSPO race days of every polled race type."""
        known = Calendar()
        for race_type in ("cycle", "boat"):
            if race_type in self.settings.race_types:
                for day in (await self.store.calendar(race_type)).days():
                    known.add(day)
        return known

    async def collect_schedule(
        self, day: date, race_types: Sequence[str] | None = None, tracks: Sequence[str] | None = None
    ) -> Outcome:
        """Collect the schedule of one day now (on demand, or from the daily run). A KSPO day the calendar does not
        know is asked about first; its schedule is collected once an answer has made it known."""
        chosen = self.tracks(race_types, tracks)
        outcome = Outcome()

        async def collect(planned: Sequence[Call]) -> None:
            done = await self.collect_calls(planned)
            outcome.collected += done.collected
            outcome.errors += done.errors

        calendar, asked = await learning.learn([(t, day) for t in chosen], self.calendar, collect)
        await collect([c for t in chosen for c in plans.schedule_calls(t, day, calendar) if c not in asked])
        return outcome

    async def _learn_today(self, now: datetime) -> None:
        """KSPO tracks whose today is not in the calendar yet: ask every 30 minutes between 09:00 and 21:00 (a boat
        day is published with its date only once its first race is run), then collect the schedule once known.

        Runs every tick, so the calendar is read only when a slot is due, and a day once known is not looked at
        again."""
        today = kst_date(now)
        slots = [kst_moment(today, time(9)) + LEARN_EVERY * n for n in range(25)]
        for track in self.tracks():
            if race_type_of(track) == "horse" or (track, today) in self._known_days:
                continue
            target = f"{track}:{today:%Y%m%d}"
            slot = await self._claim("learn", target, slots, now, grace=LEARN_EVERY)
            if slot is None:
                continue
            if (await self.calendar()).day(track, today) is not None:
                self._known_days.add((track, today))
                await self.store.finish("learn", target, slot, "known")
                continue
            outcome = await self.collect_schedule(today, tracks=[track])
            await self.store.finish("learn", target, slot, "ok" if not outcome.errors else "failed")

    async def _claim(
        self, task: str, target: str, slots: Sequence[datetime], now: datetime, grace: timedelta = timedelta(seconds=90)
    ) -> datetime | None:
        key = (task, target)
        if key not in self._last:
            self._last[key] = await self.claims.last_slot(task, target)
        slot = cadence.due_slot(slots, now, self._last[key], grace)
        if slot is None:
            return None
        self._last[key] = slot
        return slot if await self.claims.claim(task, target, slot) else None

    async def _daily_schedule(self, now: datetime) -> None:
        today = kst_date(now)
        at = kst_moment(today, self.settings.schedule_time_kst)
        if now < at:
            return
        # the daily run may start late (restart, catch-up): any time today counts, once
        slot = await self._claim("schedule", today.isoformat(), [at], now, grace=timedelta(days=1))
        if slot is None:
            return
        outcome = await self.collect_schedule(today)
        await self.store.finish("schedule", today.isoformat(), slot, "ok" if not outcome.errors else "partial")
        log.info("schedule of %s: %d calls collected, %d failed", today, outcome.collected, len(outcome.errors))

    async def _entries(self, now: datetime, races: Sequence[RaceRef]) -> None:
        by_day: dict[tuple[str, date], list[RaceRef]] = defaultdict(list)
        for race in races:
            by_day[(race.track, race.race_date)].append(race)
        for (track, day), day_races in by_day.items():
            slots = sorted({s for r in day_races for s in cadence.entry_slots(r.post_time)})
            target = f"{track}:{day:%Y%m%d}"
            slot = await self._claim("entries", target, slots, now)
            if slot is not None:
                outcome = await self.collect_calls(plans.entry_calls(track, day, day_races))
                await self.store.finish("entries", target, slot, "ok" if not outcome.errors else "failed")

    async def _odds(self, now: datetime, race: RaceRef) -> None:
        if not self.live_odds_enabled or now > race.post_time + timedelta(minutes=2):
            return
        slot = await self._claim("odds", race.race_id, cadence.odds_slots(race.post_time), now)
        if slot is not None:
            pages = await self.collector.collect(live_odds(race.race_id))
            await self.claims.finish("odds", race.race_id, slot, "ok" if pages is not None else "failed")

    async def _results(self, now: datetime, race: RaceRef) -> None:
        if race.race_id in self._final or now < race.post_time + cadence.RESULTS_AFTER:
            return
        if await self.store.slot_outcome("results_final", race.race_id, EPOCH) is not None:
            self._final.add(race.race_id)
            return
        slot = await self._claim("results", race.race_id, cadence.result_slots(race.post_time), now)
        if slot is None:
            return
        call = plans.result_call(race)
        if call is None:
            log.warning("%s: its KSPO round is not known; no result call", race.race_id)
            await self.store.finish("results", race.race_id, slot, "unknown_round")
            return
        pages = await self.collector.collect(call)
        final = pages is not None and plans.result_is_final(race, pages)
        await self.store.finish("results", race.race_id, slot, "final" if final else "pending")
        if final:
            await self._after_final(race)
        elif slot == cadence.result_slots(race.post_time)[-1]:
            log.warning("%s: result still not final after %d polls", race.race_id, cadence.RESULTS_MAX_TRIES)

    async def _after_final(self, race: RaceRef) -> None:
        if not await self.store.claim("results_final", race.race_id, EPOCH):
            return
        await self.collect_calls(plans.result_detail_calls(race))
        odds_call = plans.final_odds_call(race)
        if odds_call is not None and await self.store.claim("final_odds", race.race_id, EPOCH):
            pages = await self.collector.collect(odds_call)
            await self.store.finish("final_odds", race.race_id, EPOCH, "ok" if pages is not None else "failed")
        await self.store.finish("results_final", race.race_id, EPOCH, "final")
        self._final.add(race.race_id)

    async def tick(self) -> None:
        """One pass over everything that may be due now; while the database is unreachable, the odds slots only
        (on the schedule as last read, claimed locally: :mod:`producers.claims`)."""
        now = self.clock.now()
        self._reconcile_soon()
        if self.claims.offline:
            around = [r for r in self._races if now - LOOK_BACK <= r.post_time <= now + LOOK_AHEAD]
            await self._all([self._odds(now, race) for race in around])
            return
        try:
            await self._daily_schedule(now)
            await self._learn_today(now)
            self._races = await self.store.races_between(
                now - LOOK_BACK, now + LOOK_AHEAD, self.settings.race_types, self.settings.tracks or None
            )
        except DatabaseUnavailable as exc:
            self.claims.went_offline(exc)
            return
        await self._all(
            [
                self._entries(now, self._races),
                *(self._odds(now, race) for race in self._races),
                *(self._results(now, race) for race in self._races),
            ]
        )

    async def _all(self, work: Sequence[Coroutine[Any, Any, None]]) -> None:
        """Run every part to its end; an unreachable database stops only the parts that need it."""
        failed = [r for r in await asyncio.gather(*work, return_exceptions=True) if isinstance(r, BaseException)]
        for error in failed:
            if isinstance(error, DatabaseUnavailable):
                self.claims.went_offline(error)
            else:
                raise error

    def _reconcile_soon(self) -> None:
        """Write the slots polled offline, in the background (a tick never waits for the database)."""
        task = self._reconciling
        if task is not None and task.done():
            self._reconciling = None
            task.result()  # an error other than an outage is not swallowed
        kept = self.collector.unlogged or self.collector.unrecorded
        if self._reconciling is None and (self.claims.to_reconcile or kept):
            self._reconciling = asyncio.create_task(self._reconcile())

    async def _reconcile(self) -> None:
        await self.claims.reconcile()
        if not self.claims.offline:
            await self.collector.flush_log()
