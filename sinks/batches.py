"""Writing a batch of rows through any transaction function: bad rows bisected out, outages waited out.

:class:`BatchWriter` knows nothing of the database: it calls ``apply(rows)`` (one transaction that returns the rows
written per table) and reads what an error means from :func:`runtime.pgerrors.classify`:

- bad data (a check, a foreign key, a value its column cannot hold): the batch is bisected, each half in its own
  transaction, until the rejected rows are alone (an odds board alone is bisected by its prices); they are handed
  back (for the DLQ) while the rest lands;
- an outage: :meth:`BatchWriter.write` raises :class:`~schemas.errors.DatabaseUnavailable`;
  :meth:`BatchWriter.write_until_done` waits with backoff and tries the whole batch again until the database is
  back, never dropping it;
- anything else is raised as :class:`~schemas.errors.DatabaseError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from runtime.db import FIRST_RETRY_DELAY_S
from runtime.metrics import SinkMetrics
from runtime.pgerrors import DATABASE_ERRORS, classify
from schemas.errors import DatabaseError, DatabaseUnavailable
from sinks.errors import RowEncodingError
from sinks.rows import Row, price_rows, row_count

log = logging.getLogger(__name__)
Apply = Callable[[Sequence[Row]], Awaitable[dict[str, int]]]
# What a transaction may raise that :func:`runtime.pgerrors.classify` judges; anything else is a bug and propagates.
DRIVER_ERRORS: tuple[type[Exception], ...] = (*DATABASE_ERRORS, RowEncodingError)


@dataclass
class WriteResult:
    """What a write did."""

    rows: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[Row, Exception]] = field(default_factory=list)
    transactions: int = 0
    retries: int = 0


def is_bad_data(exc: BaseException) -> bool:
    """Whether the rows caused the error (retrying the same rows cannot help)."""
    return isinstance(exc, RowEncodingError) or classify(exc) == "bad_data"


class BatchWriter:
    """Writes batches through ``apply`` (one transaction each), bisecting bad rows out and waiting out outages."""

    def __init__(
        self, apply: Apply, metrics: SinkMetrics | None = None, first_delay_s: float = FIRST_RETRY_DELAY_S
    ) -> None:
        self.apply = apply
        self.metrics = metrics
        self.first_delay_s = first_delay_s

    async def write(self, rows: Sequence[Row]) -> WriteResult:
        """Write rows in one transaction; bad rows are bisected out; raises DatabaseUnavailable on an outage."""
        result = WriteResult()
        await self._write(list(rows), result)
        return result

    async def _write(self, rows: list[Row], result: WriteResult) -> None:
        if not rows:
            return
        try:
            result.transactions += 1
            written = await self.apply(rows)
        except DatabaseUnavailable:
            self._count_error("unavailable")
            raise
        except DRIVER_ERRORS as exc:
            if is_bad_data(exc):
                self._count_error("bad_data")
                await self._bisect(rows, exc, result)
                return
            if classify(exc) == "unavailable":
                self._count_error("unavailable")
                raise DatabaseUnavailable(f"database unavailable during a write ({exc.__class__.__name__})") from exc
            raise DatabaseError(f"write failed: {exc.__class__.__name__}: {exc}") from exc
        for table, n in written.items():
            result.rows[table] = result.rows.get(table, 0) + n

    async def _bisect(self, rows: list[Row], exc: Exception, result: WriteResult) -> None:
        if len(rows) == 1:
            prices = price_rows(rows[0])
            if len(prices) == 1:
                result.rejected.append((rows[0], exc))
                return
            rows = prices  # an odds board alone: its prices are bisected, the good ones land
        middle = len(rows) // 2
        await self._write(rows[:middle], result)
        await self._write(rows[middle:], result)

    def _count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.db_errors.labels(kind).inc()

    async def write_until_done(self, rows: Sequence[Row], max_delay_s: float = 10.0) -> WriteResult:
        """Like :meth:`write`, but waits out database outages (backoff, no drop, no skip)."""
        delay, retries, started = self.first_delay_s, 0, time.monotonic()
        while True:
            try:
                result = await self.write(rows)
            except DatabaseUnavailable as exc:
                retries += 1
                if self.metrics:
                    self.metrics.retries.inc()
                log.warning(
                    "%s; batch of %d rows kept, retry %d in %.1fs (waiting %.0fs so far)",
                    exc,
                    row_count(rows),
                    retries,
                    delay,
                    time.monotonic() - started,
                )
                await asyncio.sleep(delay)
                delay = min(max_delay_s, delay * 2)
                continue
            result.retries = retries
            self._observe(rows, result, time.monotonic() - started)
            if retries:
                log.info(
                    "database back after %.1fs; batch of %d rows written", time.monotonic() - started, row_count(rows)
                )
            return result

    def _observe(self, rows: Sequence[Row], result: WriteResult, seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.batch_size.observe(row_count(rows))
        self.metrics.batch_seconds.observe(seconds)
        for table, n in result.rows.items():
            self.metrics.rows_written.labels(table).inc(n)
        for row, _ in result.rejected:
            self.metrics.rows_rejected.labels(row.table).inc()
        self.metrics.last_commit.set_to_current_time()
