"""What the producers read from and write to TimescaleDB: the stored schedule, slot claims, failures, checkpoints."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, get_args

import asyncpg
import orjson

from producers.calendar import Calendar, RaceDay
from runtime.db import translate_errors
from runtime.settings import DatabaseSettings
from schemas.race_ids import date_of_key, source_of
from schemas.records import Source
from schemas.topics import KINDS, Kind

STALE_CLAIM = "5 minutes"


@dataclass(frozen=True)
class RaceRef:
    """A race of the stored schedule."""

    race_id: str
    race_type: str
    track: str
    race_date: date
    race_no: int
    post_time: datetime
    status: str
    details: dict[str, Any]

    @property
    def source(self) -> str:
        return source_of(self.race_type)

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> RaceRef:
        """From a ``races`` row (``race_id, race_type, track_code, race_date, race_no, post_time, status, details``)."""
        return cls(
            r["race_id"],
            r["race_type"],
            r["track_code"],
            r["race_date"],
            r["race_no"],
            r["post_time"],
            r["status"],
            json_object(r["details"]),
        )


@dataclass(frozen=True)
class FailureRow:
    """An open row of ``ingestion_failures``."""

    id: int
    source: str
    kind: Kind
    endpoint: str
    params: dict[str, str]
    message_key: str | None
    retry_count: int


def fingerprint(source: str, endpoint: str, params: dict[str, str]) -> str:
    """Identity of a call: same source, endpoint and parameters = same failure."""
    return hashlib.sha256(orjson.dumps([source, endpoint, params], option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def key_day(message_key: str) -> date | None:
    """The race day a message key names (``horse-seoul-3-20241210``, ``kra:seoul:20241210``), else None."""
    return date_of_key(message_key)


class CalendarStore:
    """The ``kspo_calendar`` table: the KSPO race days learned from responses (:mod:`producers.calendar`)."""

    pool: asyncpg.Pool
    settings: DatabaseSettings

    async def calendar(self, race_type: str) -> Calendar:
        """Every known race day of a race type's tracks."""
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT race_type, track_code, race_date, year, round_no, day_no FROM kspo_calendar "
                "WHERE race_type = $1",
                race_type,
            )
        return Calendar(RaceDay(*r) for r in rows)

    async def learn(self, days: Sequence[RaceDay], learned_from: str) -> int:
        """Keep newly published race days (a date or a round already known is kept as first published)."""
        if not days:
            return 0
        async with translate_errors(self.settings):
            status = await self.pool.execute(
                "INSERT INTO kspo_calendar (race_type, track_code, race_date, year, round_no, day_no, learned_from) "
                "SELECT *, $7 FROM unnest($1::text[], $2::text[], $3::date[], $4::smallint[], $5::smallint[], "
                "$6::smallint[]) ON CONFLICT DO NOTHING",
                [d.race_type for d in days],
                [d.track for d in days],
                [d.day for d in days],
                [d.year for d in days],
                [d.round_no for d in days],
                [d.day_no for d in days],
                learned_from,
            )
        return int(status.rsplit(" ", 1)[-1])


