"""Raw response bytes + provenance -> validated normalized records, per endpoint.

``normalize(body, ctx)`` raises :class:`~processors.errors.DecodeError` (unreadable bytes),
:class:`~processors.errors.NormalizeError` (readable but unmappable) or
:class:`~processors.errors.ValidationFailed` (a value does not fit the model). It never returns half a message:
either every record of the response is valid, or the whole message goes to the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from processors.errors import NormalizeError, ValidationFailed
from processors.normalize import kra, kspo, odds_items
from processors.normalize.common import Context, items
from schemas import endpoints as ep
from schemas.records import (
    EntryRecord,
    HorseRecord,
    JockeyRecord,
    OddsBoard,
    OddsRecord,
    PayoffRecord,
    RaceRecord,
    RankRecord,
    ResultRecord,
)

Normalizer = Callable[[list[Any], Context], dict[str, list[Any]]]
NORMALIZERS: dict[str, Normalizer] = {
    ep.KRA_RACE_PLAN.path: kra.race_plan,
    ep.KRA_ENTRY_SHEET.path: kra.entry_sheet,
    ep.KRA_SCRATCHES.path: kra.scratches,
    ep.KRA_FINAL_DIVIDENDS.path: kra.final_dividends,
    ep.KRA_RACE_RESULT.path: kra.race_result,
    ep.KRA_RACE_RESULT_TOTAL.path: kra.race_result_total,
    ep.LIVE_ODDS_PATH: kra.live_odds,
    ep.KRA_HORSE_INFO.path: kra.horse_info,
    ep.KRA_JOCKEY_INFO.path: kra.jockey_info,
    ep.CYCLE_ENTRIES.path: kspo.cycle_entries,
    ep.CYCLE_RESULT.path: kspo.cycle_result,
    ep.CYCLE_RANK.path: kspo.cycle_rank,
    ep.CYCLE_PAYOFF.path: kspo.cycle_payoff,
    ep.BOAT_ENTRIES.path: kspo.boat_entries,
    ep.BOAT_RESULT.path: kspo.boat_result,
    ep.BOAT_RANK.path: kspo.boat_rank,
    ep.BOAT_PAYOFF.path: kspo.boat_payoff,
}
READERS: dict[str, Callable[[bytes], list[Any]]] = {
    ep.KRA_FINAL_DIVIDENDS.path: odds_items.read,
    ep.LIVE_ODDS_PATH: odds_items.read,
}
"""How the rows of an endpoint's bodies are read when not as mappings (:func:`common.items`): the odds as structs."""
TYPED_FIELDS: dict[str, dict[str, str]] = kra.TYPED | kspo.TYPED
"""Per endpoint: the published fields held in typed columns (``topic.column``); the others are kept in ``details``."""
ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "races": TypeAdapter(list[RaceRecord | PayoffRecord]),
    "entries": TypeAdapter(list[EntryRecord | HorseRecord | JockeyRecord]),
    "odds": TypeAdapter(list[OddsBoard]),
    "results": TypeAdapter(list[ResultRecord | RankRecord]),
}


@dataclass
class Normalized:
    """The records of one raw message, by normalized topic."""

    races: list[RaceRecord | PayoffRecord] = field(default_factory=list)
    entries: list[EntryRecord | HorseRecord | JockeyRecord] = field(default_factory=list)
    odds: list[OddsBoard] = field(default_factory=list)
    results: list[ResultRecord | RankRecord] = field(default_factory=list)

    def by_topic(self) -> dict[str, list[Any]]:
        return {"races": self.races, "entries": self.entries, "odds": self.odds, "results": self.results}

    def count(self) -> int:
        """The records: races, entries, results and odds prices (a board counts one per price)."""
        return len(self.races) + len(self.entries) + len(self.results) + sum(len(b.prices) for b in self.odds)

    def odds_records(self) -> list[OddsRecord]:
        """The odds as table rows (one per price of each board)."""
        return [record for board in self.odds for record in board.records()]


def _describe(exc: ValidationError, topic: str) -> str:
    first = exc.errors(include_url=False, include_input=False)[:3]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or '?'}: {e['msg']}" for e in first)
    return f"{exc.error_count()} invalid {topic} field(s): {where}"


def normalize(body: bytes, ctx: Context) -> Normalized:
    """All records of one raw response, validated."""
    normalizer = NORMALIZERS.get(ctx.endpoint)
    if normalizer is None:
        raise NormalizeError(f"no normalizer for endpoint {ctx.endpoint[:60]!r}")
    rows = READERS.get(ctx.endpoint, items)(body)
    try:
        produced = normalizer(rows, ctx)
    except (TypeError, AttributeError) as exc:
        raise NormalizeError(f"row shape not understood ({exc.__class__.__name__})") from exc
    out = Normalized()
    for topic, dicts in produced.items():
        if not dicts:
            continue
        if isinstance(dicts[0], BaseModel):  # records the normalizer built from values it checked (kra.odds_rows)
            setattr(out, topic, dicts)
            continue
        try:
            setattr(out, topic, ADAPTERS[topic].validate_python(dicts))
        except ValidationError as exc:
            raise ValidationFailed(_describe(exc, topic)) from None
    return out
