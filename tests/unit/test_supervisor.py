"""Stopping child processes: a second Ctrl+C never cuts the stop short (real processes, a real SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from racelab.demo import stop_children
from racelab.supervisor import Child, patient_interrupts


def sleeper(name: str) -> Child:
    return Child(name, subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))


def test_ctrl_c_right_after_the_stopping_line_still_stops_every_child():
    children = [sleeper("first"), sleeper("second")]
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        if "stopping every process" in text:
            os.kill(os.getpid(), signal.SIGINT)  # the impatient user, as soon as the line is on the screen

    try:
        stop_children(children, interrupted=True, say=say)
    finally:
        for child in children:
            child.process.kill()
            child.process.wait()
    assert said[0] == "\ninterrupted; stopping every process..."
    assert said[1] == "stopped: second (exit -15), first (exit -15)"


def test_patient_interrupts_notes_a_ctrl_c_and_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    with patient_interrupts():
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt here
    assert signal.getsignal(signal.SIGINT) is before
