"""The sink's pure parts: the column catalogue, rows of records, merge rounds, bisection and outage retry.

:class:`sinks.batches.BatchWriter` runs against a transaction function that stands in for the database: it rejects
rows the way PostgreSQL does (by raising the driver's error for a bad value) and fails like an outage would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from runtime.metrics import SinkMetrics
from schemas.errors import DatabaseError, DatabaseUnavailable
from schemas.records import OddsBoard, OddsPrice, OddsRecord, ResultRecord
from sinks.batches import BatchWriter
from sinks.errors import RowEncodingError
from sinks.rows import Row, rounds, rows_of_message, rows_of_record
from sinks.tables import COLUMNS, JSON_COLUMNS
from sinks.writer import placeholder_arrays

T0 = datetime(2024, 12, 14, 5, 0, tzinfo=UTC)


def test_columns_are_the_record_fields():
    assert COLUMNS["odds_snapshots"] == (
        "time", "race_id", "pool", "selection", "odds", "is_final", "pool_total", "popularity_rank", "source",
    )  # fmt: skip
    assert COLUMNS["results"] == (
        "race_id", "entry_no", "finish_position", "status", "status_code", "finish_time_s", "margin",
        "participant_id", "participant_name", "jockey_id", "jockey_name", "win_odds", "place_odds", "is_final",
        "source", "source_fetched_at", "details", "trainer_id", "trainer_name", "owner_id", "owner_name", "age", "sex",
        "rating", "carried_weight_kg", "jockey_allowance_kg", "body_weight_kg", "body_weight_delta", "equipment",
        "sectionals", "split_times",
    )  # fmt: skip
    assert JSON_COLUMNS["results"] == {"details", "sectionals", "split_times"}
    assert JSON_COLUMNS["races"] == JSON_COLUMNS["entries"] == {"details"} and not JSON_COLUMNS["odds_snapshots"]
    assert COLUMNS["races"][:5] == ("race_id", "race_type", "track_code", "race_date", "race_no")
    assert "schema_version" not in COLUMNS["entries"] and COLUMNS["entries"][-3:] == (
        "details",
        "gear_ratio",
        "recent_ranks",
    )
    assert COLUMNS["race_ranks"] == (
        "race_id", "racer_id", "racer_name", "finish_position", "source", "source_fetched_at", "details",
    )  # fmt: skip


def test_odds_rows_follow_the_column_order():
    board = OddsBoard(
        race_id="horse-seoul-3-20241214",
        time=T0,
        is_final=False,
        source="kra",
        prices=[OddsPrice(pool="QNL", selection="3-7", odds=12.5, pool_total=900, popularity_rank=4)],
    )
    (row,) = rows_of_record(board, source="event")
    assert dict(zip(COLUMNS["odds_snapshots"], row.values, strict=True)) == {
        "time": T0,
        "race_id": "horse-seoul-3-20241214",
        "pool": "QNL",
        "selection": "3-7",
        "odds": 12.5,
        "is_final": False,
        "pool_total": 900,
        "popularity_rank": 4,
        "source": "kra",
    }
    assert (row.table, row.source) == ("odds_snapshots", "event")
    price = board.prices[0]
    record = OddsRecord(race_id=board.race_id, time=T0, is_final=False, source="kra", **price)
    assert rows_of_record(record, source="event") == [row]  # one price on its own (a reprocess) makes the same row


def test_an_odds_board_with_a_price_that_cannot_be_is_refused():
    value = (
        b'{"schema_version":1,"race_id":"horse-seoul-3-20241214","time":"2024-12-14T05:00:00Z","is_final":true,'
        b'"source":"kra","prices":[{"pool":"WIN","selection":"7","odds":2.7},{"pool":"QNL","selection":"3-7","odds":9}]}'
    )
    (board,) = rows_of_message("odds", value)
    assert [price[3] for price in board.prices or []] == [2.7, 9.0]
    bad = {b'"odds":-1': ">= 0.0", b'"odds":1e400': "out of range", b'"odds":NaN': "not JSON"}
    for odds, problem in bad.items():  # 1e400 reads as infinity; neither it nor NaN is a price
        with pytest.raises(ValueError, match=problem):
            rows_of_message("odds", value.replace(b'"odds":2.7', odds))


def test_a_message_is_validated_against_its_model():
    value = (
        b'{"schema_version":1,"race_id":"horse-seoul-3-20241214","entry_no":7,"status":"finished",'
        b'"finish_position":2,"participant_name":"x","is_final":true,"source":"kra",'
        b'"source_fetched_at":"2024-12-14T05:00:00Z","details":{"wgHr":"511(+2)"}}'
    )
    (row,) = rows_of_message("results", value)
    values = dict(zip(COLUMNS["results"], row.values, strict=True))
    assert (values["entry_no"], values["finish_position"], values["details"]) == (7, 2, '{"wgHr":"511(+2)"}')
    with pytest.raises(ValueError, match="schema_version"):
        rows_of_message("results", value.replace(b'"schema_version":1', b'"schema_version":9'))
    with pytest.raises(KeyError):
        rows_of_message("nothing", value)


def _result(entry: int, fetched_minute: int | None, position: int = 1) -> tuple[object, ...]:
    record = ResultRecord(
        race_id="horse-seoul-3-20241214",
        entry_no=entry,
        finish_position=position,
        status="finished",
        participant_name=f"h{entry}",
        is_final=False,
        source="kra",
        source_fetched_at=T0.replace(minute=fetched_minute or 0),
    )
    values = rows_of_record(record)[0].values
    if fetched_minute is None:  # a version without a fetch time sorts first
        at = COLUMNS["results"].index("source_fetched_at")
        values = (*values[:at], None, *values[at + 1 :])
    return values


def test_merge_rounds_one_version_per_key_oldest_first():
    a_new, a_old, a_none, b = _result(1, 30, 1), _result(1, 10, 2), _result(1, None, 3), _result(2, 20)
    assert rounds("results", [b, _result(3, 5)]) == [[b, _result(3, 5)]]  # one version each: a single round
    out = rounds("results", [a_new, b, a_old, a_none])
    assert out == [[a_none, b], [a_old], [a_new]]


def test_merge_rounds_keep_arrival_order_among_equal_times():
    first, second = _result(1, 10, 1), _result(1, 10, 4)
    assert rounds("results", [first, second]) == [[first], [second]]


class FakeDatabase:
    """A transaction function: rejects rows marked bad, fails ``outages`` times first, counts transactions."""

    def __init__(self, bad: set[int], outages: int = 0, error: BaseException | None = None) -> None:
        self.bad, self.outages, self.error = bad, outages, error
        self.transactions: list[list[int]] = []
        self.stored: list[int] = []

    async def apply(self, rows: Sequence[Row]) -> dict[str, int]:
        numbers = [row.values[0] for row in rows]
        self.transactions.append(numbers)
        if self.outages:
            self.outages -= 1
            raise asyncpg.AdminShutdownError("terminating connection due to administrator command")
        if self.error is not None:
            raise self.error
        if any(n in self.bad for n in numbers):
            raise asyncpg.CheckViolationError("new row violates check constraint")
        self.stored += numbers
        return {"odds_snapshots": len(numbers)}


def batch(n: int) -> list[Row]:
    return [Row("odds_snapshots", (i,), source=f"event-{i}") for i in range(n)]


async def test_bisection_isolates_every_bad_row_and_lands_the_rest():
    db = FakeDatabase(bad={3, 9})
    registry = CollectorRegistry()
    writer = BatchWriter(db.apply, SinkMetrics(registry))
    result = await writer.write(batch(12))
    assert sorted(db.stored) == [0, 1, 2, 4, 5, 6, 7, 8, 10, 11]
    assert [(row.values[0], row.source) for row, _ in result.rejected] == [(3, "event-3"), (9, "event-9")]
    assert all(isinstance(exc, asyncpg.CheckViolationError) for _, exc in result.rejected)
    assert result.rows == {"odds_snapshots": 10}
    assert result.transactions == len(db.transactions)
    assert db.transactions[:3] == [list(range(12)), list(range(6)), list(range(3))]  # halves, then quarters
    assert registry.get_sample_value("racelab_sink_db_errors_total", {"kind": "bad_data"}) > 0


class PriceDatabase:
    """A transaction function over board rows: rejects a transaction holding a price marked bad."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.stored: list[str] = []

    async def apply(self, rows: Sequence[Row]) -> dict[str, int]:
        selections = [price[2] for row in rows for price in row.prices or []]
        if any(s in self.bad for s in selections):
            raise RowEncodingError("OverflowError: value out of int16 range")
        self.stored += selections
        return {"odds_snapshots": len(selections)}


