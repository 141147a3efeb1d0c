"""Prometheus (Debian's package, as the local stack provides it) against the real pipeline processes.

``promtool`` checks the shipped configuration and rules, and runs the rules' unit tests
(``tests/prometheus/rules_test.yml``: each alert fires on its failure and stays silent next to it).

Then the test runs ``racelab run producers|processors|sink|api`` against the simulator with their ops ports on
free ports, starts a Prometheus of its own on loopback (the shipped scrape jobs, pointed at those ports; the shipped
rules; 1 s scrape and evaluation), and puts traffic through: a race morning on the simulator's clock, a scratches
API that always fails (retries, failed calls), one undecodable raw message (a dead letter) and control-API
requests. ``promtool`` checks each process's exposition, and every expression of the rules and dashboards must
evaluate without error and return series (alerts in their ``bool`` form, so that a quiet alert still shows its
series); only an ``A unless B`` expression may be empty, exactly when all is well.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from deploy.stack.process import free_port
from deploy.stack.prometheus import PrometheusBinaries, PrometheusServer, prometheus_binaries
from producers.simulator.clock import SimClock
from producers.simulator.faults import FaultInjector, FaultRule
from producers.simulator.server import Simulator, serve
from producers.simulator.world import World
from runtime.kafka import ensure_topics
from runtime.settings import Settings, default_home
from schemas import endpoints as ep
from schemas.raw import RawHeaders
from schemas.topics import TopicCatalogue
from tests.promql import CONFIG_FILE, RULES_FILE, Expression, selectors, shipped_expressions, with_bool

from .conftest import Worker, pipeline_env, simulator_env

pytestmark = pytest.mark.integration
ROLES = ("producers", "processors", "sink", "archiver", "api")
API_KEY = "observability-key"
# Seoul's first race of this Saturday is at 10:35 KST: entries and odds are due at once, results from 10:40.
CLOCK_START = datetime.fromisoformat("2024-12-14T10:27+09:00")
SIM_SPEED = 60.0
TRAFFIC_LIMIT_S = 90.0
RULE_TESTS = Path(__file__).parent.parent / "prometheus" / "rules_test.yml"


@pytest.fixture(scope="module")
def binaries() -> PrometheusBinaries:
    """``prometheus`` and ``promtool``, fetched into the stack home if ``racelab stack up`` has not done it yet."""
    return prometheus_binaries(default_home(), install=True)


def promtool(binaries: PrometheusBinaries, *args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = subprocess.run([str(binaries.promtool), *args], input=stdin, capture_output=True, check=False)
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace")


def test_promtool_accepts_the_shipped_config_and_rules(binaries: PrometheusBinaries):
    code, out = promtool(binaries, "check", "config", str(CONFIG_FILE))
    assert code == 0, out
    code, out = promtool(binaries, "check", "rules", str(RULES_FILE))
    assert code == 0, out
    assert "SUCCESS" in out


def test_alerts_fire_on_their_failure_and_stay_silent_next_to_it(binaries: PrometheusBinaries):
    code, out = promtool(binaries, "test", "rules", str(RULE_TESTS))
    assert code == 0, out


def scrape_config(ports: dict[str, int]) -> str:
    """The shipped configuration with the pipeline's jobs pointed at this test's ports, scraped every second."""
    shipped = yaml.safe_load(CONFIG_FILE.read_text())
    jobs = []
    for job in shipped["scrape_configs"]:
        if job["job_name"] in ports:
            target = f"127.0.0.1:{ports[job['job_name']]}"
            found = {key: value for key, value in job.items() if key != "dns_sd_configs"}  # compose's DNS names
            jobs.append({**found, "static_configs": [{"targets": [target]}]})
    assert {j["job_name"] for j in jobs} == set(ports), "every process has a job in the shipped configuration"
    interval = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    return yaml.safe_dump({"global": interval, "rule_files": [str(RULES_FILE)], "scrape_configs": jobs})


class Api:
    """Prometheus's HTTP API: instant queries and the rule list."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def query(self, expr: str) -> dict:
        answer = await self.client.post("/api/v1/query", data={"query": expr})
        return answer.json()

    async def series(self, expr: str) -> list:
        body = await self.query(expr)
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]


