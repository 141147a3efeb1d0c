"""The sink worker: one Faust agent over the normalized topics, writing batches to TimescaleDB.

Offsets move only after the batch committed in the database: ``take_events`` acks the batch when the loop body
returns, and the body returns only after :meth:`TimescaleWriter.write_until_done` (which waits out database outages
without dropping anything) and after the rejected rows reached the DLQ. Nothing escapes the body: an unexpected
error ends the process before the batch is acked (faust#606 and the take()-acks-on-exception pitfall).
``concurrency=1``. A batch is up to ``sink.batch_size`` messages (or what came within ``sink.batch_within_s``),
written in transactions of at most ``sink.transaction_rows`` rows (an odds board is one message of many rows). Records
that are not JSON, do not fit their model (:mod:`schemas.records`) or are rejected by the database go to
``racelab.raw.<kind>.dlq`` with ``dlq.stage=sink``, keeping their bytes and headers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, timedelta
from typing import Any

import asyncpg
import faust

from runtime.db import LazyPool, connect
from runtime.delivery import Outgoing, OutputProducer
from runtime.metrics import sink_metrics
from runtime.ops import Check
from runtime.pgerrors import DATABASE_ERRORS
from runtime.settings import Settings
from runtime.worker import attach_ops, each_batch, faust_app, header_list, run_faust_worker
from schemas.dlq import dlq_headers
from schemas.errors import DatabaseError, PipelineError
from schemas.race_ids import source_of_race
from schemas.timezones import kst_today
from schemas.topics import KINDS, NORMALIZED_NAME, Kind, TopicCatalogue
from sinks.audit import RULE_NAMES, audit, counts
from sinks.errors import RacerNotOnCard
from sinks.landings import Landings, Unstored
from sinks.lanes import Lane
from sinks.ranks import UnmatchedRank
from sinks.rows import row_count
from sinks.writer import Row, TimescaleWriter, rows_of_message

log = logging.getLogger(__name__)
AUDIT_ERRORS: tuple[type[Exception], ...] = (DatabaseError, *DATABASE_ERRORS)  # the audit waits for the next run
YIELD_EVERY_ROWS = 1000  # about a millisecond of reading: the database waits no longer for the next statement
KIND_OF_NORMALIZED: dict[str, Kind] = {name: kind for kind, name in NORMALIZED_NAME.items()}


def kind_of(topic: str) -> Kind:
    """The raw kind of a normalized topic (``racelab.races`` -> ``schedules``)."""
    return KIND_OF_NORMALIZED[topic.rsplit(".", 1)[1]]


class SinkApp:
    """Builds the sink's Faust app; owns the writer and the DLQ producer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = TopicCatalogue(settings.topics.prefix)
        self.metrics = sink_metrics()
        self.writer = TimescaleWriter(settings.database, self.metrics)
        self.output = OutputProducer(settings.broker)
        # Landings and the health measurement on a small pool of their own: a new writer connection prepares its
        # staging tables from the tables' definitions and so waits for any lock on them, and with every writer
        # connection busy or waiting, the measurement must still answer.
        measure = settings.database.model_copy(update={"pool_min_size": 1, "pool_max_size": 2})
        self.landings = Landings(LazyPool(measure), measure)
        self.unstored: list[Unstored] = []
        self.unstored_at = time.time()
        self._started = False
        self._stopping = False
        s = settings.sink
        self.app = faust_app(settings, s.consumer_group, buffer=2 * s.batch_size)
        self.app.on_before_shutdown.connect(self._close)
        names = [self.topics.normalized(k) for k in KINDS]
        topic = self.app.topic(
            *names, value_serializer="raw", key_serializer="raw", partitions=settings.topics.partitions
        )
        self.app.agent(topic, name="timescale-sink", concurrency=1)(self._agent)
        if s.audit_interval_s > 0:  # at start, then every interval
            self.app.task(self._first_audit)
            self.app.timer(s.audit_interval_s)(self.run_audit)
        self.app.timer(settings.ops.lag_interval_s)(self.measure_unstored)
        attach_ops(self.app, settings, "sink", names, database=True, extra_checks=[self.stored_check()])

    async def _close(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self._stopping = True  # the measuring timer runs until the end: it must not reach for a closing pool
        await self.writer.stop()
        await self.landings.close()
        if self._started:
            await self.output.stop()
            self._started = False

    def _dead_letter(self, event: Any, error: Exception) -> Outgoing:
        message = event.message
        kind = kind_of(message.topic)
        headers = dlq_headers(
            header_list(message.headers),
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error=error,
            stage="sink",
        )
        return self.topics.dlq(kind), message.key, message.value or b"", headers

    def rows_of(self, event: Any) -> list[Row]:
        """Table rows of one message; raises ``ValueError``/``KeyError`` for one that is not JSON or does not fit its
        model (pydantic's ``ValidationError`` is a ``ValueError``)."""
        message = event.message
        return rows_of_message(message.topic.rsplit(".", 1)[1], message.value or b"", event)

    async def write(self, chunk: list[Any]) -> None:
        """Write a batch in transactions of at most ``transaction_rows`` rows, then deliver its dead letters.

        The messages of a partition always go to the same of ``sink.lanes`` lanes (``partition % lanes``); the lanes
        run at the same time, each reading its messages and writing their rows in transactions that commit one after
        the other, in order, on a connection of its own (:meth:`_write_lane`). The batch counts as written when every
        lane's last transaction committed.
        """
        s = self.settings.sink
        dead: list[Outgoing] = []
        rejected: list[tuple[Row, Exception]] = []
        stored: set[tuple[str, str]] = set()
        by_lane: list[list[Any]] = [[] for _ in range(s.lanes)]
        for event in chunk:
            by_lane[event.message.partition % s.lanes].append(event)
        async with asyncio.TaskGroup() as lanes:  # a lane that fails stops the others (the batch comes again)
            for events in by_lane:
                if events:
                    lanes.create_task(self._write_lane(events, dead, rejected, stored))
        # One dead letter per message, however many of its rows (an odds board's prices) were rejected.
        first_error = {id(row.source): (row.source, exc) for row, exc in reversed(rejected)}
        dead += [self._dead_letter(event, exc) for event, exc in first_error.values()]
        unmatched = self.writer.take_unmatched()
        dead += [self._unmatched_letter(rank) for rank in unmatched]

        if dead:
            await self.output.deliver(dead)
            for topic, *_ in dead:
                self.metrics.dead_letters.labels(topic.rsplit(".", 2)[1], "sink").inc()
            log.warning("sink: %d record(s) rejected, sent to the DLQ", len(dead))
        # Marked once delivered: a crash before this leaves the batch unacknowledged, and its redelivery reports the
        # same ranks again (at least once, never lost).
        await self.writer.mark_reported(unmatched)
        await self._landed(stored)

    async def _write_lane(
        self, events: list[Any], dead: list[Outgoing], rejected: list[tuple[Row, Exception]], stored: set[Any]
    ) -> None:
        """Write the messages of one lane in transactions of at most ``transaction_rows`` rows
        (:class:`sinks.lanes.Lane`).

        Messages are turned into rows as the transactions fill, so a large batch (a backlog of big odds boards)
        never holds more than two transactions' rows per lane; a message's rows are not split (a transaction holds
        more than ``transaction_rows`` rows only when one message alone has more). The next transaction's messages
        are read while the database works on the previous one.
        """
        s = self.settings.sink
        lane = Lane(self.writer, s.retry_max_delay_s)
        read = 0  # rows read since the other lanes and the transaction in flight last had a turn
        try:
            for event in events:
                if read >= YIELD_EVERY_ROWS:
                    await asyncio.sleep(0)
                    read = 0
                try:
                    more = self.rows_of(event)
                except (ValueError, KeyError) as exc:
                    dead.append(self._dead_letter(event, exc))
                    continue
                pair = self._source_kind(event, more) if more else None
                if pair is not None:
                    stored.add(pair)
                size = row_count(more)
                if lane.rows and lane.size + size > s.transaction_rows:
                    rejected += await lane.flush()
                lane.add(more, size)
                read += size
            rejected += await lane.flush()
            rejected += await lane.drain()
        except BaseException:
            lane.cancel()  # not left running on its own: the batch is redelivered, the writes repeat
            raise

    @staticmethod
    def _source_kind(event: Any, rows: list[Row]) -> tuple[str, str] | None:
        """The source (from the race id key) and raw kind of a stored message; None for a key that is no race id.

        KSPO cycle payoffs ride on the races topic, keyed by day (they name no track), and were collected as odds.
        """
        if rows[0].table == "kspo_payoffs":
            return "kspo", "odds"
        message = event.message
        try:
            source = source_of_race((message.key or b"").decode(errors="replace"))
        except KeyError:
            return None
        return source, kind_of(message.topic)

    async def _landed(self, pairs: set[tuple[str, str]]) -> None:
        """Note when rows of each source and kind landed (best effort: the next batch notes it again)."""
        try:
            await self.landings.landed(pairs)
        except PipelineError as exc:
            log.warning("sink: landing times not recorded: %s", exc)

    async def measure_unstored(self) -> None:
        """How long collected data of each source and kind has waited for the tables (``racelab_unstored_seconds``)."""
        if self._stopping:
            return
        try:
            self.unstored = await self.landings.unstored()
        except PipelineError as exc:
            log.warning("sink: unstored data not measured: %s", exc)
            return
        except asyncpg.InterfaceError:
            if self._stopping:  # the pool closed while this measurement waited for a connection
                return
            raise
        self.unstored_at = time.time()
        for u in self.unstored:
            self.metrics.unstored.labels(u.source, u.kind).set(u.seconds)

    def stored_check(self) -> Check:
        """Ready while nothing the producers collected has waited longer than ``ops.unstored_after_s`` to land."""
        ops = self.settings.ops

        async def check() -> tuple[str, bool, str]:
            age = time.time() - self.unstored_at
            if age > ops.stuck_after_s:
                return "stored", False, f"collected data not measured against the tables for {age:.0f}s"
            late = [u for u in self.unstored if u.seconds > ops.unstored_after_s]
            if late:
                listed = ", ".join(f"{u.source} {u.kind} for {u.seconds:.0f}s" for u in late)
                return "stored", False, f"collected but not stored: {listed}"
            waiting = max((u.seconds for u in self.unstored), default=0.0)
            return "stored", True, f"everything collected has landed (oldest waiting {waiting:.0f}s)"

        return check

    def _unmatched_letter(self, rank: UnmatchedRank) -> Outgoing:
        """The dead letter of a rank whose racer is not on its race's card (found by the join, not a message)."""
        topic = self.topics.normalized("results")
        headers = dlq_headers([], topic=topic, partition=-1, offset=-1, error=RacerNotOnCard(rank.reason), stage="sink")
        return self.topics.dlq("results"), rank.race_id.encode(), rank.message(), headers

    async def _first_audit(self) -> None:
        await self.run_audit()

    async def run_audit(self, today: date | None = None) -> None:
        """The data-quality rules over the last ``sink.audit_days`` days, into ``racelab_audit_violations``."""
        end = today or kst_today()
        start = end - timedelta(days=self.settings.sink.audit_days - 1)
        try:
            conn = await connect(self.settings.database)
            try:
                found = counts(await audit(conn, start, end))
            finally:
                await conn.close()
        except AUDIT_ERRORS as exc:  # /readyz reports the database; retry later
            log.warning("sink: audit skipped: %s", exc)
            return
        for rule in RULE_NAMES:
            self.metrics.audit_violations.labels(rule).set(found[rule])
        self.metrics.audit_last_run.set(time.time())
        if any(found.values()):
            log.warning("sink: audit of %s..%s: %s", start, end, {k: v for k, v in found.items() if v})

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        if not self._started:
            await self.output.start()
            self._started = True  # the writer connects on its first write, waiting for the database if need be
        s = self.settings.sink
        await each_batch(stream, s.batch_size, s.batch_within_s, self.write, "sink")


def run_sink(settings: Settings) -> None:
    """Run one sink worker until SIGINT/SIGTERM (exits the process)."""
    run_faust_worker(settings, lambda s: SinkApp(s).app)
