"""Formatting and argument helpers of ``racelab query`` (no database)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from racelab.query_cli import cell, parse_bucket, parse_day, render, render_table, to_json, width
from sinks.queries import Entry, QueryError, Race, RaceDetail

DAY = date(2024, 12, 14)


@dataclass(frozen=True)
class Row:
    name: str
    odds: float | None
    count: int
    final: bool


def test_cells():
    assert cell(None) == "-"
    assert (cell(True), cell(False)) == ("yes", "no")
    values = (19.0, 0.5, 0.19642, 1234.5, -3.9, -0.0001)
    assert [cell(v) for v in values] == ["19.0", "0.5", "0.196", "1234.5", "-3.9", "0.0"]
    assert cell(Decimal("2.50")) == "2.5"
    assert cell(datetime(2024, 12, 14, 1, 35, tzinfo=UTC)) == "2024-12-14 10:35:00+09:00"  # Korean time
    assert cell(date(2024, 12, 14)) == "2024-12-14"


def test_width_counts_hangul_twice():
    assert width("seoul") == 5
    assert width("서울") == 4
    assert width("부산경남 1") == 10


def test_table_aligns_text_left_numbers_right_and_hangul_by_display_width():
    rows = [Row("서울", 12.5, 3, True), Row("busan", None, 12, False)]
    text = render_table(rows, ["name", "odds", "count", "final"])
    assert text.splitlines() == [
        "name   odds  count  final",
        "서울   12.5      3  yes",
        "busan     -     12  no",
    ]


def test_empty_table_keeps_its_header():
    assert render_table([], ["name", "odds"]).splitlines() == ["name  odds", "(no rows)"]
    assert render([], "table") == "(no rows)"
    assert render([], "table", model=Row, hide=("count",)).splitlines() == ["name  odds  final", "(no rows)"]
    assert render([], "json") == "[]"


def test_render_hides_columns_and_shows_a_race_with_its_entries():
    race = Race("horse-seoul-1-20241214", "horse", "seoul", DAY, 1, None, "scheduled", 1200, None, None, 1)
    entry = Entry(race.race_id, 1, "0001", "바람", None, None, None, 3, "수", 55.0, 480, None, "declared", None)
    text = render(RaceDetail(race, (entry,)), "table")
    race_part, entries_part = text.split("\n\n")
    assert race_part.splitlines()[1].startswith("horse-seoul-1-20241214  horse")
    assert entries_part.splitlines()[0].startswith("entry_no  participant_id")  # race_id hidden
    assert "race_id" not in entries_part


def test_json_is_one_document_with_sane_dates_and_numbers():
    race = Race("horse-seoul-1-20241214", "horse", "seoul", DAY, 1, None, "official", None, None, None, 9)
    doc = json.loads(render([race], "json"))
    assert doc == [
        {
            "race_id": "horse-seoul-1-20241214",
            "race_type": "horse",
            "track_code": "seoul",
            "race_date": "2024-12-14",
            "race_no": 1,
            "post_time": None,
            "status": "official",
            "distance_m": None,
            "grade": None,
            "race_name": None,
            "field_size": 9,
        }
    ]
    moment = datetime(2024, 12, 14, 1, 35, tzinfo=UTC)
    assert json.loads(to_json({"at": moment, "rate": Decimal("0.25"), "wait": timedelta(minutes=1)})) == {
        "at": "2024-12-14T01:35:00+00:00",
        "rate": 0.25,
        "wait": 60.0,
    }
    with pytest.raises(TypeError):
        to_json({"x": object()})


def test_dates_and_buckets_parse_or_fail_with_one_clear_message():
    assert parse_day("2024-12-14") == date(2024, 12, 14)
    for bad in ("2024-13-01", "14.12.2024", ""):
        with pytest.raises(QueryError, match="expected YYYY-MM-DD"):
            parse_day(bad)
    assert [parse_bucket(t) for t in ("30s", "5m", "15min", "1h", "2 hours", "1d")] == [
        timedelta(seconds=30),
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(days=1),
    ]
    for bad in ("0m", "soon", "5", "-1h"):
        with pytest.raises(QueryError, match="bad bucket"):
            parse_bucket(bad)
