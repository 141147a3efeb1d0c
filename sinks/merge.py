"""The SQL that moves staged rows into their tables, with the upsert rules of the sink.

- odds_snapshots: a snapshot that already exists is left alone (``DO NOTHING``), so replays change nothing;
- races, entries, results: the newer version (``source_fetched_at``) wins for every column it carries; an older
  version arriving late only fills columns that are still empty; status only moves forward where it is ranked
  (:data:`sinks.tables.STATUS_ORDER`); ``is_final`` stays true once true; a result's finishing position goes with
  its status (a newer disqualification clears it, an older copy of the finish cannot bring it back);
- rows may arrive before their race: a placeholder race (status ``unknown``) is created from the race id and filled
  in by the schedule later;
- a row the rules leave as it is is not rewritten (``DO UPDATE ... WHERE`` the new values differ): a replay or a
  repeated poll with nothing new writes nothing, and ``updated_at`` tells when a row last changed.

:func:`changes_sql` is the same rules as a ``SELECT``: for staged rows, which would be inserted and which columns of
the stored rows would change, from what to what (``racelab reprocess`` reports it, and ``--dry-run`` only that).
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
    return f"CASE WHEN {moves_forward} THEN excluded.status ELSE t.status END"


def _finish_position(table: str) -> str:
    return (
        f"CASE WHEN {NEWER} THEN CASE WHEN excluded.status = 'finished' "
        "THEN COALESCE(excluded.finish_position, t.finish_position) ELSE excluded.finish_position END "
        "WHEN t.status = 'finished' THEN COALESCE(t.finish_position, excluded.finish_position) "
        "ELSE t.finish_position END"
    )


def _newer_fills(column: str) -> str:
    return (
        f"CASE WHEN {NEWER} THEN COALESCE(excluded.{column}, t.{column}) "
        f"ELSE COALESCE(t.{column}, excluded.{column}) END"
    )


RULES: dict[str, Callable[[str], str]] = {
    "status": _status,
    "is_final": lambda table: "t.is_final OR excluded.is_final",
    "details": lambda table: (
        f"CASE WHEN {NEWER} THEN t.details || excluded.details ELSE excluded.details || t.details END"
    ),
    "source_fetched_at": lambda table: "GREATEST(t.source_fetched_at, excluded.source_fetched_at)",
    "finish_position": lambda table: _finish_position(table) if table == "results" else _newer_fills("finish_position"),
}


def expression(table: str, column: str) -> str:
    """The value a column takes when a staged version (``excluded``) meets the stored row (``t``): its own rule,
    else the newer version's value fills in. Odds snapshots (corrected by a reprocess) take the staged value."""
    if table == "odds_snapshots":
        return f"excluded.{column}"
    rule = RULES.get(column)
    return rule(table) if rule is not None else _newer_fills(column)


def updated_columns(table: str) -> tuple[str, ...]:
    """The columns an upsert may change: all but the key."""
    return tuple(col for col in COLUMNS[table] if col not in KEYS[table])


def differs(table: str) -> str:
    """True when the rules would change the stored row ``t``."""
    cols = updated_columns(table)
    stored = ", ".join(f"t.{col}" for col in cols)
    merged = ", ".join(expression(table, col) for col in cols)
    return f"ROW({stored}) IS DISTINCT FROM ROW({merged})"


def merge_sql(table: str) -> str:
    """``INSERT ... SELECT`` from the staging table with the upsert rules of the module docstring."""
    col_list = ", ".join(COLUMNS[table])
    stage = staging_table(table)
    if table == "odds_snapshots":
        return (
            f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON CONFLICT DO NOTHING "
            "RETURNING time, race_id, pool, selection, odds"
        )
    sets = [f"{col} = {expression(table, col)}" for col in updated_columns(table)]
    sets.append("updated_at = now()")
    return (
        f"INSERT INTO {table} AS t ({col_list}) SELECT {col_list} FROM {stage} "
        f"ON CONFLICT ({', '.join(KEYS[table])}) DO UPDATE SET {', '.join(sets)} WHERE {differs(table)}"
    )


def correct_odds_sql() -> str:
    """The odds upsert of a reprocess: a stored snapshot whose values the current normalizer reads differently takes
    the new values (a snapshot is otherwise never rewritten: a poll cannot change a past price). Returns every row
    inserted or changed, and which."""
    table = "odds_snapshots"
    col_list = ", ".join(COLUMNS[table])
    sets = ", ".join(f"{col} = excluded.{col}" for col in updated_columns(table))
    return (
        f"INSERT INTO {table} AS t ({col_list}) SELECT {col_list} FROM {staging_table(table)} "
        f"ON CONFLICT ({', '.join(KEYS[table])}) DO UPDATE SET {sets} WHERE {differs(table)} "
        "RETURNING time, race_id, pool, selection, odds, (xmax = 0) AS inserted"
    )


