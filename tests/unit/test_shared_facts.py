"""Tracks, race ids, time zones and database error classification: one module each, checked against the facts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from pathlib import Path

import asyncpg
import pytest
from asyncpg.exceptions._base import InternalClientError

from runtime.pgerrors import classify
from schemas import race_ids, timezones, tracks

MIGRATIONS = Path(__file__).resolve().parents[2] / "sinks" / "migrations"


# ---- tracks -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spelling", "code"),
    [  # every spelling the reference quotes (kra-kspo-apis.md, quirks 13 and 26)
        ("서울", "seoul"),
        ("제주", "jeju"),
        ("부경", "busan"),  # API214_1
        ("부산경남", "busan"),  # API8_2, API19_1, entrySheet
        ("영남", "busan"),  # API18_1
        ("광명  ", "gwangmyeong"),  # KSPO entry sheets pad meet_nm with blanks
        ("광명", "gwangmyeong"),
        ("창원", "changwon"),
        ("부산", "busan_cycle"),
        ("미사리", "misari"),
        ("1", "seoul"),  # KRA meet codes where a response echoes the request code
        ("2", "jeju"),
        ("3", "busan"),
        ("영천", "yeongcheon"),
        ("4", "yeongcheon"),
    ],
)
def test_every_spelling_names_its_track(spelling, code):
    found = tracks.by_spelling(spelling)
    assert found is not None and found.code == code


def test_unknown_spellings_name_no_track():
    assert tracks.by_spelling("잠실") is None
    assert tracks.by_spelling("") is None


def test_track_table_facts():
    assert [(t.code, t.race_type, t.source, t.kra_meet, t.kspo_meet) for t in tracks.TRACKS] == [
        ("seoul", "horse", "kra", 1, None),
        ("busan", "horse", "kra", 3, None),
        ("jeju", "horse", "kra", 2, None),
        ("yeongcheon", "horse", "kra", 4, None),  # KRA meet 4 in the newer datasets
        ("gwangmyeong", "cycle", "kspo", None, "광명"),
        ("changwon", "cycle", "kspo", None, "창원"),
        ("busan_cycle", "cycle", "kspo", None, "부산"),
        ("misari", "boat", "kspo", None, None),
    ]
    assert tracks.CODES_BY_RACE_TYPE == {
        "horse": ("seoul", "busan", "jeju", "yeongcheon"),
        "cycle": ("gwangmyeong", "changwon", "busan_cycle"),
        "boat": ("misari",),
    }
    assert tracks.POLLED_BY_RACE_TYPE["horse"] == ("seoul", "busan", "jeju")  # 영천 only when named
    assert tracks.race_type_of("misari") == "boat"
    with pytest.raises(KeyError, match="unknown track code 'jamsil'"):
        tracks.track("jamsil")


_TRACK_ROW = re.compile(r"\(\s*'([a-z_]+)',\s*'([^']+)',\s*'(horse|cycle|boat)',\s*'(kra|kspo)',\s*(\d+|NULL),")


def test_migrations_insert_every_track_of_the_table():
    """Adding a track is a row in schemas.tracks plus a migration: the two must agree."""
    inserted = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        for statement in re.findall(r"INSERT INTO tracks\b.*?;", text, flags=re.S):
            for code, name, race_type, source, meet in _TRACK_ROW.findall(statement):
                inserted[code] = (name, race_type, source, None if meet == "NULL" else int(meet))
    assert inserted == {t.code: (t.name_ko, t.race_type, t.source, t.kra_meet) for t in tracks.TRACKS}


# ---- race ids -----------------------------------------------------------------------------------------------------
def test_race_id_build_and_parse():
    assert race_ids.race_id("horse", "seoul", 3, date(2024, 12, 10)) == "horse-seoul-3-20241210"
    key = race_ids.parse("cycle-busan_cycle-12-20241210")
    assert (key.race_type, key.track, key.race_no, key.day) == ("cycle", "busan_cycle", 12, date(2024, 12, 10))
    assert key.race_id == "cycle-busan_cycle-12-20241210"
    assert key.source == "kspo"
    assert race_ids.parse("horse-seoul-3-20241210").source == "kra"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("horse-seoul-7", "not a race id"),
        ("car-seoul-3-20241210", "not a race id"),
        ("horse-seoul-3-20241310", "not a calendar date"),
        ("horse-seoul-3-20240230", "not a calendar date"),
    ],
)
def test_race_id_parse_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        race_ids.parse(text)


def test_known_race_ids_name_a_track_of_their_type():
    assert race_ids.parse("horse-misari-3-20241210").track == "misari"  # well formed
    with pytest.raises(ValueError, match="unknown horse track code"):
        race_ids.parse_known("horse-misari-3-20241210")
    with pytest.raises(ValueError, match="race number must be 1 to 99"):
        race_ids.parse_known("horse-seoul-0-20241210")
    assert race_ids.parse_known("boat-misari-15-20241212").race_no == 15


def test_keys_and_sources():
    assert race_ids.day_key("kspo", "misari", date(2024, 12, 12)) == "kspo:misari:20241212"
    assert race_ids.date_of_key("kspo:misari:20241212") == date(2024, 12, 12)
    assert race_ids.date_of_key("boat-misari-3-20241212") == date(2024, 12, 12)
    assert race_ids.date_of_key("kra:seoul:20241399") is None
    assert race_ids.date_of_key("no-date-here") is None
    assert race_ids.source_of("horse") == "kra"
    assert race_ids.source_of("boat") == "kspo"
    assert race_ids.source_of_race("cycle-changwon-1-20241213") == "kspo"


# ---- time zones ---------------------------------------------------------------------------------------------------
def test_korean_days_and_moments():
    assert timezones.kst_moment(date(2024, 12, 14), time(10, 35)) == datetime(2024, 12, 14, 1, 35, tzinfo=UTC)
    assert timezones.kst_date(datetime(2024, 12, 13, 15, 0, tzinfo=UTC)) == date(2024, 12, 14)
    assert timezones.kst_date(datetime(2024, 12, 13, 14, 59, tzinfo=UTC)) == date(2024, 12, 13)
    midnight = timezones.kst_midnight(date(2024, 12, 14))
    assert midnight.isoformat() == "2024-12-14T00:00:00+09:00"


# ---- database errors ----------------------------------------------------------------------------------------------
def _closed_during(cause: BaseException) -> asyncpg.InterfaceError:
    """The plain InterfaceError asyncpg raises on leaving a transaction whose connection died under it."""
    outer = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    outer.__context__ = cause
    return outer


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (OSError("connection refused"), "unavailable"),
        (TimeoutError(), "unavailable"),
        (asyncpg.ConnectionDoesNotExistError("x"), "unavailable"),  # 08003
        (asyncpg.CannotConnectNowError("x"), "unavailable"),  # 57P03
        (asyncpg.AdminShutdownError("x"), "unavailable"),  # 57P01
        (asyncpg.CrashShutdownError("x"), "unavailable"),  # 57P02
        (asyncpg.IdleSessionTimeoutError("x"), "unavailable"),  # 57P05
        (asyncpg.ReadOnlySQLTransactionError("x"), "unavailable"),  # 25006
        (asyncpg.DeadlockDetectedError("x"), "unavailable"),  # 40P01
        (asyncpg.SerializationError("x"), "unavailable"),  # 40001
        (asyncpg.DiskFullError("x"), "unavailable"),  # 53100
        (asyncpg.TooManyConnectionsError("x"), "unavailable"),  # 53300
        (asyncpg.QueryCanceledError("x"), "fatal"),  # 57014: a statement_timeout would cancel every retry
        (asyncpg.NumericValueOutOfRangeError("x"), "bad_data"),  # 22003
        (asyncpg.CheckViolationError("x"), "bad_data"),  # 23514
        (asyncpg.ForeignKeyViolationError("x"), "bad_data"),  # 23503
        (asyncpg.InvalidPasswordError("x"), "login"),  # 28P01
        (asyncpg.InvalidCatalogNameError("x"), "login"),  # 3D000
        (asyncpg.UndefinedTableError("x"), "fatal"),  # 42P01
        (_closed_during(asyncpg.ConnectionDoesNotExistError("x")), "unavailable"),
        (_closed_during(KeyError("x")), "fatal"),
        (asyncpg.InterfaceError("connection is closed"), "fatal"),  # no cause to trace: the text is not read
        (ValueError("connection is closed"), "fatal"),
        (InternalClientError("cannot switch to state 15"), "unavailable"),  # a pooled connection the server ended
    ],
)
def test_classify_by_type_and_sqlstate(error, outcome):
    assert classify(error) == outcome


def test_classify_never_reads_the_message():
    """The same SQLSTATE with any (localized) message means the same."""
    for message in ("could not connect", "연결할 수 없습니다", "connection is closed", ""):
        assert classify(asyncpg.DataError(message)) == "bad_data"
        assert classify(asyncpg.AdminShutdownError(message)) == "unavailable"


async def test_translate_errors_uses_the_one_classification():
    from pydantic import SecretStr

    from runtime.db import translate_errors
    from runtime.settings import DatabaseSettings
    from schemas.errors import DatabaseError, DatabaseUnavailable

    settings = DatabaseSettings(url=SecretStr("postgresql://u:pw123456@h/db"))
    cases = [
        (OSError(), DatabaseUnavailable, "cannot reach the database at postgresql://u:***@h/db (OSError)"),
        (asyncpg.ConnectionDoesNotExistError("x"), DatabaseUnavailable, "lost the connection to the database"),
        (asyncpg.TooManyConnectionsError("x"), DatabaseUnavailable, "cannot take work now (TooManyConnectionsError)"),
        (asyncpg.InvalidPasswordError("x"), DatabaseError, "refused the login (wrong user or password)"),
        (asyncpg.InvalidCatalogNameError("x"), DatabaseError, "does not exist"),
        # Pool calls racing a PostgreSQL restart raise it (not an InterfaceError); once it escaped the producers'
        # and the sink's background loops and ended the process.
        (
            InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
            DatabaseUnavailable,
            "cannot reach the database at postgresql://u:***@h/db (InternalClientError)",
        ),
        (TimeoutError(), DatabaseUnavailable, "(TimeoutError)"),
    ]
    for error, expected, message in cases:
        with pytest.raises(expected) as caught:
            async with translate_errors(settings):
                raise error
        assert message in str(caught.value) and "pw123456" not in str(caught.value)
        assert caught.value.__cause__ is error
    with pytest.raises(asyncpg.UndefinedTableError):  # not an outage nor a login: the caller's to handle
        async with translate_errors(settings):
            raise asyncpg.UndefinedTableError("x")


async def test_an_outage_is_waited_out_and_any_other_error_is_raised():
    from runtime.db import wait_out_outage
    from runtime.settings import DatabaseSettings

    tries: list[int] = []

    async def flaky() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise asyncpg.ConnectionDoesNotExistError("x")  # driver error, classified as an outage
        if len(tries) == 2:
            raise OSError("connection refused")
        return "read"

    assert await wait_out_outage(flaky, DatabaseSettings(), "reading", max_delay_s=0.001) == "read"
    assert len(tries) == 3

    async def broken() -> str:
        tries.append(1)
        raise asyncpg.UndefinedTableError("x")

    tries.clear()
    with pytest.raises(asyncpg.UndefinedTableError):  # not an outage: never tried again
        await wait_out_outage(broken, DatabaseSettings(), "reading", max_delay_s=0.001)
    assert len(tries) == 1


# ---- topic settings per class -------------------------------------------------------------------------------------
def test_topic_classes_have_their_retention():
    from runtime.settings import TopicSettings
    from schemas.topics import DAY_MS

    configs = TopicSettings().catalogue().configs()
    assert configs["racelab.raw.odds"] == {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)}
    assert configs["racelab.odds"]["retention.ms"] == str(30 * DAY_MS)
    assert configs["racelab.raw.odds.dlq"]["retention.ms"] == str(365 * DAY_MS)
    forever = TopicSettings(raw_retention_days=0).catalogue().configs()
    assert forever["racelab.raw.results"]["retention.ms"] == "-1"  # 0 days = keep forever
    assert len(configs) == 12
