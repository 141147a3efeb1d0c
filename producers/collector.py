"""Run a call, publish every page, and turn a call that still fails after its tries into a failure row + alert.

Publishing waits out a broker outage (backoff, no drop): the pages are in hand and are sent when the broker is
back. A failure is recorded once per distinct call (same source, endpoint, parameters); an alert goes out only
when a failure row is newly opened, and the notifier rate-limits what remains. Every call's outcome is also
recorded in ``collection_log``, which the control API's status reads. Neither waits for the database: while it is
unreachable, failures and collections are kept in order and written by :meth:`Collector.flush_log` once it is
back (the poller calls it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from producers import calendar
from producers.alerts import AlertNotifier
from producers.calls import Call
from producers.client import DataGoKrClient, RawResponse
from producers.errors import UpstreamError
from producers.publisher import RawPublisher
from producers.state import FailureRow, ProducerStore
from runtime.metrics import ProducerMetrics
from schemas.endpoints import LIVE_ODDS_PATH
from schemas.errors import DatabaseUnavailable, PipelineError

log = logging.getLogger(__name__)
MAX_WAIT_S = 30.0
FLUSH_EVERY_S = 10.0  # how often a successful collection tries to write what the database missed


class Collector:
    """Shared by every poller, backfill and the recovery job of a process."""

    def __init__(
        self,
        clients: Mapping[str, DataGoKrClient],
        publisher: RawPublisher,
        store: ProducerStore,
        notifier: AlertNotifier,
        live_odds: DataGoKrClient | None = None,
        metrics: ProducerMetrics | None = None,
    ) -> None:
        self.clients = clients
        self.publisher = publisher
        self.store = store
        self.notifier = notifier
        self.live_odds = live_odds
        self.metrics = metrics
        self.published = 0
        self.failed = 0
        self.unlogged: list[dict[str, Any]] = []  # collection_log rows kept while the database is away
        self.unrecorded: list[tuple[Call, UpstreamError]] = []  # failed calls kept while the database is away
        self._flushed_at = time.monotonic()

    def client_for(self, call: Call) -> DataGoKrClient:
        if call.endpoint == LIVE_ODDS_PATH:
            if self.live_odds is None:
                raise LookupError("no live-odds feed is configured (settings: odds_feed.base_url)")
            return self.live_odds
        return self.clients[call.source]

    async def collect(self, call: Call) -> list[RawResponse] | None:
        """Fetch all pages and publish them; None when the call failed (recorded and alerted)."""
        try:
            pages = await self.client_for(call).run(call)
        except UpstreamError as exc:
            self.failed += 1
            if self.metrics is not None:
                self.metrics.failed(call.source, call.kind)
            await self._record_failure(call, exc)
            await self._log_collection(call, None)
            return None
        pages = [dataclasses.replace(p, source=call.source) for p in pages]
        await self.publish(call, pages)
        if call.endpoint in calendar.TEACHING_ENDPOINTS:
            await self.learn_calendar(call, pages)
        if (self.unlogged or self.unrecorded) and time.monotonic() - self._flushed_at > FLUSH_EVERY_S:
            self._flushed_at = time.monotonic()  # a process without a poller (the control API) flushes here
            await self.flush_log()
        return pages

    async def learn_calendar(self, call: Call, pages: list[RawResponse]) -> None:
        """Keep the KSPO race days a response publishes (best effort: a later response teaches them again)."""
        try:
            await self.store.learn(calendar.learned(call.endpoint, pages), call.endpoint)
        except PipelineError as exc:
            log.warning("race days of %s %s not kept: %s", call.source, call.endpoint, exc)

    async def publish(self, call: Call, pages: list[RawResponse]) -> None:
        """Publish, waiting and retrying through a broker outage; returns once the broker acknowledged.

        Every try sends the pages with the same poll id: a page sent twice (the broker stored it, the answer was
        lost) is one message in the raw archive."""
        delay = 1.0
        poll_id = uuid.uuid4().hex
        started = time.monotonic()
        while True:
            try:
                await self.publisher.publish(call.kind, call.key, pages, poll_id)
            except PipelineError as exc:
                log.warning("%s; retrying in %.0fs (pages kept)", exc, delay)
                await asyncio.sleep(delay)
                delay = min(MAX_WAIT_S, delay * 2)
                continue
            self.published += len(pages)
            if self.metrics is not None:
                self.metrics.succeeded(call.source, call.kind, len(pages))
            await self._log_collection(call, pages, poll_id, time.monotonic() - started)
            return

    async def _log_collection(
        self,
        call: Call,
        pages: list[RawResponse] | None,
        poll_id: str | None = None,
        publish_s: float | None = None,
    ) -> None:
        """Record the call's outcome in ``collection_log``; kept in order and written by :meth:`flush_log` while the
        database is unreachable (the pages are on their topic already: publishing never waits for the log)."""
        row: dict[str, Any] = {
            "source": call.source,
            "kind": call.kind,
            "endpoint": call.endpoint,
            "message_key": call.key,
            "pages": len(pages or ()),
            "items": sum(p.item_count for p in pages or ()),
            "ok": pages is not None,
            "poll_id": poll_id,
            "publish_s": publish_s,
        }
        if self.unlogged:  # the database was away: in order, after the ones before
            self.unlogged.append(row)
            return
        try:
            await self.store.log_collection(**row)
        except DatabaseUnavailable as exc:
            log.warning("%s; collections are logged once it is back", exc)
            self.unlogged.append(row)
        except PipelineError as exc:
            log.warning("collection of %s %s not logged: %s", call.source, call.endpoint, exc)

    async def flush_log(self) -> int:
        """Write the failures and collections kept while the database was away; returns how many (0 while it still
        is away)."""
        failures, self.unrecorded = self.unrecorded, []
        for n, (call, exc) in enumerate(failures):
            try:
                await self._write_failure(call, exc)
            except DatabaseUnavailable:
                self.unrecorded = failures[n:] + self.unrecorded
                return n
        rows, self.unlogged = self.unlogged, []
        if not rows:
            return len(failures)
        try:
            await self.store.log_collections(rows)
        except DatabaseUnavailable:
            self.unlogged = rows + self.unlogged
            return len(failures)
        log.info(
            "%d collections and %d failures of the time the database was away are recorded", len(rows), len(failures)
        )
        return len(rows) + len(failures)

    async def _record_failure(self, call: Call, exc: UpstreamError) -> None:
        """Record a call that failed for good; kept in order and recorded by :meth:`flush_log` while the database is
        unreachable (a poll never waits for the database: the next odds slot is due in 30 s)."""
        if self.unrecorded:
            self.unrecorded.append((call, exc))
            return
        try:
            await self._write_failure(call, exc)
        except PipelineError as db_exc:
            if not db_exc.retriable:
                raise
            log.warning("a failed call is recorded once the database is back (%s): %s", db_exc, exc)
            self.unrecorded.append((call, exc))

    async def _write_failure(self, call: Call, exc: UpstreamError) -> None:
        failure_id, opened = await self.store.record_failure(
            source=call.source,
            kind=call.kind,
            endpoint=call.endpoint,
            params=call.params,
            message_key=call.key,
            error_class=type(exc).__name__,
            error_code=exc.code,
            message=str(exc),
            http_status=exc.http_status,
            attempts=exc.attempts,
        )
        log.error("call failed for good (failure #%d): %s", failure_id, exc)
        if opened:
            await self.notifier.alert(
                call.source, type(exc).__name__, f"{exc} — recorded as ingestion failure #{failure_id}"
            )

    async def retry_failure(self, row: FailureRow) -> bool:
        """Re-issue a recorded failed call; marks it resolved when it succeeds now."""
        call = Call(
            row.source,
            row.kind,
            row.endpoint,
            row.params,
            row.message_key or f"{row.source}:retry:{row.id}",
        )
        try:
            pages = await self.client_for(call).run(call)
        except UpstreamError as exc:
            log.info("failure #%d still failing: %s", row.id, exc)
            await self.store.retried(row.id, resolved=False)
            await self._log_collection(call, None)
            return False
        await self.publish(call, [dataclasses.replace(p, source=call.source) for p in pages])
        await self.store.retried(row.id, resolved=True)
        log.info("failure #%d resolved by a retry", row.id)
        return True

    async def recover(self, limit: int = 100, max_retries: int = 50) -> tuple[int, int]:
        """One pass of the recovery job: (resolved, still failing)."""
        resolved = failing = 0
        for row in await self.store.open_failures(limit, max_retries):
            if await self.retry_failure(row):
                resolved += 1
            else:
                failing += 1
        return resolved, failing
