"""Alertmanager and amtool from Debian's ``prometheus-alertmanager`` package: a tool of the local stack.

Where the binaries come from, in this order:

1. the server (``prometheus-alertmanager``, Debian's name, or ``alertmanager``, upstream's) and ``amtool`` on
   ``PATH`` or in ``/usr/bin`` (the package installed on the machine);
2. ``<home>/alertmanager/usr/bin``, where ``racelab stack up`` extracts the package the way it does Prometheus's
   (:func:`~deploy.stack.apt.unpack_debian_package`): no root, no maintainer scripts, nothing installed system-wide.

Debian builds the server without the notification templates upstream compiles in: it reads ``default.tmpl`` from
``/usr/share/prometheus/alertmanager`` and refuses every configuration when that file is missing, as it is for an
extracted package. The extracted server therefore gets that folder name rewritten to the same name without the
leading slash (:func:`relocate_templates`, same length, nothing else of the binary changes), and runs in the
package's root, where the relative name leads to the package's own templates.

:class:`AlertmanagerServer` runs one server on loopback for tests: a given configuration file, a data folder of its
own, a free port, no cluster listener; it starts, waits for ``/-/ready`` and stops.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deploy.stack.debian_tool import DebianTool, version_of
from deploy.stack.loopback import LoopbackServer

log = logging.getLogger(__name__)
COMPONENT = "alertmanager"
PACKAGE = "prometheus-alertmanager"
SYSTEM_BIN = Path("/usr/bin")
SERVER_NAMES = ("prometheus-alertmanager", "alertmanager")  # Debian's name first
TEMPLATES_DIR = b"/usr/share/prometheus/alertmanager"
RELATIVE_TEMPLATES_DIR = b"usr/share/prometheus//alertmanager"  # same length; "//" reads as "/"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@dataclass(frozen=True)
class AlertmanagerBinaries:
    """Where the server and ``amtool`` are, and the folder the server must run in (``None``: any folder)."""

    alertmanager: Path
    amtool: Path
    workdir: Path | None = None

    @classmethod
    def in_folder(
        cls, bin_dir: Path, workdir: Path | None = None, names: Iterable[str] = SERVER_NAMES
    ) -> AlertmanagerBinaries | None:
        """The server and ``amtool`` of ``bin_dir`` (``None`` unless both are executable files)."""
        amtool = bin_dir / "amtool"
        server = next((bin_dir / name for name in names if _executable(bin_dir / name)), None)
        if server is None or not _executable(amtool):
            return None
        return cls(server, amtool, workdir)

    @property
    def folder(self) -> Path:
        """The folder of the binaries."""
        return self.alertmanager.parent

    def version(self) -> str:
        """The server's version, e.g. ``0.25.0``."""
        return version_of(self.alertmanager, COMPONENT)


def _system_binaries() -> AlertmanagerBinaries | None:
    amtool = shutil.which("amtool")
    if amtool:
        for name in SERVER_NAMES:
            server = shutil.which(name)
            if server and Path(server).parent == Path(amtool).parent:
                return AlertmanagerBinaries.in_folder(Path(server).parent, names=(name,))
    return AlertmanagerBinaries.in_folder(SYSTEM_BIN)


def relocate_templates(server: Path) -> None:
    """Make the Debian server read its templates from ``usr/share/prometheus/alertmanager`` of its working folder.

    A server that does not name the system folder (templates compiled in) is left as it is.
    """
    data = server.read_bytes()
    if TEMPLATES_DIR not in data:
        return
    patched = server.with_name(server.name + ".relocated")
    patched.write_bytes(data.replace(TEMPLATES_DIR, RELATIVE_TEMPLATES_DIR))
    patched.chmod(server.stat().st_mode)
    patched.replace(server)


@dataclass(frozen=True)
class AlertmanagerInstall(DebianTool[AlertmanagerBinaries]):
    """Finds the binaries, or extracts Debian's ``prometheus-alertmanager`` package under ``<home>/alertmanager``."""

    component = COMPONENT
    package = PACKAGE
    binaries_named = f"{SERVER_NAMES[0]} and amtool"

    def on_machine(self) -> AlertmanagerBinaries | None:
        return _system_binaries()

    def extracted(self) -> AlertmanagerBinaries | None:
        return AlertmanagerBinaries.in_folder(self.root / "usr" / "bin", workdir=self.root)

    def prepare(self, tree: Path) -> None:
        relocate_templates(tree / "usr" / "bin" / SERVER_NAMES[0])


def alertmanager_binaries(home: Path, *, install: bool = False) -> AlertmanagerBinaries:
    """The binaries for tests; ``install`` fetches the package when missing, else that is an error."""
    return AlertmanagerInstall(home).binaries(install=install)


class AlertmanagerServer(LoopbackServer):
    """One Alertmanager on ``host`` and a free port, with a throw-away data folder (see :class:`LoopbackServer`).

    A single instance: the cluster (gossip) listener is off, so nothing listens beyond the one loopback port.
    """

    component = COMPONENT

    def __init__(
        self,
        binaries: AlertmanagerBinaries,
        config_file: Path,
        *,
        host: str = "127.0.0.1",
        log_level: Literal["debug", "info", "warn", "error"] = "info",
    ) -> None:
        super().__init__(host=host)
        self.binaries = binaries
        self.config_file = config_file
        self.log_level = log_level

    def command(self, data_dir: Path) -> list[str]:
        return [
            str(self.binaries.alertmanager),
            f"--config.file={self.config_file.resolve()}",
            f"--storage.path={data_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",
            f"--log.level={self.log_level}",
        ]

    def workdir(self, data_dir: Path) -> Path:
        return self.binaries.workdir or data_dir
