"""A consumer that is not Python: the Node.js example (``deploy/consumers/node``, kafkajs + Ajv) reads the odds the
real processors publish and checks every message against the JSON Schema ``racelab schemas export`` writes.

The raw pages are the reference's verbatim rows (a KSPO cycle result and a boat result, whose dividends become odds,
and KRA API160's documented example) plus the simulator's KRA final-dividend and live-odds pages; a real
``racelab run processors`` worker turns them into the odds topic's messages, so the bytes checked are the pipeline's.
The npm packages are installed from the committed lock file into ``RACELAB_HOME/node/`` (once per lock file).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from producers.simulator import envelope
from runtime.kafka import ensure_topics
from runtime.settings import Settings, default_home
from schemas import endpoints as ep
from schemas.topics import TopicCatalogue
from tests.unit.test_real_payloads import BOAT_RESULT_ROW, CYCLE_RESULT_ROW

from .conftest import start_component
from .test_processors import SATURDAY, WORLD, collect, expected_records, good_messages, headers, produce, worker_env

pytestmark = pytest.mark.integration
CONSUMER = Path(__file__).resolve().parents[2] / "deploy" / "consumers" / "node"
# reference/kra-kspo-apis.md, Example D: KRA API160 integratedInfo as documented (one WIN dividend)
FINAL_DIVIDEND_ROW = {
    "meet": "서울", "rcDate": "20190601", "rcNo": "1", "pool": "단승식", "chulNo": "7", "chulNo2": "0",
    "chulNo3": "0", "odds": "2.0",
}  # fmt: skip
# the boards the three verbatim rows give, by race id: how many prices each (read off the rows by hand)
REAL_BOARDS = {"cycle-gwangmyeong-1-20260102": 7, "boat-misari-1-20260107": 6, "horse-seoul-1-20190601": 1}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """``npm ci`` of the example's lock file into the stack home, reused while the lock file is the same."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed (Debian: apt-get install nodejs npm)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 18, f"the example needs Node.js >= 18, found {version}"
    lock = (CONSUMER / "package-lock.json").read_bytes()
    root = default_home() / "node"
    target = root / f"odds-consumer-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (target / "node_modules").is_dir():
        work = root / f"{target.name}.{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(CONSUMER / name, work / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--cache", str(root / "npm-cache")],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        try:
            work.rename(target)
        except OSError:  # another run installed the same lock file meanwhile
            shutil.rmtree(work, ignore_errors=True)
    return target / "node_modules"


def real_pages() -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
    """(kind, key, body, headers) of the reference's verbatim rows, each in the data.go.kr envelope."""

    def body(row: dict[str, Any]) -> bytes:
        return envelope.json_body([row], 1, 1000, 1)

    return [
        (
            "results",
            b"kspo:gwangmyeong:20260102",
            body(CYCLE_RESULT_ROW),
            headers("results", ep.CYCLE_RESULT.path, "kspo", stnd_yr="2026"),
        ),
        (
            "results",
            b"boat-misari-1-20260107",  # the row has no date: the call's key names the day
            body(BOAT_RESULT_ROW),
            headers("results", ep.BOAT_RESULT.path, "kspo", day_tcnt="1"),
        ),
        ("odds", b"kra:seoul:20190601", body(FINAL_DIVIDEND_ROW), headers("odds", ep.KRA_FINAL_DIVIDENDS.path)),
    ]


