"""Odds as the two staging tables take them (boards and prices) join back to the same rows, column by column:
split from rows of the table's columns, or read as a board from a message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.records import OddsBoard, OddsPrice
from sinks.merge import ODDS_BOARD_COLUMNS, ODDS_PRICE_COLUMNS, create_staging_sql
from sinks.odds_stage import StagedOdds, split_rows
from sinks.rows import Row, price_rows, row_count, rows_of_message, rows_of_record
from sinks.tables import COLUMNS
from sinks.writer import grouped

AT = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 6, 5, 1, tzinfo=UTC)
RACE = "horse-seoul-8-20261206"
ROWS: list[tuple[Any, ...]] = [
    (AT, RACE, "WIN", "3", 4.5, False, 1_200_000, 2, "kra"),
    (AT, RACE, "EXA", "3-7", 41.5, False, None, None, "kra"),
    (LATER, RACE, "WIN", "3", 4.1, True, 1_350_000, 1, "kra"),
]


def _joined(boards: list[tuple[Any, ...]], prices: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What the view ``stage_odds_snapshots`` reads: each price with its board's values, in the table's columns."""
    by_number = {b[0]: dict(zip(ODDS_BOARD_COLUMNS, b[1:], strict=True)) for b in boards}
    out = []
    for price in prices:
        values = by_number[price[0]] | dict(zip(ODDS_PRICE_COLUMNS, price[1:], strict=True))
        out.append(tuple(values[col] for col in COLUMNS["odds_snapshots"]))
    return out


def test_the_columns_split_between_boards_and_prices() -> None:
    assert ODDS_BOARD_COLUMNS == ("time", "race_id", "is_final", "source")
    assert ODDS_PRICE_COLUMNS == ("pool", "selection", "odds", "pool_total", "popularity_rank")


def test_a_board_is_staged_once_and_every_price_joins_back() -> None:
    staged = split_rows(ROWS)
    first, second = (b[0] for b in staged.boards)
    assert second == first + 1
    assert staged.boards == [(first, AT, RACE, False, "kra"), (second, LATER, RACE, True, "kra")]
    assert staged.prices == [
        (first, "WIN", "3", 4.5, 1_200_000, 2),
        (first, "EXA", "3-7", 41.5, None, None),
        (second, "WIN", "3", 4.1, 1_350_000, 1),
    ]
    assert _joined(staged.boards, staged.prices) == ROWS
    assert staged.table_rows() == ROWS
    assert len(staged) == 3
    assert staged.snapshots() == {(AT, RACE), (LATER, RACE)}


def test_equal_boards_of_other_objects_are_numbered_again_and_still_join_back() -> None:
    copy = (datetime.fromisoformat(AT.isoformat()), "".join(RACE), *ROWS[0][2:])
    rows = [ROWS[0], copy, ROWS[1]]
    staged = split_rows(rows)
    assert len({b[0] for b in staged.boards}) == 3
    assert _joined(staged.boards, staged.prices) == rows


def test_no_two_splits_number_a_board_alike() -> None:
    """Boards of one transaction may come from several splits and messages: their numbers never meet."""
    one, two = split_rows(ROWS), split_rows(ROWS)
    assert not {b[0] for b in one.boards} & {b[0] for b in two.boards}


BOARD_MESSAGE = (
    b'{"schema_version":2,"race_id":"horse-seoul-7-20261206","time":"2026-12-06T05:00:00Z","is_final":false,'
    b'"source":"kra","prices":[{"pool":"WIN","selection":"3","odds":4.5,"pool_total":1200000,"popularity_rank":2},'
    b'{"pool":"EXA","selection":"3-7","odds":41.5}]}'
)
SEOUL_7 = "horse-seoul-7-20261206"


def test_a_board_message_is_one_row_of_its_prices_and_joins_back_to_the_table_columns() -> None:
    (row,) = rows_of_message("odds", BOARD_MESSAGE, source="event")
    number = row.values[0]
    assert (row.table, row.source) == ("odds_snapshots", "event")
    assert row.values == (number, AT, SEOUL_7, False, "kra")
    assert row.prices == [(number, "WIN", "3", 4.5, 1_200_000, 2), (number, "EXA", "3-7", 41.5, None, None)]
    assert row_count([row]) == 2
    assert _joined([row.values], row.prices) == [
        (AT, SEOUL_7, "WIN", "3", 4.5, False, 1_200_000, 2, "kra"),
        (AT, SEOUL_7, "EXA", "3-7", 41.5, False, None, None, "kra"),
    ]
    (again,) = rows_of_message("odds", BOARD_MESSAGE)
    assert again.values[0] != number  # each message's board has a number of its own


def test_a_board_row_and_the_rows_of_its_record_stage_alike() -> None:
    """The sink reads a board as one row; a reprocess makes a row a price: both reach the tables the same."""
    board = OddsBoard(
        race_id=SEOUL_7,
        time=AT,
        is_final=False,
        source="kra",
        prices=[
            OddsPrice(pool="WIN", selection="3", odds=4.5, pool_total=1_200_000, popularity_rank=2),
            OddsPrice(pool="EXA", selection="3-7", odds=41.5),
        ],
    )
    (row,) = rows_of_message("odds", BOARD_MESSAGE)
    _, from_message, _ = grouped([row])
    _, from_record, _ = grouped(rows_of_record(board))
    assert from_message is not None and from_record is not None
    assert from_message.table_rows() == from_record.table_rows()


def test_a_board_taken_apart_by_its_prices_is_staged_once() -> None:
    (row,) = rows_of_message("odds", BOARD_MESSAGE, source="event")
    apart = price_rows(row)
    assert [r.prices for r in apart] == [[price] for price in row.prices or []]
    assert all(r.values is row.values and r.source == "event" for r in apart)
    entries = Row("entries", ("x",), None)
    assert price_rows(entries) == [entries]
    by_table, odds, placeholders = grouped(apart)
    assert by_table == {}
    assert odds is not None and odds.boards == [row.values] and odds.prices == row.prices
    assert placeholders is not None and placeholders[0] == [SEOUL_7]


def test_a_batch_of_board_rows_and_loose_rows_stages_every_price_once() -> None:
    (row,) = rows_of_message("odds", BOARD_MESSAGE)
    _, odds, placeholders = grouped([row, *[Row("odds_snapshots", values) for values in ROWS]])
    assert isinstance(odds, StagedOdds)
    assert len(odds.boards) == 3 and len({b[0] for b in odds.boards}) == 3
    assert sorted(odds.table_rows(), key=repr) == sorted([*_joined([row.values], row.prices or []), *ROWS], key=repr)
    assert placeholders is not None and sorted(placeholders[0]) == sorted({SEOUL_7, RACE})


def test_the_view_reads_the_table_columns_in_order() -> None:
    sql = create_staging_sql("odds_snapshots")
    view = sql.split("CREATE OR REPLACE TEMP VIEW stage_odds_snapshots AS SELECT ", 1)[1].split(" FROM ", 1)[0]
    assert [c.split(".", 1)[1] for c in view.split(", ")] == list(COLUMNS["odds_snapshots"])