class ProducerStore(CalendarStore):
    """Database access of the producers over one pool."""

    def __init__(self, pool: asyncpg.Pool, settings: DatabaseSettings) -> None:
        self.pool = pool
        self.settings = settings

    async def claim(self, task: str, target: str, slot: datetime) -> bool:
        """Claim a slot; False when another producer (or an earlier run) already has it."""
        async with translate_errors(self.settings):
            row = await self.pool.fetchval(
                "INSERT INTO poll_slots (task, target, slot) VALUES ($1, $2, $3) "
                "ON CONFLICT (task, target, slot) DO UPDATE SET claimed_at = now() "
                f"WHERE NOT poll_slots.done AND poll_slots.claimed_at < now() - interval '{STALE_CLAIM}' "
                "RETURNING 1",
                task,
                target,
                slot,
            )
        return row is not None

    async def finish(self, task: str, target: str, slot: datetime, outcome: str) -> None:
        """Mark a claimed slot done with its outcome (ok, failed, empty...)."""
        async with translate_errors(self.settings):
            await self.pool.execute(
                "UPDATE poll_slots SET done = true, outcome = $4 WHERE task = $1 AND target = $2 AND slot = $3",
                task,
                target,
                slot,
                outcome,
            )

    async def record_slots(self, slots: Sequence[tuple[str, str, datetime, str]]) -> int:
        """Slots polled while the database was unreachable, as done with their outcomes (task, target, slot,
        outcome); a slot another producer claimed meanwhile keeps its row, done with this outcome."""
        async with translate_errors(self.settings):
            status = await self.pool.execute(
                "INSERT INTO poll_slots (task, target, slot, done, outcome) "
                "SELECT task, target, slot, true, outcome FROM unnest($1::text[], $2::text[], $3::timestamptz[], "
                "$4::text[]) AS s(task, target, slot, outcome) "
                "ON CONFLICT (task, target, slot) DO UPDATE SET done = true, outcome = excluded.outcome "
                "WHERE NOT poll_slots.done",
                [s[0] for s in slots],
                [s[1] for s in slots],
                [s[2] for s in slots],
                [s[3] for s in slots],
            )
        return int(status.rsplit(" ", 1)[-1])

    async def ping(self) -> None:
        """Raises :class:`DatabaseUnavailable` while the database does not answer."""
        async with translate_errors(self.settings):
            await self.pool.fetchval("SELECT 1")

    async def last_slot(self, task: str, target: str) -> datetime | None:
        """The newest slot already claimed for a target (a restart continues after it)."""
        async with translate_errors(self.settings):
            value: datetime | None = await self.pool.fetchval(
                "SELECT max(slot) FROM poll_slots WHERE task = $1 AND target = $2", task, target
            )
        return value

    async def slot_outcome(self, task: str, target: str, slot: datetime) -> str | None:
        async with translate_errors(self.settings):
            value: str | None = await self.pool.fetchval(
                "SELECT outcome FROM poll_slots WHERE task = $1 AND target = $2 AND slot = $3 AND done",
                task,
                target,
                slot,
            )
        return value

    async def races_between(
        self, start: datetime, end: datetime, race_types: Sequence[str], tracks: Sequence[str] | None = None
    ) -> list[RaceRef]:
        """Races of the stored schedule whose post time lies in [start, end]."""
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT race_id, race_type, track_code, race_date, race_no, post_time, status, details FROM races "
                "WHERE post_time BETWEEN $1 AND $2 AND race_type = ANY($3::text[]) "
                "AND ($4::text[] IS NULL OR track_code = ANY($4::text[])) AND status <> 'cancelled' "
                "ORDER BY post_time, race_id",
                start,
                end,
                list(race_types),
                list(tracks) if tracks else None,
            )
        return [RaceRef.from_row(r) for r in rows]

    async def record_failure(
        self,
        *,
        source: str,
        kind: str,
        endpoint: str,
        params: dict[str, str],
        message_key: str,
        error_class: str,
        error_code: str | None,
        message: str,
        http_status: int | None,
        attempts: int,
    ) -> tuple[int, bool]:
        """Insert the failure, or count it on the open row of the same call; returns (id, newly opened)."""
        async with translate_errors(self.settings):
            row = await self.pool.fetchrow(
                "INSERT INTO ingestion_failures (source, kind, endpoint, params, fingerprint, error_code, "
                "error_class, error_message, http_status, attempts, message_key) "
                "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11) "
                "ON CONFLICT (fingerprint) WHERE NOT resolved DO UPDATE SET occurrences = "
                "ingestion_failures.occurrences + 1, last_failed_at = now(), error_code = excluded.error_code, "
                "error_class = excluded.error_class, error_message = excluded.error_message, "
                "http_status = excluded.http_status, attempts = excluded.attempts "
                "RETURNING id, (xmax = 0) AS inserted",
                source,
                kind,
                endpoint,
                orjson.dumps(params).decode(),
                fingerprint(source, endpoint, params),
                error_code,
                error_class,
                message,
                http_status,
                attempts,
                message_key,
            )
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always returns the row
        return int(row["id"]), bool(row["inserted"])

    async def open_failures(self, limit: int = 100, max_retries: int = 50) -> list[FailureRow]:
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT id, source, kind, endpoint, params, message_key, retry_count FROM ingestion_failures "
                "WHERE NOT resolved AND retry_count < $2 ORDER BY last_failed_at LIMIT $1",
                limit,
                max_retries,
            )
        return [
            FailureRow(
                r["id"],
                r["source"],
                r["kind"],
                r["endpoint"],
                json_object(r["params"]),
                r["message_key"],
                r["retry_count"],
            )
            for r in rows
        ]

    async def failure(self, failure_id: int) -> FailureRow | None:
        async with translate_errors(self.settings):
            r = await self.pool.fetchrow(
                "SELECT id, source, kind, endpoint, params, message_key, retry_count FROM ingestion_failures "
                "WHERE id = $1",
                failure_id,
            )
        if r is None:
            return None
        return FailureRow(
            r["id"], r["source"], r["kind"], r["endpoint"], json_object(r["params"]), r["message_key"], r["retry_count"]
        )

    async def retried(self, failure_id: int, resolved: bool) -> None:
        async with translate_errors(self.settings):
            await self.pool.execute(
                "UPDATE ingestion_failures SET retry_count = retry_count + 1, last_retry_at = now(), "
                "resolved = $2, resolved_at = CASE WHEN $2 THEN now() END WHERE id = $1",
                failure_id,
                resolved,
            )

    async def log_collection(
        self,
        *,
        source: str,
        kind: str,
        endpoint: str,
        message_key: str,
        pages: int,
        items: int,
        ok: bool,
        poll_id: str | None = None,
        publish_s: float | None = None,
    ) -> None:
        """Record one collection: a call, its outcome, the poll id its pages were published with and how long
        publishing took (long: the pages were kept through a broker outage)."""
        row = dict(
            source=source,
            kind=kind,
            endpoint=endpoint,
            message_key=message_key,
            pages=pages,
            items=items,
            ok=ok,
            poll_id=poll_id,
            publish_s=publish_s,
        )
        await self.log_collections([row])

    async def log_collections(self, rows: Sequence[dict[str, Any]]) -> None:
        """Several :meth:`log_collection` rows (the keyword arguments of each) in one round trip."""
        async with translate_errors(self.settings):
            await self.pool.executemany(
                "INSERT INTO collection_log (source, kind, endpoint, message_key, race_date, ok, pages, items, "
                "poll_id, publish_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                [
                    (
                        r["source"],
                        r["kind"],
                        r["endpoint"],
                        r["message_key"],
                        key_day(r["message_key"]),
                        r["ok"],
                        r["pages"],
                        r["items"],
                        r["poll_id"],
                        r["publish_s"],
                    )
                    for r in rows
                ],
            )

    async def last_successes(self) -> dict[tuple[str, str], float]:
        """Unix time of the last successful collection per source and kind, from ``collection_log``."""
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT s.source, k.kind, extract(epoch FROM l.collected_at)::float8 AS at "
                "FROM unnest($1::text[]) AS s(source) CROSS JOIN unnest($2::text[]) AS k(kind) "
                "CROSS JOIN LATERAL (SELECT collected_at FROM collection_log c WHERE c.ok AND c.source = s.source "
                "AND c.kind = k.kind ORDER BY collected_at DESC LIMIT 1) AS l",
                list(get_args(Source)),
                list(KINDS),
            )
        return {(r["source"], r["kind"]): r["at"] for r in rows}

    async def checkpoint_done(self, job_id: str, day: date, track: str, kind: str) -> bool:
        async with translate_errors(self.settings):
            return bool(
                await self.pool.fetchval(
                    "SELECT 1 FROM backfill_checkpoints WHERE job_id = $1 AND day = $2 AND track = $3 AND kind = $4",
                    job_id,
                    day,
                    track,
                    kind,
                )
            )

    async def mark_checkpoint(self, job_id: str, day: date, track: str, kind: str, messages: int) -> None:
        async with translate_errors(self.settings):
            await self.pool.execute(
                "INSERT INTO backfill_checkpoints (job_id, day, track, kind, messages) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT DO NOTHING",
                job_id,
                day,
                track,
                kind,
                messages,
            )


def json_object(value: object) -> dict[str, Any]:
    """A jsonb value as a dict (asyncpg hands jsonb over as text); anything else as an empty dict."""
    loaded = orjson.loads(value) if isinstance(value, str | bytes) else value
    return dict(loaded) if isinstance(loaded, dict) else {}
