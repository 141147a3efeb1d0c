"""Typed queries over the race tables and the odds hypertable (asyncpg, parameterized SQL only).

Every function takes a connection or a pool (:data:`Executor`) whose ``search_path`` names the schema (as
:mod:`runtime.db` sets it) and returns slotted dataclasses from :mod:`sinks.queries.models`.
"""

from sinks.queries.base import Executor, InvalidRaceId, QueryError, RaceNotFound, race_window
from sinks.queries.models import (
    Entry,
    EntryForm,
    OddsBucket,
    OddsSnapshot,
    OddsSummary,
    ParticipantStats,
    Race,
    RaceDetail,
    RawResponse,
    Result,
    WideOdds,
)
from sinks.queries.odds import odds_day_summary, odds_history, odds_history_bucketed, odds_summary, odds_wide
from sinks.queries.races import entries, race, races_by_date, require_race, results
from sinks.queries.raw import raw_for_poll, raw_for_race
from sinks.queries.stats import entry_stats, horse_win_rate, jockey_stats, race_form, racer_stats

__all__ = [
    "Entry",
    "EntryForm",
    "Executor",
    "InvalidRaceId",
    "OddsBucket",
    "OddsSnapshot",
    "OddsSummary",
    "ParticipantStats",
    "QueryError",
    "Race",
    "RaceDetail",
    "RaceNotFound",
    "RawResponse",
    "Result",
    "WideOdds",
    "entries",
    "entry_stats",
    "horse_win_rate",
    "jockey_stats",
    "odds_day_summary",
    "odds_history",
    "odds_history_bucketed",
    "odds_summary",
    "odds_wide",
    "race",
    "race_form",
    "race_window",
    "racer_stats",
    "races_by_date",
    "raw_for_poll",
    "raw_for_race",
    "require_race",
    "results",
]
