"""Odds boards: grouping of validated rows into messages and back into table rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.records import OddsBoard, OddsRecord, board_messages

AT = datetime(2024, 12, 14, 5, 0, tzinfo=UTC)


def row(race: str, pool: str, selection: str, odds: float, at: datetime = AT, final: bool = False) -> OddsRecord:
    return OddsRecord(race_id=race, time=at, pool=pool, selection=selection, odds=odds, is_final=final, source="kra")


def test_boards_group_by_race_time_and_finality_and_give_back_the_same_rows():
    rows = [
        row("horse-seoul-1-20241214", "WIN", "3", 2.5),
        row("horse-seoul-2-20241214", "WIN", "1", 4.0),
        row("horse-seoul-1-20241214", "QNL", "3-7", 12.5),
        row("horse-seoul-1-20241214", "WIN", "3", 2.4, at=AT.replace(minute=5)),
        row("horse-seoul-1-20241214", "WIN", "3", 2.3, final=True),
    ]
    boards = OddsBoard.boards_of(rows)
    assert [(b.race_id, b.time.minute, b.is_final, len(b.prices)) for b in boards] == [
        ("horse-seoul-1-20241214", 0, False, 2),
        ("horse-seoul-2-20241214", 0, False, 1),
        ("horse-seoul-1-20241214", 5, False, 1),
        ("horse-seoul-1-20241214", 0, True, 1),
    ]
    again = [r for b in boards for r in OddsBoard.model_validate_json(b.model_dump_json()).records()]
    assert sorted(again, key=repr) == sorted(rows, key=repr)


def test_a_board_needs_prices_and_valid_selections():
    with pytest.raises(ValidationError):
        OddsBoard(race_id="horse-seoul-1-20241214", time=AT, is_final=False, source="kra", prices=[])
    with pytest.raises(ValidationError):
        OddsBoard.model_validate(
            {
                "race_id": "horse-seoul-1-20241214",
                "time": AT.isoformat(),
                "is_final": False,
                "source": "kra",
                "prices": [{"pool": "WIN", "selection": "three", "odds": 2.0}],
            }
        )


def test_board_messages_are_keyed_by_race_and_carry_the_boards_json():
    rows = [
        row("horse-seoul-1-20241214", "WIN", "3", 2.5),
        row("horse-seoul-1-20241214", "QNL", "3-7", 12.25),
        OddsRecord(
            race_id="cycle-gwangmyeong-4-20241214",
            time=datetime(2024, 12, 14, 5, 0, 30, 250000, tzinfo=UTC),
            pool="EXA",
            selection="4-1",
            odds=7.0,
            is_final=False,
            pool_total=1_200_000,
            popularity_rank=3,
            source="kspo",
        ),
    ]
    assert board_messages(OddsBoard.boards_of(rows)) == [
        (
            "horse-seoul-1-20241214",
            b'{"schema_version":2,"race_id":"horse-seoul-1-20241214","time":"2024-12-14T05:00:00Z","is_final":false,'
            b'"source":"kra","prices":[{"pool":"WIN","selection":"3","odds":2.5,"pool_total":null,'
            b'"popularity_rank":null},{"pool":"QNL","selection":"3-7","odds":12.25,"pool_total":null,'
            b'"popularity_rank":null}]}',
        ),
        (
            "cycle-gwangmyeong-4-20241214",
            b'{"schema_version":2,"race_id":"cycle-gwangmyeong-4-20241214","time":"2024-12-14T05:00:30.250000Z",'
            b'"is_final":false,"source":"kspo","prices":[{"pool":"EXA","selection":"4-1","odds":7.0,'
            b'"pool_total":1200000,"popularity_rank":3}]}',
        ),
    ]


def test_a_price_without_pool_total_or_rank_reads_as_none():
    board = OddsBoard.model_validate_json(
        b'{"race_id":"horse-seoul-1-20241214","time":"2024-12-14T05:00:00Z","is_final":true,"source":"kra",'
        b'"prices":[{"pool":"WIN","selection":"3","odds":2.5}]}'
    )
    (record,) = board.records()
    assert (record.pool_total, record.popularity_rank, record.odds) == (None, None, 2.5)


def test_a_price_with_a_field_no_board_has_is_refused():
    with pytest.raises(ValidationError, match="extra"):
        OddsBoard.model_validate_json(
            b'{"race_id":"horse-seoul-1-20241214","time":"2024-12-14T05:00:00Z","is_final":true,"source":"kra",'
            b'"prices":[{"pool":"WIN","selection":"3","odds":2.5,"bookmaker":"x"}]}'
        )


_PRICES = st.lists(
    st.fixed_dictionaries(
        {
            "pool": st.sampled_from(["WIN", "PLC", "QNL", "EXA", "QPL", "TLA", "TRI"]),
            "selection": st.from_regex(r"\A[0-9]{1,2}(-[0-9]{1,2}){0,2}\Z"),
            "odds": st.floats(min_value=0, allow_infinity=False, allow_nan=False),
        },
        optional={
            "pool_total": st.none() | st.integers(-(2**63), 2**63 - 1),
            "popularity_rank": st.none() | st.integers(-(2**15), 2**15),
        },
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(minutes=-90))])),
    final=st.booleans(),
    source=st.sampled_from(["kra", "kspo"]),
    prices=_PRICES,
)
def test_a_board_message_is_the_bytes_of_model_dump_json(at, final, source, prices):
    board = OddsBoard(race_id="boat-misari-12-20241214", time=at, is_final=final, source=source, prices=prices)
    ((race, value),) = board_messages([board])
    assert (race, value) == (board.race_id, board.model_dump_json().encode())
