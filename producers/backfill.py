"""``racelab backfill``: collect history day by day through the same topics, resumable.

Work is split into units (day, track, kind). A unit is checkpointed in ``backfill_checkpoints`` once all its calls
were published or recorded as failures (the recovery job retries those), so running the same command again skips
finished units. Ctrl+C finishes the unit in flight and stops; the daily quota (code 22) stops the run with a
message to resume tomorrow. Calls go through the shared clients, hence through the rate limiter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TextIO

from producers import calls, learning, plans
from producers.calendar import Calendar, RaceDay
from producers.client import RawResponse, rows_of
from producers.collector import Collector
from producers.state import ProducerStore
from runtime.progress import Progress
from schemas.topics import KINDS, Kind
from schemas.tracks import race_type_of

log = logging.getLogger(__name__)


@dataclass
class BackfillSummary:
    """What a backfill run did."""

    job_id: str
    units_total: int = 0
    units_done: int = 0
    units_skipped: int = 0
    calls: int = 0
    messages: int = 0
    failures: int = 0
    stopped: str | None = None
    elapsed_s: float = 0.0
    failed_calls: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        state = f"stopped: {self.stopped}" if self.stopped else "complete"
        return [
            f"backfill {self.job_id}: {state}",
            f"  units: {self.units_done} done now, {self.units_skipped} already done, {self.units_total} in all",
            f"  calls: {self.calls}, messages published: {self.messages}, failed calls: {self.failures}"
            + (" (recorded in ingestion_failures; the recovery job retries them)" if self.failures else ""),
            f"  time: {self.elapsed_s:.1f}s",
        ]


def job_id(start: date, end: date, kinds: Sequence[str], tracks: Sequence[str]) -> str:
    """Same range, kinds and tracks = same job (so a re-run resumes it)."""
    text = f"{start}:{end}:{','.join(sorted(kinds))}:{','.join(sorted(tracks))}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def race_numbers(track: str, day: date, pages: Sequence[RawResponse], known: RaceDay | None = None) -> list[int]:
    """Race numbers of one track and day, read from its schedule answer (a boat day: the rows of its day of round)."""
    race_type = race_type_of(track)
    numbers: set[int] = set()
    day_no = known.day_no if known is not None else 0
    for row in rows_of(pages):
        if race_type == "horse":
            value = row.get("rcNo")
        elif race_type == "cycle":
            value = row.get("race_no") if str(row.get("race_ymd", "")).replace(".", "") == f"{day:%Y%m%d}" else None
        else:
            value = row.get("race_no") if str(row.get("day_tcnt", "")).strip() == str(day_no) else None
        if value is not None and str(value).strip().isdigit():
            numbers.add(int(str(value)))
    return sorted(numbers)


class Backfill:
    """Runs one backfill job."""

    def __init__(
        self, collector: Collector, store: ProducerStore, tracks: Sequence[str], kinds: Sequence[Kind] = KINDS
    ) -> None:
        self.collector = collector
        self.store = store
        self.tracks = list(tracks)
        self.kinds = list(kinds)

    async def _race_numbers(self, track: str, day: date, known: RaceDay | None) -> list[int]:
        call = plans.schedule_calls(track, day, Calendar([known] if known is not None else []))[-1]
        pages = await self.collector.client_for(call).run(call)
        return race_numbers(track, day, pages, known)

    async def learn(
        self, day: date, track: str, kind: Kind, collect: Callable[[Sequence[calls.Call]], Awaitable[None]]
    ) -> list[calls.Call]:
        """Teach the calendar a KSPO day it does not know (the calls made); done by the first kind of a day's units,
        so a resumed job asks no question twice."""
        race_type = race_type_of(track)
        if race_type == "horse" or kind != self.kinds[0]:
            return []

        async def known() -> Calendar:
            return await self.store.calendar(race_type)

        _, asked = await learning.learn([(track, day)], known, collect)
        return asked

    async def unit_calls(self, day: date, track: str, kind: Kind) -> list[calls.Call]:
        """The calls of one unit (none for a KSPO day without racing)."""
        race_type = race_type_of(track)
        known = (await self.store.calendar(race_type)).day(track, day) if race_type != "horse" else None
        if race_type != "horse" and known is None:
            return []  # the APIs published no racing on this day
        calendar = Calendar([known] if known is not None else [])
        if kind == "schedules":
            return plans.schedule_calls(track, day, calendar)
        if kind == "entries":
            return plans.entry_calls(track, day, [], calendar)
        year, round_no, day_no = (known.year, known.round_no, known.day_no) if known else (day.year, 0, 0)
        if race_type == "horse" and kind == "results":
            return [calls.kra_race_result(track, day), calls.kra_race_result_total(track, day)]
        if race_type == "boat" and kind == "results":
            return [
                calls.boat_result(year, round_no, day_no, None, day),
                calls.boat_rank(year, round_no, day_no, None, day),
            ]
        if race_type == "cycle" and kind == "odds":
            return [calls.cycle_payoff(year, round_no, day_no, track, day)]
        numbers = await self._race_numbers(track, day, known)
        if race_type == "horse":
            return [calls.kra_final_dividends(track, day, n) for n in numbers]
        if race_type == "boat":
            return [calls.boat_payoff(year, round_no, day_no, n, day) for n in numbers]
        return [calls.cycle_rank(year, round_no, day_no, None, track, day)] + [
            calls.cycle_result(year, round_no, day_no, n, track, day) for n in numbers
        ]

    def quota_exhausted(self) -> bool:
        return any(client.quota_exhausted for client in self.collector.clients.values())

    async def run(
        self, start: date, end: date, stop: asyncio.Event | None = None, out: TextIO = sys.stderr
    ) -> BackfillSummary:
        """Backfill [start, end]; returns the summary (also when stopped early)."""
        summary = BackfillSummary(job_id(start, end, self.kinds, self.tracks))
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        units = [(d, t, k) for d in days for t in self.tracks for k in self.kinds]
        summary.units_total = len(units)
        progress = Progress(len(units), "units", out)
        started = time.monotonic()
        for day, track, kind in units:
            if stop is not None and stop.is_set():
                summary.stopped = "interrupted; run the same command again to resume"
                break
            if self.quota_exhausted():
                summary.stopped = "the daily API quota is used up; run the same command tomorrow to resume"
                break
            if await self.store.checkpoint_done(summary.job_id, day, track, kind):
                summary.units_skipped += 1
                progress.advance(messages=summary.messages, failed_calls=summary.failures)
                continue
            results: list[list[RawResponse] | None] = []

            async def collect(planned: Sequence[calls.Call]) -> None:
                results.extend(await asyncio.gather(*(self.collector.collect(c) for c in planned)))  # noqa: B023

            asked = await self.learn(day, track, kind, collect)
            unit_calls = [*asked, *await self.unit_calls(day, track, kind)]
            await collect(unit_calls[len(asked) :])
            published = sum(len(pages) for pages in results if pages is not None)
            failed = [c for c, pages in zip(unit_calls, results, strict=True) if pages is None]
            summary.calls += len(unit_calls)
            summary.messages += published
            summary.failures += len(failed)
            summary.failed_calls.extend(f"{c.source} {c.endpoint} {c.params}" for c in failed)
            if self.quota_exhausted():  # this unit is incomplete: do not checkpoint it
                summary.stopped = "the daily API quota is used up; run the same command tomorrow to resume"
                break
            await self.store.mark_checkpoint(summary.job_id, day, track, kind, published)
            summary.units_done += 1
            progress.advance(messages=summary.messages, failed_calls=summary.failures)
        if progress.done < progress.total:
            progress.advance(0, final=True, messages=summary.messages, failed_calls=summary.failures)
        summary.elapsed_s = time.monotonic() - started
        return summary
