"""The join of KSPO ranks (finishers by racer) with the races' cards (runners by number), in the database.

After every transaction that writes ranks or entries of a KSPO race, :data:`JOIN_SQL` joins that race's ranks to
its entries by name: a racer on exactly one runner of the card (and that runner claimed by no other racer) gives
that runner its result row (position, racer id, final) and its entry the racer id. Either may arrive first: the
join runs again when the other comes, so the stored result is the same. :data:`UNMATCHED_SQL` finds the ranks of
those races whose card is present but does not have the racer (or has it twice); they are dead letters, reported
once (:data:`MARK_SQL` after the dead letter was delivered), never matched by a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas.records import SCHEMA_VERSION

_CANDIDATES = """
SELECT k.race_id, k.racer_id, k.racer_name, k.finish_position, k.source, k.source_fetched_at, e.entry_no,
       count(*) OVER (PARTITION BY k.race_id, k.racer_id) AS matches,
       count(*) OVER (PARTITION BY k.race_id, e.entry_no) AS claims
FROM race_ranks k JOIN entries e ON e.race_id = k.race_id AND e.participant_name = k.racer_name
WHERE k.race_id = ANY($1::text[])
"""
JOIN_SQL = f"""
WITH candidates AS ({_CANDIDATES}),
joined AS (SELECT * FROM candidates WHERE matches = 1 AND claims = 1),
ids AS (
    UPDATE entries e SET participant_id = j.racer_id, updated_at = now()
    FROM joined j
    WHERE e.race_id = j.race_id AND e.entry_no = j.entry_no AND e.participant_id IS DISTINCT FROM j.racer_id
)
INSERT INTO results AS t (race_id, entry_no, finish_position, status, participant_id, participant_name, is_final,
                          source, source_fetched_at)
SELECT race_id, entry_no, finish_position, 'finished', racer_id, racer_name, true, source, source_fetched_at
FROM joined
ON CONFLICT (race_id, entry_no) DO UPDATE SET
    participant_id = excluded.participant_id,
    finish_position = COALESCE(t.finish_position, excluded.finish_position),
    is_final = true,
    updated_at = now()
WHERE t.participant_id IS DISTINCT FROM excluded.participant_id OR t.finish_position IS NULL OR NOT t.is_final
"""
UNMATCHED_SQL = f"""
WITH candidates AS ({_CANDIDATES})
SELECT k.race_id, k.racer_id, k.racer_name, k.finish_position, k.source, k.source_fetched_at, k.details,
       (SELECT count(*) FROM candidates c WHERE c.race_id = k.race_id AND c.racer_id = k.racer_id) AS matches
FROM race_ranks k
WHERE k.race_id = ANY($1::text[]) AND k.reported_at IS NULL
  AND EXISTS (SELECT 1 FROM entries e WHERE e.race_id = k.race_id)
  AND NOT EXISTS (SELECT 1 FROM candidates c
                  WHERE c.race_id = k.race_id AND c.racer_id = k.racer_id AND c.matches = 1 AND c.claims = 1)
ORDER BY k.race_id, k.finish_position
"""
MARK_SQL = """
UPDATE race_ranks SET reported_at = now()
WHERE (race_id, racer_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


def joined_races(by_table: dict[str, list[tuple[Any, ...]]], race_id_index: dict[str, int]) -> list[str]:
    """The KSPO races whose ranks or entries a transaction writes (the races to join again)."""
    races = {
        values[race_id_index[table]]
        for table in ("race_ranks", "entries")
        for values in by_table.get(table, ())
        if not str(values[race_id_index[table]]).startswith("horse-")
    }
    return sorted(races)


@dataclass(frozen=True)
class UnmatchedRank:
    """A rank whose racer is not (or not once) on the race's present card."""

    race_id: str
    racer_id: str
    racer_name: str
    finish_position: int
    source: str
    source_fetched_at: datetime | None
    details: dict[str, Any]
    matches: int

    @property
    def reason(self) -> str:
        found = "is not on the card" if self.matches == 0 else f"matches {self.matches} runners of the card"
        return f"racer {self.racer_id} {self.racer_name} (placed {self.finish_position}) {found} of {self.race_id}"

    def message(self) -> bytes:
        """The rank as its normalized message (the dead letter's value)."""
        return orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "race_id": self.race_id,
                "racer_id": self.racer_id,
                "racer_name": self.racer_name,
                "finish_position": self.finish_position,
                "source": self.source,
                "source_fetched_at": self.source_fetched_at,
                "details": self.details,
            },
            option=orjson.OPT_UTC_Z,
        )


def unmatched_of(rows: Sequence[Any]) -> list[UnmatchedRank]:
    return [
        UnmatchedRank(
            r["race_id"],
            r["racer_id"],
            r["racer_name"],
            r["finish_position"],
            r["source"],
            r["source_fetched_at"],
            orjson.loads(r["details"]) if isinstance(r["details"], str | bytes) else dict(r["details"]),
            r["matches"],
        )
        for r in rows
    ]
