"""A private PostgreSQL cluster in a folder of the project, with TimescaleDB preloaded.

The cluster listens on 127.0.0.1 only, requires a password over TCP (so a wrong password fails as it would in
production), and runs as the ``postgres`` user when we are root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack.errors import StackError
from deploy.stack.process import free_port, is_root, port_open, run

log = logging.getLogger(__name__)
COMPONENT = "postgresql"
USER = "racelab"
DATABASE = "racelab"

# Tuned for a small shared box: durable (fsync, synchronous_commit on), big enough buffers for the benchmarks.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'timescaledb'",
    "timescaledb.telemetry_level": "off",
    "max_connections": "100",
    "shared_buffers": "'2GB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'15min'",
    "wal_compression": "on",
    "timescaledb.max_background_workers": "4",
    "logging_collector": "off",
}


@dataclass
class PostgresCluster:
    """One private cluster: data in ``<home>/pg``; ``password`` is generated on first init."""

    home: Path
    bin_dir: Path
    port: int = 0
    password: str = field(default="", repr=False)
    preload_timescaledb: bool = True

    @property
    def root(self) -> Path:
        return self.home / "pg"

    @property
    def server_root(self) -> Path:
        """``root`` with links resolved: the server's user may not be able to pass through the project folder."""
        return self.root.resolve()

    @property
    def data_dir(self) -> Path:
        return self.server_root / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "postgresql.log"

    @property
    def owner(self) -> str | None:
        return "postgres" if is_root() else None

    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _ctl(self, *args: str) -> tuple[int, str]:
        result = run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args], user=self.owner)
        return result.returncode, result.stdout + result.stderr

    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").is_file():
            return False
        code, _ = self._ctl("status")
        return code == 0 and port_open(self.port)

    def _prepare_root(self) -> None:
        """Create ``<home>/pg`` so that the server's user can write it.

        When the project folder is not reachable by the ``postgres`` user (a checkout under a private folder),
        the cluster lives in a private folder under /var/tmp and ``<home>/pg`` links to it.
        """
        if self.root.exists():
            return
        self.root.parent.mkdir(parents=True, exist_ok=True)
        if self.owner is None:
            self.root.mkdir()
            return
        self.root.mkdir()
        shutil.chown(self.root, self.owner, self.owner)
        if run(["test", "-w", str(self.root)], user=self.owner).returncode == 0:
            return
        self.root.rmdir()
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        fallback = Path("/var/tmp") / f"racelab-pg-{digest}"  # noqa: S108 - private, owned by postgres, mode 0700
        fallback.mkdir(mode=0o700, exist_ok=True)
        shutil.chown(fallback, self.owner, self.owner)
        self.root.symlink_to(fallback)
        log.info("the postgres user cannot reach %s; cluster data lives in %s", self.home, fallback)

    def init(self) -> None:
        """Create the cluster once (``initdb``) with password authentication for TCP."""
        if (self.data_dir / "PG_VERSION").is_file():
            return
        if not (self.bin_dir / "initdb").is_file():
            raise StackError(f"no initdb in {self.bin_dir}: install postgresql-15", component=COMPONENT)
        self._prepare_root()
        self.password = self.password or secrets.token_urlsafe(18)
        pwfile = self.server_root / ".pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.owner:
            shutil.chown(pwfile, self.owner, self.owner)
        result = run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ],
            user=self.owner,
            log=self.log_file,
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise StackError("initdb failed", component=COMPONENT, log_file=str(self.log_file))
        conf = self.data_dir / "postgresql.conf"
        settings = dict(SERVER_SETTINGS)
        if not self.preload_timescaledb:
            del settings["shared_preload_libraries"]
        extra = "".join(f"{key} = {value}\n" for key, value in settings.items())
        conf.write_text(conf.read_text() + "\n# racelab local stack\n" + extra)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (idempotent) and create the application database."""
        if self.running():
            return
        if not self.port or port_open(self.port):
            self.port = free_port()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        server_log = self.server_root / "server.log"
        options = f"-p {self.port} -k {self.server_root}"
        code, out = self._ctl("-w", "-t", str(int(timeout)), "-o", options, "-l", str(server_log), "start")
        if code != 0:
            tail = server_log.read_text(errors="replace")[-2000:] if server_log.exists() else out
            self.log_file.write_text(tail)
            raise StackError("server did not start", component=COMPONENT, log_file=str(self.log_file))
        self._create_database()
        log.info("postgresql listening on 127.0.0.1:%s", self.port)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = run(
            [
                str(self.bin_dir / "psql"),
                "-h",
                str(self.server_root),
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                database,
                "-Atqc",
                sql,
            ],
            user=self.owner,
        )
        if result.returncode != 0:
            raise StackError(f"psql failed: {result.stderr.strip()}", component=COMPONENT)
        return result.stdout.strip()

    def _create_database(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
                break
            except StackError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if not exists:
            self._psql(f"CREATE DATABASE {DATABASE}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs (``mode``: smart, fast or immediate)."""
        if (self.data_dir / "PG_VERSION").is_file() and self._ctl("status")[0] == 0:
            code, out = self._ctl("-w", "-m", mode, "stop")
            if code != 0:
                raise StackError(f"pg_ctl stop failed: {out.strip()}", component=COMPONENT)

    def purge(self) -> None:
        """Delete the cluster's data (the server must be stopped)."""
        target = self.root.resolve()
        if self.root.is_symlink():
            self.root.unlink()
        shutil.rmtree(target, ignore_errors=True)
