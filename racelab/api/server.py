"""``racelab run api`` (uvicorn in the command's event loop) and ``racelab api openapi FILE``.

Start-up order: refuse without an ingestion key, bind the port (a clear error when taken), open the producers'
parts, then serve. Stop (SIGTERM or Ctrl+C, via the command's stop event): stop accepting, let running requests
finish (bounded), then close the producers' parts, which flushes the raw-topic producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from racelab.api.app import create_app
from racelab.api.auth import require_configured_key
from racelab.api.service import open_control_service
from runtime.settings import Settings
from schemas.errors import ConfigurationError

log = logging.getLogger(__name__)
GRACEFUL_S = 30


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers (the command's stop event decides), telling when it serves."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


def listen(host: str, port: int) -> socket.socket:
    """A bound socket for ``host:port`` (port 0 picks a free one); :class:`ConfigurationError` when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"the control API cannot listen on {host}:{port} ({exc.strerror})") from None
    return sock


async def serve(app: FastAPI, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``sock`` until ``stop`` is set."""
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=GRACEFUL_S
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    started = asyncio.create_task(server.ready.wait())
    await asyncio.wait([serving, started], return_when=asyncio.FIRST_COMPLETED)
    if server.ready.is_set():
        host, port = sock.getsockname()[:2]
        log.info("control API on http://%s:%d (/api/ingestion/..., /docs, /metrics, /healthz, /readyz)", host, port)
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    for task in (started, waiting):
        task.cancel()
    await serving


async def run_api(settings: Settings, stop: asyncio.Event) -> None:
    """The control API until ``stop`` is set."""
    require_configured_key(settings.api)
    sock = listen(settings.api.host, settings.api.port)
    try:
        async with open_control_service(settings) as service:
            await serve(create_app(settings, service), sock, stop)
    finally:
        sock.close()
    log.info("control API stopped")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the control API (independent of settings)."""
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def write_openapi(path: Path) -> None:
    """Write the OpenAPI document as formatted JSON (what ``deploy/openapi.json`` holds)."""
    path.write_text(json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
