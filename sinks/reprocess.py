"""The database side of ``racelab reprocess``: the raw archive read in pages, the re-normalized rows of a page written
by the sink's rules in one transaction with the run's checkpoint, and what that changed.

- Pages: keyset over ``raw_archive`` in fetch order (``fetched_at, poll_id, body_sha256``), a bounded number of
  responses each, so memory does not grow with the range.
- Writes: the sink's upsert rules (:mod:`sinks.merge`), the same placeholder races and the same rank and payoff
  links (:func:`sinks.writer.link`); a row the rules leave as it is is not rewritten. Odds snapshots are the one
  difference: a stored price the current normalizer reads differently takes the new value (a poll never rewrites
  a past price), and the day rollup of the changed prices is recomputed.
- Changes: before each upsert, :func:`sinks.merge.changes_sql` says which staged rows would be inserted and which
  columns would change, from what to what; a row counts once per run session (a temp table remembers it), however
  many archived responses carry it.
- A dry run does all of that and rolls the rows back (to a savepoint), keeping only the count.
- Checkpoint: the run's row in ``reprocess_runs`` (position, responses done, the counts so far) is updated in the
  transaction of the page it ends; an interrupted run resumes after the last page that landed.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any

import asyncpg
import orjson

from runtime.db import LazyPool, wait_out_outage
from runtime.settings import DatabaseSettings
from schemas.errors import DatabaseUnavailable
from schemas.timezones import KST
from sinks import rollup
from sinks.batches import BatchWriter, WriteResult
from sinks.merge import (
    PLACEHOLDERS_SQL,
    changes_sql,
    correct_odds_sql,
    insert_staged_sql,
    merge_sql,
    truncate_staging_sql,
)
from sinks.odds_stage import StagedOdds
from sinks.odds_write import TABLE as ODDS
from sinks.odds_write import copy_rows, copy_staged
from sinks.ranks import UnmatchedRank
from sinks.rows import Row, rounds
from sinks.tables import COLUMNS, KEYS, ORDER
from sinks.writer import grouped, init_connection, link

log = logging.getLogger(__name__)
EXAMPLES = 3
MAX_RETRY_DELAY_S = 10.0
CHANGES_SQL = {table: changes_sql(table) for table in ORDER}
MERGE_SQL = {table: merge_sql(table) for table in ORDER}
CORRECT_ODDS_SQL = correct_odds_sql()
INSERT_STAGED_ODDS_SQL = insert_staged_sql(ODDS)
SEEN = "reprocess_seen"
CREATE_SEEN_SQL = f"CREATE TEMP TABLE IF NOT EXISTS {SEEN} (tbl text, key jsonb, col text, PRIMARY KEY (tbl, key, col))"
SEEN_SQL = f"""
INSERT INTO {SEEN} (tbl, key, col) SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[])
ON CONFLICT DO NOTHING RETURNING tbl, col
"""
PAGE_COLUMNS = "fetched_at, poll_id, body_sha256, topic, msg_partition, msg_offset, message_key, kind, headers, body"
_RANGE = "fetched_at >= $1 AND fetched_at < $2 AND ($3::text[] IS NULL OR kind = ANY($3::text[]))"
COUNT_SQL = f"SELECT count(*) FROM raw_archive WHERE {_RANGE}"
PAGE_SQL = f"""
SELECT {PAGE_COLUMNS} FROM raw_archive
WHERE {_RANGE} AND ($4::timestamptz IS NULL OR (fetched_at, poll_id, body_sha256) > ($4, $5, $6))
ORDER BY fetched_at, poll_id, body_sha256
LIMIT $7
"""
OPEN_RUN_SQL = """
SELECT run_id, started_at, total_responses, done_responses, after_fetched_at, after_poll_id, after_sha256, report
FROM reprocess_runs WHERE selection = $1::jsonb AND finished_at IS NULL ORDER BY run_id DESC LIMIT 1
"""
NEW_RUN_SQL = (
    "INSERT INTO reprocess_runs (selection, total_responses) VALUES ($1::jsonb, $2) RETURNING run_id, started_at"
)
CHECKPOINT_SQL = """
UPDATE reprocess_runs SET done_responses = $2, after_fetched_at = $3, after_poll_id = $4, after_sha256 = $5,
       report = $6::jsonb, updated_at = now()
