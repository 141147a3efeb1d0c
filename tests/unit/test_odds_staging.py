"""Odds rows split into the two staging tables join back to the same rows, column by column."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sinks.merge import ODDS_BOARD_COLUMNS, ODDS_PRICE_COLUMNS, create_staging_sql
from sinks.odds_write import split_boards
from sinks.tables import COLUMNS

AT = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 6, 5, 1, tzinfo=UTC)
RACE = "kra-seoul-20261206-07"
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
    boards, prices = split_boards(ROWS)
    assert boards == [(0, AT, RACE, False, "kra"), (1, LATER, RACE, True, "kra")]
    assert prices == [
        (0, "WIN", "3", 4.5, 1_200_000, 2),
        (0, "EXA", "3-7", 41.5, None, None),
        (1, "WIN", "3", 4.1, 1_350_000, 1),
    ]
    assert _joined(boards, prices) == ROWS


def test_equal_boards_of_other_objects_are_numbered_again_and_still_join_back() -> None:
    copy = (datetime.fromisoformat(AT.isoformat()), "".join(RACE), *ROWS[0][2:])
    rows = [ROWS[0], copy, ROWS[1]]
    boards, prices = split_boards(rows)
    assert [b[0] for b in boards] == [0, 1, 2]
    assert _joined(boards, prices) == rows


def test_the_view_reads_the_table_columns_in_order() -> None:
    sql = create_staging_sql("odds_snapshots")
    view = sql.split("CREATE OR REPLACE TEMP VIEW stage_odds_snapshots AS SELECT ", 1)[1].split(" FROM ", 1)[0]
    assert [c.split(".", 1)[1] for c in view.split(", ")] == list(COLUMNS["odds_snapshots"])
