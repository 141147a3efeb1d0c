"""The delivery engine (:class:`runtime.delivery.OutputProducer`) against an in-memory broker."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from runtime.delivery import OutputProducer
from runtime.settings import BrokerSettings
from tests.unit.local_broker import LocalBroker, LocalProducer

MADE: list[tuple[str, dict[str, object]]] = []  # (role, overrides) of every producer the engine asked for


def engine(broker: LocalBroker, fail_sends: int = 0) -> tuple[OutputProducer, LocalProducer]:
    producer = LocalProducer(broker, fail_sends=fail_sends)

    def factory(settings: BrokerSettings, role: str, **overrides: object) -> LocalProducer:
        MADE.append((role, overrides))
        return producer

    return OutputProducer(BrokerSettings(), "sink", factory=factory, initial_delay_s=0.001), producer


def expected_partition(key: bytes, partitions: int) -> int:
    every = list(range(partitions))
    return int(DefaultPartitioner()(key, every, every))


async def test_every_message_lands_in_its_key_partition_in_order():
    broker = LocalBroker(partitions=4)
    output, producer = engine(broker)
    MADE.clear()
    await output.start()
    messages = [("t", f"race-{n % 5}".encode(), f"v{n}".encode(), [("h", b"1")]) for n in range(20)]
    await output.deliver(messages)
    assert MADE == [("sink", {"max_batch_size": 256 * 1024})]
    assert sorted(v for _, v, _ in broker.records("t")) == sorted(v for _, _, v, _ in messages)
    for partition, log in broker.topics["t"].items():
        for key, _, headers in log:
            assert key is not None and expected_partition(key, 4) == partition
            assert headers == [("h", b"1")]
        values = [v for _, v, _ in log]
        assert values == [v for _, k, v, _ in messages if expected_partition(k, 4) == partition]  # arrival order
    await output.stop()
    assert producer.stopped


async def test_a_broker_outage_is_waited_out_and_nothing_is_lost():
    broker = LocalBroker(partitions=2)
    output, producer = engine(broker, fail_sends=3)
    await output.start()
    messages = [("t", b"k1", b"a", None), ("t", b"k2", b"b", None), ("u", None, b"c", None)]
    await output.deliver(messages)
    assert producer.fail_sends == 0 and producer.attempts >= 4
    assert {v for _, v, _ in broker.records("t")} == {b"a", b"b"}
    assert [v for _, v, _ in broker.records("u")] == [b"c"]  # no key: the producer picks the partition


async def test_a_large_group_is_sent_as_several_batches():
    broker = LocalBroker(partitions=1)
    output, producer = engine(broker)
    await output.start()
    await output.deliver([("t", b"same", str(n).encode(), None) for n in range(8)])  # batches of 3
    assert [v for _, v, _ in broker.records("t")] == [str(n).encode() for n in range(8)]
    assert producer.attempts == 3