async def test_a_board_alone_is_bisected_by_its_prices_and_its_good_prices_land():
    board = Row("odds_snapshots", (7, T0, "horse-seoul-3-20241214", False, "kra"), "event-b", [
        (7, "WIN", str(n), 2.5, None, None) for n in range(1, 9)
    ])  # fmt: skip
    other = Row("odds_snapshots", (8, T0, "horse-seoul-4-20241214", False, "kra"), "event-o", [
        (8, "WIN", "11", 3.0, None, None), (8, "WIN", "12", 3.5, None, None)
    ])  # fmt: skip
    db = PriceDatabase(bad={"6"})
    registry = CollectorRegistry()
    writer = BatchWriter(db.apply, SinkMetrics(registry))
    result = await writer.write([other, board])
    assert sorted(db.stored, key=int) == ["1", "2", "3", "4", "5", "7", "8", "11", "12"]
    ((row, exc),) = result.rejected
    assert (row.values, row.source, row.prices) == (board.values, "event-b", [(7, "WIN", "6", 2.5, None, None)])
    assert isinstance(exc, RowEncodingError)
    assert result.rows == {"odds_snapshots": 9}
    assert registry.get_sample_value("racelab_sink_batch_records_sum") == 0  # observed by write_until_done only
    db.bad = set()
    await writer.write_until_done([other, board])
    assert registry.get_sample_value("racelab_sink_batch_records_sum") == 10  # table rows, not messages


