"""The LZ4 level the producers compress at reaches the record builder aiokafka's producers use."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from runtime.kafka import use_lz4_level
from runtime.settings import BrokerSettings

LZ4 = 0x03  # the attribute bits of an LZ4-compressed record batch
PRICE = {"pool": "EXA", "selection": "3-7", "odds": 41.5, "pool_total": 123456789, "popularity_rank": 12}


@pytest.fixture(autouse=True)
def _default_level() -> Iterator[None]:
    yield
    use_lz4_level(BrokerSettings().lz4_level)


def _batch(values: list[bytes]) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=LZ4,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=1_700_000_000_000, key=b"kra-seoul-20261206-07", value=value, headers=[])
    return bytes(builder.build())


def test_the_level_decides_the_size_and_every_level_reads_back() -> None:
    boards = [{"race": n, "prices": [PRICE | {"odds": n * 0.1 + i} for i in range(200)]} for n in range(20)]
    values = [orjson.dumps(board) for board in boards]
    use_lz4_level(1)
    fast = _batch(values)
    use_lz4_level(9)
    high = _batch(values)
    assert len(high) < len(fast) < sum(map(len, values)) / 4  # level 9 squeezes harder; both compress
    for batch in (fast, high):
        read = DefaultRecordBatch(batch)
        assert read.compression_type == LZ4
        assert [record.value for record in read] == values


def test_the_default_is_lz4_fast_mode() -> None:
    assert BrokerSettings().compression == "lz4"
    assert BrokerSettings().lz4_level == 1
