"""The tables the sink writes, derived from the record models of :mod:`schemas.records` (one column per field).

A column list is the model's fields in their order, less ``schema_version`` (a property of the message, not of the
row); ``odds_snapshots`` rows lead with ``time``, the hypertable's time column. Status columns only move forward,
in the order their model's ``Literal`` lists them (races: unknown < scheduled < finished < official < cancelled;
entries: declared < scratched).
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from schemas.records import (
    EntryRecord,
    HorseRecord,
    JockeyRecord,
    OddsBoard,
    OddsRecord,
    PayoffRecord,
    RaceRecord,
    RankRecord,
    ResultRecord,
)

MESSAGE_FIELDS = frozenset({"schema_version"})
MODEL_OF_TABLE: dict[str, type[BaseModel]] = {
    "races": RaceRecord,
    "entries": EntryRecord,
    "results": ResultRecord,
    "odds_snapshots": OddsRecord,
    "race_ranks": RankRecord,
    "kspo_payoffs": PayoffRecord,
    "horses": HorseRecord,
    "jockeys": JockeyRecord,
}
ORDER = tuple(MODEL_OF_TABLE)  # races first: the others reference them
TABLE_OF_MODEL: dict[type[BaseModel], str] = {model: table for table, model in MODEL_OF_TABLE.items()}
TABLE_OF_MODEL[OddsBoard] = "odds_snapshots"
LEADING: dict[str, tuple[str, ...]] = {"odds_snapshots": ("time",)}


def _columns(table: str) -> tuple[str, ...]:
    fields = [name for name in MODEL_OF_TABLE[table].model_fields if name not in MESSAGE_FIELDS]
    lead = LEADING.get(table, ())
    return (*lead, *(name for name in fields if name not in lead))


def _is_json(annotation: Any) -> bool:
    """Whether a field is stored as ``jsonb``: a mapping, or a list of models (a list of plain values is an array)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_json(arg) for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is dict:
        return True
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return isinstance(item, type) and issubclass(item, BaseModel)
    return False


COLUMNS: dict[str, tuple[str, ...]] = {table: _columns(table) for table in ORDER}
JSON_COLUMNS: dict[str, frozenset[str]] = {
    table: frozenset(c for c in COLUMNS[table] if _is_json(MODEL_OF_TABLE[table].model_fields[c].annotation))
    for table in ORDER
}
KEYS: dict[str, tuple[str, ...]] = {
    "races": ("race_id",),
    "entries": ("race_id", "entry_no"),
    "results": ("race_id", "entry_no"),
    "odds_snapshots": ("race_id", "pool", "selection", "time"),
    "race_ranks": ("race_id", "racer_id"),
    "kspo_payoffs": ("race_type", "race_date", "race_no", "year", "round_no", "day_no"),
    "horses": ("horse_id",),
    "jockeys": ("jockey_id",),
}
RANKED_STATUS = ("races", "entries")  # results: the newer version's status wins (a correction may go either way)
STATUS_ORDER: dict[str, tuple[str, ...]] = {
    table: get_args(MODEL_OF_TABLE[table].model_fields["status"].annotation) for table in RANKED_STATUS
}
VERSIONED = (
    "races",
    "entries",
    "results",
    "race_ranks",
    "kspo_payoffs",
)  # rows with ``source_fetched_at``: the newer version wins
RACE_ID_INDEX = {table: cols.index("race_id") for table, cols in COLUMNS.items() if "race_id" in cols}
FETCHED_AT_INDEX = {table: COLUMNS[table].index("source_fetched_at") for table in VERSIONED}
