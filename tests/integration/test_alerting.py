"""Prometheus and Alertmanager (Debian's packages, as the local stack provides them) bring a RaceLab alert to Slack.

``amtool check-config`` accepts the shipped configuration (``deploy/alertmanager/alertmanager.yml``) and rejects a
broken copy of it.

Then a real Prometheus and a real Alertmanager run on loopback. Prometheus scrapes a sink's metrics served by this
test (:class:`runtime.metrics.SinkMetrics` on a registry of its own) and evaluates the shipped rules; the one alert
driven here, ``RacelabCollectedNotStored``, fires after 0 s instead of 2 min (its expression, labels and annotations
are the shipped ones) and Prometheus re-sends firing alerts every second. Alertmanager runs the shipped configuration
with two changes: the Slack webhook file holds the address of an HTTP receiver of this test, and every route's
``group_wait``/``group_interval`` is seconds instead of minutes. KRA odds and entries and KSPO odds are collected but
not stored: exactly one Slack message for KRA names both of its kinds and exactly one for KSPO (grouped by source),
no other follows while they fire (deduplicated), and exactly one per source tells they resolved once the sink stores
again. The webhook address never appears in either server's log.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from deploy.stack.alertmanager import AlertmanagerBinaries, AlertmanagerServer, alertmanager_binaries
from deploy.stack.prometheus import PrometheusBinaries, PrometheusServer, prometheus_binaries
from runtime.metrics import SinkMetrics
from runtime.settings import default_home
from tests.promql import DEPLOY, RULES_FILE

pytestmark = pytest.mark.integration
CONFIG_FILE = DEPLOY / "alertmanager" / "alertmanager.yml"
ALERT = "RacelabCollectedNotStored"
UNSTORED_S = 900.0  # 15 minutes: above the rule's 10-minute threshold
FIRING = {("kra", "odds"), ("kra", "entries"), ("kspo", "odds")}
TEST_TIMING = {"group_wait": "1s", "group_interval": "2s"}  # repeat_interval stays as shipped
WAIT_S = 30.0
QUIET_S = 5.0  # two group intervals and five re-sends of the firing alerts by Prometheus
TITLE = re.compile(r"\[(FIRING:\d+|RESOLVED)\] (\S+) \((\w+)\)")


@pytest.fixture(scope="module")
def prometheus() -> PrometheusBinaries:
    """``prometheus`` and ``promtool``, fetched into the stack home if ``racelab stack up`` has not done it yet."""
    return prometheus_binaries(default_home(), install=True)


@pytest.fixture(scope="module")
def alertmanager() -> AlertmanagerBinaries:
    """Alertmanager and ``amtool``, fetched into the stack home if ``racelab stack up`` has not done it yet."""
    return alertmanager_binaries(default_home(), install=True)


def amtool_check(binaries: AlertmanagerBinaries, config: Path) -> tuple[int, str]:
    result = subprocess.run(
        [str(binaries.amtool), "check-config", str(config)], capture_output=True, text=True, check=False
    )
    return result.returncode, result.stdout + result.stderr


def test_amtool_accepts_the_shipped_config(alertmanager: AlertmanagerBinaries):
    code, out = amtool_check(alertmanager, CONFIG_FILE)
    assert code == 0, out
    assert "SUCCESS" in out
    assert " - 3 inhibit rules" in out
    assert " - 1 receivers" in out


def test_amtool_rejects_a_route_to_an_unknown_receiver(alertmanager: AlertmanagerBinaries, tmp_path: Path):
    config = yaml.safe_load(CONFIG_FILE.read_text())
    config["route"]["routes"][0]["receiver"] = "nobody"
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(config))
    code, out = amtool_check(alertmanager, broken)
    assert code != 0
    assert 'undefined receiver "nobody"' in out


def test_compose_runs_the_alertmanager_version_the_tests_run(alertmanager: AlertmanagerBinaries):
    image = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["alertmanager"]["image"]
    major_minor = ".".join(alertmanager.version().split(".")[:2])
    assert image.startswith(f"prom/alertmanager:v{major_minor}."), (image, alertmanager.version())


def rules_with_no_wait(path: Path) -> None:
    """The shipped rules, with ``ALERT`` firing as soon as its condition holds."""
    rules = yaml.safe_load(RULES_FILE.read_text())
    driven = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == ALERT]
    assert len(driven) == 1
    driven[0]["for"] = "0s"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))


def alertmanager_config(path: Path, webhook_file: Path) -> None:
    """The shipped configuration with the webhook file of this test and every route's timing in seconds."""
    config = yaml.safe_load(CONFIG_FILE.read_text())
    (slack,) = [s for r in config["receivers"] for s in r.get("slack_configs", [])]
    slack["api_url_file"] = str(webhook_file)
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        for key, value in TEST_TIMING.items():
            if key in route:
                route[key] = value
        routes.extend(route.get("routes", []))
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def prometheus_config(path: Path, rules: Path, metrics_port: int, alertmanager_port: int) -> None:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": [{"job_name": "sink", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }
    path.write_text(yaml.safe_dump(config))


