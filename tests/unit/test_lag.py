"""LagMonitor's bookkeeping: lag per topic, progress, and the stalled time readiness reads."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from runtime.lag import LagMonitor, TopicLag
from runtime.metrics import ConsumerMetrics
from runtime.settings import BrokerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def monitor(clock: Clock, registry: CollectorRegistry) -> LagMonitor:
    return LagMonitor(BrokerSettings(), "g", ["a", "b"], ConsumerMetrics(registry), clock=clock)


def test_stalled_only_while_messages_wait_and_no_offset_moves():
    clock, registry = Clock(), CollectorRegistry()
    m = monitor(clock, registry)
    m.update([TopicLag("a", 10, 10), TopicLag("b", 5, 5)])
    assert m.lag == 0 and m.stalled_for() == 0
    clock.now += 30
    m.update([TopicLag("a", 20, 12), TopicLag("b", 5, 5)])  # a's committed offset moved: progress
    assert m.lag == 8 and m.stalled_for() == 0
    clock.now += 30
    m.update([TopicLag("a", 25, 12), TopicLag("b", 5, 5)])  # nothing moved, 13 waiting
    assert m.lag == 13 and m.stalled_for() == 30
    clock.now += 100
    assert m.stalled_for() == 130
    m.update([TopicLag("a", 25, 25), TopicLag("b", 5, 5)])
    assert m.lag == 0 and m.stalled_for() == 0
    assert registry.get_sample_value("racelab_consumer_lag", {"group": "g", "topic": "a"}) == 0
    assert registry.get_sample_value("racelab_consumer_committed_offset", {"group": "g", "topic": "a"}) == 25
    assert registry.get_sample_value("racelab_consumer_last_progress_timestamp_seconds", {"group": "g"}) == clock.now


def test_lag_never_negative_when_the_broker_reports_an_end_below_the_commit():
    assert TopicLag("a", end=4, committed=5).lag == 0


async def test_readiness_fails_when_the_lag_cannot_be_measured_for_longer_than_the_stall_limit():
    from runtime.ops import progress_check

    clock, registry = Clock(), CollectorRegistry()
    m = monitor(clock, registry)
    check = progress_check(m, stuck_after_s=120)
    m.update([TopicLag("a", 10, 10), TopicLag("b", 5, 5)])
    assert (await check())[1] is True
    m.last_error = "cannot measure lag (KafkaConnectionError)"  # the monitor's polls fail from here on
    clock.now += 100
    assert (await check())[1] is True  # the last figures are still recent enough
    clock.now += 30
    name, ok, detail = await check()
    assert (name, ok) == ("consumer", False)
    assert detail == "group g: lag not measured for 130s (cannot measure lag (KafkaConnectionError))"
    m.update([TopicLag("a", 10, 10), TopicLag("b", 5, 5)])
    assert (await check())[1] is True


def test_a_topic_the_broker_lost_is_said_once_and_an_end_off_by_one_is_not(caplog):
    import logging

    clock, registry = Clock(), CollectorRegistry()
    m = monitor(clock, registry)
    m.update([TopicLag("a", 5000, 5000), TopicLag("b", 40, 40)])
    with caplog.at_level(logging.WARNING):
        m.update([TopicLag("a", 4999, 4999), TopicLag("b", 40, 40)])  # reported one lower: not a loss
        assert caplog.text == ""
        m.update([TopicLag("a", 12, 0), TopicLag("b", 40, 40)])  # the broker came back without it
        m.update([TopicLag("a", 30, 30), TopicLag("b", 40, 40)])
    assert caplog.text.count("holds fewer messages than before") == 1
    assert "topic a holds fewer messages than before (end offset 12, was 4999)" in caplog.text


def test_a_lost_topic_is_reported_to_the_worker_once_it_is_back():
    clock, registry = Clock(), CollectorRegistry()
    m = monitor(clock, registry)
    told: list[list[str]] = []
    m.on_lost = told.append
    m.update([TopicLag("a", 5000, 5000, 4), TopicLag("b", 40, 40, 4)])
    m.update([TopicLag("a", 0, 0, 0), TopicLag("b", 40, 40, 4)])  # gone: nothing to assign yet
    assert told == []
    m.update([TopicLag("a", 3, 0, 4), TopicLag("b", 40, 40, 4)])  # recreated (by another process)
    assert told == [["a"]]
    m.update([TopicLag("a", 9, 3, 4), TopicLag("b", 40, 40, 4)])
    assert told == [["a"]]  # once
