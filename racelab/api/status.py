"""``GET /api/ingestion/status``: how collection of one race day stands, and where each number comes from.

- per source and kind: ``collection_log`` (one row per upstream call the producers made: polls, backfill,
  triggers, retries), counted for the calls about the race day (the day in the message key); freshness is measured
  on the database clock, like the ``racelab_data_freshness_seconds`` gauge on the wall clock;
- per source and kind also: raw messages published but missing from ``raw_archive`` (by poll id), and collected
  but not stored (``landings`` against ``collection_log``, :mod:`sinks.landings`);
- open failures: unresolved ``ingestion_failures`` rows (any day);
- summary: rows stored for the day's races (``races``, ``entries``, ``odds_snapshots``, ``results``);
- dead letters: every record of the ``<prefix>.raw.<kind>.dlq`` topics, read from the broker (counted, not
  estimated from offsets), and those whose first failure was on the race day;
- consumer lag per stage and kind: end offsets minus the committed offsets of the processors' and the archiver's
  groups on the raw topics and of the sink's group on the normalized topics, measured now from outside the groups
  (:mod:`runtime.lag`; it also sees a worker that is not running: its group's lag grows). The local broker's end
  offsets have been seen off by one on a partition, so a lag of 1 there may be no lag.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable
from datetime import date
from typing import TypeVar

from aiokafka.errors import KafkaError

from processors.replay import Filters, read_dead_letters
from racelab.api.models import DlqStatus, LagStatus, LastCollection, SourceKindStatus, StatusData, StatusSummary
from racelab.api.store import ControlStore
from runtime.lag import lag_consumer, measure
from runtime.settings import Settings
from schemas.errors import PipelineError
from schemas.timezones import kst_date
from schemas.topics import KINDS, Kind, TopicCatalogue

log = logging.getLogger(__name__)
SOURCES = ("kra", "kspo")
DLQ_READ_TIMEOUT_S = 15.0
LAG_READ_TIMEOUT_S = 10.0
T = TypeVar("T")


async def dead_letter_counts(settings: Settings, day: date) -> list[DlqStatus]:
    """Records per DLQ topic, and those first failed on ``day`` (Asia/Seoul)."""
    topics = TopicCatalogue(settings.topics.prefix)
    letters = await read_dead_letters(settings.broker, topics, Filters())
    total: Counter[str] = Counter()
    on_day: Counter[str] = Counter()
    for letter in letters:
        total[letter.dlq_topic] += 1
        failed = letter.failed_at
        if failed is not None and kst_date(failed) == day:
            on_day[letter.dlq_topic] += 1
    return [
        DlqStatus(topic=topics.dlq(k), kind=k, total=total[topics.dlq(k)], on_date=on_day[topics.dlq(k)]) for k in KINDS
    ]


def stage_groups(settings: Settings) -> list[tuple[str, str, dict[Kind, str]]]:
    """(stage, consumer group, topic per kind) of every consuming stage, groups named as the workers name them."""
    topics, group = settings.topics.catalogue(), settings.topics.group
    raw = {k: topics.raw(k) for k in KINDS}
    return [
        ("processors", group("processors"), raw),
        ("sink", group(settings.sink.consumer_group), {k: topics.normalized(k) for k in KINDS}),
        ("archiver", group(settings.archiver.consumer_group), raw),
    ]


async def _group_lag(settings: Settings, stage: str, group: str, topics: dict[Kind, str]) -> list[LagStatus]:
    consumer = lag_consumer(settings.broker, group)
    try:
        await consumer.start()
        figures = {f.topic: f for f in await measure(consumer, topics.values())}
    finally:
        await consumer.stop()
    return [
        LagStatus.model_validate(
            {
                "stage": stage,
                "group": group,
                "kind": kind,
                "topic": topic,
                "end_offset": figures[topic].end,
                "committed_offset": figures[topic].committed,
                "lag": figures[topic].lag,
            }
        )
        for kind, topic in topics.items()
    ]


async def consumer_lag(settings: Settings) -> list[LagStatus]:
    """Lag of every stage's group on each kind's topic (groups measured concurrently)."""
    found = await asyncio.gather(*(_group_lag(settings, *stage) for stage in stage_groups(settings)))
    return [row for rows in found for row in rows]


async def _or_warning(what: str, read: Awaitable[T], timeout_s: float, warnings: list[str]) -> T | None:
    """``read`` within ``timeout_s``; None with a warning when the broker cannot be read."""
    try:
        return await asyncio.wait_for(read, timeout_s)
    except (PipelineError, KafkaError, OSError, TimeoutError) as exc:
        log.warning("status: %s not read: %s", what, exc.__class__.__name__)
        warnings.append(f"{what} could not be read from the broker ({exc.__class__.__name__})")
        return None


async def ingestion_status(settings: Settings, store: ControlStore, day: date) -> StatusData:
    """The status of ``day``; the dead-letter part is left out (with a warning) when the broker cannot be read."""
    counts = {(c.source, c.kind): c for c in await store.collection_counts(day)}
    open_failures = await store.open_failure_counts()
    rows = await store.day_rows(day)
    unstored = await store.unstored()
    sources: list[SourceKindStatus] = []
    for source in SOURCES:
        for kind in KINDS:
            c = counts.get((source, kind))
            calls = (c.collected + c.failed) if c else 0
            sources.append(
                SourceKindStatus(
                    source=source,
                    kind=kind,
                    collected=c.collected if c else 0,
                    failed=c.failed if c else 0,
                    success_rate=round(c.collected / calls, 4) if c and calls else None,
                    messages=c.messages if c else 0,
                    last_success_at=c.last_success_at if c else None,
                    freshness_seconds=round(c.freshness_s, 3) if c and c.freshness_s is not None else None,
                    open_failures=open_failures.get((source, kind), 0),
                    unarchived=c.unarchived if c else 0,
                    unstored_seconds=round(unstored[(source, kind)], 3) if (source, kind) in unstored else None,
                )
            )
    last = {
        k: max((s.last_success_at for s in sources if s.kind == k and s.last_success_at), default=None) for k in KINDS
    }
    warnings: list[str] = []
    dlq, lag = await asyncio.gather(
        _or_warning("dead-letter topics", dead_letter_counts(settings, day), DLQ_READ_TIMEOUT_S, warnings),
        _or_warning("consumer lag", consumer_lag(settings), LAG_READ_TIMEOUT_S, warnings),
    )
    return StatusData(
        date=day,
        summary=StatusSummary(
            total_races=rows["total_races"],
            schedules_collected=rows["scheduled"],
            entries_collected=rows["entries"],
            odds_snapshots=rows["odds"],
            results_collected=rows["results"],
            failure_count=sum(open_failures.values()),
        ),
        last_collection=LastCollection.model_validate(last),
        sources=sources,
        dlq=dlq,
        lag=lag,
        warnings=warnings,
    )
