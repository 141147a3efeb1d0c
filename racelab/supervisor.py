"""Several ``racelab`` commands as child processes of one: ``racelab run all`` and ``racelab demo``.

Each child is a real ``racelab run ROLE`` (or ``racelab simulator``) process, so it behaves exactly as when started
by hand. Stopping sends SIGTERM to every child, waits for their clean shutdown, and kills what is still running
after the grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0


@dataclass
class Child:
    """One child process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def start(name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path | None = None) -> Child:
    """Start ``racelab ARGS...``; its output goes to ``<log_dir>/<name>.log``, or to this process's own."""
    out: IO[bytes] | None = None
    path = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"{name}.log"
        out = path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "racelab.cli", *args],
        env=dict(env),
        stdout=out if out is not None else None,
        stderr=subprocess.STDOUT if out is not None else None,
        start_new_session=True,  # Ctrl+C reaches the supervisor only; it stops the children in order
    )
    return Child(name, process, path, out)


@contextmanager
def patient_interrupts(grace_s: float = STOP_GRACE_S) -> Iterator[None]:
    """While stopping, Ctrl+C is answered with a note instead of a KeyboardInterrupt (outside the main thread: no-op).

    Enter it before saying that the processes are being stopped: a user who sees that line and presses Ctrl+C again
    must not cut the stop short (the children run in sessions of their own and would be left running).
    """

    def again(signum: int, frame: object) -> None:
        log.warning("already stopping; waiting for the processes to exit (at most %.0fs each)", grace_s)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, again)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop(children: Sequence[Child], grace_s: float = STOP_GRACE_S) -> dict[str, int]:
    """Stop the children one by one in reverse start order (SIGTERM, then SIGKILL after ``grace_s``); exit codes.

    One at a time, so that what feeds another part stops first (the producers before the simulator they call).
    Another Ctrl+C meanwhile does not cut the stop short: it is answered with a note.
    """
    codes = {}
    with patient_interrupts(grace_s):
        for child in reversed(children):
            if child.running:
                child.process.send_signal(signal.SIGTERM)
            try:
                codes[child.name] = child.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", child.name, grace_s)
                child.process.kill()
                codes[child.name] = child.process.wait()
            if child._log is not None:
                child._log.close()
    return codes


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus ``extra`` (children read the same settings and stack.env)."""
    return {**os.environ, **extra}


def run_all(roles: Sequence[str], env: Mapping[str, str], poll_s: float = 0.5) -> int:
    """``racelab run all``: every role as a child until SIGINT/SIGTERM (0), or until one child dies (1)."""
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children = [start(role, ["run", role], env) for role in roles]
    log.info("running %s (pids %s)", ", ".join(roles), ", ".join(str(c.process.pid) for c in children))
    died: Child | None = None
    try:
        while not stopping and died is None:
            died = next((c for c in children if not c.running), None)
            time.sleep(poll_s)
    finally:
        codes = stop(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died is not None:
        log.error("%s exited with code %s; stopped the others", died.name, codes.get(died.name))
        return 1
    return 0
