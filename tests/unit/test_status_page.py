"""The status page's shell and the race routes of the control API, without a pipeline (the service is a stand-in)."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import date

import httpx
from prometheus_client import CollectorRegistry

from racelab.api.app import create_app
from racelab.api.page import page_html
from racelab.api.server import openapi_document
from racelab.api.status import stage_groups
from racelab.charts import NothingToDraw
from runtime.settings import Settings
from sinks.queries import RaceNotFound

KEY = "unit-test-ingestion-key-0123456789"
H = {"X-Ingestion-Key": KEY}
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><g id="odds-line-1"><path d="M 0 0 L 1 1"/></g></svg>'


class Charts:
    """Stands in for the service: answers charts and counts the calls."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None, int | None]] = []

    async def odds_chart(self, race_id: str, pool: str | None, top: int | None) -> bytes:
        self.asked.append((race_id, pool, top))
        if race_id.startswith("horse-jeju"):
            raise RaceNotFound(race_id)
        if pool == "TRI":
            raise NothingToDraw(f"no odds stored for race {race_id} in pool TRI: nothing to draw")
        return SVG

    async def day_races(self, day: date | None) -> list:
        return []


def client(page_enabled: bool, service: object | None = None) -> httpx.AsyncClient:
    settings = Settings(_env_file=None, api={"ingestion_key": KEY, "page_enabled": page_enabled})
    app = create_app(settings, service, registry=CollectorRegistry(), checks=[])  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_page_off_by_default_is_an_unknown_path():
    assert Settings(_env_file=None).api.page_enabled is False
    async with client(page_enabled=False) as http:
        assert (await http.get("/")).status_code == 401  # like any path that is not public
        answer = await http.get("/", headers=H)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"


async def test_page_on_serves_the_shell_without_data_or_key():
    async with client(page_enabled=True) as http:
        answer = await http.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.text == page_html() and KEY not in answer.text
    assert "<title>RaceLab ingest</title>" in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"


async def test_page_policy_allows_exactly_its_own_script():
    async with client(page_enabled=True) as http:
        policy = (await http.get("/")).headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page_html(), re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    rules = dict(rule.split(" ", 1) for rule in policy.split("; "))
    assert rules == {
        "default-src": "'none'",
        "script-src": f"'sha256-{digest}'",
        "style-src": "'unsafe-inline'",
        "connect-src": "'self'",
        "img-src": "'self' data:",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }


def test_page_loads_nothing_from_elsewhere_and_writes_no_markup():
    html = page_html()
    assert not re.search(r"\b(src|href)\s*=", html)  # no external script, style sheet, image or link
    assert "http://" not in html and "https://" not in html
    script = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)[0]
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage"):
        assert unsafe not in script, unsafe
    assert "sessionStorage.setItem" in script


def test_page_reads_only_routes_the_document_has():
    paths = openapi_document()["paths"]
    called = set(re.findall(r'"(/api/ingestion/[a-z/]+)', page_html()))
    assert called == {"/api/ingestion/status", "/api/ingestion/races", "/api/ingestion/races/"}
    assert {"/api/ingestion/status", "/api/ingestion/races", "/api/ingestion/races/{race_id}/odds.svg"} <= set(paths)
    assert "/" not in paths  # the page is not part of the API


async def test_chart_route_answers_svg_and_404s():
    service = Charts()
    async with client(page_enabled=False, service=service) as http:
        assert (await http.get("/api/ingestion/races/horse-seoul-2-20241214/odds.svg")).status_code == 401
        answer = await http.get("/api/ingestion/races/horse-seoul-2-20241214/odds.svg?pool=QNL&top=5", headers=H)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
        assert answer.content == SVG and answer.headers["cache-control"] == "no-store"
        missing = await http.get("/api/ingestion/races/horse-jeju-2-20241214/odds.svg", headers=H)
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "unknown race id: horse-jeju-2-20241214"
        empty = await http.get("/api/ingestion/races/horse-seoul-2-20241214/odds.svg?pool=TRI", headers=H)
        assert empty.status_code == 404 and "in pool TRI: nothing to draw" in empty.json()["error"]["message"]
        for bad in (
            "/api/ingestion/races/horse-misari-2-20241214/odds.svg",  # misari is a boat track
            "/api/ingestion/races/horse-seoul-2-20240230/odds.svg",
            "/api/ingestion/races/horse-seoul-2-20241214/odds.svg?pool=XYZ",
            "/api/ingestion/races/horse-seoul-2-20241214/odds.svg?top=0",
        ):
            assert (await http.get(bad, headers=H)).status_code == 422, bad
    assert service.asked == [
        ("horse-seoul-2-20241214", "QNL", 5),
        ("horse-jeju-2-20241214", None, None),
        ("horse-seoul-2-20241214", "TRI", None),
    ]


def test_lag_is_measured_for_each_consuming_stage():
    settings = Settings(_env_file=None, topics={"prefix": "rl"}, sink={"consumer_group": "sink2"})
    stages = {stage: (group, topics) for stage, group, topics in stage_groups(settings)}
    assert stages["processors"] == (
        "rl-processors",
        {k: f"rl.raw.{k}" for k in ("schedules", "entries", "odds", "results")},
    )
    assert stages["sink"] == (
        "rl-sink2",
        {"schedules": "rl.races", "entries": "rl.entries", "odds": "rl.odds", "results": "rl.results"},
    )
    assert stages["archiver"] == ("rl-archiver", stages["processors"][1])


def test_status_document_has_the_lag():
    schema = openapi_document()["components"]["schemas"]
    assert "lag" in schema["StatusData"]["properties"] and "lag" in schema["StatusData"]["required"]
    assert set(schema["LagStatus"]["properties"]) == {
        "stage", "group", "kind", "topic", "endOffset", "committedOffset", "lag",
    }  # fmt: skip
