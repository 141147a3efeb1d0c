"""The sink worker (real processes) against the real broker and TimescaleDB, under faults.

Each test streams normalized records (races, entries, odds boards, results) and checks what is in the database at
the end against what was produced, table by table, with the dead-letter topics empty: kill -9 of the worker ten
times while it is writing, PostgreSQL stopped for 30 s (with a worker killed and started again meanwhile), a replay
from the beginning, an unexpected database error, and records the sink must dead-letter.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from processors.normalize import normalize
from processors.normalize.common import Context
from processors.replay import Filters, read_dead_letters
from producers.simulator import envelope, render_kra
from producers.simulator.world import Race, World
from runtime.db import connect
from runtime.kafka import ensure_topics
from runtime.settings import Settings
from schemas import endpoints as ep
from schemas.topics import TopicCatalogue

from .conftest import Endpoints, pipeline_env, start_component

pytestmark = pytest.mark.integration
WORLD = World(seed=51)
TABLES = ("races", "entries", "results", "odds_snapshots")
Message = tuple[str, bytes, bytes]  # normalized topic kind (races, entries, odds, results), key, value


def _body(rows: list[dict[str, object]]) -> bytes:
    return envelope.json_body(rows, 1, 5000, len(rows))


def odds_boards(race: Race, prices_per_message: int = 50) -> Iterator[tuple[bytes, bytes]]:
    """(key, JSON) of a race's odds boards (its final board and a live snapshot), cut into messages of a few dozen
    prices."""
    live_at = race.post_time - timedelta(minutes=5)
    for at, rows, path in (
        (race.post_time, render_kra.final_dividend_rows(race), ep.KRA_FINAL_DIVIDENDS.path),
        (live_at, render_kra.live_odds_rows(race, live_at), ep.LIVE_ODDS_PATH),
    ):
        for board in normalize(_body(rows), Context("kra", path, {}, at, race.race_id)).odds:
            for i in range(0, len(board.prices), prices_per_message):
                part = board.model_copy(update={"prices": board.prices[i : i + prices_per_message]})
                yield race.race_id.encode(), part.model_dump_json().encode()


def odds_records(races: int, prices_per_message: int = 50) -> list[tuple[bytes, bytes]]:
    """(key, JSON) of the odds boards of the first ``races`` races of three race days."""
    days = (("seoul", date(2024, 12, 14)), ("busan", date(2024, 12, 15)), ("jeju", date(2024, 12, 13)))
    chosen = itertools.islice((race for track, day in days for race in WORLD.races(track, day)), races)
    return [message for race in chosen for message in odds_boards(race, prices_per_message)]


def day_messages(track: str, day: date) -> list[Message]:
    """A race day of one track as the processors publish it: schedule, entry sheets, odds boards, then results."""
    races = tuple(WORLD.races(track, day))
    if not races:
        return []
    fetched = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    after = fetched + timedelta(days=1)

    def records(path: str, rows: list[dict[str, object]], at: datetime) -> list[Message]:
        out = normalize(_body(rows), Context("kra", path, {}, at, f"kra:{track}:{day:%Y%m%d}"))
        return [
            (kind, r.race_id.encode(), r.model_dump_json().encode())
            for kind in ("races", "entries", "results")
            for r in out.by_topic()[kind]
        ]

    messages = records(ep.KRA_RACE_PLAN.path, render_kra.race_plan_rows(races), fetched)
    messages += records(ep.KRA_ENTRY_SHEET.path, render_kra.entry_sheet_rows(races), fetched + timedelta(hours=1))
    for race in races:
        messages += [("odds", key, value) for key, value in odds_boards(race)]
    messages += records(ep.KRA_RACE_RESULT_TOTAL.path, render_kra.race_result_total_rows(list(races), after), after)
    return messages


def race_days(start: date = date(2024, 1, 5)) -> Iterator[Message]:
    """An endless stream of race days (three horse tracks a day, day after day from ``start``)."""
    for n in itertools.count():
        for track in ("seoul", "busan", "jeju"):
            yield from day_messages(track, start + timedelta(days=n))


@dataclass
class Expected:
    """What the database must hold after a stream: rows per table (by unique key) and the sum of the odds."""

    keys: dict[str, set[tuple[object, ...]]] = field(default_factory=lambda: {t: set() for t in TABLES})
    odds_sum: float = 0.0
    table_rows: int = 0  # rows of every message, counted as the sink counts them (a board: one per price)

    def add(self, kind: str, value: bytes) -> None:
        record = orjson.loads(value)
        race_id = record["race_id"]
        self.keys["races"].add((race_id,))
        if kind == "odds":
            for p in record["prices"]:
                key = (race_id, p["pool"], p["selection"], record["time"])
                if key not in self.keys["odds_snapshots"]:
                    self.keys["odds_snapshots"].add(key)
                    self.odds_sum += p["odds"]
            self.table_rows += len(record["prices"])
        else:
            if kind != "races":
                self.keys[kind].add((race_id, record["entry_no"]))
            self.table_rows += 1

    def counts(self) -> dict[str, int]:
        return {table: len(keys) for table, keys in self.keys.items()}


class Producer:
    """Publishes normalized messages at a steady pace and remembers what it sent."""

    def __init__(self, settings: Settings) -> None:
        self.topics = TopicCatalogue(settings.topics.prefix)
        self.bootstrap = settings.broker.bootstrap_servers
        self.expected = Expected()
        self.sent = 0

    async def stream(
        self, messages: Iterable[Message], per_tick: int, tick_s: float, until: asyncio.Event | None = None
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            source = iter(messages)
            while not (until and until.is_set()):
                tick = list(itertools.islice(source, per_tick))
                if not tick:
                    break
                futures = [
                    await producer.send(f"{self.topics.prefix}.{kind}", value=value, key=key)
                    for kind, key, value in tick
                ]
                await asyncio.gather(*futures)
                for kind, _, value in tick:
                    self.expected.add(kind, value)
                self.sent += len(tick)
                await asyncio.sleep(tick_s)
        finally:
            await producer.stop()


async def stream(settings: Settings, records: list[tuple[bytes, bytes]], per_tick: int, tick_s: float) -> None:
    """Publish (key, JSON) odds boards to the odds topic at a steady pace."""
    await Producer(settings).stream((("odds", k, v) for k, v in records), per_tick, tick_s)


def sink_env(settings: Settings, **extra: str) -> dict[str, str]:
    return pipeline_env(
        settings,
        **{
            "RACELAB_SINK__BATCH_SIZE": "2000",
            "RACELAB_SINK__TRANSACTION_ROWS": "2000",
            "RACELAB_SINK__RETRY_MAX_DELAY_S": "2",
            **extra,
        },
    )


async def table_counts(settings: Settings) -> dict[str, int]:
    conn = await connect(settings.database)
    try:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}
    finally:
        await conn.close()


async def db_count(settings: Settings) -> int:
    return (await table_counts(settings))["odds_snapshots"]


async def wait_for_rows(settings: Settings, expected: int, limit_s: float = 180) -> int:
    async with asyncio.timeout(limit_s):
        while await db_count(settings) < expected:  # noqa: ASYNC110 - polling another process's work
            await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # and nothing more arrives
    return await db_count(settings)


async def wait_for_counts(settings: Settings, expected: dict[str, int], limit_s: float = 180) -> dict[str, int]:
    """Table counts once they reached ``expected`` (and a moment later, so that extra rows would show)."""
    async with asyncio.timeout(limit_s):
        while any(n < expected[t] for t, n in (await table_counts(settings)).items()):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    await asyncio.sleep(2)
    return await table_counts(settings)


async def odds_sum(settings: Settings) -> float:
    conn = await connect(settings.database)
    try:
        return float(await conn.fetchval("SELECT sum(odds) FROM odds_snapshots"))
    finally:
        await conn.close()


async def dead_letters(settings: Settings) -> list:
    return await read_dead_letters(settings.broker, TopicCatalogue(settings.topics.prefix), Filters())


async def check_database_holds(settings: Settings, expected: Expected) -> None:
    """Every produced record once: table counts by unique key, the odds sum, and no dead letter."""
    counts = await wait_for_counts(settings, expected.counts())
    assert counts == expected.counts()
    assert await odds_sum(settings) == pytest.approx(expected.odds_sum, rel=1e-9)
    assert await dead_letters(settings) == []


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)


def expected_rows(records: list[tuple[bytes, bytes]]) -> int:
    expected = Expected()
    for _, value in records:
        expected.add("odds", value)
    return expected.counts()["odds_snapshots"]


async def wait_for_progress(
    settings: Settings, than: int, sink: asyncio.subprocess.Process, limit_s: float = 90
) -> int:
    """The odds row count once it went past ``than`` (the worker joined and committed a batch)."""
    async with asyncio.timeout(limit_s):
        while (count := await db_count(settings)) <= than:
            assert sink.returncode is None, "the sink exited on its own"
            await asyncio.sleep(0.1)
    return count


async def writing_now(conn) -> bool:
    """Whether a sink connection is inside a statement or a transaction right now."""
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'racelab' AND pid <> pg_backend_pid() "
            "AND datname = current_database() AND state IN ('active', 'idle in transaction')"
        )
    )


async def writing_soon(conn, within_s: float = 2.0) -> bool:
    """Wait (at most ``within_s``) until a sink connection is writing; whether it is."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await writing_now(conn):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_kill_9_ten_times_while_writing(settings: Settings, db_schema: str):
    """Each incarnation joins, commits at least one batch, and is killed at a random moment of its work, the first
    time after it that a transaction is open (the test counts how many kills landed inside one).

    Every batch's transaction is made to last at least 0.2 s (a statement trigger that sleeps), so that kills land
    inside transactions, with later batches read and waiting: a sink that acknowledged a batch before its
    transaction committed would lose rows here.
    """
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    conn = await connect(settings.database)
    await conn.execute(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END $$"
    )
    await conn.execute("CREATE TRIGGER slow AFTER INSERT ON races FOR EACH STATEMENT EXECUTE FUNCTION slow()")
    producer = Producer(settings)
    enough = asyncio.Event()
    producing = asyncio.create_task(producer.stream(race_days(), per_tick=10, tick_s=0.25, until=enough))
    env = sink_env(settings, RACELAB_SINK__BATCH_SIZE="1000", RACELAB_SINK__TRANSACTION_ROWS="1000")
    rng = random.Random(7)
    kills, mid_write, count = 0, 0, 0
    sink = await start_component("sink", env)
    try:
        while kills < 10:
            count = await wait_for_progress(settings, count, sink)
            await asyncio.sleep(rng.uniform(0, 1.5))
            mid_write += await writing_soon(conn)
            sink.send_signal(signal.SIGKILL)
            await sink.wait()
            kills += 1
            sink = await start_component("sink", env)
        enough.set()
        await producing
        await check_database_holds(settings, producer.expected)
        assert sink.returncode is None
    finally:
        producing.cancel()
        await stop(sink)
        await conn.close()
    assert kills == 10 and producer.sent > 1000
    assert mid_write >= 5, f"only {mid_write} of 10 kills landed while the sink was writing"


