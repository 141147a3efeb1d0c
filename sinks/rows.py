"""Normalized messages -> table rows, and the rounds in which several versions of one row are applied.

Every message is validated against its model in :mod:`schemas.records` (``schema_version`` included), so only values
of the right type reach the database. A row's values are in :data:`sinks.tables.COLUMNS` order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from schemas.board_reader import Board, read_board
from schemas.records import OddsBoard, OddsRecord, read_message
from sinks.odds_stage import next_board
from sinks.tables import COLUMNS, FETCHED_AT_INDEX, JSON_COLUMNS, KEYS, TABLE_OF_MODEL


class Row(NamedTuple):
    """One record bound for a table, with what the caller needs to dead-letter it (a named tuple: cheaper to create
    than a frozen dataclass, and a reprocess makes one per odds price).

    An odds board read from a message is one row of many table rows (:func:`rows_of_message`): ``values`` is its board
    (a number and :data:`sinks.merge.ODDS_BOARD_COLUMNS`) and ``prices`` its prices (the number and
    :data:`sinks.merge.ODDS_PRICE_COLUMNS`), as the staging tables take them (:mod:`sinks.odds_stage`). Every other
    row is one table row, ``values`` in :data:`sinks.tables.COLUMNS` order, ``prices`` None.
    """

    table: str
    values: tuple[Any, ...]
    source: Any = None
    prices: list[tuple[Any, ...]] | None = None


_new_tuple = tuple.__new__  # a Row made by tuple's own constructor: no Python frame per price (0.1 us a row)


def _odds_rows(board: OddsBoard, source: Any) -> list[Row]:
    """One row per price, in ``COLUMNS["odds_snapshots"]`` order (written out: this is the sink's hot path; a unit
    test holds the two together)."""
    at, race_id, final, origin = board.time, board.race_id, board.is_final, board.source
    return [
        _new_tuple(
            Row,
            (
                "odds_snapshots",
                (
                    at,
                    race_id,
                    p["pool"],
                    p["selection"],
                    p["odds"],
                    final,
                    p.get("pool_total"),
                    p.get("popularity_rank"),
                    origin,
                ),
                source,
                None,
            ),
        )
        for p in board.prices
    ]


def _board_row(board: Board, source: Any) -> Row:
    """A board as one row: its values once, numbered, and its prices as the staging table takes them (written out:
    the sink's hot path; a unit test holds it to the columns)."""
    n = next_board()
    prices = [(n, p.pool, p.selection, p.odds, p.pool_total, p.popularity_rank) for p in board.prices]
    return Row("odds_snapshots", (n, board.time, board.race_id, board.is_final, board.source), source, prices)


def row_count(rows: Iterable[Row]) -> int:
    """How many table rows the rows are (a board row is one a price)."""
    return sum(1 if row.prices is None else len(row.prices) for row in rows)


def price_rows(row: Row) -> list[Row]:
    """A board row as one row per price, each with the same board (what bisection takes apart); any other row as
    itself."""
    if row.prices is None:
        return [row]
    return [Row(row.table, row.values, row.source, [price]) for price in row.prices]


def _odds_row(r: OddsRecord, source: Any) -> Row:
    """An odds record's row (written out like :func:`_odds_rows`; the same unit test holds it to the columns)."""
    values = (r.time, r.race_id, r.pool, r.selection, r.odds, r.is_final, r.pool_total, r.popularity_rank, r.source)
    return Row("odds_snapshots", values, source)


def rows_of_record(record: BaseModel, source: Any = None) -> list[Row]:
    """The table rows of one validated record: one row, or one per price of an :class:`OddsBoard`."""
    if isinstance(record, OddsRecord):
        return [_odds_row(record, source)]
    if isinstance(record, OddsBoard):
        return _odds_rows(record, source)
    table = TABLE_OF_MODEL[type(record)]
    as_json = JSON_COLUMNS[table]
    values = tuple(_json(getattr(record, col)) if col in as_json else getattr(record, col) for col in COLUMNS[table])
    return [Row(table, values, source)]


def _json(value: Any) -> str | None:
    """A ``jsonb`` column's text: a mapping, or a list of models (``None`` stays NULL)."""
    if value is None:
        return None
    if isinstance(value, list):
        value = [item.model_dump() for item in value]
    return orjson.dumps(value).decode()


def rows_of_message(topic: str, value: bytes, source: Any = None) -> list[Row]:
    """The table rows of one normalized message, validated against its model (``schema_version`` included); an odds
    board is one row (:class:`Row`), read by :mod:`schemas.board_reader`.

    Raises ``ValueError`` (pydantic's ``ValidationError``, naming the field and the problem) for a message that is
    not JSON or does not fit its model, and ``KeyError`` for a topic without a table.
    """
    if topic == "odds":
        return [_board_row(read_board(value), source)]
    return rows_of_record(read_message(topic, value), source)


def rounds(table: str, rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Rows of a table in rounds with one version per key each, every key's versions oldest first.

    Applying the rounds in order gives what applying each version in a batch of its own would: the upsert rules
    compare a version with the stored row, not with another version of the same batch.
    """
    keys = [COLUMNS[table].index(k) for k in KEYS[table]]
    versions: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for values in rows:
        versions.setdefault(tuple(values[i] for i in keys), []).append(values)
    if len(versions) == len(rows):
        return [rows]
    at = FETCHED_AT_INDEX[table]
    out: list[list[tuple[Any, ...]]] = []
    for same_key in versions.values():
        same_key.sort(key=lambda v: (v[at] is not None, v[at] or 0))  # stable: arrival order among equals
        for n, values in enumerate(same_key):
            if n == len(out):
                out.append([])
            out[n].append(values)
    return out
