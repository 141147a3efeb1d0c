"""The sink's board reader (msgspec) and the board model (pydantic) give the same verdict on every field; the
reader refuses what the model would coerce from another JSON type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.board_reader import read_board
from schemas.records import OddsBoard

MODEL = TypeAdapter(OddsBoard)
GOOD = (
    b'{"schema_version":2,"race_id":"horse-seoul-7-20261206","time":"2026-12-06T05:00:00Z","is_final":false,'
    b'"source":"kra","prices":[{"pool":"TRI","selection":"3-7-1","odds":412.5,"pool_total":98000,'
    b'"popularity_rank":17},{"pool":"WIN","selection":"3","odds":4}]}'
)


def _model_accepts(value: bytes) -> bool:
    try:
        MODEL.validate_json(value)
    except ValidationError:
        return False
    return True


def _reader_accepts(value: bytes) -> bool:
    try:
        read_board(value)
    except ValueError:
        return False
    return True


def test_a_good_board_reads_as_the_model_reads_it() -> None:
    board = read_board(GOOD)
    model = MODEL.validate_json(GOOD)
    assert (board.race_id, board.time, board.is_final, board.source, board.schema_version) == (
        "horse-seoul-7-20261206",
        datetime(2026, 12, 6, 5, 0, tzinfo=UTC),
        False,
        "kra",
        2,
    )
    assert [(p.pool, p.selection, p.odds, p.pool_total, p.popularity_rank) for p in board.prices] == [
        ("TRI", "3-7-1", 412.5, 98000, 17),
        ("WIN", "3", 4.0, None, None),
    ]
    assert isinstance(board.prices[1].odds, float)
    assert (model.race_id, model.time, model.is_final) == (board.race_id, board.time, board.is_final)
    assert dict(model.prices[0]) == {
        "pool": "TRI",
        "selection": "3-7-1",
        "odds": 412.5,
        "pool_total": 98000,
        "popularity_rank": 17,
    }


# (the bytes of GOOD replaced, by these) -> whether both accept the board
SAME_VERDICT = [
    ((b'"schema_version":2', b'"schema_version":1'), True),
    ((b'"schema_version":2,', b""), True),  # the version defaults to the current one
    ((b'"schema_version":2', b'"schema_version":3'), False),
    ((b"horse-seoul-7-20261206", b"horse-seoul-7-2026120"), False),
    ((b"horse-seoul-7-20261206", b"horse-seoul-7-20261206\\n"), False),
    ((b"horse-seoul-7-20261206", b"dog-seoul-7-20261206"), False),
    ((b'"2026-12-06T05:00:00Z"', b'"2026-12-06T14:00:00+09:00"'), True),
    ((b'"2026-12-06T05:00:00Z"', b'"2026-12-06T05:00:00"'), False),  # no time zone
    ((b'"2026-12-06T05:00:00Z"', b'"yesterday"'), False),
    ((b'"is_final":false', b'"is_final":true'), True),
    ((b'"source":"kra"', b'"source":"kspo"'), True),
    ((b'"source":"kra"', b'"source":"jra"'), False),
    ((b'"pool":"TRI"', b'"pool":"QPL"'), True),
    ((b'"pool":"TRI"', b'"pool":"XYZ"'), False),
    ((b'"selection":"3-7-1"', b'"selection":"3-7-1-2"'), False),
    ((b'"selection":"3-7-1"', b'"selection":"3-7-1\\n"'), False),
    ((b'"selection":"3-7-1"', b'"selection":"a"'), False),
    ((b'"odds":412.5', b'"odds":0'), True),
    ((b'"odds":412.5', b'"odds":-0.1'), False),
    ((b'"odds":412.5', b'"odds":1e400'), False),
    ((b'"odds":412.5', b'"odds":NaN'), False),
    ((b'"odds":412.5', b'"odds":null'), False),
    ((b'"pool_total":98000', b'"pool_total":null'), True),
    ((b'"pool_total":98000', b'"pool_total":98000.5'), False),
    ((b'"popularity_rank":17', b'"popularity_rank":"x"'), False),
    ((b'"popularity_rank":17}', b'"popularity_rank":17,"extra":1}'), False),
    ((b'"is_final":false', b'"is_final":false,"extra":1'), False),
    ((b'"source":"kra",', b""), False),
    ((b'{"pool":"TRI","selection":"3-7-1","odds":412.5,"pool_total":98000,"popularity_rank":17},', b""), True),
    ((b'"prices":[', b'"prices":[],"x":['), False),
]


@pytest.mark.parametrize(("change", "accepted"), SAME_VERDICT)
def test_the_reader_and_the_model_agree(change: tuple[bytes, bytes], accepted: bool) -> None:
    old, new = change
    assert old in GOOD
    value = GOOD.replace(old, new, 1)
    assert _reader_accepts(value) is accepted
    assert _model_accepts(value) is accepted


def test_an_empty_board_is_refused_by_both() -> None:
    value = GOOD.split(b'"prices":')[0] + b'"prices":[]}'
    assert not _reader_accepts(value) and not _model_accepts(value)


# what the model coerces from another JSON type and the reader, holding to the JSON schema, refuses
COERCED = [
    (b'"odds":412.5', b'"odds":"412.5"'),
    (b'"pool_total":98000', b'"pool_total":98000.0'),
    (b'"pool_total":98000', b'"pool_total":"98000"'),
    (b'"is_final":false', b'"is_final":"false"'),
    (b'"is_final":false', b'"is_final":0'),
]


@pytest.mark.parametrize("change", COERCED)
def test_the_reader_refuses_what_the_model_would_coerce(change: tuple[bytes, bytes]) -> None:
    value = GOOD.replace(*change, 1)
    assert _model_accepts(value)
    assert not _reader_accepts(value)


def test_a_refusal_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"\$\.prices\[0\]\.selection"):
        read_board(GOOD.replace(b'"selection":"3-7-1"', b'"selection":"a"'))
    with pytest.raises(ValueError, match="not JSON"):
        read_board(GOOD[:-1])


def test_a_refused_board_is_a_validation_error_as_for_every_record() -> None:
    """The dead letter's ``dlq.exception.class`` is the same for an odds board as for any record."""
    for value in (GOOD[:-1], GOOD.replace(b'"odds":412.5', b'"odds":-1')):
        with pytest.raises(ValueError) as caught:
            read_board(value)
        assert type(caught.value).__name__ == "ValidationError"


def test_a_selection_is_checked_on_every_board_not_only_the_first_one_that_has_it() -> None:
    """Selections that matched are remembered; a bad one after many good boards is still refused, by its place."""
    read_board(GOOD)
    second_bad = GOOD.replace(b'"selection":"3"', b'"selection":"3-"')
    with pytest.raises(ValueError, match=r"\$\.prices\[1\]\.selection"):
        read_board(second_bad)
    with pytest.raises(ValueError, match=r"\$\.prices\[1\]\.selection"):  # and again: a refusal is not remembered
        read_board(second_bad)
    assert read_board(GOOD).prices[1].selection == "3"


def test_the_remembered_selections_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from schemas import board_reader

    monkeypatch.setattr(board_reader, "_MAX_VALID", 3)
    monkeypatch.setattr(board_reader, "_VALID_SELECTIONS", set())
    for first in range(1, 6):
        read_board(GOOD.replace(b'"selection":"3"', f'"selection":"{first}"'.encode()))
        assert len(board_reader._VALID_SELECTIONS) <= 3
    with pytest.raises(ValueError, match=r"\$\.prices\[0\]\.selection"):
        read_board(GOOD.replace(b'"selection":"3-7-1"', b'"selection":"3-7-1x"'))
