"""Prometheus and promtool from Debian's ``prometheus`` package: a tool of the local stack, not one of its daemons.

Where the binaries come from, in this order:

1. ``prometheus`` and ``promtool`` on ``PATH`` or in ``/usr/bin`` (the package installed on the machine);
2. ``<home>/prometheus/usr/bin``, where ``racelab stack up`` extracts the package. It fetches the ``.deb`` of the
   machine's Debian suite with ``apt-get download`` through a private apt folder (:class:`PrivateApt`: signature
   and hash checks as apt always does them) and unpacks it with ``dpkg-deb -x``: no root, no maintainer scripts,
   nothing installed system-wide.

:class:`PrometheusServer` runs one server on loopback for tests and the demo: a given configuration file, a data
folder of its own in a temporary folder, a free port; it starts, waits for ``/-/ready`` and stops.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from deploy.stack.apt import PrivateApt, debian_codename
from deploy.stack.errors import StackError
from deploy.stack.process import free_port, run

log = logging.getLogger(__name__)
COMPONENT = "prometheus"
PACKAGE = "prometheus"
SYSTEM_BIN = Path("/usr/bin")


@dataclass(frozen=True)
class PrometheusBinaries:
    """Where ``prometheus`` and ``promtool`` are, and the web assets of the same package (if any)."""

    prometheus: Path
    promtool: Path
    web_assets: Path | None = None

    @classmethod
    def in_folder(cls, bin_dir: Path, share_dir: Path) -> PrometheusBinaries | None:
        """Both binaries of ``bin_dir`` (``None`` unless both are executable files)."""
        prometheus, promtool = bin_dir / "prometheus", bin_dir / "promtool"
        if not all(p.is_file() and os.access(p, os.X_OK) for p in (prometheus, promtool)):
            return None
        assets = share_dir / "prometheus" / "web"
        return cls(prometheus, promtool, assets if assets.is_dir() else None)

    def version(self) -> str:
        """The server's version, e.g. ``2.42.0+ds``."""
        result = run([str(self.prometheus), "--version"])
        found = re.search(r"version (\S+)", result.stdout + result.stderr)
        if result.returncode != 0 or found is None:
            raise StackError(f"{self.prometheus} --version did not answer", component=COMPONENT)
        return found.group(1)


def _system_binaries() -> PrometheusBinaries | None:
    on_path = shutil.which("prometheus"), shutil.which("promtool")
    if on_path[0] and on_path[1] and Path(on_path[0]).parent == Path(on_path[1]).parent:
        bin_dir = Path(on_path[0]).parent
        return PrometheusBinaries.in_folder(bin_dir, bin_dir.parent / "share")
    return PrometheusBinaries.in_folder(SYSTEM_BIN, SYSTEM_BIN.parent / "share")


@dataclass(frozen=True)
class PrometheusInstall:
    """Finds the binaries, or extracts Debian's ``prometheus`` package under ``<home>/prometheus``."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "prometheus"

    @property
    def cache(self) -> Path:
        return self.home / "cache" / "prometheus"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "prometheus-install.log"

    def located(self) -> PrometheusBinaries | None:
        """The machine's binaries if it has them, else the extracted package's, else ``None``."""
        return _system_binaries() or self._extracted()

    def _extracted(self) -> PrometheusBinaries | None:
        return PrometheusBinaries.in_folder(self.root / "usr" / "bin", self.root / "usr" / "share")

    def ensure(self) -> PrometheusBinaries:
        """The binaries, fetching and extracting the package first when the machine has none."""
        found = self.located()
        if found is not None:
            return found
        self._extract(self._download())
        shutil.rmtree(self.cache, ignore_errors=True)
        found = self.located()
        if found is None:
            raise StackError(
                f"the package was extracted but {self.root}/usr/bin has no prometheus and promtool",
                component=COMPONENT,
                log_file=str(self.log_file),
            )
        log.info("prometheus %s ready in %s", found.version(), found.prometheus.parent)
        return found

    def _download(self) -> Path:
        suite = debian_codename(component=COMPONENT)
        apt = PrivateApt(self.cache / "apt", COMPONENT, self.log_file)
        apt.configure("deb", suite)
        log.info("fetching Debian's %s package (%s)", PACKAGE, suite)
        downloads = self.cache / "download"
        apt.run("update", cwd=downloads)
        apt.run("download", PACKAGE, cwd=downloads)
        debs = sorted(downloads.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise StackError("apt-get download left no .deb", component=COMPONENT, log_file=str(self.log_file))
        return debs[-1]

    def _extract(self, deb: Path) -> None:
        partial = self.root.with_name(self.root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        if run(["dpkg-deb", "-x", str(deb), str(partial)], log=self.log_file).returncode != 0:
            raise StackError(f"dpkg-deb -x {deb.name} failed", component=COMPONENT, log_file=str(self.log_file))
        try:
            partial.rename(self.root)  # all at once: a half-extracted tree is never taken for an install
        except OSError:
            if self._extracted() is None:
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another `stack up` finished first


def prometheus_binaries(home: Path, *, install: bool = False) -> PrometheusBinaries:
    """The binaries for tests and the demo; ``install`` fetches the package when missing, else that is an error."""
    tool = PrometheusInstall(home)
    found = tool.ensure() if install else tool.located()
    if found is None:
        raise StackError("prometheus and promtool not found: run 'racelab stack up' once", component=COMPONENT)
    return found


class PrometheusServer:
    """One Prometheus server on ``host`` and a free port, with a throw-away data folder.

    ``start()`` returns once ``/-/ready`` answers; ``stop()`` ends the process and deletes the data. Also a context
    manager.
    """

    def __init__(self, binaries: PrometheusBinaries, config_file: Path, *, host: str = "127.0.0.1") -> None:
        self.binaries = binaries
        self.config_file = config_file
        self.host = host
        self.port = 0
        self.data_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path | None:
        return self.data_dir / "prometheus.log" if self.data_dir else None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it is ready (raises with the log's tail when it is not)."""
        if self._process is not None:
            return
        self.data_dir = Path(tempfile.mkdtemp(prefix="racelab-prometheus-"))
        self.port = free_port(self.host)
        argv = [
            str(self.binaries.prometheus),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--web.listen-address={self.host}:{self.port}",
        ]
        if self.binaries.web_assets is not None:
            argv.append(f"--web.local-assets={self.binaries.web_assets}")
        log_file = self.data_dir / "prometheus.log"
        with log_file.open("wb") as out:
            self._process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.data_dir)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:  # noqa: S310 - loopback URL
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise StackError(f"the server did not become ready within {timeout:.0f}s:\n{tail}", component=COMPONENT)

    def _log_tail(self, lines: int = 20) -> str:
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

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
