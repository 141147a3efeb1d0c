"""A bare consume-normalize-COPY loop with aiokafka and asyncpg: the baseline a small team would write first.

Reads raw KRA final-dividend pages from one topic in ``getmany`` batches, normalizes them (:mod:`.kra_odds`) and
writes each batch in one transaction, then commits the consumed offsets (no auto-commit: a batch's offsets are
committed only once its rows are durable). By default the rows go through a staging table
(binary COPY into a temporary table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``), so a redelivered page
inserts nothing; ``--direct`` copies straight into ``odds_snapshots`` with no conflict handling, the fastest
possible write and the ceiling of the comparison.

    DATABASE_URL=postgresql://... python -m benchmarks.peers.aiokafka_loop --bootstrap HOST:PORT --topic T \
        --group G --schema S [--direct] [--max-pages 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os

import asyncpg
from aiokafka import AIOKafkaConsumer

from benchmarks.peers.kra_odds import COLUMNS, FirstPage, rows

STAGE = "CREATE TEMPORARY TABLE stage_odds (LIKE odds_snapshots) ON COMMIT DELETE ROWS"
INSERT = (
    f"INSERT INTO odds_snapshots ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM stage_odds "
    "ON CONFLICT DO NOTHING"
)


async def run(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"], server_settings={"search_path": args.schema})
    if not args.direct:
        await conn.execute(STAGE)
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    first_page = FirstPage()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=args.max_pages)
            if batches:
                first_page()
            batch = [row for messages in batches.values() for message in messages for row in rows(message.value)]
            if batch:
                async with conn.transaction():
                    if args.direct:
                        await conn.copy_records_to_table("odds_snapshots", records=batch, columns=COLUMNS)
                    else:
                        await conn.copy_records_to_table("stage_odds", records=batch, columns=COLUMNS)
                        await conn.execute(INSERT)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--direct", action="store_true", help="COPY straight into odds_snapshots (no staging)")
    parser.add_argument("--max-pages", type=int, default=16, help="raw pages (up to 1000 rows each) per transaction")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