async def test_postgres_down_for_30_seconds(settings: Settings, db_schema: str, endpoints: Endpoints):
    """The worker waits for the database; one killed during the outage and started again while it lasts waits too."""
    if endpoints.local_stack is None:
        pytest.skip("needs the local stack to stop and start PostgreSQL")
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    producer = Producer(settings)
    messages = itertools.islice(race_days(date(2024, 3, 1)), 1500)
    env = sink_env(settings)
    sink = await start_component("sink", env)
    postgres = endpoints.local_stack.postgres
    producing = asyncio.create_task(producer.stream(messages, per_tick=6, tick_s=0.25))
    try:
        await wait_for_progress(settings, 0, sink)
        await asyncio.to_thread(postgres.stop, "fast")
        stopped_at = datetime.now(UTC)
        await asyncio.sleep(8)
        assert sink.returncode is None, "the sink must wait for the database, not exit"
        sink.send_signal(signal.SIGKILL)
        await sink.wait()
        first_stderr = (await sink.stderr.read()).decode()
        sink = await start_component("sink", env)  # starts while the database is still down
        await asyncio.sleep(30 - (datetime.now(UTC) - stopped_at).total_seconds())
        assert sink.returncode is None, "a sink started during the outage must wait too"
        await asyncio.to_thread(postgres.start)
        back_at = datetime.now(UTC)
        await producing
        await check_database_holds(settings, producer.expected)
        assert sink.returncode is None
    finally:
        producing.cancel()
        if not postgres.running():
            await asyncio.to_thread(postgres.start)
        await stop(sink)
    assert back_at - stopped_at >= timedelta(seconds=30)
    assert "database unavailable" in first_stderr
    stderr = (await sink.stderr.read()).decode()
    assert "cannot reach the database" in stderr and "database back after" in stderr
    assert "Traceback" not in first_stderr + stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def metric(port: int, name: str, labels: dict[str, str] | None = None) -> float | None:
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.TransportError:
            return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                return sample.value
    return None


