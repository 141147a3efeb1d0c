"""``racelab doctor`` as a real process against the simulator (a real process too), the test's broker and database,
and a real Prometheus.

The simulator requires a service key and refuses it per endpoint as data.go.kr does: two KRA datasets not approved
(code 30 in the XML gateway envelope), one KSPO API not approved (HTTP 403) and one KSPO API out of quota (code 22).
The doctor must name each endpoint's verdict exactly, exit 1, and never print the key; with the race types narrowed
to ones whose endpoints all answer it exits 0; against a simulator that approves everything, with a ready
Prometheus, it exits 0, and with a configured Prometheus that does not answer it exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from deploy.stack.process import free_port
from deploy.stack.prometheus import PrometheusServer, prometheus_binaries
from runtime.settings import Settings, default_home
from schemas import endpoints as ep

from .conftest import pipeline_env, scalar, simulator_env

pytestmark = pytest.mark.integration
# Shaped like a data.go.kr key: its URL-encoded form differs from it, and neither may be printed.
KEY = "Dr0c+t0rSecret/KEY5c2e9=="
REFUSING = {
    "RACELAB_SIMULATOR__UNAPPROVED": '["API9_1/*", "API160_1/integratedInfo_1", "SRVC_OD_API_CRA_PAYOFF/*"]',
    "RACELAB_SIMULATOR__QUOTA_EXHAUSTED": '["SRVC_CRA_RACE_RANK/*"]',
}
ALL_RACE_TYPES = '["horse", "cycle", "boat"]'
# endpoint -> (result, what to do), in table order
REFUSED_RESULTS = {
    ep.KRA_RACE_PLAN.path: ("OK", "-"),
    ep.KRA_ENTRY_SHEET.path: ("OK", "-"),
    ep.KRA_SCRATCHES.path: ("NOT APPROVED (30)", "apply for 15056779 on data.go.kr (활용신청)"),
    ep.KRA_RACE_RESULT_TOTAL.path: ("OK", "-"),
    ep.KRA_RACE_RESULT.path: ("OK", "-"),
    ep.KRA_FINAL_DIVIDENDS.path: ("NOT APPROVED (30)", "apply for 15058559 on data.go.kr (활용신청)"),
    ep.CYCLE_ENTRIES.path: ("OK", "-"),
    ep.CYCLE_RESULT.path: ("OK", "-"),
    ep.CYCLE_RANK.path: ("QUOTA (22)", "wait until 00:00 KST, or raise the quota (활용사례 등록)"),
    ep.CYCLE_PAYOFF.path: ("NOT APPROVED (HTTP 403)", "apply for 15107845 on data.go.kr (활용신청)"),
    ep.BOAT_ENTRIES.path: ("OK", "-"),
    ep.BOAT_RESULT.path: ("OK", "-"),
    ep.BOAT_RANK.path: ("OK", "-"),
    ep.BOAT_PAYOFF.path: ("OK", "-"),
}


@contextlib.asynccontextmanager
async def simulator(**settings: str) -> AsyncIterator[str]:
    """``racelab simulator`` on a free port, requiring :data:`KEY`; yields its base URL."""
    env = {**os.environ, "RACELAB_SIMULATOR__SERVICE_KEY": KEY, **settings}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "racelab.cli", "simulator", "--port", "0", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        found = re.search(r"http://[\d.]+:\d+", banner)
        assert found is not None, banner
        yield found.group(0)
    finally:
        proc.terminate()
        await proc.wait()


async def doctor(settings: Settings, base: str, *args: str, **env: str) -> tuple[int, str, str]:
    """``racelab doctor`` as a process with the key for both sources: (exit code, stdout, stderr)."""
    defaults = {
        "RACELAB_KRA__SERVICE_KEY": KEY,
        "RACELAB_KSPO__SERVICE_KEY": KEY,
        "RACELAB_PRODUCERS__RACE_TYPES": ALL_RACE_TYPES,
        "RACELAB_PRODUCERS__TRACKS": "[]",
        "RACELAB_OPS__PROMETHEUS_URL": "",
    }
    environment = pipeline_env(settings, **simulator_env(base), **{**defaults, **env})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "racelab.cli",
        "doctor",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    stdout, stderr = out.decode(), err.decode()
    for shown in (KEY, quote(KEY, safe=""), quote(KEY)):
        assert shown not in stdout and shown not in stderr
    return proc.returncode or 0, stdout, stderr


def section(stdout: str, header: str) -> list[list[str]]:
    """The cells of a table's rows: from the line starting with ``header`` to the next empty line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line))
    return rows


