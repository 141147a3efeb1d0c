"""The image's health check (deploy/healthcheck.py): the role from the container's command, the port from the
settings, and /healthz of a real ops server on loopback."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from deploy.healthcheck import check, first_process_argv, healthz_url, listening_on, role_of
from runtime.ops import OpsServer
from runtime.settings import Settings


@pytest.mark.parametrize(
    ("argv", "role"),
    [
        (["/opt/racelab/bin/python", "/opt/racelab/bin/racelab", "run", "sink"], "sink"),
        (["/sbin/docker-init", "--", "racelab", "run", "processors"], "processors"),
        (["racelab", "run", "api"], "api"),
        (["python", "-m", "racelab.cli", "run", "archiver"], "archiver"),
        (["racelab", "--help"], None),
        (["racelab", "migrate"], None),
        (["racelab", "run", "all"], None),  # the supervisor of every role: not a container's shape
        (["racelab", "run"], None),
        (["sleep", "run", "sink"], None),  # not racelab at all
        (["sh", "-c", "racelab run sink"], None),  # one word: the shell is the process, not racelab
    ],
)
def test_the_role_comes_from_the_racelab_command_line(argv: list[str], role: str | None):
    assert role_of(argv) == role


def test_the_command_line_is_read_as_procfs_writes_it(tmp_path: Path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/sbin/docker-init\0--\0racelab\0run\0producers\0")
    assert first_process_argv(cmdline) == ["/sbin/docker-init", "--", "racelab", "run", "producers"]
    assert role_of(first_process_argv(cmdline)) == "producers"


def test_each_role_is_asked_on_its_own_port_and_a_wildcard_address_on_loopback():
    settings = Settings(_env_file=None, api={"host": "0.0.0.0", "port": 8080}, ops={"host": "0.0.0.0"})  # type: ignore[call-arg]  # noqa: S104
    where = {role: listening_on(settings, role) for role in ("producers", "processors", "sink", "archiver", "api")}
    assert {role: found[1] for role, found in where.items() if found} == {
        "producers": 9101,
        "processors": 9102,
        "sink": 9103,
        "archiver": 9104,
        "api": 8080,
    }
    assert healthz_url("0.0.0.0", 9103) == "http://127.0.0.1:9103/healthz"  # noqa: S104
    assert healthz_url("::", 9103) == "http://[::1]:9103/healthz"
    assert healthz_url("10.1.2.3", 9103) == "http://10.1.2.3:9103/healthz"
    off = Settings(_env_file=None, ops={"enabled": False})  # type: ignore[call-arg]
    assert listening_on(off, "sink") is None
    assert listening_on(off, "api") == ("127.0.0.1", 8080)  # the control API serves its own /healthz


def test_no_role_or_no_endpoint_is_healthy_and_an_unknowable_port_is_not():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert check(settings, ["racelab", "migrate"], 1.0) == (True, "not a long-running role: nothing to check")
    off = Settings(_env_file=None, ops={"enabled": False})  # type: ignore[call-arg]
    healthy, line = check(off, ["racelab", "run", "sink"], 1.0)
    assert healthy and "turned off" in line
    free = Settings(_env_file=None, ops={"sink_port": 0})  # type: ignore[call-arg]
    healthy, line = check(free, ["racelab", "run", "sink"], 1.0)
    assert not healthy and "port is 0" in line


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_live_ops_server_is_healthy_and_a_silent_port_is_not():
    server = OpsServer("127.0.0.1", 0, checks=[])
    await server.start()
    try:
        settings = Settings(_env_file=None, ops={"host": "127.0.0.1", "sink_port": server.port})  # type: ignore[call-arg]
        healthy, line = await asyncio.to_thread(check, settings, ["racelab", "run", "sink"], 3.0)
        assert healthy, line
        assert line == f"sink: http://127.0.0.1:{server.port}/healthz answered 200"
    finally:
        await server.stop()
    silent = Settings(_env_file=None, ops={"host": "127.0.0.1", "sink_port": _closed_port()})  # type: ignore[call-arg]
    healthy, line = await asyncio.to_thread(check, silent, ["racelab", "run", "sink"], 3.0)
    assert not healthy
    assert "did not answer" in line