WHERE run_id = $1
"""
FINISH_SQL = "UPDATE reprocess_runs SET finished_at = now(), updated_at = now() WHERE run_id = $1"
ABANDON_SQL = "UPDATE reprocess_runs SET finished_at = now() WHERE selection = $1::jsonb AND finished_at IS NULL"
Position = tuple[datetime, str, bytes]
# The odds lookups take each page's time range as parameters: planned for their values, so that only the chunks of
# that range are searched (a generic plan searches every chunk of the year for every row). No JIT: compiling took
# longer than any of these statements runs (the plans below cost "disabled" and crossed its threshold).
SESSION = {"plan_cache_mode": "force_custom_plan", "jit": "off"}
# Every lookup of :func:`sinks.merge.changes_sql` is of staged rows by their key: an index nested loop, whatever the
# statistics of freshly filled chunks say (trusting them, the planner sorted a whole chunk for a merge join, 4x
# slower, or scanned a chunk it thought nearly empty once per staged row, 100x slower; measured). For that
# statement only.
BY_KEY = "SET LOCAL enable_seqscan = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_hashjoin = off"
UNSET_BY_KEY = "RESET enable_seqscan; RESET enable_mergejoin; RESET enable_hashjoin"


@dataclass(frozen=True)
class Selection:
    """Which archived responses a run re-normalizes: fetched on these Korean days, of these kinds (empty: all), and
    which records it keeps: of these tracks (empty: all)."""

    start: date
    end: date
    kinds: tuple[str, ...] = ()
    tracks: tuple[str, ...] = ()

    def bounds(self) -> tuple[datetime, datetime]:
        """The UTC instants of the first day's midnight and of the day after the last, in Korean time."""
        first = datetime.combine(self.start, datetime.min.time(), tzinfo=KST)
        return first, datetime.combine(self.end + timedelta(days=1), datetime.min.time(), tzinfo=KST)

    def as_json(self) -> str:
        return orjson.dumps(
            {
                "from": self.start.isoformat(),
                "to": self.end.isoformat(),
                "kinds": sorted(self.kinds),
                "tracks": sorted(self.tracks),
            }
        ).decode()

    def arguments(self) -> tuple[Any, ...]:
        return (*self.bounds(), sorted(self.kinds) or None)


@dataclass(frozen=True)
class ArchivedResponse:
    """One archived raw message, as stored."""

    fetched_at: datetime
    poll_id: str
    body_sha256: bytes
    topic: str
    partition: int
    offset: int
    key: str | None
    kind: str | None
    headers: list[tuple[str, bytes]]
    body: bytes

    @property
    def position(self) -> Position:
        return self.fetched_at, self.poll_id, self.body_sha256


def header_list(stored: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The headers as received, from the archive's ``headers`` (text, or ``{"base64": ...}`` for other bytes)."""
    out: list[tuple[str, bytes]] = []
    for name, value in stored.items():
        if isinstance(value, dict):
            out.append((name, base64.b64decode(value.get("base64", ""))))
        else:
            out.append((name, str(value).encode()))
    return out


def _response(record: asyncpg.Record) -> ArchivedResponse:
    headers = record["headers"]
    return ArchivedResponse(
        fetched_at=record["fetched_at"],
        poll_id=record["poll_id"],
        body_sha256=bytes(record["body_sha256"]),
        topic=record["topic"],
        partition=record["msg_partition"],
        offset=record["msg_offset"],
        key=record["message_key"],
        kind=record["kind"],
        headers=header_list(orjson.loads(headers) if isinstance(headers, str) else headers),
        body=bytes(record["body"]),
    )


@dataclass
class Report:
    """What a run did (or, dry, would do): rows inserted per table, rows whose column changed per table and column,
    rows changed by the rank and payoff links, a few examples of each change, and the responses that failed."""

    inserted: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)  # "table.column"
    linked: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[list[Any]]] = field(default_factory=dict)  # "table.column" -> [[key, stored, new]]
    failed: Counter[str] = field(default_factory=Counter)  # error class
    failed_examples: list[list[str]] = field(default_factory=list)  # [[poll_id, fetched_at, error]]
    rejected: int = 0
    unmatched_ranks: int = 0
    responses: int = 0
    records: int = 0

    def add(self, other: Report) -> None:
        self.inserted.update(other.inserted)
        self.changed.update(other.changed)
        self.linked.update(other.linked)
        for name, found in other.examples.items():
            mine = self.examples.setdefault(name, [])
            for example in found:
                if len(mine) < EXAMPLES and all(example[0] != seen[0] for seen in mine):  # one per row
                    mine.append(example)
        self.failed.update(other.failed)
        self.failed_examples += other.failed_examples[: max(0, EXAMPLES - len(self.failed_examples))]
        self.rejected += other.rejected
        self.unmatched_ranks += other.unmatched_ranks
        self.responses += other.responses
        self.records += other.records

    def fail(self, response: ArchivedResponse, error: Exception) -> None:
        self.failed[type(error).__name__] += 1
        if len(self.failed_examples) < EXAMPLES:
            self.failed_examples.append([response.poll_id, response.fetched_at.isoformat(), str(error)[:200]])

    @property
    def changed_rows(self) -> int:
        return sum(self.changed.values())

    def is_empty(self) -> bool:
        return not (self.inserted or self.changed or self.linked)

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "inserted": self.inserted,
                "changed": self.changed,
                "linked": self.linked,
                "examples": self.examples,
                "failed": self.failed,
                "failed_examples": self.failed_examples,
                "rejected": self.rejected,
                "unmatched_ranks": self.unmatched_ranks,
                "responses": self.responses,
                "records": self.records,
            },
            default=str,
        ).decode()

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> Report:
        data = orjson.loads(text) if isinstance(text, str) else dict(text)
        return cls(
            inserted=Counter(data.get("inserted", {})),
            changed=Counter(data.get("changed", {})),
            linked=Counter(data.get("linked", {})),
            examples=dict(data.get("examples", {})),
            failed=Counter(data.get("failed", {})),
            failed_examples=list(data.get("failed_examples", [])),
            rejected=int(data.get("rejected", 0)),
            unmatched_ranks=int(data.get("unmatched_ranks", 0)),
            responses=int(data.get("responses", 0)),
            records=int(data.get("records", 0)),
        )