def _json_object(pairs: list[str]) -> str:
    """``jsonb_build_object`` of name/value pairs, in parts (a function takes at most 100 arguments)."""
    parts = [", ".join(pairs[n : n + 40]) for n in range(0, len(pairs), 40)] or [""]
    return " || ".join(f"jsonb_build_object({part})" for part in parts)


def changes_sql(table: str) -> str:
    """The staged rows the upsert would insert or change, without writing: ``key`` (the key columns, a JSON array),
    ``inserted`` and ``changed`` (``{column: [stored, new]}`` of the columns that would change; NULL for a row
    that would be inserted). Odds snapshots take the staged rows' first and last time as ``$1`` and ``$2``, so the
    hypertable is searched in their chunks only."""
    keys = KEYS[table]
    pairs: list[str] = []
    for col in updated_columns(table):
        new = expression(table, col)
        pair = f"jsonb_build_array(to_jsonb(t.{col}), to_jsonb({new}))"
        pairs += [f"'{col}'", f"CASE WHEN t.{col} IS DISTINCT FROM {new} THEN {pair} END"]
    on = " AND ".join(f"t.{k} = excluded.{k}" for k in keys)
    if table == "odds_snapshots":
        on += " AND t.time BETWEEN $1 AND $2"
    key = ", ".join(f"excluded.{k}" for k in keys)
    return (
        f"SELECT jsonb_build_array({key}) AS key, t.{keys[0]} IS NULL AS inserted, "
        f"CASE WHEN t.{keys[0]} IS NOT NULL THEN jsonb_strip_nulls({_json_object(pairs)}) END AS changed "
        f"FROM {staging_table(table)} AS excluded LEFT JOIN {table} AS t ON {on} "
        f"WHERE t.{keys[0]} IS NULL OR {differs(table)}"
    )


def insert_staged_sql(table: str) -> str:
    """A plain ``INSERT ... SELECT`` of every staged row (fails on the first one that exists)."""
    col_list = ", ".join(COLUMNS[table])
    return f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {staging_table(table)}"


ODDS_BOARD_COLUMNS = ("time", "race_id", "is_final", "source")  # one value per board: staged once per board
ODDS_PRICE_COLUMNS = tuple(col for col in COLUMNS["odds_snapshots"] if col not in ODDS_BOARD_COLUMNS)
ODDS_STAGES = ("stage_odds_boards", "stage_odds_prices")  # COPYed into; ``stage_odds_snapshots`` joins them


def create_staging_sql(table: str) -> str:
    """The session temp table of a table, emptied at every commit.

    Odds snapshots are staged as two tables, a board's values (numbered ``board``) and its prices, and read through
    a view of their join with the table's columns, ``stage_odds_snapshots``: a snapshot's time is then encoded once a
    board instead of once a price (asyncpg's ``timestamptz`` encoding cost 1.3 us of the COPY's 1.5 us a row).
    The two tables are analyzed while empty: the planner then sizes them by their pages when a statement reads the
    view and hashes the few boards (never analyzed, a table is taken for ten pages at least, and the join was a
    merge join sorting every price: 0.5 us a row more).
    """
    if table != "odds_snapshots":
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {staging_table(table)} (LIKE {table} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
    boards, prices = ODDS_STAGES
    board_cols, price_cols = ", ".join(ODDS_BOARD_COLUMNS), ", ".join(ODDS_PRICE_COLUMNS)
    view_cols = ", ".join(f"b.{c}" if c in ODDS_BOARD_COLUMNS else f"p.{c}" for c in COLUMNS[table])
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {boards} ON COMMIT DELETE ROWS AS "
        f"SELECT 0::bigint AS board, {board_cols} FROM {table} WITH NO DATA; "
        f"CREATE TEMP TABLE IF NOT EXISTS {prices} ON COMMIT DELETE ROWS AS "
        f"SELECT 0::bigint AS board, {price_cols} FROM {table} WITH NO DATA; "
        f"CREATE OR REPLACE TEMP VIEW {staging_table(table)} AS "
        f"SELECT {view_cols} FROM {prices} AS p JOIN {boards} AS b USING (board); "
        f"ANALYZE {boards}; ANALYZE {prices}"
    )


def truncate_staging_sql(table: str) -> str:
    """Empty a table's staging table within a transaction (between merge rounds)."""
    return f"TRUNCATE {staging_table(table)}"


PLACEHOLDERS_SQL = """
INSERT INTO races (race_id, race_type, track_code, race_no, race_date, status, source)
SELECT race_id, race_type, track_code, race_no, race_date, 'unknown', source
FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::date[], $6::text[])
     AS ids(race_id, race_type, track_code, race_no, race_date, source)
ON CONFLICT (race_id) DO NOTHING
"""
"""Placeholder races for race ids (parsed in Python by :mod:`schemas.race_ids`), as arrays of their parts."""
