"""Odds snapshots as the two staging tables hold them: numbered boards and their prices.

A board is a snapshot's values shared by its prices (:data:`sinks.merge.ODDS_BOARD_COLUMNS`), staged once; each
price (:data:`sinks.merge.ODDS_PRICE_COLUMNS`) names its board by number, and the view ``stage_odds_snapshots`` joins
them back into table rows. Numbers come from one counter of the process, so the boards of any transaction never
share a number, whichever way they were made: from a message's board as it is read (the sink) or by splitting rows
of the table's columns (:func:`split_rows`, e.g. a reprocess).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

next_board = itertools.count().__next__
"""The number of a new board (``bigint`` in the staging tables: it never wraps)."""


@dataclass
class StagedOdds:
    """The odds of one transaction: boards ``(board, time, race_id, is_final, source)`` and prices ``(board, pool,
    selection, odds, pool_total, popularity_rank)``."""

    boards: list[tuple[Any, ...]] = field(default_factory=list)
    prices: list[tuple[Any, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        """The number of table rows (prices)."""
        return len(self.prices)

    def snapshots(self) -> set[tuple[Any, Any]]:
        """The ``(time, race_id)`` of every board."""
        return {(b[1], b[2]) for b in self.boards}

    def table_rows(self) -> list[tuple[Any, ...]]:
        """The prices as rows of the table's columns (``COLUMNS["odds_snapshots"]`` order), as the view reads them."""
        by_number = {b[0]: b for b in self.boards}
        return [
            (b[1], b[2], pool, selection, odds, b[3], pool_total, rank, b[4])
            for number, pool, selection, odds, pool_total, rank in self.prices
            for b in (by_number[number],)
        ]


def split_rows(records: Iterable[Sequence[Any]], into: StagedOdds | None = None) -> StagedOdds:
    """Rows of the table's columns as numbered boards and prices (appended to ``into`` when given).

    A board's rows come one after the other and share its value objects, so a row whose board values are not the
    very objects of the row before starts a new board; equal boards numbered twice join to the same rows. (Written
    out: a unit test holds it to the columns.)
    """
    staged = into if into is not None else StagedOdds()
    boards, prices = staged.boards, staged.prices
    board = -1
    last_at = last_race = last_final = last_source = None
    for at, race_id, pool, selection, odds, final, pool_total, rank, source in records:
        if at is not last_at or race_id is not last_race or final is not last_final or source is not last_source:
            board = next_board()
            boards.append((board, at, race_id, final, source))
            last_at, last_race, last_final, last_source = at, race_id, final, source
        prices.append((board, pool, selection, odds, pool_total, rank))
    return staged