async def table_digests(settings: Settings) -> dict[str, str]:
    """A digest of every table's contents (all columns but the time of the last update)."""
    conn = await connect(settings.database)
    try:
        out = {}
        for table in TABLES:
            columns = [
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 "
                    "AND column_name <> 'updated_at' ORDER BY ordinal_position",
                    settings.database.schema_name,
                    table,
                )
            ]
            row = f"({', '.join(columns)})"
            out[table] = await conn.fetchval(
                f"SELECT md5(string_agg({row}::text, '|' ORDER BY {row}::text)) FROM {table}"
            )
        return out
    finally:
        await conn.close()


async def test_replay_from_the_beginning_changes_nothing(settings: Settings, db_schema: str):
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    producer = Producer(settings)
    await producer.stream(itertools.islice(race_days(date(2024, 6, 7)), 600), per_tick=100, tick_s=0)
    first = await start_component("sink", sink_env(settings))
    try:
        await check_database_holds(settings, producer.expected)
    finally:
        await stop(first)
    before = await table_digests(settings)
    port = free_port()
    replay = await start_component(
        "sink", sink_env(settings, RACELAB_SINK__CONSUMER_GROUP="sink-replay", RACELAB_OPS__SINK_PORT=str(port))
    )
    try:
        async with asyncio.timeout(120):  # the new group reads every topic from offset 0
            while (await metric(port, "racelab_sink_batch_records_sum") or 0) < producer.expected.table_rows:
                assert replay.returncode is None
                await asyncio.sleep(0.5)
        await asyncio.sleep(1)
        assert await metric(port, "racelab_sink_batch_records_sum") == producer.expected.table_rows
        assert await metric(port, "racelab_sink_rows_written_total", {"table": "odds_snapshots"}) == 0
        # the backlog came in batches of up to 2,000 messages (50 prices each): no transaction held more rows than
        # the 2,000 of RACELAB_SINK__TRANSACTION_ROWS (plus one message's, as a message is never split)
        transactions = await metric(port, "racelab_sink_batch_records_count")
        assert transactions and transactions >= producer.expected.table_rows / 2000
        assert await metric(port, "racelab_sink_batch_records_bucket", {"le": "2500.0"}) == transactions
        assert await metric(port, "racelab_sink_rows_rejected_total", {"table": "results"}) in (None, 0)
    finally:
        await stop(replay)
    assert await table_counts(settings) == producer.expected.counts()
    assert await table_digests(settings) == before
    assert await dead_letters(settings) == []
    assert "Traceback" not in (await replay.stderr.read()).decode()


