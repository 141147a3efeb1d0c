"""What the workers' consumer counts towards its next commit across a rebalance, on Faust's own consumer (built, not
started: no broker): acknowledgements of messages fetched under an earlier assignment do not count, and a new
assignment starts without what was acknowledged after the revocation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from runtime.consumer import NumberedAssignments, fresh_assignment
from runtime.settings import Settings
from runtime.worker import faust_app

ODDS = TP("racelab.raw.odds", 2)
ENTRIES = TP("racelab.raw.entries", 0)


@pytest.fixture
def consumer(tmp_path: Path) -> Iterator[Any]:
    app = faust_app(Settings(_env_file=None, home=tmp_path), "archiver", buffer=16)  # type: ignore[call-arg]
    app.topics.acks_enabled_for = lambda topic: True  # as for the topics of the app's agents, once it runs
    yield app.consumer
    app.consumer._thread.thread_loop.close()  # the loops the app and its consumer thread made, never started
    app.loop.close()


def message(tp: TP, offset: int, generation: int) -> ConsumerMessage:
    return ConsumerMessage(
        tp.topic, tp.partition, offset, 0.0, 0, [], b"k", b"v", None, 1, 1, tp, generation_id=generation
    )


def test_only_acknowledgements_of_the_current_assignment_count_towards_the_commit(consumer: Any) -> None:
    consumer.app.consumer_generation_id = 4
    earlier = [message(ODDS, offset, 3) for offset in (0, 1, 2)]  # fetched before the broker lost the topic
    current = [message(ODDS, offset, 4) for offset in (0, 1)]  # the topic made anew under the same name
    for m in earlier + current:
        consumer._unacked_messages.add(m)
    assert [consumer.ack(m) for m in earlier] == [False, False, False]
    assert consumer._new_offset(ODDS) is None  # nothing to commit
    assert [consumer.ack(m) for m in current] == [True, True]
    assert consumer._new_offset(ODDS) == 2  # the next offset to read on the new topic, not 3
    # the earlier ones are done with: a revocation does not wait for them
    assert all(m.acked for m in earlier) and not consumer._unacked_messages


def test_a_new_assignment_drops_acknowledgements_made_after_the_revocation(consumer: Any) -> None:
    consumer.app.consumer_generation_id = 1
    consumer._acked[ENTRIES] = [7]  # a partition the new assignment does not hold: left to Faust
    # a batch in hand acknowledged while the group rejoined, after Faust dropped the partition's offsets
    for offset in (3, 4, 5):
        assert consumer.ack(message(ODDS, offset, 1))
    consumer._read_offset[ODDS] = 5
    assert consumer._new_offset(ODDS) == 6
    consumer._acked[ODDS].extend([3, 4, 5])  # consumed by _new_offset; acknowledged again for the next step

    assert fresh_assignment(consumer, {ODDS}) == 1
    assert consumer._new_offset(ODDS) is None
    assert consumer._read_offset[ODDS] is None
    assert consumer._acked[ENTRIES] == [7]
    assert fresh_assignment(consumer, {ODDS}) == 0


def test_assignments_are_numbered_anew_when_the_group_generation_repeats() -> None:
    # a broker that lost its groups hands out generation 0 again; the numbers must still differ
    seen: list[tuple[set[TP], int]] = []

    async def on_partitions_assigned(assigned: set[TP], generation_id: int) -> None:
        seen.append((assigned, generation_id))

    thread = SimpleNamespace(
        app=SimpleNamespace(consumer_generation_id=0), on_partitions_assigned=on_partitions_assigned
    )
    listener = NumberedAssignments(thread)  # type: ignore[arg-type]
    asyncio.run(listener.on_partitions_assigned({TopicPartition("racelab.raw.odds", 2)}))
    first = thread.app.consumer_generation_id
    asyncio.run(listener.on_partitions_assigned({TopicPartition("racelab.raw.odds", 2)}))
    second = thread.app.consumer_generation_id
    assert second > first and [n for _, n in seen] == [first, second]
    assert seen[0][0] == {ODDS}
