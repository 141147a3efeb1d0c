"""The sink's lanes: a partition's rows in order, one transaction in flight per lane, the lanes at the same time.

The sink worker runs against a writer that stands in for the database: it records each transaction's rows and when
it started and ended.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from runtime.settings import Settings
from sinks.agent import SinkApp
from sinks.batches import WriteResult
from sinks.rows import Row


class Writer:
    """Records every transaction: its rows' (partition, offset), the lane's in flight, its start and end."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.transactions: list[tuple[list[tuple[int, int]], int, int]] = []
        self.clock = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.cancelled = 0
        self.fail_on = fail_on

    async def write_until_done(self, rows: Sequence[Row], max_delay_s: float) -> WriteResult:
        keys = [(row.source.message.partition, row.source.message.offset) for row in rows]
        self.clock += 1
        started, self.in_flight = self.clock, self.in_flight + 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.002)
            if self.fail_on is not None and (self.fail_on, 0) in keys:
                raise RuntimeError("a bug in a transaction")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        self.clock += 1
        self.transactions.append((keys, started, self.clock))
        return WriteResult()

    def take_unmatched(self) -> list[Any]:
        return []

    async def mark_reported(self, ranks: Sequence[Any]) -> None:
        return None


def _result(entry: int) -> bytes:
    return (
        b'{"schema_version":1,"race_id":"horse-seoul-3-20241214","entry_no":%d,"status":"finished",'
        b'"finish_position":%d,"participant_name":"x","is_final":true,"source":"kra",'
        b'"source_fetched_at":"2024-12-14T05:00:00Z"}' % (entry, entry)
    )


def _events(partitions: int, per_partition: int) -> list[SimpleNamespace]:
    """Messages of several partitions, interleaved as a fetch hands them over."""
    return [
        SimpleNamespace(
            message=SimpleNamespace(
                topic="racelab.results", partition=p, offset=o, key=b"k", value=_result(o % 20 + 1), headers=[]
            )
        )
        for o in range(per_partition)
        for p in range(partitions)
    ]


def _sink(writer: Writer, lanes: int, transaction_rows: int) -> SinkApp:
    settings = Settings()
    settings = settings.model_copy(
        update={"sink": settings.sink.model_copy(update={"lanes": lanes, "transaction_rows": transaction_rows})}
    )
    app = SinkApp(settings)
    app.writer = writer  # type: ignore[assignment]
    app.landings = SimpleNamespace(landed=lambda pairs: asyncio.sleep(0))  # type: ignore[assignment]
    return app


async def test_each_partition_keeps_to_one_lane_in_order_and_the_lanes_write_at_the_same_time():
    writer = Writer()
    await _sink(writer, lanes=2, transaction_rows=50).write(_events(partitions=8, per_partition=100))
    written = sorted(key for keys, _, _ in writer.transactions for key in keys)
    assert written == [(p, o) for p in range(8) for o in range(100)]  # every message once
    by_lane: dict[int, list[tuple[list[tuple[int, int]], int, int]]] = {}
    for transaction in writer.transactions:
        (lane,) = {p % 2 for p, _ in transaction[0]}  # a transaction holds one lane's partitions
        by_lane.setdefault(lane, []).append(transaction)
    for transactions in by_lane.values():
        transactions.sort(key=lambda t: t[1])
        for before, after in itertools.pairwise(transactions):
            assert before[2] < after[1]  # the lane's next transaction started after the previous one ended
        for p in {p for keys, _, _ in transactions for p, _ in keys}:
            offsets = [o for keys, _, _ in transactions for q, o in keys if q == p]
            assert offsets == sorted(offsets)  # a partition's rows in order
    assert len(by_lane) == 2 and len(writer.transactions) == 16
    assert writer.most_in_flight == 2  # the lanes overlapped


async def test_one_lane_writes_one_transaction_at_a_time():
    writer = Writer()
    await _sink(writer, lanes=1, transaction_rows=50).write(_events(partitions=8, per_partition=100))
    assert writer.most_in_flight == 1 and len(writer.transactions) == 16


async def test_a_failing_lane_stops_the_others():
    writer = Writer(fail_on=5)
    with pytest.raises(ExceptionGroup) as failed:
        await _sink(writer, lanes=2, transaction_rows=50).write(_events(partitions=8, per_partition=100))
    assert failed.group_contains(RuntimeError, match="a bug")
    assert writer.cancelled >= 1  # the other lane's transaction in flight was stopped, not left running
    assert writer.in_flight == 0
