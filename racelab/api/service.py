"""The control API's service layer: the producers' parts (collector, poller, clock) plus the API's database reads.

Routes call these methods and nothing else; each one answers with a :mod:`racelab.api.models` body.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import date

from producers import learning, plans
from producers.clock import Clock
from producers.service import Producers, open_producers
from producers.state import FailureRow, json_object
from racelab import charts
from racelab.api import triggers
from racelab.api.models import CallOutcome, CollectionData, FailureItem, RaceItem, RetryData, StatusData
from racelab.api.status import ingestion_status
from racelab.api.store import ControlStore
from runtime.settings import Settings
from schemas.race_ids import RaceKey
from schemas.records import RaceType
from schemas.timezones import kst_date
from schemas.topics import Kind


class ControlService:
    """What the control API can do, over one set of open producer parts."""

    def __init__(self, settings: Settings, parts: Producers) -> None:
        self.settings = settings
        self.parts = parts
        self.store = ControlStore(parts.collector.store.pool, settings.database)

    def today(self) -> date:
        """Today in Asia/Seoul on the producers' clock (the simulator's clock when it drives them)."""
        return kst_date(self.parts.clock.now())

    def _run(self) -> triggers.TriggerRun:
        return triggers.TriggerRun(self.parts.collector, self.store.open_failure_ids)

    async def schedules(self, day: date | None, race_types: Sequence[RaceType] | None) -> CollectionData:
        """Collect the schedule of ``day`` (default today) for the race types (default: configured ones)."""
        day = day or self.today()
        run = self._run()
        tracks = self.parts.poller.tracks(race_types)
        calendar, asked = await learning.learn([(t, day) for t in tracks], self.parts.poller.calendar, run.collect)
        await run.collect([c for t in tracks for c in plans.schedule_calls(t, day, calendar) if c not in asked])
        return run.data()

    async def races(self, kind: Kind, keys: Sequence[RaceKey]) -> CollectionData:
        """Collect ``kind`` (entries, odds or results) of these races now."""
        stored = await self.store.races([k.race_id for k in keys])
        refs = [triggers.race_ref(k, stored) for k in keys]
        run = self._run()
        calendar = await self.parts.poller.calendar()
        unknown = [
            (r.track, r.race_date) for r in refs if r.race_type != "horse" and plans.kspo_round(r, calendar) is None
        ]
        if unknown:  # KSPO days the calendar does not know yet: ask about them first
            calendar, _ = await learning.learn(unknown, self.parts.poller.calendar, run.collect)
        if kind == "entries":
            await run.collect([c for r in refs for c in plans.entry_calls(r.track, r.race_date, [r], calendar)])
        elif kind == "odds":
            now, live = self.parts.clock.now(), self.parts.collector.live_odds is not None
            planned = [triggers.odds_call(r, r.race_id in stored, now, live, calendar) for r in refs]
            await run.collect([c for c in planned if c is not None])
        elif kind == "results":
            await triggers.collect_results(run, refs, calendar)
        else:
            raise ValueError(f"no race trigger for {kind}")
        return run.data()

    async def status(self, day: date | None) -> StatusData:
        """Status of collection for ``day`` (default today)."""
        return await ingestion_status(self.settings, self.store, day or self.today())

    async def day_races(self, day: date | None) -> list[RaceItem]:
        """The stored races of ``day`` (default today) with their odds rows."""
        found = await self.store.day_races(day or self.today())
        return [
            RaceItem.model_validate(
                {
                    "race_id": s.race.race_id,
                    "race_type": s.race.race_type,
                    "track_code": s.race.track_code,
                    "race_no": s.race.race_no,
                    "post_time": s.race.post_time,
                    "status": s.race.status,
                    "race_name": s.race.race_name,
                    "odds_snapshots": sum(s.odds_per_pool.values()),
                    "pools": [p for p in charts.POOLS if p in s.odds_per_pool],
                }
            )
            for s in found
        ]

    async def odds_chart(self, race_id: str, pool: str | None, top: int | None) -> bytes:
        """The race's odds chart as SVG (:mod:`racelab.charts`; drawn in a worker thread)."""
        post_time, rows = await self.store.race_odds(race_id, pool)
        _, image = await asyncio.to_thread(charts.draw_odds, race_id, post_time, rows, "svg", pool=pool, top=top)
        return image

    async def failures(self, resolved: bool | None, limit: int) -> list[FailureItem]:
        """Failure rows, newest failure first."""
        return [self._failure_item(dict(r)) for r in await self.store.failures(resolved, limit)]

    async def retry(self, failure_id: int) -> RetryData | None:
        """Retry one recorded failure now (None when there is no such failure)."""
        row = await self.store.failure(failure_id)
        if row is None:
            return None
        item = self._failure_item(dict(row))
        outcome = {
            "source": item.source,
            "kind": item.kind,
            "endpoint": item.endpoint,
            "message_key": item.message_key or f"{item.source}:retry:{item.id}",
            "params": item.params,
        }
        if item.resolved:
            skipped = CallOutcome.model_validate({**outcome, "outcome": "skipped", "reason": "already resolved"})
            return RetryData(collected=0, skipped=1, errors=0, calls=[skipped], failure_id=item.id, resolved=True)
        failure = FailureRow(
            item.id, item.source, item.kind, item.endpoint, item.params, item.message_key, item.retry_count
        )
        resolved = await self.parts.collector.retry_failure(failure)
        call = CallOutcome.model_validate(
            {**outcome, "outcome": "collected" if resolved else "failed", "failure_id": item.id}
        )
        return RetryData(
            collected=int(resolved),
            skipped=0,
            errors=int(not resolved),
            calls=[call],
            failure_id=item.id,
            resolved=resolved,
        )

    def _failure_item(self, row: dict[str, object]) -> FailureItem:
        row["params"] = {k: str(v) for k, v in json_object(row["params"]).items()}
        row["created_at"] = row.pop("first_failed_at")
        row["max_retries"] = self.settings.producers.recovery_max_retries
        return FailureItem.model_validate(row)


@contextlib.asynccontextmanager
async def open_control_service(settings: Settings, clock: Clock | None = None) -> AsyncIterator[ControlService]:
    """Open the producer parts (broker, database, API clients) the service runs on; closes them on exit."""
    async with open_producers(settings, clock) as parts:
        yield ControlService(settings, parts)