def endpoint_rows(stdout: str) -> dict[str, tuple[str, str]]:
    return {row[1]: (row[3], row[4]) for row in section(stdout, "race type")}


def infra_rows(stdout: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in section(stdout, "check ")}


async def expected_license(settings: Settings) -> str:
    return str(await scalar(settings, "SELECT current_setting('timescaledb.license', true)"))


async def test_doctor_names_each_refusal_and_exits_1(settings: Settings):
    license_name = await expected_license(settings)
    async with simulator(**REFUSING) as base:
        code, stdout, stderr = await doctor(settings, base)
        assert code == 1, stdout + stderr
        assert stdout.splitlines()[1:3] == [f"KRA at {base}/B551015", f"KSPO at {base}/B551014"]
        rows = endpoint_rows(stdout)
        assert list(rows) == list(REFUSED_RESULTS)
        assert rows == REFUSED_RESULTS
        datasets = {row[1]: row[2] for row in section(stdout, "race type")}
        assert datasets[ep.KRA_SCRATCHES.path] == "경주마 출전취소 정보 15056779"
        assert datasets[ep.KRA_RACE_PLAN.path] == "경주계획표 (no. not in reference)"
        infra = infra_rows(stdout)
        assert [infra[name][0] for name in ("broker", "database", "timescaledb", "prometheus")] == [
            "OK",
            "OK",
            "OK",
            "NOT CONFIGURED",
        ]
        assert infra["timescaledb"][1].startswith(f"license {license_name}: ")
        assert stdout.splitlines()[-1] == "10 of 14 endpoints OK; infrastructure OK; exit 1"
        assert "NOT APPROVED: data.go.kr approves a key per dataset." in stdout
        assert "QUOTA: the key has used up" in stdout

        # Only boat racing configured: its four endpoints answer, so nothing it needs fails.
        code, stdout, stderr = await doctor(settings, base, "--json", RACELAB_PRODUCERS__RACE_TYPES='["boat"]')
        assert code == 0, stdout + stderr
        doc = orjson.loads(stdout)
        assert doc["ok"] is True and doc["race_types"] == ["boat"] and doc["base_urls"] == {"kspo": f"{base}/B551014"}
        assert [(e["endpoint"], e["verdict"]) for e in doc["endpoints"]] == [
            (ep.BOAT_ENTRIES.path, "ok"),
            (ep.BOAT_RESULT.path, "ok"),
            (ep.BOAT_RANK.path, "ok"),
            (ep.BOAT_PAYOFF.path, "ok"),
        ]


async def test_doctor_exits_0_when_everything_is_approved_and_1_when_prometheus_does_not_answer(
    settings: Settings, tmp_path: Path
):
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    server = PrometheusServer(prometheus_binaries(default_home(), install=True), config)
    await asyncio.to_thread(server.start)
    try:
        async with simulator() as base:
            code, stdout, stderr = await doctor(settings, base, RACELAB_OPS__PROMETHEUS_URL=server.url)
            assert code == 0, stdout + stderr
            assert endpoint_rows(stdout) == dict.fromkeys(REFUSED_RESULTS, ("OK", "-"))
            assert infra_rows(stdout)["prometheus"] == ["OK", f"{server.url} ready", "-"]
            assert stdout.splitlines()[-1] == "14 of 14 endpoints OK; infrastructure OK; exit 0"
            assert "NOT APPROVED:" not in stdout and "QUOTA:" not in stdout

            silent = f"http://127.0.0.1:{free_port()}"
            code, stdout, stderr = await doctor(settings, base, RACELAB_OPS__PROMETHEUS_URL=silent)
            assert code == 1, stdout + stderr
            assert infra_rows(stdout)["prometheus"] == [
                "FAIL",
                f"{silent}: no answer (ConnectError)",
                "start Prometheus or correct RACELAB_OPS__PROMETHEUS_URL",
            ]
            assert stdout.splitlines()[-1] == "14 of 14 endpoints OK; failing: prometheus; exit 1"
    finally:
        await asyncio.to_thread(server.stop)
