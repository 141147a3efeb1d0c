"""The infrastructure rows of ``racelab doctor``: broker, database, TimescaleDB license, Prometheus.

The broker and database checks are the readiness checks of every worker (:mod:`runtime.ops`); the license is read
as ``racelab migrate`` reads it (:func:`sinks.migrate.timescale_license`). Prometheus is the one named by
``RACELAB_OPS__PROMETHEUS_URL``: it is checked when set (``/-/ready`` must answer 200) and reported as not
configured otherwise, which is no failure (the local stack runs without one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import httpx

from runtime.db import connect
from runtime.ops import broker_check, database_check
from runtime.settings import Settings, redact_url
from schemas.errors import PipelineError
from sinks.migrate import timescale_license

Status = Literal["ok", "fail", "skipped", "not_configured"]
LICENSE_MEANING = {
    "timescale": "racelab migrate applies the compression policy and the continuous aggregate",
    "apache": "no compression or continuous aggregates; racelab migrate uses the plain fallback",
}


@dataclass(frozen=True)
class InfraCheck:
    """One infrastructure row."""

    name: str
    status: Status
    detail: str
    advice: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"


async def check_broker(settings: Settings) -> InfraCheck:
    _, ok, detail = await broker_check(settings)()
    advice = "" if ok else "start the broker (racelab stack up) or set RACELAB_BROKER__BOOTSTRAP_SERVERS"
    return InfraCheck("broker", "ok" if ok else "fail", detail, advice)


async def check_database(settings: Settings) -> InfraCheck:
    _, ok, detail = await database_check(settings)()
    advice = "" if ok else "start the database (racelab stack up) or set RACELAB_DATABASE__URL"
    return InfraCheck("database", "ok" if ok else "fail", detail, advice)


async def check_license(settings: Settings, database: InfraCheck) -> InfraCheck:
    """``timescaledb.license`` of the server (after the database check: nothing to read when that failed)."""
    if database.failed:
        return InfraCheck("timescaledb", "skipped", "the database did not answer")
    try:
        conn = await asyncio.wait_for(connect(settings.database), settings.ops.check_timeout_s)
    except (PipelineError, TimeoutError) as exc:
        return InfraCheck("timescaledb", "fail", str(exc) or "no answer", "check the database row")
    try:
        name = await timescale_license(conn)
    finally:
        await conn.close()
    if name is None:
        return InfraCheck(
            "timescaledb",
            "fail",
            "timescaledb.license is not set: TimescaleDB is not loaded by the server",
            "add timescaledb to shared_preload_libraries, or use racelab stack up / the timescale image",
        )
    meaning = LICENSE_MEANING.get(name, "unknown license")
    return InfraCheck("timescaledb", "ok", f"license {name}: {meaning}")


async def check_prometheus(settings: Settings) -> InfraCheck:
    url = settings.ops.prometheus_url.strip()
    if not url:
        return InfraCheck(
            "prometheus", "not_configured", "RACELAB_OPS__PROMETHEUS_URL is empty", "set it to check Prometheus"
        )
    shown = redact_url(url)
    advice = "start Prometheus or correct RACELAB_OPS__PROMETHEUS_URL"
    try:
        async with httpx.AsyncClient(timeout=settings.ops.check_timeout_s) as http:
            answer = await http.get(url.rstrip("/") + "/-/ready")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return InfraCheck("prometheus", "fail", f"{shown}: no answer ({type(exc).__name__})", advice)
    if answer.status_code != 200:
        return InfraCheck("prometheus", "fail", f"{shown}/-/ready answered HTTP {answer.status_code}", advice)
    return InfraCheck("prometheus", "ok", f"{shown} ready")


async def check_infrastructure(settings: Settings) -> list[InfraCheck]:
    """Every infrastructure row, in table order."""
    broker, database, prometheus = await asyncio.gather(
        check_broker(settings), check_database(settings), check_prometheus(settings)
    )
    return [broker, database, await check_license(settings, database), prometheus]