async def dead_letter(settings: Settings) -> None:
    """One raw odds message whose body is not JSON: the processors send it to the DLQ (stage decode)."""
    headers = RawHeaders(
        source="kra",
        kind="odds",
        endpoint=ep.LIVE_ODDS_PATH,
        params={},
        fetched_at=datetime.fromisoformat("2024-12-14T01:30:00+00:00"),
        poll_id="observability",
        http_status=200,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        topic = TopicCatalogue(settings.topics.prefix).raw("odds")
        await producer.send_and_wait(topic, b"<not json", key=b"horse-seoul-1-20241214", headers=headers.to_kafka())
    finally:
        await producer.stop()


def needed_selectors(expressions: list[Expression]) -> set[str]:
    return {s for e in expressions for s in selectors(e.expr)}


async def control_api_requests(port: int) -> None:
    """A few requests to the control API: one refused (no key), two answered."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert (await client.get("/api/ingestion/status")).status_code == 401
        for _ in range(2):
            answer = await client.get("/api/ingestion/failures", headers={"X-Ingestion-Key": API_KEY})
            assert answer.status_code == 200


async def wait_for_series(api: Api, wanted: set[str], workers: dict[str, Worker]) -> None:
    """Until every selector has series (the traffic reached every metric), or fail naming what is missing."""
    missing = set(wanted)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TRAFFIC_LIMIT_S
    while missing and loop.time() < deadline:
        for role, worker in workers.items():
            if worker.proc.returncode is not None:
                pytest.fail(f"{role} exited with {worker.proc.returncode}:\n{(await worker.stderr())[-3000:]}")
        missing = {s for s in missing if not await api.series(s)}
        await asyncio.sleep(1)
    assert not missing, f"no series after {TRAFFIC_LIMIT_S:.0f}s for: {sorted(missing)}"


async def check_expression(api: Api, expression: Expression) -> tuple[str, str]:
    """``("problem", why)`` when ``expression`` fails to evaluate or returns nothing although its series exist;
    ``("unchecked", why)`` when its result may be empty; ``("ok", "")`` otherwise."""
    body = await api.query(expression.expr)
    if body.get("status") != "success":
        return "problem", f"{expression.origin}: {body.get('errorType')}: {body.get('error')}"
    for selector in selectors(expression.expr):
        if not await api.series(selector):
            return "unchecked", f"{expression.origin}: no series for {selector}"
    # An alert's condition filters its series away while all is well; in its bool form every series stays.
    signal_expr = with_bool(expression.expr) if expression.kind == "alert" else expression.expr
    if re.search(r"\bunless\b", signal_expr):
        return "unchecked", f"{expression.origin}: 'A unless B' is empty exactly when all is well"
    if not await api.series(signal_expr):
        return "problem", f"{expression.origin}: no series from {signal_expr!r}"
    return "ok", ""


async def check_expositions(binaries: PrometheusBinaries, ports: dict[str, int]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for role, port in ports.items():
            exposition = (await client.get(f"http://127.0.0.1:{port}/metrics")).content
            assert b"racelab_" in exposition, role
            code, out = await asyncio.to_thread(promtool, binaries, "check", "metrics", stdin=exposition)
            assert code == 0, f"{role}: promtool check metrics:\n{out}"


async def test_prometheus_scrapes_the_pipeline_and_evaluates_every_shipped_expression(
    settings: Settings, db_schema: str, binaries: PrometheusBinaries, tmp_path: Path
):
    expressions = shipped_expressions()
    await ensure_topics(settings.broker, TopicCatalogue(settings.topics.prefix).all_names(), 4)
    sim = Simulator(World(seed=5), SimClock(start=CLOCK_START, speed=SIM_SPEED), FaultInjector(seed=1))
    sim.faults.replace([FaultRule("API9_1/*", "http_503")])  # scratches: every try fails
    runner = await serve(sim, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    ports = {role: free_port() for role in ROLES}
    env = pipeline_env(
        settings,
        **{f"RACELAB_OPS__{role.upper()}_PORT": str(p) for role, p in ports.items() if role != "api"},
        RACELAB_API__PORT=str(ports["api"]),
        RACELAB_API__INGESTION_KEY=API_KEY,
        RACELAB_OPS__LAG_INTERVAL_S="1",
        **simulator_env(base),
        RACELAB_PRODUCERS__RACE_TYPES='["horse"]',
        RACELAB_PRODUCERS__TRACKS='["seoul"]',
        RACELAB_PRODUCERS__TICK_S="0.2",
        RACELAB_KRA__RETRY_BASE_DELAY_S="0.01",
        RACELAB_PROCESSORS__BATCH_WITHIN_S="0.1",
        RACELAB_SINK__BATCH_WITHIN_S="0.1",
    )
    workers = {role: await Worker.start(role, env) for role in ROLES}
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape_config(ports))
    server = PrometheusServer(binaries, config)
    try:
        await dead_letter(settings)
        await asyncio.to_thread(server.start)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            api = Api(client)
            await wait_for_series(api, {"up"}, workers)
            await control_api_requests(ports["api"])
            await wait_for_series(api, needed_selectors(expressions), workers)
            await asyncio.sleep(3)  # a few more scrapes and rule evaluations (deriv, changes, rates)
            await check_expositions(binaries, ports)
            results = [await check_expression(api, e) for e in expressions]
            problems = [why for verdict, why in results if verdict == "problem"]
            assert not problems, "\n".join(problems)
            unchecked = [why for verdict, why in results if verdict == "unchecked"]
            assert all("'A unless B'" in why for why in unchecked), "\n".join(unchecked)
            rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            unhealthy = [(r["name"], r.get("lastError")) for g in rules for r in g["rules"] if r["health"] != "ok"]
            assert not unhealthy
            targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
            assert sorted(t["labels"]["job"] for t in targets if t["health"] == "up") == sorted(ROLES)
    finally:
        await asyncio.to_thread(server.stop)
        await asyncio.gather(*(w.stop() for w in workers.values()))
        await runner.cleanup()
    for role, worker in workers.items():
        text = await worker.stderr()
        assert "Traceback" not in text, f"{role}:\n{text[-3000:]}"
