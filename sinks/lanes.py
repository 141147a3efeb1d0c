"""A lane of the sink: transactions that commit one after the other, one in flight while the next one fills.

The sink gives each partition of its topics a lane (``partition % sink.lanes``), so the rows of a partition are
written in order; the lanes run at the same time, each on a connection of its own. A race id keys its messages on
every normalized topic, so a race's rows share a lane whatever their table (the topics have as many partitions).
"""

from __future__ import annotations

import asyncio

from sinks.batches import WriteResult
from sinks.rows import Row
from sinks.writer import TimescaleWriter

Rejected = list[tuple[Row, Exception]]


class Lane:
    """Rows being gathered for the next transaction, and the transaction in flight (at most one)."""

    def __init__(self, writer: TimescaleWriter, retry_max_delay_s: float) -> None:
        self.writer = writer
        self.retry_max_delay_s = retry_max_delay_s
        self.rows: list[Row] = []
        self.size = 0  # the table rows of ``rows`` (an odds board is one row of many)
        self._writing: asyncio.Task[WriteResult] | None = None

    def add(self, rows: list[Row], size: int) -> None:
        """Gather rows (``size`` table rows) for the next transaction."""
        self.rows += rows
        self.size += size

    async def drain(self) -> Rejected:
        """Wait for the transaction in flight to commit; the rows it rejected."""
        if self._writing is None:
            return []
        writing, self._writing = self._writing, None
        return (await writing).rejected

    async def flush(self) -> Rejected:
        """Once the transaction in flight committed, start one with the gathered rows; the rows the one that
        committed rejected."""
        rejected = await self.drain()
        if self.rows:
            rows, self.rows, self.size = self.rows, [], 0
            self._writing = asyncio.ensure_future(self.writer.write_until_done(rows, self.retry_max_delay_s))
        return rejected

    def cancel(self) -> None:
        """Stop the transaction in flight (it rolls back; the batch is not acknowledged and comes again)."""
        if self._writing is not None:
            self._writing.cancel()
            self._writing = None
