"""KSPO cycle payoffs attached to their race, in the database.

A payoff row names its date, round, day of round and race number but not its track. After every transaction that
writes payoffs or cycle races, :data:`ATTACH_SQL` looks, for each payoff of the days written, for the races of that
date and number whose published round and day (their ``details``) are the payoff's: exactly one, and the payoff's
fields join that race's details and the race is official; none yet, and it waits for the race (the join runs again
when it comes); several (tracks that ran the same round), and it stays unattached in ``kspo_payoffs``, never
attached by a guess: the audit rule ``payoff_placed`` lists it (:data:`UNPLACED_SQL`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sinks.tables import COLUMNS

# A race a payoff fits: same type, date and number, the track if the payoff names one, and the round and day its
# own row published (races.details, from the cards, results and ranks).
FITS = """
r.race_type = p.race_type AND r.race_date = p.race_date AND r.race_no = p.race_no
AND (p.track_code IS NULL OR r.track_code = p.track_code)
AND r.details ->> 'stnd_yr' = p.year::text AND r.details ->> 'week_tcnt' = p.round_no::text
AND r.details ->> 'day_tcnt' = p.day_no::text
"""
_CANDIDATES = f"""
SELECT p.race_type, p.race_date, p.race_no, p.year, p.round_no, p.day_no, r.race_id,
       count(*) OVER (PARTITION BY p.race_type, p.race_date, p.race_no, p.year, p.round_no, p.day_no) AS fits
FROM kspo_payoffs p JOIN races r ON {FITS}
WHERE p.race_date = ANY($1::date[])
"""
_PAYOFF_KEY = "race_type, race_date, race_no, year, round_no, day_no"
ATTACH_SQL = f"""
WITH candidates AS ({_CANDIDATES}),
one AS (SELECT c.race_id, p.details FROM candidates c JOIN kspo_payoffs p USING ({_PAYOFF_KEY}) WHERE c.fits = 1)
UPDATE races r
SET details = r.details || one.details,
    status = CASE WHEN r.status IN ('unknown', 'scheduled', 'finished') THEN 'official' ELSE r.status END,
    updated_at = now()
FROM one
WHERE r.race_id = one.race_id AND (NOT r.details @> one.details OR r.status <> 'official')
"""
UNPLACED_SQL = f"""
SELECT 'kspo:' || p.race_type || ':' || to_char(p.race_date, 'YYYYMMDD') || '#' || p.race_no,
       format('payoff of race %s of round %s day %s fits %s races%s', p.race_no, p.round_no, p.day_no,
              count(r.race_id), coalesce(': ' || string_agg(r.race_id, ', ' ORDER BY r.race_id), ''))
FROM kspo_payoffs p LEFT JOIN races r ON {FITS}
WHERE p.race_date BETWEEN $1 AND $2
GROUP BY p.race_type, p.race_date, p.race_no, p.year, p.round_no, p.day_no
HAVING count(r.race_id) <> 1
"""


def payoff_days(by_table: dict[str, list[tuple[Any, ...]]]) -> list[date]:
    """The days whose payoffs may now fit a race: those of the payoffs and of the cycle races written."""
    days = {v[COLUMNS["kspo_payoffs"].index("race_date")] for v in by_table.get("kspo_payoffs", ())}
    type_at, date_at = COLUMNS["races"].index("race_type"), COLUMNS["races"].index("race_date")
    days |= {v[date_at] for v in by_table.get("races", ()) if v[type_at] == "cycle"}
    return sorted(days)
