"""``racelab migrate``: apply the versioned SQL files in ``sinks/migrations`` in order, once each.

File names are ``NNNN_name.sql``. A version may instead come as two variants, ``NNNN_name.timescale.sql`` and
``NNNN_name.apache.sql``; the runner picks the one the server's ``timescaledb.license`` allows and logs the
choice in one line. Each file runs in its own transaction together with its row in ``schema_migrations``; an
advisory lock keeps two concurrent runs from applying the same file twice. A changed file that was already
applied is reported, never re-run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from runtime.db import connect, translate_errors
from runtime.settings import DatabaseSettings
from schemas.errors import DatabaseError
from sinks.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(str(resources.files("sinks") / "migrations"))
FILE_PATTERN = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<variant>timescale|apache))?\.sql$")
LOCK_KEY = 0x7261_6365_6C61_62  # "racelab"


@dataclass(frozen=True)
class Migration:
    """One migration file to apply."""

    version: str
    name: str
    variant: str | None
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR, license_name: str = "apache") -> list[Migration]:
    """The migrations to apply on a server with this TimescaleDB license, in version order."""
    by_version: dict[str, list[Migration]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name not understood: {path.name}")
        by_version.setdefault(match["version"], []).append(
            Migration(match["version"], match["name"], match["variant"], path)
        )
    chosen: list[Migration] = []
    for version, files in sorted(by_version.items()):
        plain = [m for m in files if m.variant is None]
        if plain:
            if len(files) > 1:
                raise MigrationError(f"version {version} has both a plain file and variants", version=version)
            chosen.append(plain[0])
            continue
        wanted = "timescale" if license_name == "timescale" else "apache"
        match_variant = [m for m in files if m.variant == wanted]
        if not match_variant:
            raise MigrationError(f"version {version} has no {wanted} variant", version=version)
        chosen.append(match_variant[0])
    return chosen


async def _prepare(conn: asyncpg.Connection, settings: DatabaseSettings) -> str:
    available = await conn.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")
    if available is None:
        raise DatabaseError(
            f"TimescaleDB is not installed on the database server at {settings.display_url()}; "
            "use the timescale/timescaledb image or 'racelab stack up'"
        )
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb SCHEMA public")
    except asyncpg.PostgresError as exc:
        raise DatabaseError(
            f"cannot enable TimescaleDB at {settings.display_url()}: {exc.__class__.__name__}: {exc} "
            "(it must be in shared_preload_libraries and the user must be allowed to create extensions)"
        ) from exc
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.schema_name}"')
    await conn.execute(f"""
        CREATE TABLE IF NOT EXISTS "{settings.schema_name}".schema_migrations (
            version    text PRIMARY KEY,
            name       text NOT NULL,
            variant    text,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )""")
    return await timescale_license(conn) or "apache"


async def timescale_license(conn: asyncpg.Connection) -> str | None:
    """The server's ``timescaledb.license`` (``apache`` or ``timescale``); None when TimescaleDB is not loaded."""
    value = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    return str(value) if value else None


async def migrate(settings: DatabaseSettings, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; returns the ones applied now (empty when up to date)."""
    conn = await connect(settings)
    try:
        async with translate_errors(settings):
            # Session lock: released when the connection closes, whatever happens below.
            await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            return await _apply_pending(conn, settings, directory)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, settings: DatabaseSettings, directory: Path) -> list[Migration]:
    license_name = await _prepare(conn, settings)
    migrations = discover(directory, license_name)
    applied = {
        row["version"]: row
        for row in await conn.fetch(f'SELECT version, name, checksum FROM "{settings.schema_name}".schema_migrations')
    }
    done: list[Migration] = []
    for migration in migrations:
        if migration.variant:
            skipped = "apache" if migration.variant == "timescale" else "timescale"
            if migration.version not in applied:
                log.info(
                    "timescaledb.license=%s: migration %s uses the %s variant (%s variant skipped)",
                    license_name,
                    migration.version,
                    migration.variant,
                    skipped,
                )
        previous = applied.get(migration.version)
        if previous is not None:
            if previous["checksum"] != migration.checksum:
                log.warning(
                    "migration %s_%s changed after it was applied; it is not re-run",
                    migration.version,
                    migration.name,
                )
            continue
        try:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    f'INSERT INTO "{settings.schema_name}".schema_migrations (version, name, variant, checksum) '
                    "VALUES ($1, $2, $3, $4)",
                    migration.version,
                    migration.name,
                    migration.variant,
                    migration.checksum,
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(
                f"migration {migration.path.name} failed: {exc.__class__.__name__}: {exc}",
                version=migration.version,
            ) from exc
        log.info("applied migration %s", migration.path.name)
        done.append(migration)
    return done
