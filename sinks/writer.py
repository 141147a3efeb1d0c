"""Batched, idempotent writes of normalized records to TimescaleDB (asyncpg, binary COPY + one upsert per table).

One batch = one transaction: every table's rows are COPYed into session temp tables, then moved with one
``INSERT ... SELECT ... ON CONFLICT`` per table. Rules:

- odds_snapshots: a snapshot that already exists is left alone (``DO NOTHING``), so replays change nothing;
- races, entries, results: the newer version (``source_fetched_at``) wins for every column it carries; an older
  version arriving late only fills columns that are still empty; status only moves forward (races: unknown <
  scheduled < finished < official < cancelled; entries: declared < scratched); ``is_final`` stays true once true;
- rows may arrive before their race: a placeholder race (status ``unknown``) is created from the race id and filled
  in by the schedule later.

Several versions of one row in a batch are applied in rounds, oldest first, each round a COPY and an upsert of its
own in the same transaction: the result is the same as if each version had come in a batch of its own. A corrected
result takes its finishing position with its status (a disqualification clears the position it replaces).

Input: every message is validated against its model in :mod:`schemas.records` (:func:`rows_of_message`), so only
values of the right type reach the database.

Errors: a rejected row (bad data: check, foreign key, a value the column cannot hold) is found by bisecting the batch,
each half in its own transaction, and handed back to the caller (for the DLQ) while the rest lands. A database
outage (down, restarting, read-only, out of disk or connections) raises :class:`~sinks.errors.DatabaseUnavailable`
from :meth:`TimescaleWriter.write`; :meth:`TimescaleWriter.write_until_done` waits and retries with backoff until
the database is back, never dropping the batch. Any other database error is raised as
:class:`~sinks.errors.DatabaseError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel

from racelab.metrics import SinkMetrics
from racelab.settings import DatabaseSettings
from schemas.records import MODEL_OF_TOPIC, OddsBoard, OddsRecord
from sinks import rollup
from sinks.db import create_pool
from sinks.errors import DatabaseError, DatabaseUnavailable

log = logging.getLogger(__name__)

COLUMNS: dict[str, tuple[str, ...]] = {
    "races": (
        "race_id",
        "race_type",
        "track_code",
        "race_date",
        "race_no",
        "post_time",
        "started_at",
        "distance_m",
        "grade",
        "race_name",
        "field_size",
        "status",
        "source",
        "source_fetched_at",
        "details",
    ),
    "entries": (
        "race_id",
        "entry_no",
        "participant_id",
        "participant_name",
        "jockey_id",
        "jockey_name",
        "trainer_id",
        "trainer_name",
        "owner_id",
        "owner_name",
        "age",
        "sex",
        "carried_weight_kg",
        "body_weight_kg",
        "body_weight_delta",
        "rating",
        "grade",
        "status",
        "scratch_reason",
        "source",
        "source_fetched_at",
        "details",
    ),
    "results": (
        "race_id",
        "entry_no",
        "finish_position",
        "status",
        "status_code",
        "finish_time_s",
        "margin",
        "participant_id",
        "participant_name",
        "jockey_id",
        "jockey_name",
        "win_odds",
        "place_odds",
        "is_final",
        "source",
        "source_fetched_at",
        "details",
    ),
    "odds_snapshots": (
        "time",
        "race_id",
        "pool",
        "selection",
        "odds",
        "is_final",
        "pool_total",
        "popularity_rank",
        "source",
    ),
}
KEYS: dict[str, tuple[str, ...]] = {
    "races": ("race_id",),
    "entries": ("race_id", "entry_no"),
    "results": ("race_id", "entry_no"),
    "odds_snapshots": ("race_id", "pool", "selection", "time"),
}
TABLE_OF_TOPIC = {"races": "races", "entries": "entries", "results": "results", "odds": "odds_snapshots"}
ORDER = ("races", "entries", "results", "odds_snapshots")
STATUS_RANK = {
    "races": "CASE {} WHEN 'unknown' THEN 0 WHEN 'scheduled' THEN 1 WHEN 'finished' THEN 2 WHEN 'official' THEN 3 "
    "WHEN 'cancelled' THEN 4 END",
    "entries": "CASE {} WHEN 'declared' THEN 0 WHEN 'scratched' THEN 1 END",
}
RACE_ID_INDEX = {table: cols.index("race_id") for table, cols in COLUMNS.items()}
FETCHED_AT_INDEX = {table: COLUMNS[table].index("source_fetched_at") for table in ("races", "entries", "results")}
# The server is not there or cannot take writes for now (down, restarting, failing over, read-only, out of disk,
# memory or connections, a deadlock or serialization failure): wait and retry the whole batch. A cancelled statement
# is not among them: a statement_timeout shorter than a batch would cancel every retry the same way.
TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TransactionRollbackError,
    asyncpg.InsufficientResourcesError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.IdleSessionTimeoutError,
    asyncpg.ReadOnlySQLTransactionError,
)


def _lost_connection(exc: BaseException) -> bool:
    """Whether an ``InterfaceError`` comes from a connection that died under it.

    When the server goes away inside a transaction, leaving ``conn.transaction()`` raises a plain ``InterfaceError``
    ("the underlying connection is closed") that replaces the connection error: the chain still names the cause.
    Any other ``InterfaceError`` is a misuse of the driver, not an outage.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TRANSIENT):
            return True
        seen = seen.__cause__ or seen.__context__
    return "connection is closed" in str(exc)  # a connection that closed before the call: no cause to trace


