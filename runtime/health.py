"""Reachability checks used by ``racelab check`` (and later by the readiness endpoint)."""

from __future__ import annotations

from runtime.db import connect
from runtime.kafka import list_topics
from runtime.settings import Settings
from schemas.errors import PipelineError


async def check_broker(settings: Settings) -> tuple[bool, str]:
    """Whether the broker answers a metadata request."""
    try:
        topics = await list_topics(settings.broker, timeout_s=5.0)
    except PipelineError as exc:
        return False, str(exc)
    return True, f"{settings.broker.bootstrap_servers} ({len(topics)} topics)"


async def check_database(settings: Settings) -> tuple[bool, str]:
    """Whether the database accepts the login and has TimescaleDB available."""
    try:
        conn = await connect(settings.database)
    except PipelineError as exc:
        return False, str(exc)
    try:
        version = await conn.fetchval(
            "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
            " (SELECT 'available ' || default_version FROM pg_available_extensions WHERE name = 'timescaledb'))"
        )
    finally:
        await conn.close()
    if version is None:
        return False, f"{settings.database.display_url()}: TimescaleDB is not installed on this server"
    return True, f"{settings.database.display_url()} (timescaledb {version})"


async def check_all(settings: Settings) -> list[tuple[str, bool, str]]:
    """Every check, as (name, ok, detail)."""
    broker_ok, broker_detail = await check_broker(settings)
    db_ok, db_detail = await check_database(settings)
    return [("broker", broker_ok, broker_detail), ("database", db_ok, db_detail)]
