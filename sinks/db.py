"""Connections to TimescaleDB, with driver errors mapped to :mod:`sinks.errors` at this boundary."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg

from racelab.settings import DatabaseSettings
from sinks.errors import DatabaseError, DatabaseUnavailable


@contextlib.asynccontextmanager
async def translate_errors(settings: DatabaseSettings) -> AsyncIterator[None]:
    """Turn asyncpg and socket errors into clear :class:`DatabaseError` messages without secrets."""
    where = settings.display_url()
    try:
        yield
    except asyncpg.InvalidPasswordError as exc:
        raise DatabaseError(f"the database at {where} refused the login (wrong user or password)") from exc
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise DatabaseError(f"the database at {where} refused the login: {exc.__class__.__name__}") from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseError(f"the database named in {where} does not exist") from exc
    except (TimeoutError, OSError, asyncpg.CannotConnectNowError) as exc:
        raise DatabaseUnavailable(f"cannot reach the database at {where} ({exc.__class__.__name__})") from exc
    except asyncpg.PostgresConnectionError as exc:
        raise DatabaseUnavailable(f"lost the connection to the database at {where}") from exc


async def connect(settings: DatabaseSettings) -> asyncpg.Connection:
    """One connection with ``search_path`` set to the configured schema (then ``public`` for the extension)."""
    async with translate_errors(settings):
        return await asyncpg.connect(
            settings.url.get_secret_value(),
            timeout=settings.connect_timeout_s,
            server_settings={"search_path": f"{settings.schema_name},public", "application_name": "racelab"},
        )


async def create_pool(
    settings: DatabaseSettings,
    init: Callable[[asyncpg.Connection], Coroutine[Any, Any, None]] | None = None,
) -> asyncpg.Pool:
    """A connection pool with the same session settings as :func:`connect` (``init`` runs on each new connection)."""
    async with translate_errors(settings):
        pool = await asyncpg.create_pool(
            settings.url.get_secret_value(),
            init=init,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.connect_timeout_s,
            server_settings={"search_path": f"{settings.schema_name},public", "application_name": "racelab"},
        )
    assert pool is not None  # noqa: S101 - asyncpg types the result as optional
    return pool
