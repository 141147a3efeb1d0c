"""The operations endpoints of every long-running process: ``/metrics``, ``/healthz`` (liveness), ``/readyz``.

Liveness answers as long as the process's event loop does. Readiness runs the process's checks (broker reachable,
database reachable, consumer group not stalled) and answers 503 with the failing ones. The server runs inside the
process's own event loop (aiohttp), so a blocked loop fails liveness too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from runtime.commits import CommitWatch
from runtime.health import check_broker, check_database
from runtime.lag import LagMonitor
from runtime.settings import Settings
from runtime.topic_keeper import TopicKeeper

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[tuple[str, bool, str]]]


def _timed(name: str, run: Callable[[], Awaitable[tuple[bool, str]]], where: str, timeout_s: float) -> Check:
    async def check() -> tuple[str, bool, str]:
        try:
            ok, detail = await asyncio.wait_for(run(), timeout_s)
        except TimeoutError:
            ok, detail = False, f"no answer from {where} within {timeout_s:g}s"
        return name, ok, detail

    return check


def broker_check(settings: Settings) -> Check:
    """The broker answers a metadata request."""
    where = settings.broker.bootstrap_servers
    return _timed("broker", lambda: check_broker(settings), where, settings.ops.check_timeout_s)


def database_check(settings: Settings) -> Check:
    """The database accepts the login and has TimescaleDB."""
    where = settings.database.display_url()
    return _timed("database", lambda: check_database(settings), where, settings.ops.check_timeout_s)


def progress_check(monitor: LagMonitor, stuck_after_s: float) -> Check:
    async def check() -> tuple[str, bool, str]:
        unmeasured = monitor.unmeasured_for()
        if unmeasured > stuck_after_s:  # the figures below would be stale: no verdict on progress without them
            why = monitor.last_error or "no measurement"
            return "consumer", False, f"group {monitor.group}: lag not measured for {unmeasured:.0f}s ({why})"
        stalled = monitor.stalled_for()
        if stalled > stuck_after_s:
            return (
                "consumer",
                False,
                f"group {monitor.group}: {monitor.lag} message(s) waiting and no committed offset moved for "
                f"{stalled:.0f}s",
            )
        return "consumer", True, f"group {monitor.group}: lag {monitor.lag}"

    return check


def topics_check(
    keeper: TopicKeeper, topics: Sequence[str], timeout_s: float, commits: CommitWatch | None = None
) -> Check:
    """The process's ``topics`` are on the broker with the catalogue's partition counts (looked up at each probe);
    a consumer's topic that had to be recreated counts once the group has handed out partitions again after it came
    back."""
    mine = set(topics)

    async def check() -> tuple[str, bool, str]:
        try:
            found = await asyncio.wait_for(keeper.problems(mine), timeout_s)
        except TimeoutError:
            found = [f"the broker did not describe the topics within {timeout_s:g}s"]
        waiting = sorted(
            t for t, at in keeper.recreated.items() if t in mine and commits is not None and commits.assigned_at < at
        )
        found += [f"{t} was missing and is recreated; waiting for the group to assign its partitions" for t in waiting]
        if found:
            return "topics", False, "; ".join(found)
        return "topics", True, f"{len(mine)} topics with {keeper.partitions} partitions each"

    return check


def commit_check(commits: CommitWatch, monitor: LagMonitor, stuck_after_s: float) -> Check:
    """The consumer's offset commits return and succeed, and it has partitions whenever its group has work."""

    async def check() -> tuple[str, bool, str]:
        stuck = commits.commit_stuck_for()
        if stuck > max(2.0, stuck_after_s / 4):
            return "commits", False, f"an offset commit has waited {stuck:.0f}s for the broker (progress is not saved)"
        if commits.failing():
            return "commits", False, f"the last offset commit failed ({commits.failures} failed so far)"
        unassigned = commits.unassigned_for()
        if unassigned > stuck_after_s and monitor.lag > 0:
            return (
                "commits",
                False,
                f"no partitions assigned for {unassigned:.0f}s while the group has {monitor.lag} message(s) waiting",
            )
        return "commits", True, f"{commits.partitions} partitions assigned"

    return check


async def run_checks(checks: Sequence[Check]) -> tuple[bool, dict[str, dict[str, object]]]:
    results = await asyncio.gather(*(c() for c in checks))
    body = {name: {"ok": ok, "detail": detail} for name, ok, detail in results}
    return all(ok for _, ok, _ in results), body


def ops_routes(checks: Sequence[Check], registry: CollectorRegistry = REGISTRY) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/metrics")
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    @routes.get("/readyz")
    async def readyz(request: web.Request) -> web.Response:
        ready, body = await run_checks(checks)
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": body}, status=200 if ready else 503
        )

    return routes


@dataclass
class OpsServer:
    """Serves the ops endpoints on ``host:port`` (port 0 picks a free one; :attr:`port` tells which)."""

    host: str
    port: int
    checks: Sequence[Check]
    registry: CollectorRegistry = REGISTRY
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(ops_routes(self.checks, self.registry))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("metrics and health on http://%s:%d (/metrics /healthz /readyz)", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