def schema_file(settings: Settings, directory: Path) -> Path:
    """``racelab schemas export DIR`` with this test's topic prefix; the odds topic's schema file."""
    env = {**os.environ, "RACELAB_TOPICS__PREFIX": settings.topics.prefix}
    done = subprocess.run(
        [sys.executable, "-m", "racelab.cli", "schemas", "export", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    path = directory / f"{settings.topics.prefix}.odds.schema.json"
    assert orjson.loads(path.read_bytes())["title"] == "OddsBoard"
    return path


async def node_consumer(
    settings: Settings, modules: Path, topic: str, schema: Path
) -> tuple[int, list[dict[str, Any]], str]:
    """Runs ``consumer.js`` until the topic has been idle for 6 s; (exit code, its JSON lines, its stderr)."""
    broker = settings.broker
    process = await asyncio.create_subprocess_exec(
        *["node", str(CONSUMER / "consumer.js"), "--brokers", broker.bootstrap_servers, "--topic", topic],
        *["--schema", str(schema), "--group", f"{topic}-node", "--idle-ms", "6000"],
        *["--session-timeout-ms", str(broker.session_timeout_ms)],
        *["--rebalance-timeout-ms", str(broker.rebalance_timeout_ms)],
        env={**os.environ, "NODE_PATH": str(modules)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 180)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, [orjson.loads(line) for line in out.splitlines()], err.decode()


async def test_node_consumer_reads_every_odds_board_and_each_matches_the_schema(
    settings: Settings, node_modules: Path, tmp_path: Path
) -> None:
    topics = TopicCatalogue(settings.topics.prefix)
    await ensure_topics(settings.broker, topics.all_names(), 4)
    pages = real_pages() + [m for m in good_messages() if m[0] == "odds"]
    boards = sum(n for (topic, _), n in expected_records(pages).items() if topic == "odds")
    simulated = {race.race_id for race in WORLD.races("seoul", SATURDAY)[:4]}
    schema = schema_file(settings, tmp_path)

    worker = await start_component("processors", worker_env(settings))
    try:
        await produce(settings, pages, topics)
        published = await collect(settings, [topics.normalized("odds")], lambda rs: len(rs) >= boards)
        assert worker.returncode is None, "the worker must stay up"
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 60)
    assert len(published) == boards  # nothing more than the pages give
    real = {r.key.decode(): len(orjson.loads(r.value)["prices"]) for r in published if r.key.decode() in REAL_BOARDS}
    assert real == REAL_BOARDS

    code, lines, err = await node_consumer(settings, node_modules, topics.normalized("odds"), schema)
    assert code == 0, err[-2000:]
    assert len(lines) == boards, err[-2000:]
    assert [line for line in lines if not line["valid"] or line["errors"]] == []
    assert {(line["partition"], line["offset"]) for line in lines} == {(r.partition, r.offset) for r in published}
    assert Counter(line["key"] for line in lines) == Counter(r.key.decode() for r in published)
    assert {line["key"] for line in lines} == set(REAL_BOARDS) | simulated  # the keys are race ids
    assert f"read {boards} message(s) from {topics.normalized('odds')}: {boards} valid, 0 invalid" in err


async def test_node_consumer_reports_messages_that_break_the_schema(
    settings: Settings, node_modules: Path, tmp_path: Path
) -> None:
    """The validator is not vacuous: a published board passes, the same board broken three ways does not."""
    topic = f"{settings.topics.prefix}.odds-broken"
    await ensure_topics(settings.broker, [topic], 1)
    schema = schema_file(settings, tmp_path)
    board: dict[str, Any] = {
        "schema_version": 2,
        "race_id": "horse-seoul-1-20190601",
        "time": "2019-06-01T14:59:59Z",
        "is_final": True,
        "source": "kra",
        "prices": [{"pool": "WIN", "selection": "7", "odds": 2.0, "pool_total": None, "popularity_rank": None}],
    }
    odds_as_text = {**board, "prices": [{**board["prices"][0], "odds": "2.0"}]}
    no_time = {k: v for k, v in board.items() if k != "time"}
    messages = [orjson.dumps(board), orjson.dumps(odds_as_text), orjson.dumps(no_time), b"not json"]
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in messages:
            await producer.send_and_wait(topic, value=value, key=b"horse-seoul-1-20190601", partition=0)
    finally:
        await producer.stop()

    code, lines, err = await node_consumer(settings, node_modules, topic, schema)
    assert code == 1, err[-2000:]  # some message was invalid
    assert [(line["offset"], line["valid"]) for line in lines] == [(0, True), (1, False), (2, False), (3, False)]
    assert lines[0]["errors"] == []
    assert lines[1]["errors"] == ["/prices/0/odds must be number"]
    assert lines[2]["errors"] == ["/ must have required property 'time'"]
    assert len(lines[3]["errors"]) == 1 and lines[3]["errors"][0].startswith("not JSON: ")
    assert f"read 4 message(s) from {topic}: 1 valid, 3 invalid" in err
