"""The processors' routing (:class:`processors.handler.BatchHandler`) with a real delivery into an in-memory broker,
and the DLQ circuit breaker (:class:`processors.dlq.DlqLimit`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from processors.dlq import DlqLimit
from processors.errors import DlqLimitExceeded
from processors.handler import BatchHandler, RawMessage
from runtime.delivery import OutputProducer
from runtime.metrics import ProcessorMetrics
from runtime.settings import BrokerSettings
from schemas import endpoints as ep
from schemas.raw import RawHeaders
from schemas.topics import TopicCatalogue
from tests.unit.local_broker import LocalBroker, LocalProducer

SAMPLE_214 = (Path(__file__).resolve().parents[1] / "samples" / "kra_api214_response.json").read_bytes()
HEADERS = RawHeaders(
    source="kra",
    kind="results",
    endpoint=ep.KRA_RACE_RESULT.path,
    params={"meet": "3", "rc_date": "20250523", "rc_no": "1"},
    fetched_at=datetime(2025, 5, 23, 4, 0, tzinfo=UTC),
    poll_id="p-1",
    http_status=200,
).to_kafka()
TOPICS = TopicCatalogue("racelab")


def message(offset: int, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> RawMessage:
    return RawMessage(
        "racelab.raw.results", 2, offset, b"horse-busan-1-20250523", value, HEADERS if headers is None else headers
    )


async def handler_on(broker: LocalBroker, limit: DlqLimit | None = None) -> tuple[BatchHandler, CollectorRegistry]:
    output = OutputProducer(BrokerSettings(), factory=lambda *a, **k: LocalProducer(broker), initial_delay_s=0.001)
    await output.start()
    registry = CollectorRegistry()
    handler = BatchHandler("results", TOPICS, output, limit or DlqLimit(), ProcessorMetrics(registry))
    return handler, registry


async def test_a_batch_is_routed_to_records_and_dead_letters():
    broker = LocalBroker(partitions=3)
    handler, registry = await handler_on(broker)
    bad_headers = [(k, v) for k, v in HEADERS if k != "endpoint"]
    batch = [message(10, SAMPLE_214), message(11, b"<not json"), message(12, SAMPLE_214, bad_headers)]
    result = await handler.handle(batch)

    assert (result.records, result.dead_letters) == (11, 2)  # the race, once, and its 10 runners
    assert result.records_by_name == {"races": 1, "entries": 0, "odds": 0, "results": 10}
    assert result.dead_by_stage == {"decode": 2}
    results = broker.records("racelab.results")
    assert len(results) == 10
    assert {key for key, _, _ in results} == {b"horse-busan-1-20250523"}
    winner = next(orjson.loads(v) for _, v, _ in results if orjson.loads(v)["entry_no"] == 10)
    assert (winner["finish_position"], winner["finish_time_s"], winner["participant_id"]) == (1, 75.4, "0051228")

    dead = broker.records("racelab.raw.results.dlq")
    assert [value for _, value, _ in dead] == [b"<not json", SAMPLE_214]  # original bytes, in offset order
    first = dict(dead[0][2])
    assert dead[0][0] == b"horse-busan-1-20250523"
    assert first["dlq.original.topic"] == b"racelab.raw.results"
    assert (first["dlq.original.partition"], first["dlq.original.offset"]) == (b"2", b"11")
    assert (first["dlq.stage"], first["dlq.exception.class"], first["dlq.attempts"]) == (
        b"decode",
        b"DecodeError",
        b"1",
    )
    assert first["endpoint"] == ep.KRA_RACE_RESULT.path.encode()  # original headers travel along
    assert registry.get_sample_value("racelab_raw_messages_consumed_total", {"kind": "results"}) == 3
    assert registry.get_sample_value("racelab_records_normalized_total", {"kind": "results"}) == 10
    assert registry.get_sample_value("racelab_records_normalized_total", {"kind": "races"}) == 1
    assert registry.get_sample_value("racelab_dlq_records_total", {"kind": "results", "stage": "decode"}) == 2


async def test_an_unknown_endpoint_is_a_normalize_dead_letter():
    broker = LocalBroker()
    handler, _ = await handler_on(broker)
    headers = [(k, b"API999/unknown" if k == "endpoint" else v) for k, v in HEADERS]
    result = await handler.handle([message(0, SAMPLE_214, headers)])
    assert result.dead_by_stage == {"normalize": 1}
    ((_, _, dead_headers),) = broker.records("racelab.raw.results.dlq")
    assert b"no normalizer for endpoint" in dict(dead_headers)["dlq.exception.message"]


async def test_the_breaker_stops_a_batch_of_poison():
    broker = LocalBroker()
    handler, _ = await handler_on(broker, DlqLimit(max_ratio=0.5, window=10, max_consecutive=3))
    with pytest.raises(DlqLimitExceeded, match="3 messages in a row"):
        await handler.handle([message(n, b"garbage") for n in range(5)])
    assert broker.records("racelab.raw.results.dlq") == []  # nothing delivered: the batch is not acknowledged


def test_breaker_consecutive_limit():
    limit = DlqLimit(max_ratio=1.0, window=1000, max_consecutive=3)
    limit.record(True)
    limit.record(True)
    limit.record(False)  # a success resets the run
    limit.record(True)
    limit.record(True)
    assert limit.consecutive == 2
    with pytest.raises(DlqLimitExceeded, match="3 messages in a row went to the DLQ"):
        limit.record(True)


def test_breaker_ratio_needs_a_full_window():
    limit = DlqLimit(max_ratio=0.5, window=10, max_consecutive=100)
    for failed in [True, False] * 4 + [True]:  # 9 seen: no verdict before the window is full
        limit.record(failed)
    with pytest.raises(DlqLimitExceeded, match="60% of the last 10 messages"):
        limit.record(True)


def test_breaker_ratio_at_the_limit_passes_and_the_window_slides():
    limit = DlqLimit(max_ratio=0.5, window=4, max_consecutive=100)
    for failed in [True, False, True, False, True]:  # the last 4 are F, T, F, T: exactly 50 %, allowed
        limit.record(failed)
    with pytest.raises(DlqLimitExceeded, match="75% of the last 4 messages"):
        limit.record(True)  # T, F, T, T