class SlackAndMetrics:
    """The Slack webhook (messages kept in arrival order) and the sink's ``/metrics``, on one loopback port."""

    def __init__(self, webhook_path: str, registry: CollectorRegistry) -> None:
        self.messages: list[dict[str, Any]] = []
        self.strays: list[str] = []
        self.registry = registry
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post(webhook_path, self._message)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_route("*", "/{tail:.*}", self._stray)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)

    async def start(self) -> int:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return int(self.runner.addresses[0][1])

    async def _message(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._arrived:
            self.messages.append(body)
            self._arrived.notify_all()
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _stray(self, request: web.Request) -> web.Response:
        self.strays.append(f"{request.method} {request.path}")
        return web.Response(status=404)

    async def wait_for(self, count: int) -> None:
        """Until ``count`` messages have arrived in all (fails after ``WAIT_S``)."""
        try:
            async with self._arrived:
                await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.messages) >= count), WAIT_S)
        except TimeoutError:
            pytest.fail(f"{len(self.messages)} message(s) after {WAIT_S:.0f}s, {count} expected")


def by_source(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The one attachment of each message, by the source its title names (every title names the driven alert)."""
    found: dict[str, dict[str, Any]] = {}
    for message in messages:
        (attachment,) = message["attachments"]
        title = TITLE.fullmatch(attachment["title"])
        assert title is not None and title.group(2) == ALERT, attachment["title"]
        assert title.group(3) not in found, f"two messages for {title.group(3)}: {messages}"
        found[title.group(3)] = attachment
    return found


def summary(source: str, kind: str) -> str:
    return f"{source} {kind}: collected but not stored for 15m 0s"  # the shipped annotation for 900 s


async def test_one_slack_message_per_group_then_one_when_it_resolves(
    prometheus: PrometheusBinaries, alertmanager: AlertmanagerBinaries, tmp_path: Path
):
    webhook_path = f"/services/T0RACELAB/B0ALERTS/{secrets.token_hex(12)}"
    registry = CollectorRegistry()
    unstored = SinkMetrics(registry).unstored
    for source, kind in FIRING:
        unstored.labels(source=source, kind=kind).set(UNSTORED_S)
    unstored.labels(source="kra", kind="results").set(0)  # a kind of the same source that is fine
    receiver = SlackAndMetrics(webhook_path, registry)
    port = await receiver.start()
    webhook_url = f"http://127.0.0.1:{port}{webhook_path}"
    webhook_file = tmp_path / "slack_webhook_url"
    webhook_file.write_text(webhook_url + "\n")
    alertmanager_config(tmp_path / "alertmanager.yml", webhook_file)
    rules_with_no_wait(tmp_path / "rules.yml")
    am = AlertmanagerServer(alertmanager, tmp_path / "alertmanager.yml", log_level="debug")
    prom = PrometheusServer(prometheus, tmp_path / "prometheus.yml", flags=["--rules.alert.resend-delay=1s"])
    try:
        await asyncio.to_thread(am.start)
        prometheus_config(tmp_path / "prometheus.yml", tmp_path / "rules.yml", port, am.port)
        await asyncio.to_thread(prom.start)

        await receiver.wait_for(2)
        await asyncio.sleep(QUIET_S)
        firing = by_source(receiver.messages)
        assert sorted(firing) == ["kra", "kspo"]
        assert firing["kra"]["title"] == f"[FIRING:2] {ALERT} (kra)"
        assert firing["kspo"]["title"] == f"[FIRING:1] {ALERT} (kspo)"
        kra_lines = [line for line in firing["kra"]["text"].splitlines() if line.startswith("• ")]
        assert sorted(kra_lines) == sorted(f"• {summary('kra', kind)}" for kind in ("entries", "odds"))
        assert [line for line in firing["kspo"]["text"].splitlines() if line.startswith("• ")] == [
            f"• {summary('kspo', 'odds')}"
        ]
        assert {a["color"] for a in firing.values()} == {"danger"}

        for source, kind in FIRING:
            unstored.labels(source=source, kind=kind).set(0)
        await receiver.wait_for(4)
        await asyncio.sleep(QUIET_S)
        resolved = by_source(receiver.messages[2:])
        assert {s: a["title"] for s, a in resolved.items()} == {
            "kra": f"[RESOLVED] {ALERT} (kra)",
            "kspo": f"[RESOLVED] {ALERT} (kspo)",
        }
        assert sorted(resolved["kra"]["text"].splitlines()) == sorted(
            f"• resolved: {summary('kra', kind)}" for kind in ("entries", "odds")
        )
        assert {a["color"] for a in resolved.values()} == {"good"}
        assert len(receiver.messages) == 4
        assert receiver.strays == []

        assert am.log_file is not None and prom.log_file is not None
        am_log, prom_log = am.log_file.read_text(), prom.log_file.read_text()
        assert am_log.count('msg="Notify success"') == 4  # the log covers the sends
        # Both groups went through the route of critical alerts, and were flushed again without a message.
        kra_group = r"{}/{severity=\"critical\"}:{alertname=\"RacelabCollectedNotStored\", source=\"kra\"}"
        assert f'aggrGroup="{kra_group}"' in am_log
        assert am_log.count("msg=flushing") > 4
        for log in (am_log, prom_log):
            assert webhook_path not in log
            assert webhook_path.rsplit("/", 1)[1] not in log
    finally:
        await asyncio.to_thread(prom.stop)
        await asyncio.to_thread(am.stop)
        await receiver.runner.cleanup()
