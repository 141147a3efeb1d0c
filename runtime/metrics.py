"""Every Prometheus metric of the pipeline, in one place (bounded labels: sources, kinds, tables, stages, outcomes).

Each long-running process exposes the process-wide registry on ``/metrics`` (see :mod:`runtime.ops`). Tests build
the groups on a registry of their own. Names are a contract with ``deploy/prometheus/rules.yml`` and the Grafana
dashboards in ``deploy/grafana/``.

Every labelled counter starts with all its series at 0 (every source, kind, stage, table): ``increase()`` and the
alerts built on it see the first failure after a start, which a series born at 1 would hide.
"""

from __future__ import annotations

import functools
import itertools
import time
import weakref
from collections.abc import Iterator
from typing import get_args

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.records import Source
from schemas.topics import KINDS, NORMALIZED_NAME

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SOURCES: tuple[str, ...] = get_args(Source)
NORMALIZED = tuple(NORMALIZED_NAME.values())
TABLES = ("races", "entries", "results", "odds_snapshots", "race_ranks", "kspo_payoffs", "horses", "jockeys")
PROCESSOR_STAGES = ("decode", "validate", "normalize")


def _zero(counter: Counter, *label_sets: tuple[str, ...]) -> Counter:
    """Create every series of a labelled counter at 0 (the cartesian product of the label value sets)."""
    for values in itertools.product(*label_sets):
        counter.labels(*values)
    return counter