async def test_an_unexpected_database_error_stops_the_worker_before_the_batch_is_acknowledged(
    settings: Settings, db_schema: str
):
    """A database error that is neither an outage nor bad data (here a trigger that raises) ends the process with
    exit code 70 without acknowledging the batch: the next worker writes it."""
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    conn = await connect(settings.database)
    try:
        await conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;"
            "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON results FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        producer = Producer(settings)
        await producer.stream(day_messages("seoul", date(2024, 12, 14)), per_tick=200, tick_s=0)
        sink = await start_component("sink", sink_env(settings))
        assert await asyncio.wait_for(sink.wait(), 120) == 70
        stderr = (await sink.stderr.read()).decode()
        assert "unexpected error; stopping without acknowledging the batch" in stderr and "refused" in stderr
        assert await conn.fetchval("SELECT count(*) FROM results") == 0
        await conn.execute("DROP TRIGGER refuse ON results")
    finally:
        await conn.close()
    sink = await start_component("sink", sink_env(settings))
    try:
        await check_database_holds(settings, producer.expected)
    finally:
        await stop(sink)


async def test_records_the_sink_cannot_write_go_to_the_dlq_and_the_rest_lands(settings: Settings, db_schema: str):
    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 4)
    good = day_messages("busan", date(2024, 12, 15))
    race = orjson.loads(next(v for k, _, v in good if k == "races"))
    entry = orjson.loads(next(v for k, _, v in good if k == "entries"))
    board = orjson.loads(next(v for k, _, v in good if k == "odds"))
    bad: list[tuple[str, bytes, bytes, str]] = [  # kind, key, value, expected exception class
        ("odds", b"k-json", b'{"race_id": "horse-busan-1-2', "ValidationError"),  # not JSON
        (
            "odds",
            b"k-type",
            orjson.dumps(board | {"prices": [{"pool": "WIN", "selection": "1", "odds": "a"}]}),
            "ValidationError",
        ),
        (
            "races",
            b"k-track",
            orjson.dumps(race | {"race_id": "horse-nowhere-1-20241215", "track_code": "nowhere"}),
            "ForeignKeyViolationError",
        ),
        ("entries", b"k-weight", orjson.dumps(entry | {"entry_no": 77, "body_weight_kg": 40000}), "RowEncodingError"),
        ("results", b"k-version", orjson.dumps(entry | {"schema_version": 9}), "ValidationError"),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        half = len(good) // 2
        for kind, key, value in good[:half]:
            await producer.send(f"{topics.prefix}.{kind}", value=value, key=key)
        for kind, key, value, _ in bad:
            await producer.send(f"{topics.prefix}.{kind}", value=value, key=key, headers=[("trace", key)])
        for kind, key, value in good[half:]:
            await producer.send(f"{topics.prefix}.{kind}", value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    expected = Expected()
    for kind, _, value in good:
        expected.add(kind, value)
    sink = await start_component("sink", sink_env(settings))
    try:
        counts = await wait_for_counts(settings, expected.counts())
        async with asyncio.timeout(60):
            while len(letters := await dead_letters(settings)) < len(bad):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
    finally:
        await stop(sink)
    assert counts == expected.counts()
    by_key = {letter.key: letter for letter in letters}
    assert len(letters) == len(bad) == len(by_key)
    kind_of_topic = {"races": "schedules", "entries": "entries", "odds": "odds", "results": "results"}
    for kind, key, value, exception_class in bad:
        letter = by_key[key]
        assert letter.dlq_topic == topics.dlq(kind_of_topic[kind])  # type: ignore[arg-type]
        assert letter.value == value  # the original bytes
        assert letter.header("trace") == key.decode()  # the original headers
        assert letter.header("dlq.stage") == "sink"
        assert letter.header("dlq.original.topic") == f"{topics.prefix}.{kind}"
        assert letter.header("dlq.exception.class") == exception_class, letter.header("dlq.exception.message")
        assert letter.header("dlq.original.offset").isdigit()


async def test_a_rank_whose_racer_is_not_on_the_card_is_a_dead_letter(settings: Settings, db_schema: str):
    """Found by the join in the database, not in a message: the dead letter carries the rank as its message."""
    from producers.simulator import render_kspo

    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 4)
    world = World(seed=3)
    day = date(2024, 12, 14)
    race = next(r for r in world.races("gwangmyeong", day) if not r.cancelled)
    year, rnd, day_no = world.round_of("cycle", day)
    stranger = render_kspo.rank_rows([race], year, rnd, day_no)[0] | {"racer_nm": "홍길동", "racer_no": "19990001"}
    messages = []
    for endpoint, rows in (
        (ep.CYCLE_ENTRIES.path, render_kspo.cycle_entry_rows([race], year, rnd, day_no)),
        (ep.CYCLE_RANK.path, [stranger]),
    ):
        out = normalize(
            envelope.json_body(rows, 1, 100, len(rows)),
            Context("kspo", endpoint, {}, datetime(2024, 12, 14, 3, tzinfo=UTC), "k"),
        )
        messages += [
            (t, r.race_id.encode(), r.model_dump_json().encode()) for t, rs in out.by_topic().items() for r in rs
        ]
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for kind, key, value in messages:
            await producer.send(f"{topics.prefix}.{kind}", value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    sink = await start_component("sink", sink_env(settings))
    try:
        async with asyncio.timeout(60):
            while not (letters := await dead_letters(settings)):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # reported once
        letters = await dead_letters(settings)
    finally:
        await stop(sink)
    (letter,) = letters
    assert letter.dlq_topic == topics.dlq("results") and letter.key == race.race_id.encode()
    assert (letter.header("dlq.stage"), letter.header("dlq.exception.class")) == ("sink", "RacerNotOnCard")
    assert letter.header("dlq.exception.message") == (
        f"racer 19990001 홍길동 (placed 1) is not on the card of {race.race_id}"
    )
    assert letter.header("dlq.original.topic") == f"{topics.prefix}.results"
    rank = orjson.loads(letter.value)
    assert (rank["racer_id"], rank["racer_name"], rank["finish_position"]) == ("19990001", "홍길동", 1)
