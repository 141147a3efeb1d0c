"""Debian's ``chromium`` for browser tests: found on the machine, else installed with apt (as root), with a Korean
font (``fonts-nanum``: track and race names are Hangul, which a bare machine draws as empty boxes).

Playwright drives it (``executable_path``); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
KOREAN_FONT = Path("/usr/share/fonts/truetype/nanum")
INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "fonts-nanum"]
# Known to work headless here: no sandbox (the tests run as root), no GPU, no network of the browser's own.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_TIMEOUT_S = 900


def _apt(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)


def chromium_path() -> str:
    """Path of Debian's chromium, installing it (and the Korean font) when missing; fails the test clearly when it
    cannot."""
    found = CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")
    if found and KOREAN_FONT.is_dir():
        return str(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"the browser tests need Debian's chromium and fonts-nanum: run '{' '.join(INSTALL)}' as root")
    done = _apt(INSTALL)
    if done.returncode != 0:  # package lists missing or stale on a fresh machine
        _apt(["apt-get", "update"])
        done = _apt(INSTALL)
    if done.returncode != 0 or not CHROMIUM.is_file():
        pytest.fail(f"'{' '.join(INSTALL)}' failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return str(CHROMIUM)