class _Freshness(Collector):
    """``racelab_data_freshness_seconds``: seconds since the last successful collection, per source and kind."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], float] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "racelab_data_freshness_seconds",
            "Seconds since the last successful collection per source and kind",
            labels=["source", "kind"],
        )
        now = time.time()
        for (source, kind), at in sorted(self.last.items()):
            family.add_metric([source, kind], max(0.0, now - at))
        yield family


class ProducerMetrics:
    """Polls, upstream API calls, failures and raw messages of the producers."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.polls = Counter(
            "racelab_polls",
            "Collections (all pages of one call) by outcome",
            ["source", "kind", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "racelab_upstream_request_seconds",
            "Latency of one upstream HTTP request",
            ["source", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "racelab_upstream_retries", "Upstream requests retried", ["source", "kind"], registry=registry
        )
        self.failures = Counter(
            "racelab_collection_failures",
            "Calls that still failed after all tries (recorded in ingestion_failures)",
            ["source", "kind"],
            registry=registry,
        )
        self.raw_messages = Counter(
            "racelab_raw_messages_produced", "Raw messages acknowledged by the broker", ["kind"], registry=registry
        )
        self.last_success = Gauge(
            "racelab_last_success_timestamp_seconds",
            "Unix time of the last successful collection per source and kind",
            ["source", "kind"],
            registry=registry,
        )
        self._freshness = _Freshness()
        registry.register(self._freshness)
        _zero(self.polls, SOURCES, KINDS, ("ok", "failed"))
        _zero(self.retries, SOURCES, KINDS)
        _zero(self.failures, SOURCES, KINDS)
        _zero(self.raw_messages, KINDS)

    def seed(self, last_success: dict[tuple[str, str], float]) -> None:
        """Freshness and last success from before this process started (Unix times per source and kind), so that a
        restart during an outage does not hide how stale the data is."""
        for (source, kind), at in last_success.items():
            self.last_success.labels(source, kind).set(at)
            self._freshness.last.setdefault((source, kind), at)

    def succeeded(self, source: str, kind: str, pages: int) -> None:
        now = time.time()
        self.polls.labels(source, kind, "ok").inc()
        self.raw_messages.labels(kind).inc(pages)
        self.last_success.labels(source, kind).set(now)
        self._freshness.last[(source, kind)] = now

    def failed(self, source: str, kind: str) -> None:
        self.polls.labels(source, kind, "failed").inc()
        self.failures.labels(source, kind).inc()


class ProcessorMetrics:
    """Raw messages consumed, records normalized and dead letters of the processors."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.consumed = Counter(
            "racelab_raw_messages_consumed", "Raw messages handled by the processors", ["kind"], registry=registry
        )
        self.normalized = Counter(
            "racelab_records_normalized", "Normalized records delivered", ["kind"], registry=registry
        )
        self.batch_seconds = Histogram(
            "racelab_processor_batch_seconds",
            "Time to normalize and deliver one batch of raw messages",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.dead_letters = dead_letter_counter(registry)
        _zero(self.consumed, KINDS)
        _zero(self.normalized, NORMALIZED)
        _zero(self.dead_letters, KINDS, PROCESSOR_STAGES)


_DLQ: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def dead_letter_counter(registry: CollectorRegistry = REGISTRY) -> Counter:
    """``racelab_dlq_records_total`` by kind and stage: one family per registry, shared by processors and sink."""
    counter = _DLQ.get(registry)
    if counter is None:
        counter = Counter(
            "racelab_dlq_records",
            "Records sent to a dead-letter topic by kind and stage",
            ["kind", "stage"],
            registry=registry,
        )
        _DLQ[registry] = counter
    return counter


class SinkMetrics:
    """Rows, batches, retries and database errors of the sink."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.rows_written = Counter(
            "racelab_sink_rows_written", "Rows written (inserted or updated) per table", ["table"], registry=registry
        )
        self.rows_rejected = Counter(
            "racelab_sink_rows_rejected", "Records sent to the DLQ by the sink per table", ["table"], registry=registry
        )
        self.batch_size = Histogram(
            "racelab_sink_batch_records",
            "Records per written batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "racelab_sink_batch_seconds",
            "Time to write a batch, retries included",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.retries = Counter(
            "racelab_sink_retries",
            "Batch write attempts retried because the database was unavailable",
            registry=registry,
        )
        self.db_errors = Counter("racelab_sink_db_errors", "Database errors by kind", ["kind"], registry=registry)
        self.last_commit = Gauge(
            "racelab_sink_last_commit_timestamp_seconds", "Unix time of the last committed batch", registry=registry
        )
        self.dead_letters = dead_letter_counter(registry)
        self.audit_violations = Gauge(
            "racelab_audit_violations",
            "Stored races breaking a data-quality rule (racelab audit) in the audited days, per rule",
            ["rule"],
            registry=registry,
        )
        self.audit_last_run = Gauge(
            "racelab_audit_last_run_timestamp_seconds", "Unix time of the last completed audit", registry=registry
        )
        self.unstored = Gauge(
            "racelab_unstored_seconds",
            "Collected but not stored: age of the oldest collection with items since rows of its source and kind "
            "last landed in the tables (0 when everything collected has landed)",
            ["source", "kind"],
            registry=registry,
        )
        _zero(self.rows_written, TABLES)
        _zero(self.rows_rejected, TABLES)
        _zero(self.db_errors, ("bad_data", "unavailable"))
        _zero(self.dead_letters, KINDS, ("sink",))


class ArchiveMetrics:
    """Raw messages archived (stored for the first time) and the archiver's last commit."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.archived = Counter(
            "racelab_archive_messages",
            "Raw messages stored in the archive for the first time, per kind (redeliveries not counted)",
            ["kind"],
            registry=registry,
        )
        self.seen = Counter(
            "racelab_archive_messages_read", "Raw messages the archiver read, per kind", ["kind"], registry=registry
        )
        self.last_commit = Gauge(
            "racelab_archive_last_commit_timestamp_seconds",
            "Unix time of the archiver's last committed batch",
            registry=registry,
        )
        _zero(self.archived, KINDS)
        _zero(self.seen, KINDS)


class ConsumerMetrics:
    """Lag and progress of a consumer group (processors and sink), per topic (summed over its partitions)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.lag = Gauge(
            "racelab_consumer_lag",
            "Messages not yet committed (end offset - committed offset) per group and topic",
            ["group", "topic"],
            registry=registry,
        )
        self.committed = Gauge(
            "racelab_consumer_committed_offset",
            "Sum of committed offsets per group and topic",
            ["group", "topic"],
            registry=registry,
        )
        self.last_progress = Gauge(
            "racelab_consumer_last_progress_timestamp_seconds",
            "Unix time a committed offset last moved (or lag was last zero) per group",
            ["group"],
            registry=registry,
        )


class ControlApiMetrics:
    """Requests to the control API by route template and status code."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "racelab_control_requests", "Control API requests", ["route", "status"], registry=registry
        )


@functools.cache
def producer_metrics() -> ProducerMetrics:
    """The process's producer metrics on the default registry (created once)."""
    return ProducerMetrics()


@functools.cache
def processor_metrics() -> ProcessorMetrics:
    """The process's processor metrics on the default registry (created once)."""
    return ProcessorMetrics()


@functools.cache
def sink_metrics() -> SinkMetrics:
    """The process's sink metrics on the default registry (created once)."""
    return SinkMetrics()


@functools.cache
def archive_metrics() -> ArchiveMetrics:
    """The process's archive metrics on the default registry (created once)."""
    return ArchiveMetrics()


@functools.cache
def consumer_metrics() -> ConsumerMetrics:
    """The process's consumer-group metrics on the default registry (created once)."""
    return ConsumerMetrics()


@functools.cache
def control_api_metrics() -> ControlApiMetrics:
    """The control API's metrics on the default registry (created once)."""
    return ControlApiMetrics()
