"""``racelab stack up | status | down``: the local stack as one unit.

State lives in ``<home>/stack.json`` (ports, pids; mode 0600 because it holds the local database password) and the
endpoints other commands read in ``<home>/stack.env`` (``RACELAB_*`` lines, see :mod:`runtime.settings`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.stack.alertmanager import AlertmanagerInstall
from deploy.stack.broker import TansuBroker
from deploy.stack.errors import StackError
from deploy.stack.postgres import PostgresCluster
from deploy.stack.prometheus import PrometheusInstall
from deploy.stack.timescaledb import TimescaleBuild
from runtime.settings import STACK_ENV_FILE, StackSettings

log = logging.getLogger(__name__)

# Tansu holds a new group's first join for about half the rebalance timeout: keep group timeouts short locally.
LOCAL_BROKER_ENV = {
    "RACELAB_BROKER__IDEMPOTENCE": "false",
    "RACELAB_BROKER__SESSION_TIMEOUT_MS": "6000",
    "RACELAB_BROKER__REBALANCE_TIMEOUT_MS": "4000",
    # Tansu holds an empty fetch for the whole wait even when data arrives: keep the wait (and the latency) short.
    "RACELAB_BROKER__FETCH_MAX_WAIT_MS": "50",
}


@dataclass(frozen=True)
class ComponentStatus:
    """What ``stack status`` shows for one component."""

    name: str
    running: bool
    endpoint: str
    detail: str = ""
    tool: bool = False  # a binary the stack provides (Prometheus, Alertmanager), not a process it runs

    @property
    def state(self) -> str:
        if self.tool:
            return "found" if self.running else "MISSING"
        return "up" if self.running else "DOWN"


class Tool(Protocol):
    """The binaries of a tool the stack provides, as ``stack status`` shows them."""

    @property
    def folder(self) -> Path: ...

    def version(self) -> str: ...


class LocalStack:
    """The broker and the database of the local stack, with their persisted state."""

    def __init__(self, settings: StackSettings, home: Path) -> None:
        self.settings = settings
        self.home = home
        state = self._load()
        self.broker = TansuBroker(
            self.home,
            port=int(state.get("broker_port") or settings.broker_port),
            pid=int(state.get("broker_pid") or 0) or None,
        )
        self.postgres = PostgresCluster(
            self.home,
            settings.postgres_bin_dir,
            port=int(state.get("postgres_port") or settings.postgres_port),
            password=str(state.get("postgres_password") or ""),
        )
        self.timescale = TimescaleBuild(self.home, settings.postgres_bin_dir)
        self.prometheus = PrometheusInstall(self.home)
        self.alertmanager = AlertmanagerInstall(self.home)

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def env_file(self) -> Path:
        return self.home / STACK_ENV_FILE

    def _load(self) -> dict[str, int | str | None]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_private(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)

    def _save(self) -> None:
        state = {
            "broker_port": self.broker.port,
            "broker_pid": self.broker.pid,
            "postgres_port": self.postgres.port,
            "postgres_password": self.postgres.password,
        }
        self._write_private(self.state_file, json.dumps(state, indent=2) + "\n")
        env = {
            "RACELAB_BROKER__BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            **LOCAL_BROKER_ENV,
            "RACELAB_DATABASE__URL": self.postgres.url(),
        }
        self._write_private(self.env_file, "".join(f"{key}={value}\n" for key, value in env.items()))

    def up(self) -> bool:
        """Start whatever is not running; returns True when something had to be started."""
        changed = False
        self.home.mkdir(parents=True, exist_ok=True)
        self.timescale.ensure()
        for tool in (self.prometheus, self.alertmanager):
            try:
                tool.ensure()
            except StackError as exc:  # a tool for tests and the demo: the broker and the database still start
                log.warning("%s; 'racelab stack status' shows it missing", exc)
        if not self.postgres.running():
            self.postgres.init()
            self.postgres.start(timeout=self.settings.start_timeout_s)
            changed = True
        if not self.broker.running():
            if self.broker.pid:
                log.warning("broker was not running; the new one starts empty (Tansu keeps topics in memory)")
            self.broker.start(timeout=self.settings.start_timeout_s)
            changed = True
        self._save()
        return changed

    def status(self) -> list[ComponentStatus]:
        """Current status of each component; Prometheus and Alertmanager are tools, "found" when they are there."""
        return [
            ComponentStatus(
                "broker",
                self.broker.running(),
                self.broker.bootstrap_servers,
                f"pid {self.broker.pid}" if self.broker.pid else "",
            ),
            ComponentStatus(
                "postgresql",
                self.postgres.running(),
                f"127.0.0.1:{self.postgres.port}",
                "timescaledb available" if self.timescale.installed() else "timescaledb missing",
            ),
            tool_status("prometheus", self.prometheus.located()),
            tool_status("alertmanager", self.alertmanager.located()),
        ]

    def down(self, purge: bool = False) -> None:
        """Stop both components; ``purge`` also deletes the database files and the endpoints file."""
        self.broker.stop()
        self.postgres.stop()
        if purge:
            self.postgres.purge()
            self.env_file.unlink(missing_ok=True)
            self.state_file.unlink(missing_ok=True)
        else:
            self._save()


def tool_status(name: str, found: Tool | None) -> ComponentStatus:
    """``stack status`` of a tool: found with its version, or missing."""
    if found is None:
        return ComponentStatus(name, False, "-", "missing (racelab stack up fetches it)", tool=True)
    try:
        detail = f"{found.version()} (a tool, not started)"
    except StackError as exc:
        return ComponentStatus(name, False, str(found.folder), str(exc), tool=True)
    return ComponentStatus(name, True, str(found.folder), detail, tool=True)
