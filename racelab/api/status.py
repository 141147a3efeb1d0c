"""``GET /api/ingestion/status``: how collection of one race day stands, and where each number comes from.

- per source and kind: ``collection_log`` (one row per upstream call the producers made: polls, backfill,
  triggers, retries), counted for the calls about the race day (the day in the message key); freshness is measured
  on the database clock, like the ``racelab_data_freshness_seconds`` gauge on the wall clock;
- per source and kind also: raw messages published but missing from ``raw_archive`` (by poll id), and collected
  but not stored (``landings`` against ``collection_log``, :mod:`sinks.landings`);
- open failures: unresolved ``ingestion_failures`` rows (any day);
- summary: rows stored for the day's races (``races``, ``entries``, ``odds_snapshots``, ``results``);
- dead letters: every record of the ``<prefix>.raw.<kind>.dlq`` topics, read from the broker (counted, not
  estimated from offsets), and those whose first failure was on the race day.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import date

from aiokafka.errors import KafkaError

from processors.replay import Filters, read_dead_letters
from racelab.api.models import DlqStatus, LastCollection, SourceKindStatus, StatusData, StatusSummary
from racelab.api.store import ControlStore
from runtime.settings import Settings
from schemas.errors import PipelineError
from schemas.timezones import kst_date
from schemas.topics import KINDS, TopicCatalogue

log = logging.getLogger(__name__)
SOURCES = ("kra", "kspo")
DLQ_READ_TIMEOUT_S = 15.0


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
    dlq: list[DlqStatus] | None
    try:
        dlq = await asyncio.wait_for(dead_letter_counts(settings, day), DLQ_READ_TIMEOUT_S)
    except (PipelineError, KafkaError, OSError, TimeoutError) as exc:
        log.warning("status: dead-letter topics not read: %s", exc.__class__.__name__)
        warnings.append(f"dead-letter topics could not be read from the broker ({exc.__class__.__name__})")
        dlq = None
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
        warnings=warnings,
    )
