"""``racelab normalize KIND FILE``: normalize a saved response offline and print the records as JSON lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from processors.errors import NormalizeError
from processors.normalize import NORMALIZERS, Normalized, normalize
from processors.normalize.common import Context, items
from schemas import endpoints as ep

# (field that only this endpoint's rows carry, endpoint); the first match wins.
SIGNATURES: tuple[tuple[str, str], ...] = (
    ("faHrNo", ep.KRA_HORSE_INFO.path),
    ("debut", ep.KRA_JOCKEY_INFO.path),
    ("poolTotal", ep.LIVE_ODDS_PATH),
    ("pool", ep.KRA_FINAL_DIVIDENDS.path),
    ("finalBit", ep.KRA_RACE_RESULT_TOTAL.path),
    ("cancelReason", ep.KRA_SCRATCHES.path),
    ("ord", ep.KRA_RACE_RESULT.path),
    ("chulNo", ep.KRA_ENTRY_SHEET.path),
    ("schStTime", ep.KRA_RACE_PLAN.path),
    ("back_no", ep.CYCLE_ENTRIES.path),
    ("race_reg_no", ep.BOAT_ENTRIES.path),
    ("pool2_1_val", ep.CYCLE_PAYOFF.path),
    ("pool7_val", ep.CYCLE_RESULT.path),
    ("pool3_val", ep.BOAT_RESULT.path),
    ("mbr_nm", ep.BOAT_RANK.path),
    ("race_rank", ep.CYCLE_RANK.path),
)


def guess_endpoint(body: bytes) -> str:
    """The endpoint a saved response came from, from the fields of its rows."""
    rows = items(body)
    if not rows:
        raise NormalizeError("the response has no rows; pass --endpoint")
    fields = set(rows[0])
    for name, endpoint in SIGNATURES:
        if name in fields:
            return endpoint
    raise NormalizeError("cannot tell which endpoint this response came from; pass --endpoint")


def normalize_file(
    kind: str,
    path: Path,
    endpoint: str | None = None,
    key: str = "",
    fetched_at: datetime | None = None,
    params: dict[str, str] | None = None,
) -> tuple[str, Normalized]:
    """(endpoint used, records) of a saved response; ``params`` are the request's (a boat card needs its
    ``day_tcnt`` and a key naming the date)."""
    body = path.read_bytes()
    endpoint = endpoint or guess_endpoint(body)
    if endpoint not in NORMALIZERS:
        raise NormalizeError(f"unknown endpoint {endpoint!r}; one of: {', '.join(sorted(NORMALIZERS))}")
    found = ep.BY_PATH.get(endpoint)
    if found is not None and found.kind != kind and not (kind == "schedules" and found.kind == "entries"):
        raise NormalizeError(f"{endpoint} answers {found.kind}, not {kind}")
    source = found.source if found else "kra"
    ctx = Context(source, endpoint, dict(params or {}), fetched_at or datetime.now(UTC), key or path.stem)
    return endpoint, normalize(body, ctx)
