"""A private apt configuration in a folder of the stack: one Debian suite, its own package lists and cache.

The archive address is read from the machine's own apt sources and never written here. apt does its usual checks:
the suite's Release file must be signed by a key of the Debian archive keyring, and every file fetched must match the
hashes of that signed index. Nothing of the machine's apt state changes, so root is not needed to fetch.

:func:`unpack_debian_package` puts the files of one binary package (the tools of the stack: Prometheus,
Alertmanager) in a folder of the stack with it: no maintainer scripts, nothing installed system-wide.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deploy.stack.errors import StackError
from deploy.stack.process import run

log = logging.getLogger(__name__)
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APT_SOURCES = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
OS_RELEASE = Path("/etc/os-release")


def debian_archive_uri(files: list[Path] | None = None, *, component: str = "apt") -> str:
    """The Debian archive address the machine's apt already uses (``.../debian``, not the security archive)."""
    for path in files or APT_SOURCES:
        if not path.is_file() or path.suffix not in {".list", ".sources"}:
            continue
        text = path.read_text(errors="replace")
        candidates = (
            re.findall(r"^URIs:\s*(\S+)", text, re.M)
            if path.suffix == ".sources"
            else re.findall(r"^deb(?:-src)?\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
        )
        for uri in candidates:
            if re.search(r"/debian/?$", uri):
                return str(uri).rstrip("/")
    raise StackError("no Debian archive found in the apt sources; cannot fetch Debian packages", component=component)


def debian_codename(os_release: Path = OS_RELEASE, *, component: str = "apt") -> str:
    """The machine's Debian suite (``VERSION_CODENAME`` of ``/etc/os-release``, e.g. ``bookworm``)."""
    try:
        text = os_release.read_text(errors="replace")
    except OSError as exc:
        raise StackError(f"cannot read {os_release}", component=component) from exc
    found = re.search(r'^VERSION_CODENAME="?([a-z]+)"?\s*$', text, re.M)
    if found is None:
        raise StackError(f"{os_release} names no VERSION_CODENAME", component=component)
    return found.group(1)


@dataclass(frozen=True)
class PrivateApt:
    """``apt-get`` restricted to one suite of the machine's Debian archive, with lists and cache under ``root``."""

    root: Path
    component: str
    log_file: Path

    def configure(self, kind: Literal["deb", "deb-src"], suite: str, uri: str | None = None) -> None:
        """Write the one-line source list (``uri`` defaults to the archive of the machine's apt sources)."""
        for sub in ("lists/partial", "archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        archive = uri or debian_archive_uri(component=self.component)
        (self.root / "sources.list").write_text(f"{kind} [signed-by={KEYRING}] {archive} {suite} main\n")

    def options(self) -> list[str]:
        """The ``-o`` options that point apt at this folder instead of the machine's configuration."""
        settings = {
            "Dir::Etc::sourcelist": str(self.root / "sources.list"),
            "Dir::Etc::sourceparts": "/dev/null",
            "Dir::State::Lists": str(self.root / "lists"),
            "Dir::Cache": str(self.root),
            "Acquire::Languages": "none",
            # The lists and downloads live in a folder apt's unprivileged download user may not be able to write.
            "APT::Sandbox::User": "root",
        }
        return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]

    def run(self, *args: str, cwd: Path) -> None:
        """``apt-get ARGS`` in ``cwd`` (downloads land there); a failure raises with the log file named."""
        cwd.mkdir(parents=True, exist_ok=True)
        result = run(["apt-get", *self.options(), *args], cwd=cwd, log=self.log_file)
        if result.returncode != 0:
            raise StackError(f"apt-get {args[0]} failed", component=self.component, log_file=str(self.log_file))


def unpack_debian_package(
    package: str,
    root: Path,
    *,
    cache: Path,
    component: str,
    log_file: Path,
    prepare: Callable[[Path], None] | None = None,
) -> None:
    """Fetch ``package`` of the machine's Debian suite and unpack its files into ``root``.

    ``apt-get download`` through a :class:`PrivateApt` under ``cache`` (deleted afterwards), then ``dpkg-deb -x`` into
    a folder beside ``root``; ``prepare`` may adjust that folder before it is renamed to ``root`` all at once, so a
    half-unpacked tree is never taken for an install. When another ``stack up`` got there first, its tree stays.
    """
    suite = debian_codename(component=component)
    apt = PrivateApt(cache / "apt", component, log_file)
    apt.configure("deb", suite)
    log.info("fetching Debian's %s package (%s)", package, suite)
    downloads = cache / "download"
    apt.run("update", cwd=downloads)
    apt.run("download", package, cwd=downloads)
    debs = sorted(downloads.glob(f"{package}_*.deb"))
    if not debs:
        raise StackError("apt-get download left no .deb", component=component, log_file=str(log_file))
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if run(["dpkg-deb", "-x", str(debs[-1]), str(partial)], log=log_file).returncode != 0:
        raise StackError(f"dpkg-deb -x {debs[-1].name} failed", component=component, log_file=str(log_file))
    if prepare is not None:
        prepare(partial)
    try:
        partial.rename(root)
    except OSError:
        if not root.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # another `stack up` finished first
    shutil.rmtree(cache, ignore_errors=True)
