"""Connections to TimescaleDB, with driver errors mapped to :mod:`schemas.errors` at this boundary."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg

from runtime.pgerrors import DATABASE_ERRORS, classify, sqlstate
from runtime.settings import DatabaseSettings
from schemas.errors import DatabaseError, DatabaseUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
FIRST_RETRY_DELAY_S = 0.2  # the first wait after an outage is noticed; doubled after each failed try


@contextlib.asynccontextmanager
async def translate_errors(settings: DatabaseSettings) -> AsyncIterator[None]:
    """Turn driver and socket errors into clear :class:`DatabaseError` messages without secrets.

    What an error means comes from :func:`runtime.pgerrors.classify`: a refused login or a missing database is a
    :class:`DatabaseError`, an outage a :class:`DatabaseUnavailable`; any other error passes through unchanged.
    """
    where = settings.display_url()
    try:
        yield
    except DATABASE_ERRORS as exc:
        outcome = classify(exc)
        if outcome == "login":
            raise DatabaseError(_login_refused(exc, where)) from exc
        if outcome == "unavailable":
            raise DatabaseUnavailable(_unavailable(exc, where)) from exc
        raise


async def wait_out_outage(
    call: Callable[[], Awaitable[T]], settings: DatabaseSettings, what: str, max_delay_s: float = 10.0
) -> T:
    """What ``call()`` returns, calling it again while the database is unavailable: a wait before each new try,
    doubled from :data:`FIRST_RETRY_DELAY_S` up to ``max_delay_s``, each logged naming ``what``. Driver errors are
    classified by :func:`translate_errors`; any other error ends the wait (it is raised)."""
    delay = FIRST_RETRY_DELAY_S
    while True:
        try:
            async with translate_errors(settings):
                return await call()
        except DatabaseUnavailable as exc:
            log.warning("%s; %s again in %.1fs", exc, what, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay_s, delay * 2)


def _login_refused(exc: BaseException, where: str) -> str:
    state = sqlstate(exc)
    if state == "28P01":
        return f"the database at {where} refused the login (wrong user or password)"
    if state == "3D000":
        return f"the database named in {where} does not exist"
    return f"the database at {where} refused the login: {exc.__class__.__name__}"


def _unavailable(exc: BaseException, where: str) -> str:
    state = sqlstate(exc) or ""
    if state.startswith("08"):
        return f"lost the connection to the database at {where}"
    if not state or state == "57P03":  # a socket, a timeout, or a server that is starting up
        return f"cannot reach the database at {where} ({exc.__class__.__name__})"
    return f"the database at {where} cannot take work now ({exc.__class__.__name__})"


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
    session: dict[str, str] | None = None,
) -> asyncpg.Pool:
    """A connection pool with the same session settings as :func:`connect` (``init`` runs on each new connection),
    and ``session``'s (server parameters given at connect: they outlast the ``RESET ALL`` of a pool release)."""
    async with translate_errors(settings):
        pool = await asyncpg.create_pool(
            settings.url.get_secret_value(),
            init=init,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.connect_timeout_s,
            server_settings={
                "search_path": f"{settings.schema_name},public",
                "application_name": "racelab",
                **(session or {}),
            },
        )
    assert pool is not None  # noqa: S101 - asyncpg types the result as optional
    return pool


async def close_pool(pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
    """Close a pool, waiting for its connections at most ``timeout_s``; with the server gone, drop them instead."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)
    except DATABASE_ERRORS as exc:
        if classify(exc) != "unavailable":
            raise
        pool.terminate()


class LazyPool:
    """A pool opened on first use (:func:`create_pool`, with ``init`` and ``session``) and closed by :meth:`close`
    (:func:`close_pool`); used again after a close, it opens a new one."""

    def __init__(
        self,
        settings: DatabaseSettings,
        init: Callable[[asyncpg.Connection], Coroutine[Any, Any, None]] | None = None,
        session: dict[str, str] | None = None,
    ) -> None:
        self.settings, self.init, self.session = settings, init, session
        self._pool: asyncpg.Pool | None = None

    async def get(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await create_pool(self.settings, init=self.init, session=self.session)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await close_pool(pool)
