"""The control API's pure parts: key check, body validation, error envelope, metrics labels, OpenAPI copy."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr, ValidationError

from racelab import cli
from racelab.api.app import create_app
from racelab.api.auth import key_matches, require_configured_key
from racelab.api.models import RaceTrigger, ScheduleTrigger, parse_race_id
from racelab.api.server import openapi_document
from runtime.settings import ApiSettings, Settings
from schemas.errors import ConfigurationError

KEY = "unit-test-ingestion-key-0123456789"
COMMITTED_OPENAPI = Path(__file__).resolve().parents[2] / "deploy" / "openapi.json"


# ---- key ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected", "ok"),
    [
        (KEY, KEY, True),
        (KEY.encode(), KEY, True),
        (KEY + "x", KEY, False),
        (KEY[:-1], KEY, False),
        ("", KEY, False),
        (None, KEY, False),
        ("", "", False),  # an empty configured key matches nothing, not even an empty header
        (None, "", False),
        ("ключ", "ключ", True),
    ],
)
def test_key_matches(given, expected, ok):
    assert key_matches(given, SecretStr(expected)) is ok


@pytest.mark.parametrize("key", ["", "   "])
def test_no_key_configured_refuses_to_start(key):
    with pytest.raises(ConfigurationError, match="RACELAB_API__INGESTION_KEY"):
        require_configured_key(ApiSettings(ingestion_key=SecretStr(key)))


def test_run_api_without_key_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("RACELAB_API__INGESTION_KEY", "")
    monkeypatch.setattr(cli, "setup_logging", lambda settings: None)
    assert cli.main(["run", "api"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("racelab: error: the control API needs an ingestion key")


# ---- bodies ------------------------------------------------------------------------------------------------------
def test_parse_race_id():
    key = parse_race_id("cycle-busan_cycle-12-20241210")
    assert (key.race_type, key.track, key.race_no, key.day) == ("cycle", "busan_cycle", 12, date(2024, 12, 10))


@pytest.mark.parametrize(
    "text",
    [
        "horse-seoul-7",
        "horse-seoul-7-2024121",
        "car-seoul-3-20241210",
        "horse-misari-3-20241210",  # misari is a boat track
        "horse-seoul-0-20241210",
        "horse-seoul-3-20241310",
        "Horse-seoul-3-20241210",
        " horse-seoul-7-20241210",
    ],
)
def test_parse_race_id_rejects_without_echoing(text):
    with pytest.raises(ValueError) as err:
        parse_race_id(text)
    assert text.strip() not in str(err.value)


def test_race_trigger_accepts_both_spellings_and_drops_repeats():
    ids = ["horse-seoul-1-20241210", "horse-seoul-2-20241210", "horse-seoul-1-20241210"]
    assert RaceTrigger.model_validate({"raceIds": ids}).race_ids == ids[:2]
    assert RaceTrigger.model_validate({"race_ids": ids}).race_ids == ids[:2]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"raceIds": []},
        {"raceIds": "horse-seoul-1-20241210"},
        {"raceIds": ["horse-seoul-1-20241210"], "date": "2024-12-10"},  # the seed takes race ids only
        {"raceId": ["horse-seoul-1-20241210"]},
        {"raceIds": [f"horse-seoul-1-2024{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, 19)]},  # > 200
    ],
)
def test_race_trigger_rejects(body):
    with pytest.raises(ValidationError):
        RaceTrigger.model_validate(body)


def test_schedule_trigger():
    assert ScheduleTrigger.model_validate({}).date is None
    body = ScheduleTrigger.model_validate({"date": "2024-12-10", "race_types": ["horse", "boat"]})
    assert body.date == date(2024, 12, 10) and body.race_types == ["horse", "boat"]
    for bad in ({"date": 20241210}, {"date": "2024-12-10T00:00"}, {"date": "2024-02-30"}, {"raceTypes": []}):
        with pytest.raises(ValidationError):
            ScheduleTrigger.model_validate(bad)


# ---- the app without a pipeline ----------------------------------------------------------------------------------
class Untouchable:
    """Stands in for the service where a test proves the request never reaches it."""

    def __getattr__(self, name):
        raise AssertionError(f"the service was used ({name})")


@pytest.fixture
async def client():
    settings = Settings(_env_file=None, api={"ingestion_key": KEY})
    registry = CollectorRegistry()
    app = create_app(settings, Untouchable(), registry=registry, checks=[])  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        yield http, registry


async def test_missing_or_wrong_key_is_401_before_anything_else(client):
    http, registry = client
    for headers in ({}, {"X-Ingestion-Key": "wrong"}, {"X-Ingestion-Key": ""}, {"X-Ingestion-Key": KEY + " "}):
        for method, path, body in (
            ("POST", "/api/ingestion/trigger/schedules", b"{not json"),
            ("POST", "/api/ingestion/trigger/results", b'{"raceIds": []}'),
            ("GET", "/api/ingestion/status", None),
            ("GET", "/api/ingestion/failures?limit=0", None),
            ("POST", "/api/ingestion/failures/1/retry", None),
            ("GET", "/api/ingestion/no-such-route", None),
            ("GET", "/", None),  # protected by default: only the ops and documentation paths are public
        ):
            answer = await http.request(method, path, content=body, headers=headers)
            assert answer.status_code == 401, (method, path)
            data = answer.json()
            assert data["success"] is False and data["error"]["code"] == "UNAUTHORIZED"
            assert KEY not in answer.text
    sample = registry.get_sample_value(
        "racelab_control_requests_total", {"route": "/api/ingestion/failures/{failure_id}/retry", "status": "401"}
    )
    assert sample == 4
    assert registry.get_sample_value("racelab_control_requests_total", {"route": "unmatched", "status": "401"}) == 8
    answer = await http.get("/", headers={"X-Ingestion-Key": KEY})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("POST", "/api/ingestion/trigger/entries", {"raceIds": ["horse-seoul-1-2024121"]}, ["body", "raceIds", 0]),
        ("POST", "/api/ingestion/trigger/odds", {"raceIds": []}, ["body", "raceIds"]),
        ("POST", "/api/ingestion/trigger/results", {"raceIds": ["x"], "token": "leak-me"}, ["body", "token"]),
        ("POST", "/api/ingestion/trigger/schedules", {"date": "leak-me"}, ["body", "date"]),
        ("POST", "/api/ingestion/trigger/schedules", {"raceTypes": ["leak-me"]}, ["body", "raceTypes", 0]),
        ("GET", "/api/ingestion/status?date=leak-me", None, ["query", "date"]),
        ("GET", "/api/ingestion/failures?limit=501", None, ["query", "limit"]),
        ("GET", "/api/ingestion/failures?resolved=leak-me", None, ["query", "resolved"]),
        ("POST", "/api/ingestion/failures/0/retry", None, ["path", "failure_id"]),
    ],
)
async def test_invalid_requests_are_422_without_echo(client, method, path, body, where):
    http, _ = client
    answer = await http.request(method, path, json=body, headers={"X-Ingestion-Key": KEY})
    assert answer.status_code == 422
    data = answer.json()
    assert data["success"] is False and data["error"]["code"] == "INVALID_REQUEST"
    assert where in [d["loc"] for d in data["error"]["details"]]
    assert "leak-me" not in answer.text and KEY not in answer.text
    assert '"input"' not in answer.text and '"ctx"' not in answer.text


async def test_ops_routes_need_no_key(client):
    http, _ = client
    assert (await http.get("/healthz")).json() == {"status": "alive"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = await http.get("/metrics")
    assert 'racelab_control_requests_total{route="/healthz",status="200"} 1.0' in metrics.text
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "RaceLab ingest control API"


def test_committed_openapi_is_current():
    committed = json.loads(COMMITTED_OPENAPI.read_text(encoding="utf-8"))
    assert committed == openapi_document(), "regenerate: racelab api openapi deploy/openapi.json"


# ---- trigger planning --------------------------------------------------------------------------------------------
class FakeCollector:
    """Answers calls from a table: pages, or None for a failed call; counts what was asked."""

    live_odds = None

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.asked: list[str] = []

    async def collect(self, call):
        from producers.client import RawResponse

        self.asked.append(call.endpoint)
        if call.endpoint in self.failing:
            return None
        page = RawResponse(call.source, call.endpoint, call.params, b"{}", 200, datetime.now(UTC), 1, 2, 2, 1, 0.0)
        return [page, page]


async def test_trigger_run_makes_each_call_once_and_counts():
    from producers.calls import kra_entry_sheet, kra_race_result_total, kra_scratches
    from racelab.api.triggers import SAME_CALL, TriggerRun

    collector = FakeCollector(failing={"API9_1/raceHorseCancelInfo_1"})

    async def failure_ids(prints):
        return dict.fromkeys(prints, 41)

    run = TriggerRun(collector, failure_ids)  # type: ignore[arg-type]
    day = date(2024, 12, 14)
    planned = [kra_entry_sheet("seoul", day), kra_scratches("seoul", day)] * 2
    answers = await run.collect(planned)
    assert [a is not None for a in answers] == [True, False, True, False]
    await run.collect([kra_entry_sheet("seoul", day), kra_race_result_total("seoul", day, 1)])
    data = run.data()
    assert collector.asked == ["API26_2/entrySheet_2", "API9_1/raceHorseCancelInfo_1", "API299/Race_Result_total"]
    assert (data.collected, data.skipped, data.errors, data.messages) == (2, 3, 1, 4)
    assert [c.outcome for c in data.calls] == ["collected", "failed", "skipped", "skipped", "skipped", "collected"]
    assert data.calls[1].failure_id == 41 and {c.reason for c in data.calls if c.outcome == "skipped"} == {SAME_CALL}
    assert data.collected + data.skipped + data.errors == len(data.calls) == 6


def test_odds_call_live_only_while_the_stored_race_is_not_over():
    from racelab.api.triggers import odds_call, race_ref

    key = parse_race_id("horse-seoul-3-20241214")
    unknown = race_ref(key, {})
    assert unknown.status == "unknown" and unknown.race_date == date(2024, 12, 14)
    stored = dataclasses.replace(unknown, post_time=datetime(2024, 12, 14, 2, 45, tzinfo=UTC))
    before, after = datetime(2024, 12, 14, 2, 0, tzinfo=UTC), datetime(2024, 12, 14, 2, 48, tzinfo=UTC)
    from producers.calendar import Calendar

    none = Calendar()

    def endpoint(race: object, stored_: bool, now: datetime, live: bool) -> str | None:
        call = odds_call(race, stored_, now, live, none)  # type: ignore[arg-type]
        return call.endpoint if call is not None else None

    assert endpoint(stored, True, before, True) == "liveOdds"
    assert endpoint(stored, True, after, True) == "API160_1/integratedInfo_1"
    assert endpoint(stored, True, before, False) == "API160_1/integratedInfo_1"
    assert endpoint(unknown, False, before, True) == "API160_1/integratedInfo_1"
    boat = race_ref(parse_race_id("boat-misari-3-20241212"), {})
    assert endpoint(boat, False, before, True) is None  # its round is not known: no call, no guess


def test_collection_log_day_comes_from_the_message_key():
    from producers.state import key_day

    assert key_day("horse-seoul-3-20241210") == date(2024, 12, 10)
    assert key_day("kspo:busan_cycle:20241210") == date(2024, 12, 10)
    assert key_day("kra:retry:17") is None
    assert key_day("kra:seoul:20241340") is None
