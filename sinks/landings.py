"""Collected but not stored: per source and kind, how long data the producers collected has waited for the tables.

The sink records when it last stored rows of each source and kind (``landings``, after every batch); the producers
record every collection (``collection_log``, with how many items it had). Data of a source and kind is unstored
for as long as its oldest collection with items after the last landing is old: 0 when everything collected has
landed, growing while calls succeed and publish but nothing reaches the tables (a stuck processor, a broker that
lost the messages, a sink that does not consume). Both times come from the database's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

import asyncpg

from runtime.db import LazyPool, translate_errors
from runtime.settings import DatabaseSettings
from schemas.records import Source
from schemas.topics import KINDS

log = logging.getLogger(__name__)
# A published page is counted as missing from the raw archive once it is older than this: the archiver's delay is
# well under a second, so a page not there after 30 s was lost by the broker, or the archiver is behind (its lag).
ARCHIVE_GRACE_S = 30.0

LANDED_SQL = """
INSERT INTO landings (source, kind, landed_at)
SELECT source, kind, now() FROM unnest($1::text[], $2::text[]) AS l(source, kind)
ON CONFLICT (source, kind) DO UPDATE SET landed_at = excluded.landed_at
"""

UNSTORED_SQL = """
SELECT s.source, k.kind, l.landed_at,
       extract(epoch FROM now() - (
           SELECT min(c.collected_at) FROM collection_log c
           WHERE c.ok AND c.items > 0 AND c.source = s.source AND c.kind = k.kind
             AND c.collected_at > coalesce(l.landed_at, '-infinity')
       ))::float8 AS unstored_s
FROM unnest($1::text[]) AS s(source)
CROSS JOIN unnest($2::text[]) AS k(kind)
LEFT JOIN landings l ON l.source = s.source AND l.kind = k.kind
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Unstored:
    """One source and kind: when rows last landed, and how long its oldest unstored collection has waited."""

    source: str
    kind: str
    landed_at: datetime | None
    seconds: float  # 0 when nothing collected waits


class Landings:
    """Writes ``landings`` and measures what waits, over the pool it is given (closed by :meth:`close`)."""

    def __init__(self, pool: LazyPool, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._pool = pool

    async def landed(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Rows of these (source, kind) pairs were stored just now."""
        found = sorted(set(pairs))
        if not found:
            return
        pool = await self._pool.get()
        async with translate_errors(self.settings):
            await pool.execute(LANDED_SQL, [s for s, _ in found], [k for _, k in found])

    async def unstored(self) -> list[Unstored]:
        return await unstored(await self._pool.get(), self.settings)

    async def close(self) -> None:
        await self._pool.close()


async def unstored(pool: asyncpg.Pool, settings: DatabaseSettings) -> list[Unstored]:
    """Every source and kind: when its rows last landed, and how long its oldest unstored collection has waited."""
    async with translate_errors(settings):
        rows = await pool.fetch(UNSTORED_SQL, list(get_args(Source)), list(KINDS))
    return [Unstored(r["source"], r["kind"], r["landed_at"], max(0.0, r["unstored_s"] or 0.0)) for r in rows]
