"""``racelab reprocess``: the archived raw responses re-normalized with today's normalizers, straight into the tables.

Straight to the tables, not through the raw topics: the archive, not the broker, holds the history (raw topics keep
14 days, and the local broker keeps nothing across a restart); a year goes through at the database's pace with no
broker, no worker and no consumer group involved; and what changed is known and reported exactly, row by row,
which a trip through the topics could not say. Downstream consumers of the normalized topics do not see the
corrections; they read the tables (or ``racelab query``) for history.

Responses are read in fetch order, a page at a time (:mod:`sinks.reprocess`); each one is normalized as the
processors would (its archived headers give the context), its records kept when they are of the selected tracks,
and the page's rows written by the sink's rules in one transaction with the run's checkpoint. A response that the
current normalizers reject is counted and shown (its poll id, for ``racelab raw show``), and nothing of it is
written; the processors sent it to the DLQ when it came in.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import BaseModel

from processors.errors import ProcessingError
from processors.handler import RawMessage, context_of
from processors.normalize import normalize
from runtime.progress import Progress
from runtime.settings import Settings
from schemas import race_ids
from schemas.tracks import BY_CODE
from sinks.reprocess import ArchivedResponse, Report, ReprocessStore, Run, Selection
from sinks.rows import Row, rows_of_record

log = logging.getLogger(__name__)
PAGE_RESPONSES = 100


def track_of(record: BaseModel) -> str | None:
    """The track a record belongs to: its own ``track_code``, else its race id's; None when it names neither."""
    code = getattr(record, "track_code", None)
    if code:
        return str(code)
    race_id = getattr(record, "race_id", None)
    return race_ids.parse(race_id).track if race_id else None


def kept(record: BaseModel, tracks: Sequence[str]) -> bool:
    """Whether a record is of the selected tracks (all, when none is selected). A record that names no track (a
    cycle payoff, some profiles) is kept when it is of the race type of a selected track."""
    if not tracks:
        return True
    track = track_of(record)
    if track is not None:
        return track in tracks
    race_type = getattr(record, "race_type", None)
    return race_type is not None and any(BY_CODE[t].race_type == race_type for t in tracks)


def records_of(response: ArchivedResponse) -> list[BaseModel]:
    """The records of an archived response, normalized as the processors do; :class:`ProcessingError` when the
    current normalizers reject it."""
    message = RawMessage(
        response.topic,
        response.partition,
        response.offset,
        response.key.encode() if response.key is not None else None,
        response.body,
        response.headers,
    )
    normalized = normalize(response.body, context_of(message))
    return [record for records in normalized.by_topic().values() for record in records]


def rows_of_page(page: Sequence[ArchivedResponse], tracks: Sequence[str]) -> tuple[list[Row], Report]:
    """The table rows of a page's responses, and what normalizing them found (records, failures)."""
    rows: list[Row] = []
    report = Report()
    for response in page:
        try:
            records = [record for record in records_of(response) if kept(record, tracks)]
        except ProcessingError as exc:
            report.fail(response, exc)
            continue
        except Exception as exc:  # a normalizer bug: counted and shown with the response, as the processors do
            log.exception("normalizer bug on archived poll %s", response.poll_id)
            report.fail(response, exc)
            continue
        for record in records:
            rows += rows_of_record(record)
        report.records += len(records)
    return rows, report


async def reprocess(
    settings: Settings,
    selection: Selection,
    *,
    dry_run: bool = False,
    restart: bool = False,
    page_responses: int = PAGE_RESPONSES,
    out: TextIO = sys.stderr,
) -> Run:
    """Re-normalize the selection's archived responses into the tables, resuming an unfinished run of the same
    selection unless ``restart``; the run with its report. Cancelling it (Ctrl+C) rolls back the page in flight."""
    store = ReprocessStore(settings.database, dry_run=dry_run)
    try:
        run = await store.open_run(selection, restart=restart)
        if run.resumed:
            out.write(
                f"resuming run {run.run_id} (started {run.started_at:%Y-%m-%d %H:%M %Z}): "
                f"{run.done:,} of {run.total:,} responses done\n"
            )
        progress = Progress(run.total, "responses", out, initial=run.done)
        loop = asyncio.get_running_loop()
        page = await store.page(selection, run.after, page_responses)
        normalized = rows_of_page(page, selection.tracks)
        while page:
            # The next page is read and normalized (in a thread) while the database writes this one: two pages
            # at most in memory, the two cores busy.
            following = await store.page(selection, page[-1].position, page_responses)
            ahead = loop.run_in_executor(None, rows_of_page, following, selection.tracks) if following else None
            rows, found = normalized
            await store.write_page(rows, page, found)
            r = run.report
            progress.advance(len(page), records=r.records, inserted=sum(r.inserted.values()), changed=r.changed_rows)
            page = following
            normalized = await ahead if ahead is not None else ([], Report())
        if progress.done < progress.total:  # the archive had fewer responses than counted (a retention drop)
            progress.advance(0, final=True, records=run.report.records)
        await store.finish()
        return run
    finally:
        await store.stop()


def describe(run: Run, dry_run: bool) -> list[str]:
    """The report of a run as lines: per table, rows inserted and per column rows changed, with examples."""
    r = run.report
    would = "would be " if dry_run else ""
    lines = [
        f"{r.responses:,} archived responses re-normalized into {r.records:,} records"
        + (" (dry run: nothing written)" if dry_run else "")
    ]
    if r.is_empty():
        lines.append("no row " + ("would change" if dry_run else "changed"))
    tables = sorted({*r.inserted, *(name.split(".")[0] for name in r.changed), *r.linked})
    for table in tables:
        columns = sorted(((n, c) for c, n in r.changed.items() if c.startswith(f"{table}.")), reverse=True)
        parts = [f"{r.inserted.get(table, 0):,} rows {would}inserted"]
        if r.linked.get(table):
            parts.append(f"{r.linked[table]:,} rows {would}changed by the rank/payoff links")
        lines.append(f"{table}: " + ", ".join(parts))
        for n, column in columns:
            lines.append(f"  {column.split('.', 1)[1]}: {n:,} rows {would}changed")
            for key, stored, new in r.examples.get(column, []):
                lines.append(f"      {_key(key)}: {_short(stored)} -> {_short(new)}")
    if r.failed:
        total = sum(r.failed.values())
        kinds = ", ".join(f"{name} {n:,}" for name, n in r.failed.most_common())
        lines.append(f"{total:,} responses the current normalizers reject ({kinds}), nothing of them written:")
        lines += [f"  poll {poll} fetched {at}: {error}" for poll, at, error in r.failed_examples]
        lines.append("  (racelab raw show --poll-id ID shows one)")
    if r.rejected:
        lines.append(f"{r.rejected:,} rows the database rejected (bad data), the others written")
    if r.unmatched_ranks:
        lines.append(f"{r.unmatched_ranks:,} KSPO ranks whose racer is not on the card, left unmatched")
    return lines


def _key(key: Any) -> str:
    return " ".join(str(part) for part in key) if isinstance(key, list) else str(key)


def _short(value: Any, limit: int = 80) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
