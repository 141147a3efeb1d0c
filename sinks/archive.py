"""The raw archive: every raw message into ``raw_archive``, once, in batches (binary COPY + one idempotent insert).

A message is identified by its poll id, fetch time and the SHA-256 of its body: a redelivery after a crash, a
second archiver group reading the topics again, or a dead letter replayed with its original headers are the same
message and are stored once (``ON CONFLICT DO NOTHING`` on that key). Headers are kept whole (text, or base64 where
a value is not UTF-8 text); a message without the pipeline's headers is kept too, placed by its broker timestamp.
Outages are waited out by :class:`sinks.batches.BatchWriter`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from runtime.db import LazyPool
from runtime.settings import DatabaseSettings
from schemas.errors import PipelineError
from sinks.batches import BatchWriter
from sinks.rows import Row

TABLE = "raw_archive"
COLUMNS = (
    "fetched_at", "poll_id", "body_sha256", "topic", "msg_partition", "msg_offset", "message_key", "source", "kind",
    "endpoint", "params", "http_status", "headers", "body",
)  # fmt: skip
STAGE = "stage_raw_archive"
CREATE_STAGE_SQL = f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
INSERT_SQL = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM {STAGE} "
    "ON CONFLICT DO NOTHING RETURNING kind"
)


class ArchiveError(PipelineError):
    """A raw message the archive cannot hold (not expected: the rows are built to fit; stop, do not drop)."""


@dataclass(frozen=True)
class RawMessage:
    """One consumed raw message, as the archive needs it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]


def _text(value: bytes) -> str | dict[str, str]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:  # jsonb holds neither invalid UTF-8 nor NUL
        return {"base64": base64.b64encode(value).decode()}
    return text


def _key(key: bytes | None) -> str | None:
    """The message key as text (the pipeline's keys are ASCII); bytes text cannot hold are replaced by U+FFFD."""
    return None if key is None else key.decode("utf-8", "replace").replace("\x00", "\ufffd")


def _moment(text: str | None, timestamp_ms: int | None) -> datetime:
    if text:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    return datetime.fromtimestamp((timestamp_ms or 0) / 1000, UTC)


def archive_values(message: RawMessage) -> tuple[Any, ...]:
    """The archive row of a raw message, in :data:`COLUMNS` order."""
    headers = {name: _text(value) for name, value in message.headers}
    plain = {name: value for name, value in headers.items() if isinstance(value, str)}
    try:
        params = orjson.loads(plain["params"]) if "params" in plain else None
    except orjson.JSONDecodeError:
        params = None
    status = plain.get("http_status", "")
    return (
        _moment(plain.get("fetched_at"), message.timestamp_ms),
        plain.get("poll_id", ""),
        hashlib.sha256(message.value).digest(),
        message.topic,
        message.partition,
        message.offset,
        _key(message.key),
        plain.get("source"),
        plain.get("kind"),
        plain.get("endpoint"),
        orjson.dumps(params).decode() if isinstance(params, dict) else None,
        int(status) if status.isdigit() and int(status) < 32768 else None,
        orjson.dumps(headers).decode(),
        message.value,
    )


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.execute(CREATE_STAGE_SQL)


class ArchiveWriter:
    """Writes batches of raw messages into the archive; owns a pool whose connections carry the staging table."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._pool = LazyPool(settings, init=_init_connection)
        self._batches = BatchWriter(self._transaction)

    async def start(self) -> None:
        await self._pool.get()

    async def stop(self) -> None:
        await self._pool.close()

    async def write_until_done(self, messages: Sequence[RawMessage], max_delay_s: float = 10.0) -> dict[str, int]:
        """Store the messages not stored yet (one transaction), waiting out database outages; the messages stored
        for the first time, by kind. A message the archive cannot hold is an :class:`ArchiveError`: the batch is
        not acknowledged, nothing is dropped."""
        rows = [Row(TABLE, archive_values(m), m) for m in messages]
        result = await self._batches.write_until_done(rows, max_delay_s)
        if result.rejected:
            row, exc = result.rejected[0]
            m = row.source
            raise ArchiveError(
                f"{len(result.rejected)} message(s) the archive cannot hold, first {m.topic}/{m.partition}@{m.offset}:"
                f" {exc.__class__.__name__}"
            )
        return result.rows

    async def _transaction(self, rows: Sequence[Row]) -> dict[str, int]:
        """One transaction; the messages stored for the first time, by kind (summed over bisected parts)."""
        pool = await self._pool.get()
        async with pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table(STAGE, records=[r.values for r in rows], columns=COLUMNS)
            stored = await conn.fetch(INSERT_SQL)
        by_kind: dict[str, int] = {}
        for record in stored:
            kind = record["kind"] or "unknown"
            by_kind[kind] = by_kind.get(kind, 0) + 1
        return by_kind