@dataclass
class Run:
    """A run's checkpoint: where it is and what it did so far (``run_id`` None: a dry run, kept nowhere)."""

    run_id: int | None
    started_at: datetime | None
    total: int
    done: int = 0
    after: Position | None = None
    report: Report = field(default_factory=Report)
    resumed: bool = False


@dataclass
class _Staged:
    """The changes one transaction found, before they count (a transaction that fails counts nothing)."""

    keys: list[tuple[str, str, str]] = field(default_factory=list)  # (table, key json, column or "")
    examples: dict[str, list[list[Any]]] = field(default_factory=dict)
    linked: Counter[str] = field(default_factory=Counter)
    unmatched: list[UnmatchedRank] = field(default_factory=list)

    def take(self, table: str, found: Sequence[asyncpg.Record]) -> None:
        for record in found:
            key = record["key"]
            if record["inserted"]:
                self.keys.append((table, key, ""))
                continue
            changed = orjson.loads(record["changed"])
            for column, (stored, new) in changed.items():
                self.keys.append((table, key, column))
                examples = self.examples.setdefault(f"{table}.{column}", [])
                if len(examples) < EXAMPLES:
                    examples.append([orjson.loads(key), stored, new])


class ReprocessStore:
    """One connection's worth of reprocess work (a pool of one: reconnects after an outage)."""

    def __init__(self, settings: DatabaseSettings, dry_run: bool = False) -> None:
        self.settings = settings
        self.dry_run = dry_run
        one = settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1})
        self._pool = LazyPool(one, init=self._init_connection, session=SESSION)
        self._batches = BatchWriter(self._transaction)
        self._run: Run | None = None
        self._page: tuple[int, Position, int] | None = None  # (rows in the page, its last position, responses)
        self._page_report = Report()
        self._checkpointed = False
        self._rollup: bool | None = None  # whether the schema has the day rollup table (the Apache build)

    async def start(self) -> None:
        await self._pool.get()

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        await conn.execute(CREATE_SEEN_SQL)

    async def stop(self) -> None:
        await self._pool.close()

    async def count(self, selection: Selection) -> int:
        """The archived responses of a selection."""
        pool = await self._pool.get()
        return int(await pool.fetchval(COUNT_SQL, *selection.arguments()))

    async def page(self, selection: Selection, after: Position | None, limit: int) -> list[ArchivedResponse]:
        """The next ``limit`` archived responses of a selection after a position, in fetch order (a database
        outage is waited out, as for the writes)."""
        position = after or (None, None, None)

        async def fetch() -> list[asyncpg.Record]:
            pool = await self._pool.get()
            return await pool.fetch(PAGE_SQL, *selection.arguments(), *position, limit)

        found = await wait_out_outage(fetch, self.settings, "reading the archive", MAX_RETRY_DELAY_S)
        return [_response(r) for r in found]

    async def open_run(self, selection: Selection, restart: bool = False) -> Run:
        """The run of a selection: the unfinished one, resumed (unless ``restart``), else a new one; a dry run is
        a new one kept nowhere."""
        pool = await self._pool.get()
        total = await self.count(selection)
        if self.dry_run:
            self._run = Run(None, None, total)
            return self._run
        if restart:
            await pool.execute(ABANDON_SQL, selection.as_json())
        found = await pool.fetchrow(OPEN_RUN_SQL, selection.as_json())
        if found is not None:
            after = None
            if found["after_fetched_at"] is not None:
                after = (found["after_fetched_at"], found["after_poll_id"], bytes(found["after_sha256"]))
            self._run = Run(
                found["run_id"],
                found["started_at"],
                total,
                int(found["done_responses"]),
                after,
                Report.from_json(found["report"]),
                resumed=True,
            )
        else:
            record = await pool.fetchrow(NEW_RUN_SQL, selection.as_json(), total)
            assert record is not None  # noqa: S101 - INSERT ... RETURNING returns its row
            self._run = Run(record["run_id"], record["started_at"], total)
        return self._run

    async def finish(self) -> None:
        """Mark the run done (a later run of the same selection starts from the beginning)."""
        if self._run is not None and self._run.run_id is not None:
            pool = await self._pool.get()
            await pool.execute(FINISH_SQL, self._run.run_id)

    async def write_page(self, rows: Sequence[Row], responses: Sequence[ArchivedResponse], report: Report) -> Report:
        """Write one page's rows (waiting out outages), move the checkpoint past ``responses``, and return the page's
        report (``report``: what normalizing the page found, e.g. failures, merged in)."""
        assert self._run is not None and responses  # noqa: S101 - open_run first; a page has responses
        rows = _unique_odds(rows)
        self._page = (len(rows), responses[-1].position, len(responses))  # what a whole-page transaction holds
        self._page_report = Report()
        self._page_report.add(report)
        self._page_report.responses = len(responses)
        self._checkpointed = False
        result: WriteResult = await self._batches.write_until_done(rows)
        self._page_report.rejected += len(result.rejected)
        if not self._checkpointed:  # no rows, or the page was split around rejected rows: its checkpoint on its own
            pool = await self._pool.get()
            async with pool.acquire() as conn, conn.transaction():
                await self._checkpoint(conn, Report())
        run = self._run
        run.done += len(responses)
        run.after = responses[-1].position
        run.report.add(self._page_report)
        return self._page_report

    async def _checkpoint(self, conn: asyncpg.pool.PoolConnectionProxy, pending: Report) -> None:
        """Move the run's checkpoint past the page, with its counts and ``pending`` (this transaction's)."""
        assert self._run is not None and self._page is not None  # noqa: S101
        if self._run.run_id is None:
            return
        total = Report()
        for part in (self._run.report, self._page_report, pending):
            total.add(part)
        _, (at, poll_id, sha), n = self._page
        await conn.execute(CHECKPOINT_SQL, self._run.run_id, self._run.done + n, at, poll_id, sha, total.to_json())

    async def _transaction(self, rows: Sequence[Row]) -> dict[str, int]:
        """One transaction: the rows (a dry run rolls them back to a savepoint), the changes counted, and the
        checkpoint when these are the whole page; the counts join the page's report only once it committed."""
        pool = await self._pool.get()
        by_table, odds, placeholders = grouped(rows)
        staged = _Staged()
        written: dict[str, int] = {}
        whole_page = self._page is not None and len(rows) == self._page[0]
        try:
            async with pool.acquire() as conn, conn.transaction():
                savepoint = conn.transaction()
                await savepoint.start()
                if placeholders is not None:
                    await conn.execute(PLACEHOLDERS_SQL, *placeholders)
                for table in ORDER:
                    if table == ODDS and odds is not None:
                        written[table] = await self._write_odds(conn, odds, staged)
                    elif table in by_table:
                        written[table] = await self._write_table(conn, table, by_table[table], staged)
                staged.linked.update(await link(conn, by_table, staged.unmatched))
                await (savepoint.rollback() if self.dry_run else savepoint.commit())
                counted = await self._count(conn, staged)
                if whole_page:
                    await self._checkpoint(conn, counted)
        except asyncpg.InterfaceError as exc:
            raise DatabaseUnavailable(f"lost the connection during a reprocess write ({type(exc).__name__})") from exc
        self._page_report.add(counted)
        self._checkpointed = self._checkpointed or whole_page
        return written

    async def _count(self, conn: asyncpg.pool.PoolConnectionProxy, staged: _Staged) -> Report:
        """The transaction's changes as a report. A real run counts every insert and change it made (a later page
        finds what an earlier one wrote); a dry run rolls its pages back, so it counts a row once per session (the
        seen table), however many pages would change it."""
        report = Report(linked=Counter({t: n for t, n in staged.linked.items() if n}))
        report.unmatched_ranks = len(staged.unmatched)
        report.examples = staged.examples
        found: list[tuple[str, str]] = [(table, column) for table, _, column in staged.keys]
        if self.dry_run and staged.keys:
            tables, keys, columns = (list(c) for c in zip(*staged.keys, strict=True))
            found = [(r["tbl"], r["col"]) for r in await conn.fetch(SEEN_SQL, tables, keys, columns)]
        for table, column in found:
            if column:
                report.changed[f"{table}.{column}"] += 1
            else:
                report.inserted[table] += 1
        return report

    async def _write_table(
        self, conn: asyncpg.pool.PoolConnectionProxy, table: str, records: list[tuple[Any, ...]], staged: _Staged
    ) -> int:
        written = 0
        for n, batch in enumerate(rounds(table, records)):
            if n:
                await conn.execute(truncate_staging_sql(table))
            await copy_rows(conn, table, batch, staged=True)
            await conn.execute(BY_KEY)
            found = await conn.fetch(CHANGES_SQL[table])
            await conn.execute(UNSET_BY_KEY)
            if not found:
                continue
            staged.take(table, found)
            status = await conn.execute(MERGE_SQL[table])
            written += int(status.rsplit(" ", 1)[-1])
        return written

    async def _write_odds(self, conn: asyncpg.pool.PoolConnectionProxy, odds: StagedOdds, staged: _Staged) -> int:
        """The page's snapshots (one each, :func:`_unique_odds`): inserted when new, corrected when changed."""
        await copy_staged(conn, odds)
        await conn.execute(BY_KEY)
        times = [board[1] for board in odds.boards]
        found = await conn.fetch(CHANGES_SQL[ODDS], min(times), max(times))
        await conn.execute(UNSET_BY_KEY)
        if not found:
            return 0
        staged.take(ODDS, found)
        if self._rollup is None:
            self._rollup = await rollup.exists(conn)
        all_new = len(found) == len(odds) and all(r["inserted"] for r in found)
        return await _correct_odds(conn, self._rollup, all_new)


