"""Prometheus and promtool from Debian's ``prometheus`` package: a tool of the local stack, not one of its daemons.

Where the binaries come from, in this order:

1. ``prometheus`` and ``promtool`` on ``PATH`` or in ``/usr/bin`` (the package installed on the machine);
2. ``<home>/prometheus/usr/bin``, where ``racelab stack up`` extracts the package
   (:func:`~deploy.stack.apt.unpack_debian_package`). It fetches the ``.deb`` of the machine's Debian suite with
   ``apt-get download`` through a private apt folder (signature and hash checks as apt always does them) and unpacks
   it with ``dpkg-deb -x``: no root, no maintainer scripts, nothing installed system-wide.

:class:`PrometheusServer` runs one server on loopback for tests and the demo: a given configuration file, a data
folder of its own in a temporary folder, a free port; it starts, waits for ``/-/ready`` and stops.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.debian_tool import DebianTool, version_of
from deploy.stack.loopback import LoopbackServer

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

    @property
    def folder(self) -> Path:
        """The folder of the binaries."""
        return self.prometheus.parent

    def version(self) -> str:
        """The server's version, e.g. ``2.42.0+ds``."""
        return version_of(self.prometheus, COMPONENT)


def _system_binaries() -> PrometheusBinaries | None:
    on_path = shutil.which("prometheus"), shutil.which("promtool")
    if on_path[0] and on_path[1] and Path(on_path[0]).parent == Path(on_path[1]).parent:
        bin_dir = Path(on_path[0]).parent
        return PrometheusBinaries.in_folder(bin_dir, bin_dir.parent / "share")
    return PrometheusBinaries.in_folder(SYSTEM_BIN, SYSTEM_BIN.parent / "share")


@dataclass(frozen=True)
class PrometheusInstall(DebianTool[PrometheusBinaries]):
    """Finds the binaries, or extracts Debian's ``prometheus`` package under ``<home>/prometheus``."""

    component = COMPONENT
    package = PACKAGE
    binaries_named = "prometheus and promtool"

    def on_machine(self) -> PrometheusBinaries | None:
        return _system_binaries()

    def extracted(self) -> PrometheusBinaries | None:
        return PrometheusBinaries.in_folder(self.root / "usr" / "bin", self.root / "usr" / "share")


def prometheus_binaries(home: Path, *, install: bool = False) -> PrometheusBinaries:
    """The binaries for tests and the demo; ``install`` fetches the package when missing, else that is an error."""
    return PrometheusInstall(home).binaries(install=install)


class PrometheusServer(LoopbackServer):
    """One Prometheus server on ``host`` and a free port, with a throw-away data folder (see :class:`LoopbackServer`).

    ``flags`` are added to the command line (e.g. ``--rules.alert.resend-delay=1s``).
    """

    component = COMPONENT

    def __init__(
        self,
        binaries: PrometheusBinaries,
        config_file: Path,
        *,
        host: str = "127.0.0.1",
        flags: Sequence[str] = (),
    ) -> None:
        super().__init__(host=host)
        self.binaries = binaries
        self.config_file = config_file
        self.flags = list(flags)

    def command(self, data_dir: Path) -> list[str]:
        argv = [
            str(self.binaries.prometheus),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={data_dir / 'tsdb'}",
            f"--web.listen-address={self.host}:{self.port}",
        ]
        if self.binaries.web_assets is not None:
            argv.append(f"--web.local-assets={self.binaries.web_assets}")
        return argv + self.flags