async def test_a_value_the_column_cannot_hold_is_bad_data_too():
    class Encoding(FakeDatabase):
        async def apply(self, rows: Sequence[Row]) -> dict[str, int]:
            if any(row.values[0] == 1 for row in rows):
                raise RowEncodingError("OverflowError: value out of int16 range")
            return await super().apply(rows)

    db = Encoding(bad=set())
    result = await BatchWriter(db.apply).write(batch(2))
    assert [row.values[0] for row, _ in result.rejected] == [1] and db.stored == [0]


async def test_an_outage_is_retried_until_the_database_is_back():
    db = FakeDatabase(bad={1}, outages=3)
    registry = CollectorRegistry()
    writer = BatchWriter(db.apply, SinkMetrics(registry), first_delay_s=0.001)
    with pytest.raises(DatabaseUnavailable, match="AdminShutdownError"):
        await writer.write(batch(4))  # one try
    result = await writer.write_until_done(batch(4), max_delay_s=0.004)
    assert result.retries == 2 and sorted(db.stored) == [0, 2, 3]
    assert [row.values[0] for row, _ in result.rejected] == [1]
    assert registry.get_sample_value("racelab_sink_retries_total") == 2
    assert registry.get_sample_value("racelab_sink_rows_written_total", {"table": "odds_snapshots"}) == 3
    assert registry.get_sample_value("racelab_sink_rows_rejected_total", {"table": "odds_snapshots"}) == 1


async def test_other_database_errors_are_not_retried_and_bugs_are_not_wrapped():
    db = FakeDatabase(bad=set(), error=asyncpg.QueryCanceledError("canceling statement due to statement timeout"))
    with pytest.raises(DatabaseError, match="QueryCanceledError") as caught:
        await BatchWriter(db.apply, first_delay_s=0.001).write_until_done(batch(2))
    assert not isinstance(caught.value, DatabaseUnavailable) and len(db.transactions) == 1
    buggy = FakeDatabase(bad=set(), error=KeyError("no such table"))
    with pytest.raises(KeyError):
        await BatchWriter(buggy.apply).write(batch(2))


def test_placeholder_races_from_race_ids():
    assert placeholder_arrays(["horse-seoul-3-20241214", "boat-misari-12-20241212"]) == [
        ["horse-seoul-3-20241214", "boat-misari-12-20241212"],
        ["horse", "boat"],
        ["seoul", "misari"],
        [3, 12],
        [date(2024, 12, 14), date(2024, 12, 12)],
        ["kra", "kspo"],
    ]
    with pytest.raises(RowEncodingError, match="not a calendar date"):
        placeholder_arrays(["horse-seoul-3-20241340"])


def test_the_landing_of_a_message_is_the_source_and_kind_it_was_collected_as():
    from types import SimpleNamespace

    from sinks.agent import SinkApp

    def event(topic: str, key: str) -> SimpleNamespace:
        return SimpleNamespace(message=SimpleNamespace(topic=topic, key=key.encode()))

    odds = [Row("odds_snapshots", ())]
    assert SinkApp._source_kind(event("racelab.odds", "boat-misari-3-20241212"), odds) == ("kspo", "odds")
    assert SinkApp._source_kind(event("racelab.races", "horse-seoul-3-20241214"), [Row("races", ())]) == (
        "kra",
        "schedules",
    )
    # a cycle payoff rides on the races topic, keyed by day, and was collected as odds
    payoff = [Row("kspo_payoffs", ())]
    assert SinkApp._source_kind(event("racelab.races", "kspo:cycle:20241213"), payoff) == ("kspo", "odds")


async def test_marking_reported_ranks_waits_out_a_broken_connection():
    from asyncpg.exceptions._base import InternalClientError

    from runtime.settings import DatabaseSettings
    from sinks.ranks import UnmatchedRank
    from sinks.writer import TimescaleWriter

    class FlakyPool:
        def __init__(self) -> None:
            self.calls: list[tuple[object, ...]] = []

        async def get(self) -> FlakyPool:
            return self

        async def execute(self, *args: object) -> str:
            self.calls.append(args)
            if len(self.calls) < 3:  # a pool call racing a PostgreSQL restart
                raise InternalClientError("cannot switch to state 12; another operation (2) is in progress")
            return "UPDATE 1"

    writer = TimescaleWriter(DatabaseSettings())
    writer.pool = pool = FlakyPool()  # type: ignore[assignment]
    rank = UnmatchedRank("cycle-gwangmyeong-1-20241213", "r1", "name", 1, "kspo", None, {}, 0)
    await writer.mark_reported([rank], max_delay_s=0.001)
    assert len(pool.calls) == 3 and pool.calls[-1][1:] == (["cycle-gwangmyeong-1-20241213"], ["r1"])
