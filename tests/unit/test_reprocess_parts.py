"""The pure parts of ``racelab reprocess``: the selection's Korean days, the archived headers read back as received,
the track filter, the report's round trip through the checkpoint and its text, the upserts' "unchanged rows are not
rewritten" clause, the CLI's arguments, and the progress line."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from racelab.cli import build_parser
from racelab.reprocess import describe, kept, rows_of_page
from runtime.progress import Progress
from schemas.records import PayoffRecord, RaceRecord, ResultRecord
from sinks.archive import COLUMNS as ARCHIVE_COLUMNS
from sinks.archive import RawMessage, archive_values
from sinks.merge import changes_sql, correct_odds_sql, merge_sql
from sinks.reprocess import ArchivedResponse, Report, Run, Selection, header_list

AT = datetime(2024, 12, 14, 3, 0, tzinfo=UTC)


def test_a_selection_covers_whole_korean_days():
    first, after_last = Selection(date(2024, 12, 14), date(2024, 12, 15)).bounds()
    assert first == datetime(2024, 12, 13, 15, 0, tzinfo=UTC)  # 00:00 on the 14th in Korea
    assert after_last == datetime(2024, 12, 15, 15, 0, tzinfo=UTC)  # 00:00 on the 16th in Korea
    same = Selection(date(2024, 12, 14), date(2024, 12, 15), kinds=("odds", "entries"), tracks=("seoul",))
    assert same.as_json() == ('{"from":"2024-12-14","to":"2024-12-15","kinds":["entries","odds"],"tracks":["seoul"]}')
    assert (
        same.arguments()[2] == ["entries", "odds"]
        and Selection(date(2024, 1, 1), date(2024, 1, 1)).arguments()[2] is None
    )


def test_archived_headers_come_back_as_received():
    headers = [("source", b"kra"), ("fetched_at", b"2024-12-14T03:00:00Z"), ("odd", b"\xff\x00bytes")]
    message = RawMessage("racelab.raw.odds", 0, 7, None, b"key", b"{}", headers)
    stored = dict(zip(ARCHIVE_COLUMNS, archive_values(message), strict=True))["headers"]
    assert header_list(orjson.loads(stored)) == headers


def _race(track: str) -> RaceRecord:
    return RaceRecord(
        race_id=f"cycle-{track}-1-20241214",
        race_type="cycle",
        track_code=track,
        race_date=date(2024, 12, 14),
        race_no=1,
        status="scheduled",
        source="kspo",
        source_fetched_at=AT,
    )


def test_the_track_filter_reads_the_track_code_then_the_race_id_then_the_race_type():
    result = ResultRecord(
        race_id="horse-seoul-3-20241214",
        entry_no=1,
        status="finished",
        participant_name="희망타요",
        is_final=True,
        source="kra",
        source_fetched_at=AT,
    )
    payoff = PayoffRecord(
        race_type="cycle", race_date=date(2024, 12, 14), race_no=1, year=2024, round_no=50, day_no=1,
        source="kspo", source_fetched_at=AT,
    )  # fmt: skip
    assert kept(_race("changwon"), ()) and kept(result, ())
    assert kept(_race("changwon"), ("changwon",)) and not kept(_race("changwon"), ("gwangmyeong",))
    assert kept(result, ("seoul",)) and not kept(result, ("busan",))
    assert kept(payoff, ("gwangmyeong",)) and not kept(payoff, ("seoul", "misari"))  # no track: its race type


def test_a_report_survives_the_checkpoint_and_reads_as_a_table():
    report = Report(
        inserted=Counter({"races": 2}),
        changed=Counter({"results.trainer_name": 2, "results.rating": 12}),
        examples={"results.trainer_name": [[["horse-busan-1-20250523", 2], "구민성", "수정"]]},
        failed=Counter({"NormalizeError": 1}),
        failed_examples=[["poll-1", "2024-12-14T03:00:00+00:00", "field 'ord': not a number"]],
        responses=40,
        records=1234,
    )
    again = Report.from_json(report.to_json())
    assert again == report
    lines = describe(Run(7, AT, 40, 40, None, again), dry_run=False)
    assert lines == [
        "40 archived responses re-normalized into 1,234 records",
        "races: 2 rows inserted",
        "results: 0 rows inserted",
        "  rating: 12 rows changed",
        "  trainer_name: 2 rows changed",
        "      horse-busan-1-20250523 2: 구민성 -> 수정",
        "1 responses the current normalizers reject (NormalizeError 1), nothing of them written:",
        "  poll poll-1 fetched 2024-12-14T03:00:00+00:00: field 'ord': not a number",
        "  (racelab raw show --poll-id ID shows one)",
    ]
    assert describe(Run(None, None, 0), dry_run=True) == [
        "0 archived responses re-normalized into 0 records (dry run: nothing written)",
        "no row would change",
    ]


def test_an_upsert_leaves_an_unchanged_row_alone():
    results = merge_sql("results")
    assert (
        results.endswith("WHERE ROW(" + results.split("WHERE ROW(", 1)[1])
        and "IS DISTINCT FROM ROW(" in results.rsplit("WHERE", 1)[1]
    )
    assert "updated_at = now()" in results  # only when something changed
    assert "ON CONFLICT DO NOTHING" in merge_sql("odds_snapshots")  # a poll never rewrites a past price
    assert "DO UPDATE SET odds = excluded.odds" in correct_odds_sql()  # a reprocess corrects it
    assert "t.time BETWEEN $1 AND $2" in changes_sql("odds_snapshots")  # searched in the batch's chunks only
    assert "$1" not in changes_sql("results")


def test_reprocess_arguments():
    args = build_parser().parse_args(
        ["reprocess", "--from", "2024-12-01", "--to", "2024-12-31", "--kinds", "odds,results", "entries",
         "--tracks", "seoul", "--dry-run"]
    )  # fmt: skip
    assert (args.from_, args.to, args.dry_run) == (date(2024, 12, 1), date(2024, 12, 31), True)
    assert args.kinds == [["odds", "results"], ["entries"]] and args.tracks == [["seoul"]]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reprocess", "--from", "2024-12-01", "--to", "2024-12-31", "--kinds", "horses"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reprocess", "--from", "12/01", "--to", "2024-12-31"])


def test_progress_shows_rate_eta_and_counts_and_starts_from_a_resumed_position():
    out = io.StringIO()
    progress = Progress(400, "responses", out, initial=100)
    progress.advance(100, records=5000, changed=3)
    progress.advance(200, records=15000, changed=3)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[") and "200/400 responses" in lines[0] and "records 5,000  changed 3" in lines[0]
    assert "400/400 responses" in lines[-1] and "ETA 0:00:00" in lines[-1] and "/s" in lines[-1]


def _archived(body: bytes, poll_id: str) -> ArchivedResponse:
    headers = [
        ("source", b"kra"),
        ("kind", b"results"),
        ("endpoint", b"API214_1/RaceDetailResult_1"),
        ("params", b'{"meet":"3","rc_date":"20250523","rc_no":"1"}'),
        ("fetched_at", b"2025-05-23T09:00:00.000000Z"),
        ("poll_id", poll_id.encode()),
        ("http_status", b"200"),
    ]
    return ArchivedResponse(AT, poll_id, b"\x00" * 32, "racelab.raw.results", 0, 1, "k", "results", headers, body)


def test_a_page_of_real_results_normalizes_as_the_processors_do_and_a_bad_response_is_counted():
    sample = (Path(__file__).resolve().parents[1] / "samples" / "kra_api214_response.json").read_bytes()
    page = [_archived(sample, "poll-a"), _archived(b'{"response": {"body": "not rows"', "poll-b")]
    rows, report = rows_of_page(page, ())
    assert report.records == 11 and [r.table for r in rows].count("results") == 10  # one race, ten runners
    assert {r.values[0] for r in rows if r.table == "races"} == {"horse-busan-1-20250523"}
    assert sum(report.failed.values()) == 1 and report.failed_examples[0][0] == "poll-b"
    rows, report = rows_of_page(page[:1], ("seoul",))  # a Busan race: none of its records kept
    assert (rows, report.records) == ([], 0)
