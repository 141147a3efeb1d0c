"""Real broker and real TimescaleDB for integration tests, shared by the whole run.

Where they come from, in this order:
1. URLs in the environment: ``RACELAB_BROKER__BOOTSTRAP_SERVERS`` and ``RACELAB_DATABASE__URL``;
2. testcontainers (Redpanda, timescale/timescaledb) when a Docker engine answers;
3. the local stack (``racelab stack up``: Tansu + private PostgreSQL with TimescaleDB).

Each test gets its own topic prefix and its own database schema (migrated fresh, dropped afterwards), so tests
never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from deploy.stack.manager import LOCAL_BROKER_ENV, LocalStack
from runtime.db import connect
from runtime.settings import Settings, StackSettings, default_home
from sinks.migrate import migrate

ENV_BROKER = "RACELAB_BROKER__BOOTSTRAP_SERVERS"
ENV_DATABASE = "RACELAB_DATABASE__URL"
TIMESCALE_IMAGE = "timescale/timescaledb:2.19.3-pg15"
REDPANDA_IMAGE = "docker.redpanda.com/redpandadata/redpanda:v24.2.7"


@dataclass
class Endpoints:
    """Where the test broker and database are, and how they were obtained."""

    bootstrap_servers: str
    database_url: str
    origin: str
    broker_overrides: dict[str, object] = field(default_factory=dict)
    local_stack: LocalStack | None = None


def _docker_answers() -> bool:
    """Whether a Docker engine answers ``/_ping`` on its unix socket (or ``DOCKER_HOST``)."""
    import socket

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: object = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            hostname, _, port = host.removeprefix("tcp://").partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (hostname, int(port or 2375))
        else:
            return False
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(128)
    except OSError:
        return False


@contextlib.contextmanager
def _containers() -> Iterator[Endpoints]:
    from testcontainers.community.kafka import RedpandaContainer
    from testcontainers.community.postgres import PostgresContainer

    with RedpandaContainer(REDPANDA_IMAGE) as redpanda, PostgresContainer(TIMESCALE_IMAGE, driver=None) as pg:
        yield Endpoints(redpanda.get_bootstrap_server(), pg.get_connection_url(), "testcontainers")


def _local_stack() -> Endpoints:
    stack = LocalStack(StackSettings(), default_home())
    stack.up()
    overrides = {key.split("__", 1)[1].lower(): value for key, value in LOCAL_BROKER_ENV.items()}
    return Endpoints(
        stack.broker.bootstrap_servers,
        stack.postgres.url(),
        "local stack",
        broker_overrides=overrides,
        local_stack=stack,
    )


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    """The broker and database every integration test of this run uses."""
    if os.environ.get(ENV_BROKER) and os.environ.get(ENV_DATABASE):
        yield Endpoints(os.environ[ENV_BROKER], os.environ[ENV_DATABASE], "environment")
    elif _docker_answers():
        with _containers() as found:
            yield found
    else:
        yield _local_stack()


def pytest_report_header(config: pytest.Config) -> str:
    return "integration endpoints: environment URLs, else testcontainers, else the local stack"


@pytest.fixture
def test_id() -> str:
    """A short unique id for this test's topics, groups and schema."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(endpoints: Endpoints, test_id: str) -> Settings:
    """Settings pointing at the shared endpoints, with this test's own topic prefix and schema."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        broker={"bootstrap_servers": endpoints.bootstrap_servers, **endpoints.broker_overrides},
        database={"url": endpoints.database_url, "schema_name": f"t_{test_id}"},
        topics={"prefix": f"t{test_id}", "partitions": 4},
    )


@pytest.fixture
async def db_schema(settings: Settings) -> AsyncIterator[str]:
    """This test's schema, migrated; dropped with everything in it after the test."""
    await migrate(settings.database)
    yield settings.database.schema_name
    conn = await connect(settings.database)
    try:
        await conn.execute(f'DROP SCHEMA "{settings.database.schema_name}" CASCADE')
    finally:
        await conn.close()


def pipeline_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a ``racelab`` subprocess that uses this test's broker, database schema and topics."""
    broker = settings.broker
    return {
        **os.environ,
        "RACELAB_BROKER__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "RACELAB_BROKER__IDEMPOTENCE": str(broker.idempotence).lower(),
        "RACELAB_BROKER__SESSION_TIMEOUT_MS": str(broker.session_timeout_ms),
        "RACELAB_BROKER__REBALANCE_TIMEOUT_MS": str(broker.rebalance_timeout_ms),
        "RACELAB_BROKER__FETCH_MAX_WAIT_MS": str(broker.fetch_max_wait_ms),
        "RACELAB_DATABASE__URL": settings.database.url.get_secret_value(),
        "RACELAB_DATABASE__SCHEMA_NAME": settings.database.schema_name,
        "RACELAB_TOPICS__PREFIX": settings.topics.prefix,
        "RACELAB_TOPICS__PARTITIONS": "4",
        # Several workers run at once in a test: each picks a free port for /metrics, /healthz and /readyz.
        "RACELAB_OPS__PRODUCERS_PORT": "0",
        "RACELAB_OPS__PROCESSORS_PORT": "0",
        "RACELAB_OPS__SINK_PORT": "0",
        "RACELAB_OPS__ARCHIVER_PORT": "0",
        **extra,
    }


def simulator_env(base: str) -> dict[str, str]:
    """Environment entries that point a ``racelab`` subprocess's clients at the simulator serving on ``base``."""
    return {
        "RACELAB_KRA__BASE_URL": f"{base}/B551015",
        "RACELAB_KSPO__BASE_URL": f"{base}/B551014",
        "RACELAB_ODDS_FEED__BASE_URL": base,
        "RACELAB_PRODUCERS__SIMULATOR_URL": base,
    }


async def start_component(
    role: str,
    env: dict[str, str],
    *,
    stdout: int = asyncio.subprocess.DEVNULL,
    stderr: int = asyncio.subprocess.PIPE,
) -> asyncio.subprocess.Process:
    """``racelab run ROLE`` as a real process (by default its stderr kept for the test's checks)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "racelab.cli", "run", role, env=env, stdout=stdout, stderr=stderr
    )


class Worker:
    """A ``racelab run ROLE`` process whose stderr is read all along (a full pipe would block it)."""

    def __init__(self, role: str, proc: asyncio.subprocess.Process) -> None:
        self.role = role
        self.proc = proc
        self._stderr = asyncio.create_task(proc.stderr.read() if proc.stderr else asyncio.sleep(0, b""))

    @classmethod
    async def start(cls, role: str, env: dict[str, str]) -> Worker:
        return cls(role, await start_component(role, env))

    async def stderr(self) -> str:
        """Everything it wrote to stderr (waits for the process to end)."""
        return (await self._stderr).decode(errors="replace")

    async def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; its exit code (already set when it had ended on its own)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def report(self, lines: int = 40) -> str:
        """Its exit code and the last ``lines`` of its stderr, for a failing test's message (once it has ended)."""
        tail = "\n".join((await self.stderr()).splitlines()[-lines:])
        return f"--- {self.role} (exit {self.proc.returncode}), last {lines} lines of stderr:\n{tail}"


async def scalar(settings: Settings, sql: str, *args: Any) -> Any:
    """One value from this test's schema."""
    conn = await connect(settings.database)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