class RowEncodingError(ValueError):
    """A value that its column's binary encoding cannot hold (e.g. a number out of a ``smallint``'s range)."""


BAD_DATA = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, RowEncodingError)


def _merge_sql(table: str) -> str:
    """INSERT ... SELECT from the staging table with the upsert rules of the module docstring."""
    cols = COLUMNS[table]
    keys = KEYS[table]
    col_list = ", ".join(cols)
    stage = f"stage_{table}"
    if table == "odds_snapshots":
        return (
            f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON CONFLICT DO NOTHING "
            "RETURNING time, race_id, pool, selection, odds"
        )
    newer = "excluded.source_fetched_at >= t.source_fetched_at OR t.source_fetched_at IS NULL"
    sets = []
    for col in cols:
        if col in keys:
            continue
        if col == "status":
            rank = STATUS_RANK.get(table)
            sets.append(
                "status = CASE WHEN "
                + (f"{rank.format('excluded.status')} >= {rank.format('t.status')}" if rank else f"({newer})")
                + " THEN excluded.status ELSE t.status END"
            )
        elif col == "is_final":
            sets.append("is_final = t.is_final OR excluded.is_final")
        elif col == "details":
            sets.append(
                f"details = CASE WHEN {newer} THEN t.details || excluded.details ELSE excluded.details || t.details END"
            )
        elif col == "source_fetched_at":
            sets.append("source_fetched_at = GREATEST(t.source_fetched_at, excluded.source_fetched_at)")
        elif col == "finish_position":
            # a result's position goes with its status: a newer disqualification clears it, an older copy of the
            # finish cannot bring it back
            sets.append(
                f"finish_position = CASE WHEN {newer} THEN CASE WHEN excluded.status = 'finished' "
                "THEN COALESCE(excluded.finish_position, t.finish_position) ELSE excluded.finish_position END "
                "WHEN t.status = 'finished' THEN COALESCE(t.finish_position, excluded.finish_position) "
                "ELSE t.finish_position END"
            )
        else:
            sets.append(
                f"{col} = CASE WHEN {newer} THEN COALESCE(excluded.{col}, t.{col}) "
                f"ELSE COALESCE(t.{col}, excluded.{col}) END"
            )
    sets.append("updated_at = now()")
    key_list = ", ".join(keys)
    return (
        f"INSERT INTO {table} AS t ({col_list}) SELECT {col_list} FROM {stage} "
        f"ON CONFLICT ({key_list}) DO UPDATE SET {', '.join(sets)}"
    )


PLACEHOLDERS_SQL = """
INSERT INTO races (race_id, race_type, track_code, race_date, race_no, status, source)
SELECT race_id, split_part(race_id, '-', 1), split_part(race_id, '-', 2),
       to_date(split_part(race_id, '-', 4), 'YYYYMMDD'), split_part(race_id, '-', 3)::smallint, 'unknown',
       CASE WHEN race_id LIKE 'horse-%' THEN 'kra' ELSE 'kspo' END
FROM unnest($1::text[]) AS ids(race_id)
ON CONFLICT (race_id) DO NOTHING
"""


