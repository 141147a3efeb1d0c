"""The odds rows read as structs: the usual JSON page in one pass, any other page as mappings made structs, and the
same boards, the same refusals, either way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.errors import DecodeError, NormalizeError, ProcessingError
from processors.normalize import common as c
from processors.normalize import normalize
from processors.normalize import odds_items as oi
from producers.simulator import envelope
from schemas import endpoints as ep
from schemas.records import board_messages
from tests.unit.test_odds_checks import _RAW_ROWS

FETCHED = datetime(2024, 12, 14, 5, 0, tzinfo=UTC)
CTX = c.Context("kra", ep.KRA_FINAL_DIVIDENDS.path, {}, FETCHED, "k")
# The reference's Example D (KRA API160 integratedInfo, string-typed), verbatim.
EXAMPLE_D = (
    '{"response":{"header":{"resultCode":"00","resultMsg":"NORMAL SERVICE."},\n'
    ' "body":{"items":{"item":[{"meet":"서울","rcDate":"20190601","rcNo":"1","pool":"단승식",\n'
    '   "chulNo":"7","chulNo2":"0","chulNo3":"0","odds":"2.0"}]}}}}'
).encode()
ROW = {"meet": "서울", "rcDate": 20241214, "rcNo": 3, "pool": "복승식", "chulNo": 3, "chulNo2": 7, "chulNo3": 0}
EXPECTED_QNL = (
    b'{"schema_version":2,"race_id":"horse-seoul-3-20241214","time":"2024-12-14T14:59:59Z","is_final":true,'
    b'"source":"kra","prices":[{"pool":"QNL","selection":"3-7","odds":4.5,"pool_total":null,"popularity_rank":null}]}'
)


def _messages(raw: bytes) -> list[tuple[str, bytes]]:
    return board_messages(normalize(raw, CTX).odds)


def test_example_d_is_read_in_one_pass_with_its_values_as_published():
    page = oi._read(EXAMPLE_D)
    assert page is not None and page.code == "00" and page.message == "NORMAL SERVICE."
    assert page.rows == [
        oi.OddsItem(
            meet="서울", rcDate="20190601", rcNo="1", pool="단승식", chulNo="7", chulNo2="0", chulNo3="0", odds="2.0"
        )
    ]
    assert _messages(EXAMPLE_D) == [
        (
            "horse-seoul-1-20190601",
            b'{"schema_version":2,"race_id":"horse-seoul-1-20190601","time":"2019-06-01T14:59:59Z","is_final":true,'
            b'"source":"kra","prices":[{"pool":"WIN","selection":"7","odds":2.0,"pool_total":null,'
            b'"popularity_rank":null}]}',
        )
    ]


def test_numbers_keep_their_types_and_missing_runner_numbers_are_zero():
    raw = envelope.json_body([{**ROW, "odds": 13, "poolTotal": 1200}, {**ROW, "odds": 4.5}], 1, 1000, 2)
    page = oi._read(raw)
    assert page is not None
    assert [(r.odds, type(r.odds), r.poolTotal, r.rank) for r in page.rows] == [
        (13, int, 1200, None),
        (4.5, float, None, None),
    ]
    (win,) = oi._read(envelope.json_body([{"pool": "단승식", "chulNo": 7, "odds": 2.0}] * 2, 1, 1000, 2)).rows[:1]
    assert (win.chulNo, win.chulNo2, win.chulNo3, win.meet) == (7, 0, 0, None)


def _page(rows: list[dict[str, Any]]) -> bytes:
    """The JSON envelope with ``item`` a list, however many rows."""
    doc = {
        "response": {"header": {"resultCode": "00", "resultMsg": "NORMAL SERVICE."}, "body": {"items": {"item": rows}}}
    }
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("raw", "fits"),
    [
        (_page([{**ROW, "odds": 4.5}]), True),
        (_page([{**ROW, "odds": 4.5, "extra": [1], "rank": None}]), True),  # a field not read, a null
        (b"  " + _page([{**ROW, "rcDate": "20241214", "chulNo": "3", "odds": "4.5"}]) + b"\n", True),
        (envelope.json_body([{**ROW, "odds": 4.5}], 1, 1000, 1), False),  # one item written as an object
        (envelope.xml_body([{**ROW, "odds": 4.5}], 1, 1000, 1), False),
        (_page([{**ROW, "meet": " 서울 ", "odds": 4.5}]), False),  # a track with blanks
        (_page([{**ROW, "chulNo": 3.0, "odds": 4.5}]), False),  # a whole number written as a float
        (_page([{**ROW, "odds": 4.5}]).replace(b'"resultCode":"00"', b'"resultCode":0'), False),
    ],
)
def test_a_page_the_structs_do_not_fit_is_read_as_mappings_to_the_same_board(raw, fits):
    assert (oi._read(raw) is not None) is fits
    assert _messages(raw) == [("horse-seoul-3-20241214", EXPECTED_QNL)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"chulNo": 3.5}, "chulNo"),
        ({"chulNo2": True}, "chulNo2"),
        ({"odds": "4.5배"}, "odds"),
        ({"odds": True}, "odds"),
        ({"poolTotal": "1.5"}, "poolTotal"),
        ({"rank": "둘"}, "rank"),
        ({"chulNo3": "x"}, "chulNo3"),
    ],
)
def test_a_value_in_an_unknown_format_names_its_field_on_either_path(change, field):
    for rows in ([{**ROW, "odds": 4.5} | change], [{**ROW, "odds": 4.5}, {**ROW, "odds": 4.5} | change]):
        with pytest.raises(NormalizeError, match=f"field '{field}'"):
            normalize(envelope.json_body(rows, 1, 1000, len(rows)), CTX)


@pytest.mark.parametrize(("field", "seen", "then"), [("chulNo2", 1, True), ("chulNo3", 0, False), ("chulNo", 1, True)])
def test_a_runner_number_equal_to_one_read_before_is_still_read_for_itself(field, seen, then):
    """True == 1 and False == 0 in Python: the selection remembered for a row with 1 (or 0) in a field must not
    answer for a later row with a bool there; that row is read on its own and refused."""
    rows = [{**ROW, field: seen, "odds": 4.5}, {**ROW, field: then, "odds": 4.5}]
    with pytest.raises(NormalizeError, match=f"field '{field}': expected a number, got {then}"):
        normalize(envelope.json_body(rows, 1, 1000, len(rows)), CTX)


def test_an_unknown_pool_or_track_is_refused_and_a_pool_not_stored_is_skipped():
    with pytest.raises(NormalizeError, match="unknown pool '쌍쌍승'"):
        _messages(envelope.json_body([{**ROW, "pool": "쌍쌍승", "odds": 4.5}] * 2, 1, 1000, 2))
    with pytest.raises(NormalizeError, match="unknown track '화성'"):
        _messages(envelope.json_body([{**ROW, "meet": "화성", "odds": 4.5}] * 2, 1, 1000, 2))
    skipped = [{**ROW, "pool": "쌍복승식", "odds": 9.9}, {**ROW, "odds": 4.5}]
    assert oi._read(envelope.json_body(skipped, 1, 1000, 2)) is not None
    assert _messages(envelope.json_body(skipped, 1, 1000, 2)) == [("horse-seoul-3-20241214", EXPECTED_QNL)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (EXAMPLE_D.replace(b'"resultCode":"00"', b'"resultCode":"22"'), "API error code '22'"),
        (EXAMPLE_D.replace(b'"body":{', b'"body":{"totalCount":"many",'), "paging field is not a number: 'many'"),
        (b'{"OpenAPI_ServiceResponse":{"cmmMsgHeader":{"returnReasonCode":"30"}}}', "gateway error"),
        (b"", "empty body"),
    ],
)
def test_an_envelope_that_is_not_a_normal_answer_is_a_decode_error(raw, message):
    with pytest.raises(DecodeError, match=message):
        normalize(raw, CTX)


def _by_mappings(raw: bytes) -> Any:
    """What :func:`normalize` makes of ``raw`` when its rows are read as mappings, whatever they are."""
    read = oi._read
    oi._read = lambda body: None  # type: ignore[assignment]  # the page as XML or any other shape would be read
    try:
        return normalize(raw, CTX)
    finally:
        oi._read = read


@settings(max_examples=300, deadline=None)
@given(rows=_RAW_ROWS, live=st.booleans())
def test_both_ways_of_reading_a_page_make_the_same_boards_or_the_same_refusal(rows, live):
    raw = envelope.json_body(rows, 1, 1000, len(rows))
    outcomes = []
    for read in (lambda: normalize(raw, CTX), lambda: _by_mappings(raw)):
        try:
            outcomes.append(board_messages(read().odds))
        except ProcessingError as exc:
            outcomes.append((type(exc), str(exc)))
    assert outcomes[0] == outcomes[1]
