"""The parts readiness is made of, without a broker: the commit watch, the topic keeper's verdicts, the commit and
topics checks, the repeat summary of the logs, and metadata requests that never create topics."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import aiokafka.client
import pytest
from aiokafka.protocol.metadata import MetadataRequest_v5
from prometheus_client import CollectorRegistry

from runtime import topic_keeper
from runtime.commits import CommitWatch
from runtime.consumer import commit_only_as_member, in_group
from runtime.lag import LagMonitor, TopicLag
from runtime.logs import RepeatSummaryFilter
from runtime.metrics import ConsumerMetrics
from runtime.ops import commit_check, topics_check
from runtime.settings import BrokerSettings
from runtime.topic_keeper import TopicKeeper


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(check):
    return asyncio.run(check())


def lagging(clock: Clock, waiting: int) -> LagMonitor:
    m = LagMonitor(BrokerSettings(), "g", ["a"], ConsumerMetrics(CollectorRegistry()), clock=clock)
    m.update([TopicLag("a", 100, 100 - waiting)])
    return m


def test_a_commit_that_does_not_return_fails_the_check_and_a_returned_one_clears_it():
    clock = Clock()
    watch = CommitWatch(clock=clock)
    watch.assigned(8)
    check = commit_check(watch, lagging(clock, 0), stuck_after_s=20)
    assert run(check) == ("commits", True, "8 partitions assigned")
    watch.commit_started()
    clock.now += 4
    assert run(check)[1] is True  # a commit in flight for 4 s: not yet a problem (limit 5 s = stuck_after_s / 4)
    clock.now += 3
    assert run(check) == (
        "commits",
        False,
        "an offset commit has waited 7s for the broker (progress is not saved)",
    )
    watch.commit_finished(False)
    assert run(check) == ("commits", False, "the last offset commit failed (1 failed so far)")
    watch.commit_started()
    watch.commit_finished(True)
    assert run(check)[1] is True


def test_no_partitions_fails_only_past_the_stuck_limit_and_while_the_group_has_work():
    clock = Clock()
    watch = CommitWatch(clock=clock)
    idle, busy = lagging(clock, 0), lagging(clock, 12)
    clock.now += 21
    assert run(commit_check(watch, idle, stuck_after_s=20))[1] is True  # nothing waits: a spare worker is fine
    assert run(commit_check(watch, busy, stuck_after_s=20)) == (
        "commits",
        False,
        "no partitions assigned for 21s while the group has 12 message(s) waiting",
    )
    watch.assigned(4)
    assert run(commit_check(watch, busy, stuck_after_s=20))[1] is True
    watch.assigned(0)  # a rebalance takes the partitions away; the clock starts again
    clock.now += 5
    assert run(commit_check(watch, busy, stuck_after_s=20))[1] is True


def keeper(clock: Clock, monkeypatch: pytest.MonkeyPatch, counts: dict[str, int | None]) -> list[list[str]]:
    """A keeper of topics a, b, c whose broker reports ``counts``; returns the list of its creation requests."""
    created: list[list[str]] = []

    async def partition_counts(settings, names, timeout_s=10.0):
        return {n: counts.get(n) for n in names}

    async def ensure_topics(settings, names, partitions, replication_factor=1, timeout_s=10.0, configs=None):
        created.append(sorted(names))
        for n in names:
            counts[n] = partitions
        return sorted(names)

    monkeypatch.setattr(topic_keeper, "partition_counts", partition_counts)
    monkeypatch.setattr(topic_keeper, "ensure_topics", ensure_topics)
    return created


def test_the_keeper_recreates_missing_topics_and_reports_a_wrong_partition_count(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    clock = Clock()
    counts: dict[str, int | None] = {"a": 8, "b": 8, "c": 8}
    created = keeper(clock, monkeypatch, counts)
    k = TopicKeeper(BrokerSettings(), ["a", "b", "c"], 8, clock=clock)
    watch = CommitWatch(clock=clock)
    watch.assigned(8)
    mine = topics_check(k, ["a", "b"], timeout_s=3, commits=watch)
    asyncio.run(k.check_once())
    assert created == [] and run(mine) == ("topics", True, "2 topics with 8 partitions each")

    counts.update(a=None, c=4)  # the broker lost a; c was made by someone else with 4 partitions
    assert run(mine) == ("topics", False, "a is missing on the broker (recreated from the catalogue within 5s)")
    clock.now += 5
    with caplog.at_level(logging.WARNING):
        asyncio.run(k.check_once())
    assert created == [["a"]] and counts["a"] == 8
    assert "topic a was missing on the broker; created it from the catalogue (8 partitions)" in caplog.text
    assert "topic c has 4 partitions, the catalogue says 8" in caplog.text
    assert run(mine) == (
        "topics",
        False,
        "a was missing and is recreated; waiting for the group to assign its partitions",
    )
    assert run(topics_check(k, ["c"], timeout_s=3)) == ("topics", False, "c has 4 partitions, the catalogue says 8")
    clock.now += 1
    watch.assigned(8)  # the group handed out the partitions again
    assert run(mine)[1] is True


def test_a_fresh_broker_gets_its_topics_without_a_warning(monkeypatch, caplog):
    counts: dict[str, int | None] = {}
    created = keeper(Clock(), monkeypatch, counts)
    k = TopicKeeper(BrokerSettings(), ["a", "b"], 8)
    with caplog.at_level(logging.INFO):
        asyncio.run(k.check_once())
    assert created == [["a", "b"]] and k.recreated == {}
    assert "created 2 topics from the catalogue" in caplog.text and "missing" not in caplog.text


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def record(msg: str, *args: object, at: float, level: int = logging.ERROR, name: str = "aiokafka") -> logging.LogRecord:
    r = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    r.created = at
    return r


def test_a_repeated_error_is_one_line_per_interval_and_then_a_count():
    handler = Collect()
    handler.addFilter(RepeatSummaryFilter(handler, interval_s=60))
    template = "OffsetCommit failed for group %s on partition %s: %s"
    for n in range(3000):  # 50 a second for a minute, on 24 partitions
        handler.handle(record(template, "g", n % 24, "UnknownTopicOrPartitionError", at=1000 + n * 0.02))
    handler.handle(record("something else went wrong", at=1059.0))
    handler.handle(record("polls done", at=1059.5, level=logging.INFO, name="x"))
    handler.handle(record("polls done", at=1059.6, level=logging.INFO, name="x"))  # info lines are not held back
    assert handler.lines == [
        "OffsetCommit failed for group g on partition 0: UnknownTopicOrPartitionError",
        "something else went wrong",
        "polls done",
        "polls done",
    ]
    handler.handle(record(template, "g", 5, "UnknownTopicOrPartitionError", at=1061.0))  # the interval is over
    assert handler.lines[4:] == [
        "OffsetCommit failed for group g on partition 23: UnknownTopicOrPartitionError"
        " [and 2999 more like it in the last 61s]",
        "OffsetCommit failed for group g on partition 5: UnknownTopicOrPartitionError",
    ]
    handler.handle(record("another", at=1200.0))  # the summary of a line that stopped repeating goes out too
    assert handler.lines[6:] == ["another"]  # partition 5 was alone in its interval: nothing to summarize


def test_metadata_requests_never_ask_the_broker_to_create_topics():
    request = aiokafka.client.MetadataRequest(["racelab.raw.odds"])
    built = request.build(MetadataRequest_v5)
    assert built.topics == ["racelab.raw.odds"] and built.allow_auto_topic_creation is False


@pytest.mark.parametrize(
    ("generation", "member_id", "member"),
    [(7, "racelab-1-abc", True), (-1, "", False), (-1, "racelab-1-abc", False), (7, "", False)],
)
def test_a_consumer_commits_only_as_a_member_of_its_groups_generation(generation, member_id, member):
    # aiokafka's coordinator after an "unknown member" answer: generation -1, no member id, until the rejoin
    consumer = SimpleNamespace(_coordinator=SimpleNamespace(generation=generation, member_id=member_id))
    assert in_group(consumer) is member


def test_a_consumer_without_a_group_may_commit():
    assert in_group(SimpleNamespace()) is True


def guarded_coordinator(generation: int) -> tuple[SimpleNamespace, list[object]]:
    """An aiokafka coordinator stand-in, a member of ``generation``, behind :func:`commit_only_as_member`; the list
    receives the offsets of every attempt that reached the broker."""
    sent: list[object] = []

    async def send(assignment, offsets):
        sent.append(offsets)

    coordinator = SimpleNamespace(
        generation=generation, member_id="racelab-1-abc", group_id="g", _do_commit_offsets=send
    )
    commit_only_as_member(SimpleNamespace(_coordinator=coordinator))
    return coordinator, sent


def test_each_attempt_of_a_commit_is_refused_while_the_consumer_is_not_a_member():
    import aiokafka.errors

    coordinator, sent = guarded_coordinator(7)
    run(lambda: coordinator._do_commit_offsets(None, {"tp": 5}))
    assert sent == [{"tp": 5}]
    # the broker answered "unknown member" meanwhile (a retry of the same commit after an outage reads it anew)
    coordinator.generation, coordinator.member_id = -1, ""
    with pytest.raises(aiokafka.errors.UnknownMemberIdError):  # aiokafka: CommitFailedError "already rebalanced"
        run(lambda: coordinator._do_commit_offsets(None, {"tp": 9}))
    assert sent == [{"tp": 5}]


def test_a_commit_retried_into_a_new_assignment_is_refused():
    import aiokafka.errors
    from aiokafka.consumer.subscription_state import Assignment
    from aiokafka.structs import TopicPartition

    coordinator, sent = guarded_coordinator(0)

    async def check() -> None:
        before = Assignment([TopicPartition("racelab.raw.odds", 1)])
        await coordinator._do_commit_offsets(before, {"tp": 10})
        assert sent == [{"tp": 10}]
        # the broker came back empty; the consumer rejoined as a member of generation 0 again, and the group's new
        # assignment replaced the one the commit was made under (aiokafka unassigns the old one)
        before._unassign()
        with pytest.raises(aiokafka.errors.UnknownMemberIdError):
            await coordinator._do_commit_offsets(before, {"tp": 10})
        await coordinator._do_commit_offsets(Assignment([TopicPartition("racelab.raw.odds", 1)]), {"tp": 3})
        assert sent == [{"tp": 10}, {"tp": 3}]

    run(check)