async def _correct_odds(conn: asyncpg.pool.PoolConnectionProxy, rolled_up: bool, all_new: bool) -> int:
    """Insert the new snapshots and correct the changed ones; the day rollup follows (where the table exists)."""
    if all_new:  # a rebuild: every staged snapshot is new, they go in as they are and roll up from the stage
        status = await conn.execute(INSERT_STAGED_ODDS_SQL)
        if rolled_up:
            await rollup.merge_staged(conn)
        return int(status.rsplit(" ", 1)[-1])
    done = await conn.fetch(CORRECT_ODDS_SQL)
    if done and rolled_up:
        inserted = [(r["time"], r["race_id"], r["pool"], r["selection"], r["odds"]) for r in done if r["inserted"]]
        corrected = [(r["time"], r["race_id"], r["pool"], r["selection"]) for r in done if not r["inserted"]]
        await rollup.merge(conn, inserted)
        await rollup.recompute(conn, corrected)
    return len(done)


def _unique_odds(rows: Sequence[Row]) -> list[Row]:
    """The rows with one odds row per snapshot key, the last one read (an upsert cannot change a row twice)."""
    key = itemgetter(*(COLUMNS[ODDS].index(k) for k in KEYS[ODDS]))
    last: dict[tuple[Any, ...], int] = {}
    odds = 0
    for n, row in enumerate(rows):
        if row.table == ODDS:
            last[key(row.values)] = n
            odds += 1
    if len(last) == odds:
        return list(rows)
    keep = set(last.values())
    return [row for n, row in enumerate(rows) if row.table != ODDS or n in keep]
