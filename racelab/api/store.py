"""What the control API reads from TimescaleDB: stored races, failures, collection counts and the day's rows.

All reads go through the producers' pool; driver errors become :mod:`schemas.errors` at this boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from producers.state import RaceRef
from runtime.db import translate_errors
from runtime.settings import DatabaseSettings
from sinks import landings
from sinks import queries as q
from sinks.landings import ARCHIVE_GRACE_S
from sinks.queries.base import day_window

FAILURE_COLUMNS = (
    "id, source, kind, endpoint, params, message_key, error_class, error_code, error_message, http_status, "
    "attempts, occurrences, retry_count, resolved, resolved_at, first_failed_at, last_failed_at, last_retry_at"
)


@dataclass(frozen=True)
class CollectionCounts:
    """Collections of one source and kind about one race day (from ``collection_log``)."""

    source: str
    kind: str
    collected: int
    failed: int
    messages: int
    last_success_at: datetime | None
    freshness_s: float | None
    unarchived: int = 0


@dataclass(frozen=True)
class StoredRace:
    """A stored race with its odds rows per pool."""

    race: q.Race
    odds_per_pool: dict[str, int]


class ControlStore:
    """Database reads of the control API over one pool."""

    def __init__(self, pool: asyncpg.Pool, settings: DatabaseSettings) -> None:
        self.pool = pool
        self.settings = settings

    async def races(self, race_ids: Sequence[str]) -> dict[str, RaceRef]:
        """The stored schedule's rows of these races (races not stored are absent)."""
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT race_id, race_type, track_code, race_date, race_no, post_time, status, details FROM races "
                "WHERE race_id = ANY($1::text[])",
                list(race_ids),
            )
        return {r["race_id"]: RaceRef.from_row(r) for r in rows}

    async def open_failure_ids(self, fingerprints: Sequence[str]) -> dict[str, int]:
        """Id of the open failure row of each call fingerprint that has one."""
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT fingerprint, id FROM ingestion_failures WHERE NOT resolved AND fingerprint = ANY($1::text[])",
                list(fingerprints),
            )
        return {r["fingerprint"]: int(r["id"]) for r in rows}

    async def failures(self, resolved: bool | None, limit: int) -> list[asyncpg.Record]:
        """Failure rows, newest failure first; ``resolved`` None = both."""
        async with translate_errors(self.settings):
            rows: list[asyncpg.Record] = await self.pool.fetch(
                f"SELECT {FAILURE_COLUMNS} FROM ingestion_failures WHERE ($1::boolean IS NULL OR resolved = $1) "
                "ORDER BY last_failed_at DESC, id DESC LIMIT $2",
                resolved,
                limit,
            )
        return rows

    async def failure(self, failure_id: int) -> asyncpg.Record | None:
        async with translate_errors(self.settings):
            row: asyncpg.Record | None = await self.pool.fetchrow(
                f"SELECT {FAILURE_COLUMNS} FROM ingestion_failures WHERE id = $1", failure_id
            )
        return row

    async def collection_counts(self, day: date, archive_grace_s: float = ARCHIVE_GRACE_S) -> list[CollectionCounts]:
        """Per source and kind: collections about ``day``, last success and its age (database clock), and their
        pages missing from the raw archive ``archive_grace_s`` after they were published."""
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT source, kind, count(*) FILTER (WHERE ok) AS collected,"
                " count(*) FILTER (WHERE NOT ok) AS failed,"
                " coalesce(sum(pages) FILTER (WHERE ok), 0) AS messages,"
                " max(collected_at) FILTER (WHERE ok) AS last_ok,"
                " extract(epoch FROM now() - max(collected_at) FILTER (WHERE ok))::float8 AS freshness,"
                " coalesce(sum(c.pages - a.n) FILTER (WHERE ok AND c.poll_id IS NOT NULL AND c.collected_at < now()"
                " - make_interval(secs => $2)), 0) AS unarchived "
                "FROM collection_log c CROSS JOIN LATERAL (SELECT count(*) AS n FROM raw_archive r"
                " WHERE r.poll_id = c.poll_id) a WHERE race_date = $1 GROUP BY source, kind",
                day,
                archive_grace_s,
            )
        return [
            CollectionCounts(
                r["source"],
                r["kind"],
                r["collected"],
                r["failed"],
                r["messages"],
                r["last_ok"],
                r["freshness"],
                int(r["unarchived"]),
            )
            for r in rows
        ]

    async def unstored(self) -> dict[tuple[str, str], float]:
        """Collected but not stored, per source and kind (:mod:`sinks.landings`)."""
        return {(u.source, u.kind): u.seconds for u in await landings.unstored(self.pool, self.settings)}

    async def open_failure_counts(self) -> dict[tuple[str, str], int]:
        """Unresolved failures per (source, kind), any day."""
        async with translate_errors(self.settings):
            rows = await self.pool.fetch(
                "SELECT source, kind, count(*) AS n FROM ingestion_failures WHERE NOT resolved GROUP BY source, kind"
            )
        return {(r["source"], r["kind"]): int(r["n"]) for r in rows}

    async def day_rows(self, day: date) -> dict[str, int]:
        """Rows stored for the day's races: races (all / from a schedule), entries, odds snapshots, results."""
        async with translate_errors(self.settings):
            row = await self.pool.fetchrow(
                "WITH day AS (SELECT race_id, status FROM races WHERE race_date = $1) SELECT "
                "(SELECT count(*) FROM day) AS total_races, "
                "(SELECT count(*) FROM day WHERE status <> 'unknown') AS scheduled, "
                "(SELECT count(*) FROM entries WHERE race_id IN (SELECT race_id FROM day)) AS entries, "
                "(SELECT count(*) FROM odds_snapshots WHERE race_id IN (SELECT race_id FROM day)) AS odds, "
                "(SELECT count(*) FROM results WHERE race_id IN (SELECT race_id FROM day)) AS results",
                day,
            )
        return {k: int(v) for k, v in dict(row or {}).items()}

    async def day_races(self, day: date) -> list[StoredRace]:
        """The stored races of a day (by post time, track, number) with their odds rows per pool."""
        start, end = day_window(day)
        async with translate_errors(self.settings):
            races = await q.races_by_date(self.pool, day)
            rows = await self.pool.fetch(
                "SELECT race_id, pool, count(*) AS n FROM odds_snapshots WHERE race_id = ANY($1::text[]) "
                "AND time >= $2 AND time < $3 GROUP BY race_id, pool",
                [r.race_id for r in races],
                start,
                end,
            )
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["race_id"], {})[row["pool"]] = int(row["n"])
        return [StoredRace(r, counts.get(r.race_id, {})) for r in races]

    async def race_odds(self, race_id: str, pool: str | None) -> tuple[datetime | None, list[q.OddsSnapshot]]:
        """A stored race's post time and odds rows (:class:`~sinks.queries.RaceNotFound` when not stored)."""
        from racelab.charts import race_odds

        async with translate_errors(self.settings):
            return await race_odds(self.pool, race_id, pool)
