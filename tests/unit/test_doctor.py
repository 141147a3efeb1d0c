"""``racelab doctor`` without services: verdicts from the error bodies of the API notes, through the real client
(``httpx.MockTransport``), what to do about each, the exit code, the endpoints each race type uses, and the
simulator's per-endpoint refusals."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import httpx
import orjson
import pytest

from producers import plans
from producers.calendar import Calendar, RaceDay
from producers.kra import KraClient
from producers.kspo import KspoClient
from producers.pollers import RaceDayPoller
from producers.probe import (
    ENDPOINTS_IN_USE,
    Probe,
    probe_call,
    probe_endpoint,
    probe_track,
    race_types_in_use,
    secret_free,
)
from producers.ratelimit import RateLimiter
from producers.simulator.approvals import KeyApprovals
from producers.state import RaceRef
from racelab.doctor_infra import InfraCheck, check_license, check_prometheus
from racelab.doctor_report import Report, advice_of, result_of, table
from racelab.query_cli import width
from runtime.settings import KraSettings, KspoSettings, ProducerSettings, Settings
from schemas import endpoints as ep
from schemas.datasets import DATASETS, dataset_of
from schemas.envelope import inspect_page
from schemas.tracks import race_type_of

KEY = "doctor-unit-KEY-9"
DAY = date(2024, 12, 14)

# Error bodies as the API notes write them (reference §1.3, texts of §4.1 where the notes elide them).
GATEWAY_30_XML = b"""<OpenAPI_ServiceResponse>
  <cmmMsgHeader>
    <errMsg>SERVICE ERROR</errMsg>
    <returnAuthMsg>SERVICE_KEY_IS_NOT_REGISTERED_ERROR</returnAuthMsg>
    <returnReasonCode>30</returnReasonCode>
  </cmmMsgHeader>
