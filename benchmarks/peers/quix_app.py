"""A Quix Streams application that drains raw KRA final-dividend pages into ``odds_snapshots``.

A streaming dataframe over the raw topic normalizes each page into its odds rows (:mod:`.kra_odds`); a custom
``BatchingSink`` writes what Quix hands it at each checkpoint: per topic partition, one transaction with a binary COPY
into a temporary staging table and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` from there (a redelivered page
inserts nothing). Quix commits the consumed offsets only after the sink's flush succeeded. Everything else is Quix's
defaults (a checkpoint every 5 s, at-least-once).

    DATABASE_URL=postgresql://... python -m benchmarks.peers.quix_app --bootstrap HOST:PORT --topic T \
        --group G --schema S
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import asyncpg
from quixstreams import Application  # type: ignore[import-not-found, unused-ignore]
from quixstreams.sinks import BatchingSink, SinkBatch  # type: ignore[import-not-found, unused-ignore]

from benchmarks.peers.kra_odds import COLUMNS, FirstPage, Row, rows

STAGE = "CREATE TEMPORARY TABLE stage_odds (LIKE odds_snapshots) ON COMMIT DELETE ROWS"
INSERT = (
    f"INSERT INTO odds_snapshots ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM stage_odds "
    "ON CONFLICT DO NOTHING"
)


class StagedCopySink(BatchingSink):  # type: ignore[misc, unused-ignore]
    """Writes each batch through a staging table in one transaction (asyncpg on an event loop of its own)."""

    def __init__(self, dsn: str, schema: str) -> None:
        super().__init__()
        self._dsn = dsn
        self._schema = schema
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection | None = None

    def setup(self) -> None:
        self._conn = self._loop.run_until_complete(self._connect())

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self._dsn, server_settings={"search_path": self._schema})
        await conn.execute(STAGE)
        return conn

    def write(self, batch: SinkBatch) -> None:
        records = [row for item in batch for row in item.value]
        if records:
            self._loop.run_until_complete(self._write(records))

    async def _write(self, records: list[Row]) -> None:
        assert self._conn is not None, "setup() connects"
        async with self._conn.transaction():
            await self._conn.copy_records_to_table("stage_odds", records=records, columns=COLUMNS)
            await self._conn.execute(INSERT)


def build(args: argparse.Namespace) -> Any:
    app = Application(
        broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest", loglevel="WARNING"
    )
    sdf = app.dataframe(app.topic(args.topic, value_deserializer="bytes"))
    first_page = FirstPage()

    def normalize(body: bytes) -> list[Row]:
        first_page()
        return rows(body)

    sdf = sdf.apply(normalize)
    sdf.sink(StagedCopySink(os.environ["DATABASE_URL"], args.schema))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--schema", required=True)
    build(parser.parse_args()).run()


if __name__ == "__main__":
    main()