@dataclass(frozen=True)
class Row:
    """One record bound for a table, with what the caller needs to dead-letter it."""

    table: str
    values: tuple[Any, ...]
    source: Any = None


@dataclass
class WriteResult:
    """What a write did."""

    rows: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[Row, Exception]] = field(default_factory=list)
    transactions: int = 0
    retries: int = 0


TABLE_OF_MODEL: dict[type[BaseModel], str] = {
    **{model: TABLE_OF_TOPIC[topic] for topic, model in MODEL_OF_TOPIC.items() if model is not OddsBoard},
    OddsRecord: "odds_snapshots",
}


def rows_of_record(record: BaseModel, source: Any = None) -> list[Row]:
    """The table rows of one validated record: one row, or one per price of an :class:`OddsBoard`."""
    if isinstance(record, OddsBoard):
        at, race_id, final, origin = record.time, record.race_id, record.is_final, record.source
        return [
            Row(
                "odds_snapshots",
                (at, race_id, p.pool, p.selection, p.odds, final, p.pool_total, p.popularity_rank, origin),
                source,
            )
            for p in record.prices
        ]
    table = TABLE_OF_MODEL[type(record)]
    values = tuple(
        orjson.dumps(getattr(record, col)).decode() if col == "details" else getattr(record, col)
        for col in COLUMNS[table]
    )
    return [Row(table, values, source)]


def rows_of_message(topic: str, value: bytes, source: Any = None) -> list[Row]:
    """The table rows of one normalized message, validated against its model (``schema_version`` included).

    Raises ``ValueError`` (pydantic's ``ValidationError``, naming the field and the problem) for a message that is
    not JSON or does not fit its model, and ``KeyError`` for a topic without a table.
    """
    return rows_of_record(MODEL_OF_TOPIC[topic].model_validate_json(value), source)


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


async def _copy(conn: asyncpg.pool.PoolConnectionProxy, table: str, records: list[tuple[Any, ...]]) -> None:
    """Binary COPY of records into a table; a value its column's encoding cannot hold is bad data."""
    try:
        await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table.removeprefix("stage_")])
    except (TypeError, ValueError, OverflowError) as exc:
        raise RowEncodingError(f"{exc.__class__.__name__}: {exc}") from exc


async def _init_connection(conn: asyncpg.Connection) -> None:
    for table in ORDER:
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )


