"""Prometheus metrics of the sink (one module, bounded labels: table names and outcomes only)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class SinkMetrics:
    """The sink's metrics on a registry (the process-wide one by default; tests pass their own)."""

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
