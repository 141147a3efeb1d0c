"""A scratch schema for one benchmark run: its own name, migrated, dropped with everything in it afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from runtime.db import connect
from runtime.settings import DatabaseSettings
from sinks.migrate import migrate


@contextlib.asynccontextmanager
async def scratch_schema(database: DatabaseSettings) -> AsyncIterator[DatabaseSettings]:
    """``database`` in a new migrated schema ``bench_<id>``, dropped when the block ends (also after a failure)."""
    settings = database.model_copy(update={"schema_name": f"bench_{uuid.uuid4().hex[:8]}"})
    await migrate(settings)
    try:
        yield settings
    finally:
        conn = await connect(settings)
        try:
            await conn.execute(f'DROP SCHEMA "{settings.schema_name}" CASCADE')
        finally:
            await conn.close()
