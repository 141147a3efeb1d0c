"""``racelab demo`` as a user runs it: a (short, fast) simulated race day end to end, and Ctrl+C.

Uses the local stack (the demo's own schema ``demo`` and fresh topics), the simulator and every worker as real
processes on their default ports.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from .conftest import Endpoints

pytestmark = pytest.mark.integration


def demo(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACELAB_")}
    return subprocess.Popen(
        [sys.executable, "-m", "racelab.cli", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # Ctrl+C as at a terminal, even when the tests themselves run in the background (SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^  (\w+)\s+([\d,]+)$", output, re.M)}


def test_a_short_race_day_lands_in_the_database_and_everything_stops_cleanly(endpoints: Endpoints):
    if endpoints.local_stack is None:
        pytest.skip("the demo runs on the local stack")
    proc = demo("--speed", "500", "--until", "12:30")
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output
    progress = [line for line in output.splitlines() if line.startswith("[") and "KST]" in line]
    assert len(progress) >= 3 and "polls" in progress[-1] and "lag" in progress[-1]
    assert re.search(r"stopped: api \(exit 0\), producers \(exit 0\), processors \(exit 0\), sink \(exit 0\)", output)
    found = counts(output)
    # 10:35-12:30 KST: the first races of all seven tracks are run, official and paid.
    assert found["races"] >= 50 and found["entries"] > 300 and found["odds_snapshots"] > 10_000, found
    assert found["results"] > 0 and found["failures"] == 0, found
    assert "$ racelab query results horse-" in output and "finish_position" in output
    assert "X-Ingestion-Key: in " in output  # the generated key goes to a private file, never to the console


def test_ctrl_c_stops_every_process(endpoints: Endpoints):
    if endpoints.local_stack is None:
        pytest.skip("the demo runs on the local stack")
    proc = demo("--speed", "100")
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("[") and "KST]" in line and len([x for x in lines if "KST]" in x]) >= 3:
            break
    proc.send_signal(signal.SIGINT)
    while "interrupted; stopping every process" not in lines[-1] and time.monotonic() < deadline + 60:
        lines.append(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)  # impatient: a second Ctrl+C while the processes are being stopped
    rest, _ = proc.communicate(timeout=120)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert "interrupted; stopping every process" in output
    stopped = re.search(r"stopped: (.*)", output)
    assert stopped is not None and all(part.endswith("(exit 0)") for part in stopped[1].split(", ")), output
    assert len(stopped[1].split(", ")) == 6  # simulator, archiver, sink, processors, producers, control API
    assert "already stopping; waiting for the processes to exit" in output
