"""The foundation against the real broker and database: produce/consume, hypertable, migrations, bad settings."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.stack.postgres import PostgresCluster
from runtime.db import connect
from runtime.kafka import delete_topics, ensure_topics, list_topics
from runtime.settings import DatabaseSettings, Settings
from schemas.errors import DatabaseError
from sinks import rollup
from sinks.migrate import migrate

from .conftest import Endpoints

pytestmark = pytest.mark.integration


async def test_produce_and_consume_through_the_broker(settings: Settings, test_id: str):
    topic = f"{settings.topics.prefix}.raw.odds"
    created = await ensure_topics(settings.broker, [topic], partitions=3)
    assert created == [topic]
    assert topic in await list_topics(settings.broker)

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker.bootstrap_servers,
        acks="all",
        enable_idempotence=settings.broker.idempotence,
    )
    await producer.start()
    sent: dict[str, list[int]] = defaultdict(list)
    try:
        futures = []
        for i in range(300):
            key = f"horse-seoul-{i % 7 + 1}-20241210"
            sent[key].append(i)
            futures.append(
                await producer.send(
                    topic,
                    key=key.encode(),
                    value=f'{{"seq":{i}}}'.encode(),
                    headers=[("source", b"kra"), ("poll_id", str(i).encode())],
                )
            )
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    assert all(m.offset >= 0 for m in metadata)

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.broker.bootstrap_servers,
        group_id=f"g-{test_id}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=settings.broker.session_timeout_ms,
        rebalance_timeout_ms=settings.broker.rebalance_timeout_ms,
    )
    await consumer.start()
    received: dict[str, list[int]] = defaultdict(list)
    per_partition: dict[int, int] = defaultdict(int)
    try:
        async with asyncio.timeout(60):
            while sum(per_partition.values()) < 300:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, records in batch.items():
                    per_partition[tp.partition] += len(records)
                    for record in records:
                        assert dict(record.headers)["source"] == b"kra"
                        assert record.key is not None and record.value is not None
                        received[record.key.decode()].append(int(record.value.split(b":")[1].rstrip(b"}")))
        await consumer.commit()
        for partition, count in per_partition.items():
            assert await consumer.committed(TopicPartition(topic, partition)) == count
    finally:
        await consumer.stop()
    # Same key, same partition, same order.
    assert received == sent


async def test_odds_snapshots_is_an_idempotent_hypertable(settings: Settings, db_schema: str):
    conn = await connect(settings.database)
    try:
        row = await conn.fetchrow(
            "SELECT h.num_dimensions, d.time_interval FROM timescaledb_information.hypertables h "
            "JOIN timescaledb_information.dimensions d USING (hypertable_schema, hypertable_name) "
            "WHERE h.hypertable_schema = $1 AND h.hypertable_name = 'odds_snapshots'",
            db_schema,
        )
        assert row is not None, "odds_snapshots must be a hypertable"
        assert row["time_interval"] == timedelta(days=1)

        t0 = datetime(2024, 12, 10, 1, 0, tzinfo=UTC)
        rows = [
            (t0 + timedelta(minutes=5 * step), "horse-seoul-3-20241210", pool, sel, odds, False, "kra")
            for step in range(3)
            for pool, sel, odds in (("WIN", "3", 2.5 + step), ("PLC", "3", 1.2), ("QNL", "3-7", 9.4))
        ]
        insert = (
            "INSERT INTO odds_snapshots (time, race_id, pool, selection, odds, is_final, source) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
        )
        await conn.executemany(insert, rows)
        await conn.executemany(insert, rows)  # a replay changes nothing
        assert await conn.fetchval("SELECT count(*) FROM odds_snapshots") == 9
        chunks = await conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_schema = $1 AND hypertable_name = 'odds_snapshots'",
            db_schema,
        )
        assert chunks >= 1

        history = await conn.fetch(
            "SELECT time, odds FROM odds_snapshots WHERE race_id = $1 AND pool = 'WIN' ORDER BY time",
            "horse-seoul-3-20241210",
        )
        assert [r["odds"] for r in history] == [2.5, 3.5, 4.5]
        await rollup.rebuild(conn)  # rows written here bypass the sink, which keeps the Apache build's rollup
        summary = await conn.fetchrow(
            "SELECT open_odds, close_odds, high_odds, low_odds, snapshots "
            "FROM odds_daily_summary WHERE race_id = $1 AND pool = 'WIN'",
            "horse-seoul-3-20241210",
        )
        assert tuple(summary) == (2.5, 4.5, 4.5, 2.5, 3)
        wide = await conn.fetch("SELECT entry_no, odds_win, odds_place FROM odds_snapshots_wide ORDER BY time")
        assert [tuple(w) for w in wide] == [(3, 2.5, 1.2), (3, 3.5, 1.2), (3, 4.5, 1.2)]

        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(insert, t0, "horse-seoul-3-20241210", "BOGUS", "3", 1.0, False, "kra")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(insert, t0, "horse-seoul-3-20241210", "QNL", "3,7", 1.0, False, "kra")
    finally:
        await conn.close()


async def test_tracks_are_seeded(settings: Settings, db_schema: str):
    conn = await connect(settings.database)
    try:
        rows = await conn.fetch("SELECT code, race_type FROM tracks ORDER BY code")
    finally:
        await conn.close()
    assert {r["code"]: r["race_type"] for r in rows} == {
        "busan": "horse",
        "busan_cycle": "cycle",
        "changwon": "cycle",
        "gwangmyeong": "cycle",
        "jeju": "horse",
        "misari": "boat",
        "seoul": "horse",
        "yeongcheon": "horse",
    }


async def test_migrate_twice_and_concurrently_applies_each_file_once(settings: Settings):
    first, second = await asyncio.gather(migrate(settings.database), migrate(settings.database))
    versions = {path.name[:4] for path in (Path(__file__).parents[2] / "sinks" / "migrations").glob("*.sql")}
    assert len(versions) >= 7
    assert sorted(len(x) for x in (first, second)) == [0, len(versions)]
    assert await migrate(settings.database) == []
    conn = await connect(settings.database)
    try:
        versions = await conn.fetch("SELECT version, variant FROM schema_migrations ORDER BY version")
        assert [(v["version"], v["variant"]) for v in versions][:2] == [("0001", None), ("0002", None)]
        license_name = await conn.fetchval("SELECT current_setting('timescaledb.license')")
        assert versions[2]["variant"] == ("timescale" if license_name == "timescale" else "apache")
    finally:
        await conn.execute(f'DROP SCHEMA "{settings.database.schema_name}" CASCADE')
        await conn.close()


def _racelab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "racelab.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def _assert_one_clear_error(result: subprocess.CompletedProcess[str], expected: str, secret: str = "") -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert expected in result.stdout + result.stderr
    if secret:
        assert secret not in result.stdout + result.stderr


def test_cli_unreachable_broker(endpoints: Endpoints):
    result = _racelab(
        "check",
        env={
            "RACELAB_BROKER__BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "RACELAB_DATABASE__URL": endpoints.database_url,
        },
    )
    _assert_one_clear_error(result, "cannot reach the broker at 127.0.0.1:9")
    assert "database  ok" in result.stdout


def test_cli_wrong_password(endpoints: Endpoints):
    good = DatabaseSettings(url=endpoints.database_url)
    user_host = good.url.get_secret_value().split("@", 1)[1]
    wrong = f"postgresql://racelab:Wr0ngPassw0rd@{user_host}"
    result = _racelab("migrate", env={"RACELAB_DATABASE__URL": wrong})
    _assert_one_clear_error(result, "refused the login", secret="Wr0ngPassw0rd")
    assert result.returncode == 2


def test_cli_unreachable_database():
    result = _racelab("migrate", env={"RACELAB_DATABASE__URL": "postgresql://racelab:pw123456@127.0.0.1:9/x"})
    _assert_one_clear_error(
        result, "cannot reach the database at postgresql://racelab:***@127.0.0.1:9/x", secret="pw123456"
    )


async def test_missing_timescaledb_is_one_clear_error(endpoints: Endpoints, tmp_path: Path):
    if endpoints.local_stack is None:
        pytest.skip("needs a PostgreSQL binary to start a server without TimescaleDB")
    plain = PostgresCluster(tmp_path / "plain", endpoints.local_stack.postgres.bin_dir, preload_timescaledb=False)
    plain.init()
    plain.start()
    try:
        with pytest.raises(DatabaseError, match="cannot enable TimescaleDB") as caught:
            await migrate(DatabaseSettings(url=plain.url()))
        assert plain.password not in str(caught.value)
    finally:
        plain.stop(mode="immediate")
        plain.purge()


def test_stack_up_again_is_a_no_op(endpoints: Endpoints):
    if endpoints.local_stack is None:
        pytest.skip("the local stack is not in use")
    env = {"RACELAB_HOME": str(endpoints.local_stack.home)}
    result = _racelab("stack", "up", env=env)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    status = _racelab("stack", "status", env=env)
    assert status.returncode == 0 and status.stdout.count(" up ") == 2 and " found " in status.stdout
    assert (endpoints.local_stack.env_file.stat().st_mode & 0o777) == 0o600


async def test_delete_topics_deletes_those_that_exist_and_names_them(settings: Settings):
    prefix = settings.topics.prefix
    kept, gone = f"{prefix}.raw.races", f"{prefix}.raw.odds"
    await ensure_topics(settings.broker, [kept, gone], partitions=1)

    deleted = await delete_topics(settings.broker, [gone, f"{prefix}.never.made"])

    assert deleted == [gone]
    for _ in range(50):  # the broker may report a deleted topic for a moment
        names = await list_topics(settings.broker)
        if gone not in names:
            break
        await asyncio.sleep(0.1)
    assert gone not in names and kept in names
    assert await delete_topics(settings.broker, [gone]) == []


async def test_topics_are_created_with_their_class_settings(settings: Settings):
    """The worker's topic creation applies retention per class; the broker reports it back."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from schemas.topics import DAY_MS

    topics = settings.topics.model_copy(update={"raw_retention_days": 3}).catalogue()
    names = [topics.raw("odds"), topics.normalized("odds"), topics.dlq("odds")]
    created = await ensure_topics(settings.broker, names, 2, configs=topics.configs())
    assert created == sorted(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker.bootstrap_servers)
    await admin.start()
    try:
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    retention = {
        resource[3]: dict((entry[0], entry[1]) for entry in resource[4])["retention.ms"]
        for answer in answers
        for resource in answer.resources
    }
    assert retention == {names[0]: str(3 * DAY_MS), names[1]: str(30 * DAY_MS), names[2]: str(365 * DAY_MS)}