</OpenAPI_ServiceResponse>"""
GATEWAY_22_JSON = orjson.dumps(
    {
        "OpenAPI_ServiceResponse": {
            "cmmMsgHeader": {
                "errMsg": "SERVICE ERROR",
                "returnAuthMsg": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
                "returnReasonCode": "22",
            }
        }
    }
)
SERVICE_99_JSON = b'{"response":{"header":{"resultCode":"99","resultMsg":"ERROR"}}}'


def gateway_xml(code: str, message: str) -> bytes:
    return (
        "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{message}</returnAuthMsg><returnReasonCode>{code}</returnReasonCode>"
        "</cmmMsgHeader></OpenAPI_ServiceResponse>"
    ).encode()


# Example B of the notes: one row, ``item`` an object.
ONE_ROW_JSON = orjson.dumps(
    {
        "response": {
            "header": {"resultCode": "00", "resultMsg": "NORMAL SERVICE."},
            "body": {
                "items": {"item": {"jkName": "김용근", "jkNo": "080405"}},
                "numOfRows": 5,
                "pageNo": 1,
                "totalCount": 1,
            },
        }
    }
)


async def probe_answer(
    status: int, body: bytes, endpoint: ep.Endpoint = ep.KRA_ENTRY_SHEET, key: str = KEY
) -> tuple[Probe, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body)

    kra = endpoint.source == "kra"
    settings = (KraSettings if kra else KspoSettings)(
        base_url="http://api.test/B551015" if kra else "http://api.test/B551014",
        service_key=key,
        requests_per_second=1000,
        retry_base_delay_s=5.0,  # a retry would make the test slow; there must be none
    )
    call = probe_call(endpoint, "seoul" if kra else probe_track(ProducerSettings(), endpoint.race_type), DAY)
    client_type = KraClient if kra else KspoClient
    probe = await probe_endpoint(
        client_type, settings, RateLimiter(1000, 4), endpoint, call, httpx.MockTransport(handler)
    )
    return probe, seen


@pytest.mark.parametrize(
    ("status", "body", "endpoint", "verdict", "code", "message", "result", "advice"),
    [
        (
            200,
            GATEWAY_30_XML,
            ep.KRA_ENTRY_SHEET,
            "not_approved",
            "30",
            "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
            "NOT APPROVED (30)",
            "apply for 15058677 on data.go.kr (활용신청)",
        ),
        (
            200,
            gateway_xml("20", "SERVICE_ACCESS_DENIED_ERROR"),
            ep.KRA_RACE_PLAN,
            "not_approved",
            "20",
            "SERVICE_ACCESS_DENIED_ERROR",
            "NOT APPROVED (20)",
            "apply for API72_2 경주계획표 on data.go.kr (활용신청)",
        ),
        (
            200,
            GATEWAY_22_JSON,
            ep.KRA_FINAL_DIVIDENDS,
            "quota",
            "22",
            "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
            "QUOTA (22)",
            "wait until 00:00 KST, or raise the quota (활용사례 등록)",
        ),
        (
            200,
            gateway_xml("22", "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR"),
            ep.CYCLE_RANK,
            "quota",
            "22",
            "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
            "QUOTA (22)",
            "wait until 00:00 KST, or raise the quota (활용사례 등록)",
        ),
        (
            200,
            gateway_xml("31", "DEADLINE_HAS_EXPIRED_ERROR"),
            ep.KRA_RACE_RESULT,
            "error",
            "31",
            "DEADLINE_HAS_EXPIRED_ERROR",
            "ERROR (code 31: DEADLINE_HAS_EXPIRED_ERROR)",
            "the key has expired: extend its period on data.go.kr",
        ),
        (
            200,
            gateway_xml("23", "LIMITED_NUMBER_OF_SERVICE_REQUESTS_PER_SECOND_EXCEEDS_ERROR"),
            ep.BOAT_PAYOFF,
            "error",
            "23",
            "LIMITED_NUMBER_OF_SERVICE_REQUESTS_PER_SECOND_EXCEEDS_ERROR",
            "ERROR (code 23: LIMITED_NUMBER_OF_SERVICE_REQUESTS_PER_SECOND_EXCEEDS_ERROR)",
            "too many calls per second: lower RACELAB_KSPO__REQUESTS_PER_SECOND",
        ),
        (
            200,
            SERVICE_99_JSON,
            ep.KRA_SCRATCHES,
            "error",
            "99",
            "ERROR",
            "ERROR (code 99: ERROR)",
            "the API did not answer: try again later, and check RACELAB_KRA__BASE_URL",
        ),
    ],
)
async def test_verdict_of_each_error_body(status, body, endpoint, verdict, code, message, result, advice):
    probe, seen = await probe_answer(status, body, endpoint)
    assert (probe.verdict, probe.code, probe.http_status, probe.message) == (verdict, code, 200, message)
    assert result_of(probe) == result
    assert advice_of(probe) == advice
    assert len(seen) == 1  # one call, no retry, whatever the error
    query = seen[0].url.params
    assert (query["numOfRows"], query["pageNo"], query["serviceKey"]) == ("1", "1", KEY)


async def test_kspo_gateway_refuses_an_unapproved_api_with_http_403_and_no_code():
    probe, seen = await probe_answer(403, b"Forbidden", ep.CYCLE_PAYOFF)
    assert (probe.verdict, probe.code, probe.http_status) == ("not_approved", None, 403)
    assert result_of(probe) == "NOT APPROVED (HTTP 403)"
    assert advice_of(probe) == "apply for 15107845 on data.go.kr (활용신청)"
    assert seen[0].url.params["resultType"] == "json"


async def test_an_answer_is_ok_with_its_total_count():
    probe, _ = await probe_answer(200, ONE_ROW_JSON, ep.KRA_ENTRY_SHEET)
    assert (probe.verdict, probe.total_count, probe.http_status) == ("ok", 1, 200)
    assert (result_of(probe), advice_of(probe)) == ("OK", "")


async def test_server_errors_and_unreachable_apis_are_errors():
    probe, seen = await probe_answer(503, b"", ep.KRA_ENTRY_SHEET)
    assert (probe.verdict, probe.http_status, probe.error_class) == ("error", 503, "UpstreamUnavailable")
    assert result_of(probe) == "ERROR (HTTP 503: HTTP error status)"
    assert len(seen) == 1


async def test_without_a_key_the_advice_is_to_set_it():
    probe, seen = await probe_answer(200, GATEWAY_30_XML, ep.KRA_ENTRY_SHEET, key="")
    assert "serviceKey" not in seen[0].url.params
    assert probe.key_set is False
    assert advice_of(probe) == "set RACELAB_KRA__SERVICE_KEY (the decoded key from data.go.kr)"


async def test_the_key_never_reaches_the_message():
    body = orjson.dumps({"response": {"header": {"resultCode": "10", "resultMsg": f"bad param serviceKey={KEY}\n x"}}})
    probe, _ = await probe_answer(200, body, ep.KRA_ENTRY_SHEET)
    assert probe.message == "bad param serviceKey=*** x"
    assert KEY not in Report(["horse"], [probe], []).to_text()
    assert KEY.encode() not in Report(["horse"], [probe], []).to_json()


def test_secret_free_masks_flattens_and_caps():
    assert secret_free("a\n\tb  KEYX c", "KEYX") == "a b *** c"
    assert secret_free("x" * 300, "") == "x" * 120


@pytest.mark.parametrize(
    ("producers", "expected"),
    [
        ({}, ["horse", "cycle", "boat"]),
        ({"tracks": ("seoul",)}, ["horse"]),
        ({"race_types": ("boat",)}, ["boat"]),
        ({"tracks": ("yeongcheon", "misari")}, ["horse", "boat"]),
        ({"race_types": ("cycle",), "tracks": ("seoul",)}, []),
    ],
)
def test_race_types_in_use_follow_the_pollers_tracks(producers, expected):
    settings = ProducerSettings(**producers)
    assert race_types_in_use(settings) == expected
    poller = RaceDayPoller(settings, None, None, None, False)  # only .tracks() is used
    assert sorted({race_type_of(t) for t in poller.tracks()}) == sorted(expected)


def test_probe_track_is_the_first_collected_track():
    assert [probe_track(ProducerSettings(), rt) for rt in ("horse", "cycle", "boat")] == [
        "seoul",
        "gwangmyeong",
        "misari",
    ]
    named = ProducerSettings(tracks=("jeju", "changwon"))
    assert (probe_track(named, "horse"), probe_track(named, "cycle")) == ("jeju", "changwon")


@pytest.mark.parametrize(("race_type", "track"), [("horse", "seoul"), ("cycle", "gwangmyeong"), ("boat", "misari")])
def test_endpoints_in_use_are_the_ones_the_plans_call(race_type, track):
    known = RaceDay(race_type, track, DAY, 2024, 50, 2)
    details = {"stnd_yr": "2024", "week_tcnt": "50", "day_tcnt": "2"} if race_type != "horse" else {}
    race = RaceRef(
        f"{race_type}-{track}-3-20241214", race_type, track, DAY, 3, datetime(2024, 12, 14, 3, tzinfo=UTC), "", details
    )
    calendar = Calendar([known])
    planned = [
        *plans.schedule_calls(track, DAY, calendar),
        *plans.entry_calls(track, DAY, [race], calendar),
        plans.result_call(race, calendar),
        *plans.result_detail_calls(race, calendar),
        plans.final_odds_call(race, calendar),
        *plans.learning_calls(track, date(2024, 12, 21), Calendar([known])),
    ]
    assert {c.endpoint for c in planned if c is not None} == {e.path for e in ENDPOINTS_IN_USE[race_type]}


def test_every_endpoint_has_its_dataset():
    assert set(DATASETS) == {e.path for e in ep.ALL_ENDPOINTS}
    numbers = [d.number for d in DATASETS.values() if d.number is not None]
    assert all(len(n) == 8 and n.isdigit() for n in numbers) and len(numbers) == len(set(numbers)) == 13
    assert dataset_of(ep.KRA_ENTRY_SHEET).label() == "출전표 상세정보 15058677"
    assert dataset_of(ep.KRA_RACE_PLAN).label() == "경주계획표 (no. not in reference)"
    assert dataset_of(ep.CYCLE_PAYOFF).page == "https://www.data.go.kr/data/15107845/openapi.do"


def probe(endpoint: ep.Endpoint, verdict: str = "ok", code: str | None = None) -> Probe:
    return Probe(endpoint, verdict, code=code, http_status=200)  # type: ignore[arg-type]


INFRA_OK = [
    InfraCheck("broker", "ok", "127.0.0.1:9092 (8 topics)"),
    InfraCheck("database", "ok", "postgresql://racelab:***@127.0.0.1:5432/racelab (timescaledb 2.19.3)"),
    InfraCheck("timescaledb", "ok", "license apache: no compression"),
    InfraCheck("prometheus", "not_configured", "RACELAB_OPS__PROMETHEUS_URL is empty", "set it to check Prometheus"),
]


def test_exit_code_counts_endpoints_and_infrastructure_but_not_a_missing_prometheus():
    good = [probe(e) for e in ENDPOINTS_IN_USE["horse"]]
    assert Report(["horse"], good, INFRA_OK).exit_code() == 0
    refused = [*good[:-1], probe(ep.KRA_FINAL_DIVIDENDS, "not_approved", "30")]
    assert Report(["horse"], refused, INFRA_OK).exit_code() == 1
    quota = [*good[:-1], probe(ep.KRA_FINAL_DIVIDENDS, "quota", "22")]
    assert Report(["horse"], quota, INFRA_OK).exit_code() == 1
    down = [InfraCheck("broker", "fail", "no answer"), *INFRA_OK[1:]]
    assert Report(["horse"], good, down).exit_code() == 1
    skipped = [*INFRA_OK[:2], InfraCheck("timescaledb", "skipped", "the database did not answer"), INFRA_OK[3]]
    assert Report(["horse"], good, skipped).exit_code() == 0
    not_ready = [*INFRA_OK[:3], InfraCheck("prometheus", "fail", "http://127.0.0.1:9/-/ready answered HTTP 503")]
    assert Report(["horse"], good, not_ready).exit_code() == 1


def test_text_report_rows_notes_and_summary():
    probes = [
        probe(ep.CYCLE_ENTRIES),
        probe(ep.CYCLE_RANK, "quota", "22"),
        Probe(ep.CYCLE_PAYOFF, "not_approved", http_status=403),
    ]
    text = Report(["cycle"], probes, INFRA_OK, {"kspo": "https://apis.data.go.kr/B551014"}).to_text()
    lines = text.splitlines()
    assert lines[0] == "data.go.kr endpoints of the configured race types (cycle): one call each, numOfRows=1"
    assert lines[1] == "KSPO at https://apis.data.go.kr/B551014"
    lines = lines[1:]
    assert [re.split(r"\s{2,}", line) for line in lines[1:5]] == [
        ["race type", "endpoint", "dataset", "result", "what to do"],
        ["cycle", "SRVC_OD_API_CRA_RACE_ORGAN/TODZ_API_CRA_RACE_ORGAN_I", "경륜 출주표 15107830", "OK", "-"],
        [
            "cycle",
            "SRVC_CRA_RACE_RANK/TODZ_CRA_RACE_RANK",
            "경륜 경주결과순위 15143989",
            "QUOTA (22)",
            "wait until 00:00 KST, or raise the quota (활용사례 등록)",
        ],
        [
            "cycle",
            "SRVC_OD_API_CRA_PAYOFF/TODZ_API_CRA_PAYOFF_I",
            "경륜 배당률 15107845",
            "NOT APPROVED (HTTP 403)",
            "apply for 15107845 on data.go.kr (활용신청)",
        ],
    ]
    assert width(lines[2].split("OK")[0]) == width(lines[3].split("QUOTA")[0])  # the result column is aligned
    assert any(line.startswith("NOT APPROVED: data.go.kr approves a key per dataset.") for line in lines)
    assert any(line.startswith("QUOTA: the key has used up") for line in lines)
    assert lines[-1] == "1 of 3 endpoints OK; infrastructure OK; exit 1"


def test_json_report():
    doc = orjson.loads(Report(["boat"], [probe(ep.BOAT_RANK, "not_approved", "30")], INFRA_OK).to_json())
    assert doc["ok"] is False and doc["race_types"] == ["boat"] and doc["base_urls"] == {}
    assert doc["endpoints"] == [
        {
            "race_type": "boat",
            "source": "kspo",
            "endpoint": "SRVC_MRA_RACE_RANK/TODZ_MRA_RACE_RANK",
            "dataset_number": "15143984",
            "dataset_name": "경정 순위",
            "dataset_page": "https://www.data.go.kr/data/15143984/openapi.do",
            "verdict": "not_approved",
            "result": "NOT APPROVED (30)",
            "code": "30",
            "http_status": 200,
            "message": "",
            "what_to_do": "apply for 15143984 on data.go.kr (활용신청)",
        }
    ]
    assert [c["status"] for c in doc["infrastructure"]] == ["ok", "ok", "ok", "not_configured"]


def test_table_counts_hangul_as_two_columns():
    assert table(("a", "b"), [["경정", "x"], ["abcde", "y"]]).splitlines() == ["a      b", "경정   x", "abcde  y"]


async def test_prometheus_not_configured_and_license_skipped_without_database():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert await check_prometheus(settings) == InfraCheck(
        "prometheus", "not_configured", "RACELAB_OPS__PROMETHEUS_URL is empty", "set it to check Prometheus"
    )
    failed = InfraCheck("database", "fail", "cannot reach the database")
    assert await check_license(settings, failed) == InfraCheck("timescaledb", "skipped", "the database did not answer")


def test_simulator_refuses_per_endpoint_as_the_real_apis_do():
    approvals = KeyApprovals(
        unapproved=("API9_1/*", "SRVC_OD_API_CRA_PAYOFF/*", "SRVC_CRA_RACE_RANK/*"),
        quota_exhausted=("SRVC_CRA_RACE_RANK/*", "API160_1/integratedInfo_1"),
    )
    kra = approvals.refusal("B551015", "API9_1/raceHorseCancelInfo_1")
    assert kra is not None and (kra.status, kra.content_type) == (200, "text/xml")
    info = inspect_page(kra.body)
    assert (info.gateway, info.is_xml, info.code, info.message) == (
        True,
        True,
        "30",
        "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
    )
    kspo = approvals.refusal("B551014", "SRVC_OD_API_CRA_PAYOFF/TODZ_API_CRA_PAYOFF_I")
    assert kspo is not None and kspo.status == 403
    quota = approvals.refusal("B551015", "API160_1/integratedInfo_1")
    assert quota is not None and quota.status == 200
    assert inspect_page(quota.body).code == "22"
    both = approvals.refusal("B551014", "SRVC_CRA_RACE_RANK/TODZ_CRA_RACE_RANK")
    assert both is not None and both.status == 403  # not approved at all: no quota to speak of
    assert approvals.refusal("B551015", "API26_2/entrySheet_2") is None
