"""The running control API keeps the contract its OpenAPI document states: schemathesis, every check.

``racelab run api`` as a real process on the simulator, the real broker and the real database; schemathesis (its
``st`` command) reads ``/openapi.json`` and runs all its phases (examples, coverage, fuzzing, stateful, following
the documented link from the failure list to a retry) with all checks: no server error, every status code and
body as documented, schema-valid requests accepted, schema-invalid ones rejected, the key enforced. A fixed seed
and a bounded number of cases per operation make the run repeatable.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from producers.simulator.faults import FaultRule
from producers.simulator.world import World
from runtime.db import connect
from runtime.settings import Settings

from .conftest import pipeline_env, simulator_env, start_component
from .test_api import AT, KEY, H, _listening_url
from .test_producers import start_sim

pytestmark = pytest.mark.integration
SEED = 20261206
CASES_PER_OPERATION = 15


def schemathesis_command() -> str:
    found = Path(sys.executable).with_name("st")
    if found.is_file():
        return str(found)
    on_path = shutil.which("st")
    assert on_path, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    return on_path


async def store_race_with_odds(settings: Settings) -> None:
    """Race 1 of the test's day, stored with a few WIN odds (two live snapshots and the final dividends)."""
    race, post = "horse-seoul-1-20241214", AT.replace(hour=1, minute=35)
    conn = await connect(settings.database)
    try:
        await conn.execute(
            "INSERT INTO races (race_id, race_type, track_code, race_date, race_no, post_time, status, source) "
            "VALUES ($1, 'horse', 'seoul', '2024-12-14', 1, $2, 'official', 'kra')",
            race,
            post,
        )
        await conn.executemany(
            "INSERT INTO odds_snapshots (time, race_id, pool, selection, odds, is_final, source) "
            "VALUES ($1, $2, 'WIN', $3, $4, $5, 'kra')",
            [
                (post - timedelta(minutes=minutes), race, str(entry), odds + entry, final)
                for minutes, odds, final in ((10, 3.0, False), (5, 2.5, False), (-600, 2.0, True))
                for entry in (1, 2, 3)
            ],
        )
    finally:
        await conn.close()


async def test_the_running_api_keeps_its_openapi_contract(settings: Settings, db_schema: str, tmp_path: Path):
    simulator, runner, base = await start_sim(World(seed=5), AT, speed=1)
    # Details of results fail: the trigger below records a failure, so the list -> retry link has an id to follow.
    simulator.faults.replace([FaultRule("API214_1/*", "http_503")])
    fast = {
        f"RACELAB_{source}__{name}": value
        for source in ("KRA", "KSPO", "ODDS_FEED")
        for name, value in (("REQUESTS_PER_SECOND", "200"), ("MAX_ATTEMPTS", "1"), ("RETRY_BASE_DELAY_S", "0"))
    }
    env = pipeline_env(settings, **simulator_env(base), **fast, RACELAB_API__INGESTION_KEY=KEY, RACELAB_API__PORT="0")
    api = await start_component("api", env)
    lines: list[str] = []
    try:
        url = await _listening_url(api, lines)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            seeded = await http.post(
                "/api/ingestion/trigger/results", json={"raceIds": ["horse-seoul-1-20241214"]}, headers=H
            )
        assert seeded.json()["data"]["errors"] == 1, seeded.text
        await store_race_with_odds(settings)  # the race list -> odds chart link has a chart to answer
        st = await asyncio.create_subprocess_exec(
            schemathesis_command(),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-examples",
            str(CASES_PER_OPERATION),
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--header",
            f"X-Ingestion-Key: {KEY}",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        out, _ = await asyncio.wait_for(st.communicate(), 600)
    finally:
        if api.returncode is None:
            api.terminate()
            await asyncio.wait_for(api.wait(), 40)
        await runner.cleanup()
    report = out.decode()
    assert st.returncode == 0, report
    assert "No issues found" in report, report
    assert "Tested: 12" in report  # every operation of the document, the ops routes included
    # the stateful phase followed the failure list -> retry and the race list -> odds chart links
    assert "API Links:    2 covered" in report
    assert KEY not in report
