"""The KRA odds normalizer checks every value itself and builds its boards without validating them again: whatever it
builds must be what the model makes of the same values, and what the model refuses it must refuse too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.errors import NormalizeError, ValidationFailed
from processors.normalize import common as c
from processors.normalize import normalize
from producers.simulator import envelope
from schemas import endpoints as ep
from schemas.records import OddsBoard, board_messages

FETCHED = datetime(2024, 12, 14, 5, 0, tzinfo=UTC)
NAIVE = FETCHED.replace(tzinfo=None)  # a fetch time without its zone
ROW = {"meet": "서울", "rcDate": 20241214, "rcNo": 3, "pool": "복승식", "chulNo": 3, "chulNo2": 7, "chulNo3": 0}


def _normalize(rows: list[dict[str, Any]], live: bool = False, fetched: datetime = FETCHED) -> list[OddsBoard]:
    endpoint = ep.LIVE_ODDS_PATH if live else ep.KRA_FINAL_DIVIDENDS.path
    out = normalize(envelope.json_body(rows, 1, 1000, len(rows)), c.Context("kra", endpoint, {}, fetched, "k"))
    return out.odds


_NUMBER_TEXT = st.sampled_from(["7", " 12 ", "1,234.5", "0", "-", "", "-2.5", "abc", "3.0", "100"])
_RAW_ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "meet": st.sampled_from(["서울", "부산경남", "제주"]),
            "rcDate": st.sampled_from([20241214, "20241214"]),
            "rcNo": st.integers(-2, 120) | _NUMBER_TEXT,
            "pool": st.sampled_from(
                ["단승식", "WIN", "연승식", "복승식", "쌍승식", "복연승식", "삼복승식", "삼쌍승식"]
            ),
            "chulNo": st.integers(-3, 120) | _NUMBER_TEXT,
            "odds": st.floats(-10, 1e7) | st.integers(-10, 10**6) | _NUMBER_TEXT | st.none(),
        },
        optional={
            "chulNo2": st.integers(-3, 120) | _NUMBER_TEXT,
            "chulNo3": st.integers(-3, 120) | _NUMBER_TEXT,
            "poolTotal": st.integers(0, 10**12) | _NUMBER_TEXT | st.none(),
            "rank": st.integers(-3, 40) | _NUMBER_TEXT | st.none(),
        },
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(rows=_RAW_ROWS, live=st.booleans())
def test_a_board_built_from_checked_values_is_what_the_model_makes_of_them(rows, live):
    try:
        boards = _normalize(rows, live)
    except (NormalizeError, ValidationFailed):
        return  # refused (that the model refuses the same values too: the cases below)
    assert sum(len(b.prices) for b in boards) == len(rows)
    for board in boards:
        validated = OddsBoard.model_validate(board.model_dump())  # raises for a value the model refuses
        assert board_messages([board]) == [(board.race_id, validated.model_dump_json().encode())]  # types included


def _model_refuses(**change: Any) -> None:
    """The model refuses a board of one price with ``change`` made to it."""
    board = {"race_id": "horse-seoul-3-20241214", "time": FETCHED, "is_final": True, "source": "kra"}
    with pytest.raises(ValidationError):
        OddsBoard(**(board | {"prices": [{"pool": "WIN", "selection": "3", "odds": 2.0}]} | change))


@pytest.mark.parametrize(
    ("change", "price", "problem"),
    [
        ({"odds": -2.5}, {"selection": "3-7", "odds": -2.5}, "odds"),
        ({"odds": "-15"}, {"selection": "3-7", "odds": -15.0}, "odds"),
        ({"odds": "-"}, {"selection": "3-7", "odds": None}, "odds"),
        ({"chulNo": 100}, {"selection": "7-100", "odds": 2.0}, "selection"),
        ({"chulNo": -3}, {"selection": "-3-7", "odds": 2.0}, "selection"),
    ],
)
def test_what_the_model_refuses_is_refused(change, price, problem):
    _model_refuses(prices=[{"pool": "QNL", **price}])
    with pytest.raises(ValidationFailed, match=problem):
        _normalize([{**ROW, "odds": 2.0} | change])


def test_a_race_number_or_a_fetch_time_the_model_refuses_is_refused():
    _model_refuses(race_id="horse-seoul-100-20241214")
    with pytest.raises(ValidationFailed, match="race_id"):
        _normalize([{**ROW, "odds": 2.0, "rcNo": 100}])
    _model_refuses(time=NAIVE, is_final=False)
    with pytest.raises(ValidationFailed, match="time zone"):
        _normalize([{**ROW, "odds": 2.0}], live=True, fetched=NAIVE)


def test_the_boards_of_a_good_page_are_exact():
    rows = [
        {**ROW, "pool": "단승식", "chulNo": 7, "chulNo2": 0, "odds": 3},
        {**ROW, "odds": "12.5", "poolTotal": "1,200", "rank": "2"},
    ]
    (board,) = _normalize(rows)
    assert board_messages([board]) == [
        (
            "horse-seoul-3-20241214",
            b'{"schema_version":2,"race_id":"horse-seoul-3-20241214","time":"2024-12-14T14:59:59Z","is_final":true,'
            b'"source":"kra","prices":[{"pool":"WIN","selection":"7","odds":3.0,"pool_total":null,'
            b'"popularity_rank":null},{"pool":"QNL","selection":"3-7","odds":12.5,"pool_total":1200,'
            b'"popularity_rank":2}]}',
        )
    ]
