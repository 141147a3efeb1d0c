"""A tool of the stack run as a server on loopback for tests and the demo (Prometheus, Alertmanager).

:class:`LoopbackServer` gives it a free port and a throw-away folder (its data and its log), starts it, waits until
its readiness URL answers, and stops it. A subclass says only which command to run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from deploy.stack.errors import StackError
from deploy.stack.process import free_port


class LoopbackServer(ABC):
    """One server process on ``host`` and a free port, with a data folder deleted when it stops.

    ``start()`` returns once ``ready_path`` answers 200; ``stop()`` ends the process and deletes the folder. Also a
    context manager.
    """

    component: ClassVar[str]
    ready_path: ClassVar[str] = "/-/ready"

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.data_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def command(self, data_dir: Path) -> list[str]:
        """The server's argv, listening on ``self.host:self.port`` and keeping its data under ``data_dir``."""

    def workdir(self, data_dir: Path) -> Path:
        """The folder the server runs in."""
        return data_dir

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path | None:
        return self.data_dir / f"{self.component}.log" if self.data_dir else None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it is ready (raises with the log's tail when it is not)."""
        if self._process is not None:
            return
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"racelab-{self.component}-"))
        self.port = free_port(self.host)
        argv = self.command(self.data_dir)
        with (self.data_dir / f"{self.component}.log").open("wb") as out:
            self._process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir(self.data_dir)
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise StackError(f"the server did not become ready within {timeout:.0f}s:\n{tail}", component=self.component)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server wrote (empty once it is stopped: the log goes with the data folder)."""
        if self.log_file is None or not self.log_file.is_file():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and delete its data folder; safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
