"""The provenance headers of a raw message (``racelab.raw.<kind>``), as a model.

Header names are a contract (DESIGN): ``source``, ``kind``, ``endpoint``, ``params`` (JSON, service key removed),
``fetched_at`` (RFC 3339 UTC), ``poll_id``, ``http_status``. Values travel as UTF-8 bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, ConfigDict, field_validator

from schemas.records import Source
from schemas.topics import Kind

SECRET_NAMES = frozenset({"servicekey", "service_key"})


class RawHeaders(BaseModel):
    """Where a raw response came from."""

    model_config = ConfigDict(frozen=True)

    source: Source
    kind: Kind
    endpoint: str
    params: dict[str, str]
    fetched_at: datetime
    poll_id: str
    http_status: int

    @field_validator("params")
    @classmethod
    def _no_secrets(cls, params: dict[str, str]) -> dict[str, str]:
        if any(name.lower() in SECRET_NAMES for name in params):
            raise ValueError("params must not contain the service key")
        return params

    @field_validator("fetched_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("fetched_at must be timezone-aware")
        return value.astimezone(UTC)

    def to_kafka(self) -> list[tuple[str, bytes]]:
        """Kafka header list."""
        return [
            ("source", self.source.encode()),
            ("kind", self.kind.encode()),
            ("endpoint", self.endpoint.encode()),
            ("params", orjson.dumps(self.params, option=orjson.OPT_SORT_KEYS)),
            ("fetched_at", self.fetched_at.isoformat(timespec="microseconds").replace("+00:00", "Z").encode()),
            ("poll_id", self.poll_id.encode()),
            ("http_status", str(self.http_status).encode()),
        ]

    @classmethod
    def from_kafka(cls, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> RawHeaders:
        """Parse Kafka headers (raises pydantic ``ValidationError`` or ``ValueError`` when they are not valid)."""
        values = {k: v.decode() for k, v in headers if k in cls.model_fields}
        params = orjson.loads(values.pop("params", "{}"))
        return cls.model_validate({**values, "params": params})