class TimescaleWriter:
    """Writes batches of rows; owns an asyncpg pool whose connections carry the staging tables."""

    def __init__(self, settings: DatabaseSettings, metrics: SinkMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._pool: asyncpg.Pool | None = None
        self._merge = {t: _merge_sql(t) for t in ORDER}
        odds = ", ".join(COLUMNS["odds_snapshots"])
        self._insert_staged_odds = f"INSERT INTO odds_snapshots ({odds}) SELECT {odds} FROM stage_odds_snapshots"

    async def start(self) -> None:
        if self._pool is None:
            self._pool = await create_pool(self.settings, init=_init_connection)

    async def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, *TRANSIENT):
                pool.terminate()

    def _observe(self, rows: Sequence[Row], result: WriteResult, seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.batch_size.observe(len(rows))
        self.metrics.batch_seconds.observe(seconds)
        for table, n in result.rows.items():
            self.metrics.rows_written.labels(table).inc(n)
        for row, _ in result.rejected:
            self.metrics.rows_rejected.labels(row.table).inc()
        self.metrics.last_commit.set_to_current_time()

    async def _transaction(self, rows: Sequence[Row]) -> dict[str, int]:
        if self._pool is None:
            await self.start()
        assert self._pool is not None  # noqa: S101
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_table.setdefault(row.table, []).append(row.values)
        counts: dict[str, int] = {}
        referenced = {row.values[RACE_ID_INDEX[row.table]] for row in rows if row.table != "races"}
        async with self._pool.acquire() as conn, conn.transaction():
            if referenced:
                await conn.execute(PLACEHOLDERS_SQL, sorted(referenced))
            for table in ORDER:
                if table not in by_table:
                    continue
                if table == "odds_snapshots":
                    counts[table] = await self._write_odds(conn, by_table[table])
                    continue
                counts[table] = 0
                for n, records in enumerate(rounds(table, by_table[table])):
                    if n:
                        await conn.execute(f"TRUNCATE stage_{table}")
                    await _copy(conn, f"stage_{table}", records)
                    status = await conn.execute(self._merge[table])
                    counts[table] += int(status.rsplit(" ", 1)[-1])
        return counts

    async def _write_odds(self, conn: asyncpg.pool.PoolConnectionProxy, records: list[tuple[Any, ...]]) -> int:
        """Insert the snapshots that do not exist yet and roll up exactly those (where the rollup table exists).

        The usual case is that none of the snapshots exists yet. Without the rollup (a licensed server) the fastest
        way in is a COPY straight into the hypertable; with it (the Apache build), a COPY into the staging table,
        a plain ``INSERT ... SELECT`` from there and the rollup grouped from there too, on the server (about 1.5
        times the rows/s of shipping the batch's columns a second time for the rollup; measured). Either way the
        insert runs in a savepoint: a redelivered or replayed snapshot fails it on the unique key, the savepoint is
        rolled back and ``INSERT ... ON CONFLICT DO NOTHING`` inserts the others.
        """
        rolled_up = await rollup.exists(conn)
        if not rolled_up and await self._copy_new_odds(conn, records):
            return len(records)
        await _copy(conn, "stage_odds_snapshots", records)
        if rolled_up:
            try:
                async with conn.transaction():
                    await conn.execute(self._insert_staged_odds)
            except asyncpg.UniqueViolationError:
                pass
            else:
                await rollup.merge_staged(conn)
                return len(records)
        inserted = [tuple(r) for r in await conn.fetch(self._merge["odds_snapshots"])]
        if inserted and rolled_up:
            await rollup.merge(conn, inserted)
        return len(inserted)

    @staticmethod
    async def _copy_new_odds(conn: asyncpg.pool.PoolConnectionProxy, records: list[tuple[Any, ...]]) -> bool:
        """COPY straight into the hypertable, in a savepoint; False (rolled back) when a snapshot exists."""
        try:
            async with conn.transaction():
                await _copy(conn, "odds_snapshots", records)
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def write(self, rows: Sequence[Row]) -> WriteResult:
        """Write rows in one transaction; bad rows are bisected out; raises DatabaseUnavailable on an outage."""
        result = WriteResult()
        await self._write(list(rows), result)
        return result

    async def _write(self, rows: list[Row], result: WriteResult) -> None:
        if not rows:
            return
        try:
            result.transactions += 1
            for table, n in (await self._transaction(rows)).items():
                result.rows[table] = result.rows.get(table, 0) + n
        except BAD_DATA as exc:
            if self.metrics:
                self.metrics.db_errors.labels("bad_data").inc()
            if len(rows) == 1:
                result.rejected.append((rows[0], exc))
                return
            middle = len(rows) // 2
            await self._write(rows[:middle], result)
            await self._write(rows[middle:], result)
        except (*TRANSIENT, asyncpg.InterfaceError) as exc:
            if isinstance(exc, asyncpg.InterfaceError) and not _lost_connection(exc):
                raise DatabaseError(f"write failed: {exc.__class__.__name__}: {exc}") from exc
            if self.metrics:
                self.metrics.db_errors.labels("unavailable").inc()
            raise DatabaseUnavailable(f"database unavailable during a write ({exc.__class__.__name__})") from exc
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"write failed: {exc.__class__.__name__}: {exc}") from exc

    async def write_until_done(self, rows: Sequence[Row], max_delay_s: float = 10.0) -> WriteResult:
        """Like :meth:`write`, but waits out database outages (backoff, no drop, no skip)."""
        delay, retries, started = 0.2, 0, time.monotonic()
        while True:
            try:
                result = await self.write(rows)
            except DatabaseUnavailable as exc:
                retries += 1
                if self.metrics:
                    self.metrics.retries.inc()
                log.warning(
                    "%s; batch of %d rows kept, retry %d in %.1fs (waiting %.0fs so far)",
                    exc,
                    len(rows),
                    retries,
                    delay,
                    time.monotonic() - started,
                )
                await asyncio.sleep(delay)
                delay = min(max_delay_s, delay * 2)
                continue
            result.retries = retries
            self._observe(rows, result, time.monotonic() - started)
            if retries:
                log.info("database back after %.1fs; batch of %d rows written", time.monotonic() - started, len(rows))
            return result
