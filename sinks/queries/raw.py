"""The archived raw responses behind a race or a poll (``racelab raw show``), for audits and bug reports."""

from __future__ import annotations

import orjson

from schemas import race_ids
from sinks.queries.base import Executor, InvalidRaceId
from sinks.queries.models import RawResponse

_SELECT = (
    "SELECT fetched_at, topic, msg_partition, msg_offset, message_key, endpoint, params, poll_id, http_status, "
    "octet_length(body) AS size_bytes, headers, body FROM raw_archive"
)


def _model(row: object) -> RawResponse:
    r = dict(row)  # type: ignore[call-overload]
    for name in ("params", "headers"):
        if isinstance(r[name], str):
            r[name] = orjson.loads(r[name])
    return RawResponse(**r)


async def raw_for_race(db: Executor, race_id: str) -> list[RawResponse]:
    """Every archived response of a race: the calls keyed by its id and the day-wide calls of its track and day."""
    try:
        key = race_ids.parse(race_id)
    except ValueError as exc:
        raise InvalidRaceId(race_id) from exc
    day = race_ids.day_key(key.source, key.track, key.day)
    rows = await db.fetch(
        f"{_SELECT} WHERE message_key = ANY($1::text[]) ORDER BY fetched_at, topic, msg_partition, msg_offset",
        [race_id, day],
    )
    return [_model(r) for r in rows]


async def raw_for_poll(db: Executor, poll_id: str) -> list[RawResponse]:
    """Every archived page of one poll (one call)."""
    rows = await db.fetch(f"{_SELECT} WHERE poll_id = $1 ORDER BY fetched_at, msg_offset", poll_id)
    return [_model(r) for r in rows]
