"""Build TimescaleDB (Apache-licensed) for the machine's PostgreSQL from Debian's ``timescaledb`` source package.

Steps, each skipped when its result already exists:

1. build dependencies (``postgresql-server-dev-<major>``, ``cmake``, a C compiler) from the machine's apt sources;
2. the source package from the ``trixie`` suite of the Debian archive the machine already uses (the address is read
   from its apt sources, never written here), verified with the machine's Debian archive keyring;
3. ``cmake`` + ``make`` into a staging folder under ``<home>/cache`` (the cache);
4. copy the staged files into PostgreSQL's library and extension folders.
"""

from __future__ import annotations

import logging
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.apt import PrivateApt
from deploy.stack.errors import StackError
from deploy.stack.process import is_root, run

log = logging.getLogger(__name__)
COMPONENT = "timescaledb"
SOURCE_SUITE = "trixie"


@dataclass
class TimescaleBuild:
    """Installs TimescaleDB into the PostgreSQL found at ``pg_bin_dir``."""

    home: Path
    pg_bin_dir: Path

    @property
    def cache(self) -> Path:
        return self.home / "cache" / "timescaledb"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "timescaledb-build.log"

    def _pg_config(self, flag: str) -> Path:
        result = run([str(self.pg_bin_dir / "pg_config"), flag])
        if result.returncode != 0:
            raise StackError(f"pg_config not usable in {self.pg_bin_dir}: install postgresql-15", component=COMPONENT)
        return Path(result.stdout.strip())

    def installed(self) -> bool:
        if not (self.pg_bin_dir / "pg_config").is_file():
            return False
        control = self._pg_config("--sharedir") / "extension" / "timescaledb.control"
        return control.is_file()

    def ensure(self) -> None:
        """Make ``CREATE EXTENSION timescaledb`` possible on this PostgreSQL."""
        if self.installed():
            return
        stage = self.cache / "stage"
        if not (stage / "done").is_file():
            self._build(stage)
        self._install(stage)
        if not self.installed():
            raise StackError(
                "installed files but PostgreSQL still does not see timescaledb.control",
                component=COMPONENT,
                log_file=str(self.log_file),
            )

    def _apt(self, *args: str) -> None:
        if not is_root():
            raise StackError(f"needs 'apt-get {' '.join(args)}' as root; run it once, then retry", component=COMPONENT)
        result = run(["apt-get", *args], log=self.log_file, env={"DEBIAN_FRONTEND": "noninteractive"})
        if result.returncode != 0:
            raise StackError(f"apt-get {args[0]} failed", component=COMPONENT, log_file=str(self.log_file))

    def _build_dependencies(self) -> None:
        major = self._pg_config("--version")  # e.g. "PostgreSQL 15.18 (Debian ...)"
        version = re.search(r"(\d+)\.", str(major))
        server_headers = self._pg_config("--includedir-server") / "postgres.h"
        missing = [] if server_headers.is_file() else [f"postgresql-server-dev-{version.group(1) if version else 15}"]
        missing += [tool for tool in ("cmake", "gcc", "make") if shutil.which(tool) is None]
        if missing:
            log.info("installing build dependencies: %s", " ".join(missing))
            self._apt("update", "-qq")
            self._apt("install", "-y", "-qq", "--no-install-recommends", *missing)

    def _fetch_source(self) -> Path:
        src = self.cache / "src"
        tarballs = sorted(src.glob("timescaledb_*.orig.tar.*"))
        if tarballs:
            return tarballs[-1]
        apt = PrivateApt(self.cache / "apt", COMPONENT, self.log_file)
        apt.configure("deb-src", SOURCE_SUITE)
        log.info("fetching the timescaledb source package (Debian %s)", SOURCE_SUITE)
        apt.run("update", cwd=src)
        apt.run("source", "--download-only", "timescaledb", cwd=src)
        tarballs = sorted(src.glob("timescaledb_*.orig.tar.*"))
        if not tarballs:
            raise StackError("the source package has no orig tarball", component=COMPONENT, log_file=str(self.log_file))
        return tarballs[-1]

    def _build(self, stage: Path) -> None:
        self._build_dependencies()
        tarball = self._fetch_source()
        work = self.cache / "build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(work, filter="data")
        (source_dir,) = [p for p in work.iterdir() if p.is_dir()]
        log.info("building %s for %s (about a minute)", source_dir.name, self.pg_bin_dir)
        steps = [
            [
                "cmake",
                "-S",
                str(source_dir),
                "-B",
                str(source_dir / "build"),
                "-DAPACHE_ONLY=ON",
                "-DREGRESS_CHECKS=OFF",
                "-DTAP_CHECKS=OFF",
                "-DWARNINGS_AS_ERRORS=OFF",
                "-DCMAKE_BUILD_TYPE=Release",
                f"-DPG_CONFIG={self.pg_bin_dir / 'pg_config'}",
            ],
            ["make", "-C", str(source_dir / "build"), "-j2"],
        ]
        shutil.rmtree(stage, ignore_errors=True)
        steps.append(["make", "-C", str(source_dir / "build"), "install", f"DESTDIR={stage}"])
        for step in steps:
            if run(step, log=self.log_file).returncode != 0:
                raise StackError(f"build step failed: {step[0]}", component=COMPONENT, log_file=str(self.log_file))
        (stage / "done").write_text(source_dir.name + "\n")
        shutil.rmtree(work, ignore_errors=True)

    def _install(self, stage: Path) -> None:
        targets = [self._pg_config("--pkglibdir"), self._pg_config("--sharedir") / "extension"]
        for target in targets:
            staged = stage / target.relative_to("/")
            if not staged.is_dir():
                raise StackError(f"the cached build has no {target}", component=COMPONENT)
            try:
                shutil.copytree(staged, target, dirs_exist_ok=True)
            except PermissionError as exc:
                raise StackError(
                    f"cannot write {target}: run 'racelab stack up' once as root", component=COMPONENT
                ) from exc
        log.info("timescaledb installed into %s", targets[0].parent)
