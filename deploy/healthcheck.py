"""The container's health check: ``python -m deploy.healthcheck`` asks the ``/healthz`` of the role it runs.

The image runs one role per container, chosen by the command (``racelab run sink``), and each role answers on a
port of its own (``ops.<role>_port``; the control API on ``api.port``). The check reads that command from the
container's first process (``/proc/1/cmdline``: the ``racelab`` process itself, or an init such as ``docker-init --
racelab run sink``), takes the port from the same settings the process reads, and asks ``/healthz`` on loopback.
Exit status 0 means healthy, 1 unhealthy (Docker's meaning); one line says why.

A container running anything but a long-lived role (``racelab migrate``, ``racelab --help``) has no endpoint: it
counts as healthy while it runs.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from runtime.settings import WORKER_ROLES, Settings, load_settings

ROLES = (*WORKER_ROLES, "api")
FIRST_PROCESS = Path("/proc/1/cmdline")
# Addresses that mean "every interface": the check asks loopback instead.
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 (compared, never bound)


def role_of(argv: Sequence[str]) -> str | None:
    """The role of a ``racelab run ROLE`` command line, or None for any other command."""
    for index, arg in enumerate(argv[:-1]):
        if arg == "run" and any(Path(word).name == "racelab" or word == "racelab.cli" for word in argv[:index]):
            role = argv[index + 1]
            return role if role in ROLES else None
    return None


def first_process_argv(path: Path = FIRST_PROCESS) -> list[str]:
    """The command line of the container's first process (arguments are NUL-separated in procfs)."""
    return [arg for arg in path.read_bytes().decode(errors="replace").split("\0") if arg]


def listening_on(settings: Settings, role: str) -> tuple[str, int] | None:
    """Host and port where ``role`` serves ``/healthz`` (None: its ops endpoints are turned off)."""
    if role == "api":
        return settings.api.host, settings.api.port
    if settings.ops.enabled:
        return settings.ops.host, settings.ops.port(role)
    return None


def healthz_url(host: str, port: int) -> str:
    """The ``/healthz`` URL of a process listening on ``host:port``, asked on loopback for a wildcard address."""
    host = WILDCARDS.get(host, host)
    return f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"


def check(settings: Settings, argv: Sequence[str], timeout_s: float) -> tuple[bool, str]:
    """Whether the role of ``argv`` answers its ``/healthz`` with 200, and one line saying so."""
    role = role_of(argv)
    if role is None:
        return True, "not a long-running role: nothing to check"
    where = listening_on(settings, role)
    if where is None:
        return True, f"{role}: ops endpoints are turned off (RACELAB_OPS__ENABLED=false): nothing to check"
    if where[1] == 0:
        return False, f"{role}: its port is 0 (a free port picked at start), which a health check cannot know"
    url = healthz_url(*where)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 (an http URL built above)
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return False, f"{role}: {url} did not answer ({exc})"
    return status == 200, f"{role}: {url} answered {status}"


def main() -> int:
    settings = load_settings()
    healthy, line = check(settings, first_process_argv(), settings.ops.check_timeout_s)
    # Docker keeps this line as the check's log (docker inspect --format '{{json .State.Health}}').
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
