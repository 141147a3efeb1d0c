"""The SQL that moves staged rows into their tables, with the upsert rules of the sink.

- odds_snapshots: a snapshot that already exists is left alone (``DO NOTHING``), so replays change nothing;
- races, entries, results: the newer version (``source_fetched_at``) wins for every column it carries; an older
  version arriving late only fills columns that are still empty; status only moves forward where it is ranked
  (:data:`sinks.tables.STATUS_ORDER`); ``is_final`` stays true once true; a result's finishing position goes with
  its status (a newer disqualification clears it, an older copy of the finish cannot bring it back);
- rows may arrive before their race: a placeholder race (status ``unknown``) is created from the race id and filled
  in by the schedule later.
"""

from __future__ import annotations

from collections.abc import Callable

from sinks.tables import COLUMNS, KEYS, STATUS_ORDER

NEWER = "excluded.source_fetched_at >= t.source_fetched_at OR t.source_fetched_at IS NULL"


def staging_table(table: str) -> str:
    """The session temp table a table's rows are COPYed into first."""
    return f"stage_{table}"


def status_rank(table: str, column: str) -> str:
    """A SQL expression ranking ``column`` by how far the status has moved (the model's order)."""
    whens = " ".join(f"WHEN '{status}' THEN {n}" for n, status in enumerate(STATUS_ORDER[table]))
    return f"CASE {column} {whens} END"


def _status(table: str) -> str:
    if table in STATUS_ORDER:
        moves_forward = f"{status_rank(table, 'excluded.status')} >= {status_rank(table, 't.status')}"
    else:
        moves_forward = f"({NEWER})"
    return f"status = CASE WHEN {moves_forward} THEN excluded.status ELSE t.status END"


def _finish_position(table: str) -> str:
    return (
        f"finish_position = CASE WHEN {NEWER} THEN CASE WHEN excluded.status = 'finished' "
        "THEN COALESCE(excluded.finish_position, t.finish_position) ELSE excluded.finish_position END "
        "WHEN t.status = 'finished' THEN COALESCE(t.finish_position, excluded.finish_position) "
        "ELSE t.finish_position END"
    )


def _newer_fills(column: str) -> str:
    return (
        f"{column} = CASE WHEN {NEWER} THEN COALESCE(excluded.{column}, t.{column}) "
        f"ELSE COALESCE(t.{column}, excluded.{column}) END"
    )


RULES: dict[str, Callable[[str], str]] = {
    "status": _status,
    "is_final": lambda table: "is_final = t.is_final OR excluded.is_final",
    "details": lambda table: (
        f"details = CASE WHEN {NEWER} THEN t.details || excluded.details ELSE excluded.details || t.details END"
    ),
    "source_fetched_at": lambda table: "source_fetched_at = GREATEST(t.source_fetched_at, excluded.source_fetched_at)",
    "finish_position": lambda table: _finish_position(table) if table == "results" else _newer_fills("finish_position"),
}


def assignment(table: str, column: str) -> str:
    """The ``SET`` clause of one column: its own rule, else the newer version's value fills in."""
    rule = RULES.get(column)
    return rule(table) if rule is not None else _newer_fills(column)


def merge_sql(table: str) -> str:
    """``INSERT ... SELECT`` from the staging table with the upsert rules of the module docstring."""
    col_list = ", ".join(COLUMNS[table])
    stage = staging_table(table)
    if table == "odds_snapshots":
        return (
            f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON CONFLICT DO NOTHING "
            "RETURNING time, race_id, pool, selection, odds"
        )
    keys = KEYS[table]
    sets = [assignment(table, col) for col in COLUMNS[table] if col not in keys]
    sets.append("updated_at = now()")
    return (
        f"INSERT INTO {table} AS t ({col_list}) SELECT {col_list} FROM {stage} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(sets)}"
    )


def insert_staged_sql(table: str) -> str:
    """A plain ``INSERT ... SELECT`` of every staged row (fails on the first one that exists)."""
    col_list = ", ".join(COLUMNS[table])
    return f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {staging_table(table)}"


def create_staging_sql(table: str) -> str:
    """The session temp table of a table, emptied at every commit."""
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {staging_table(table)} (LIKE {table} INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )


PLACEHOLDERS_SQL = """
INSERT INTO races (race_id, race_type, track_code, race_no, race_date, status, source)
SELECT race_id, race_type, track_code, race_no, race_date, 'unknown', source
FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::date[], $6::text[])
     AS ids(race_id, race_type, track_code, race_no, race_date, source)
ON CONFLICT (race_id) DO NOTHING
"""
"""Placeholder races for race ids (parsed in Python by :mod:`schemas.race_ids`), as arrays of their parts."""
