"""On-demand collection: which calls each trigger makes, run now through the producers' :class:`Collector`.

- schedules: the schedule calls of every track of the chosen race types for the day (as the daily run);
- entries: the entry-sheet calls of each race's track and day (day-wide calls, so races of one day share them);
- odds: a live-odds snapshot while the race is not over (stored post time + 2 min on the producers' clock) and a
  live-odds feed is configured; otherwise the final dividends (the closing snapshot; empty until published);
- results: the result call of each race and, once that answer is final, the detail calls (as the poller does).

Identical calls (same source, endpoint and parameters) are made once per request; the repeats are reported as
skipped. A race that is not in the stored schedule is collected from what its id says (KSPO rounds are guessed
from the date, as backfill does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, time, timedelta

from producers import plans
from producers.calendar import Calendar
from producers.calls import Call, live_odds
from producers.client import RawResponse
from producers.collector import Collector
from producers.state import RaceRef, fingerprint
from racelab.api.models import CallOutcome, CollectionData
from schemas.race_ids import RaceKey
from schemas.timezones import kst_moment

LIVE_ODDS_UNTIL = timedelta(minutes=2)
SAME_CALL = "same call as for another race of this request"
NOT_FINAL = "result not final yet"
FailureIds = Callable[[Sequence[str]], Awaitable[dict[str, int]]]


def race_ref(key: RaceKey, stored: Mapping[str, RaceRef]) -> RaceRef:
    """The stored race, else one built from its id (no post time known: midnight KST as a stand-in)."""
    found = stored.get(key.race_id)
    if found is not None:
        return found
    midnight_kst = kst_moment(key.day, time(0))
    return RaceRef(key.race_id, key.race_type, key.track, key.day, key.race_no, midnight_kst, "unknown", {})


def odds_call(race: RaceRef, stored: bool, now: datetime, live_feed: bool, calendar: Calendar) -> Call | None:
    """Live odds while the race is not over (stored post time known), else the final dividends (None: a KSPO race
    whose round the calendar does not know)."""
    if live_feed and stored and race.post_time is not None and now <= race.post_time + LIVE_ODDS_UNTIL:
        return live_odds(race.race_id)
    return plans.final_odds_call(race, calendar)


class TriggerRun:
    """Makes the calls of one request through the collector and keeps the outcome of every planned call."""

    def __init__(self, collector: Collector, failure_ids: FailureIds) -> None:
        self.collector = collector
        self.failure_ids = failure_ids
        self.outcomes: list[CallOutcome] = []
        self._done: dict[str, list[RawResponse] | None] = {}

    async def collect(self, calls: Sequence[Call]) -> list[list[RawResponse] | None]:
        """Make each distinct call once (concurrently); returns the pages (None = failed) of every planned call."""
        fresh: dict[str, Call] = {}
        for call in calls:
            fp = fingerprint(call.source, call.endpoint, call.params)
            if fp not in self._done and fp not in fresh:
                fresh[fp] = call
        results = await asyncio.gather(*(self.collector.collect(c) for c in fresh.values()))
        self._done.update(zip(fresh, results, strict=True))
        failed = [p for p, pages in zip(fresh, results, strict=True) if pages is None]
        ids = await self.failure_ids(failed) if failed else {}
        out: list[list[RawResponse] | None] = []
        for call in calls:
            fp = fingerprint(call.source, call.endpoint, call.params)
            pages = self._done[fp]
            if fresh.pop(fp, None) is None:
                self.skip(call, SAME_CALL)
            elif pages is None:
                self.outcomes.append(_outcome(call, "failed", failure_id=ids.get(fp)))
            else:
                self.outcomes.append(
                    _outcome(call, "collected", pages=len(pages), items=sum(p.item_count for p in pages))
                )
            out.append(pages)
        return out

    def skip(self, call: Call, reason: str) -> None:
        self.outcomes.append(_outcome(call, "skipped", reason=reason))

    def data(self) -> CollectionData:
        collected = [o for o in self.outcomes if o.outcome == "collected"]
        return CollectionData(
            collected=len(collected),
            skipped=sum(1 for o in self.outcomes if o.outcome == "skipped"),
            errors=sum(1 for o in self.outcomes if o.outcome == "failed"),
            messages=sum(o.pages or 0 for o in collected),
            calls=self.outcomes,
        )


def _outcome(call: Call, outcome: str, **fields: object) -> CallOutcome:
    return CallOutcome.model_validate(
        {
            "source": call.source,
            "kind": call.kind,
            "endpoint": call.endpoint,
            "message_key": call.key,
            "params": call.params,
            "outcome": outcome,
            **fields,
        }
    )


async def collect_results(run: TriggerRun, races: Sequence[RaceRef], calendar: Calendar) -> None:
    """Result calls, then the detail calls of every race whose result is final (KSPO races whose round the calendar
    does not know have no call)."""
    planned = [(r, call) for r in races if (call := plans.result_call(r, calendar)) is not None]
    answers = await run.collect([call for _, call in planned])
    details: list[Call] = []
    for (race, _), pages in zip(planned, answers, strict=True):
        if pages is not None and plans.result_is_final(race, pages):
            details.extend(plans.result_detail_calls(race, calendar))
        else:
            for call in plans.result_detail_calls(race, calendar):
                run.skip(call, NOT_FINAL)
    if details:
        await run.collect(details)
