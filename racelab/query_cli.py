"""``racelab query WHAT ...``: the query functions of :mod:`sinks.queries` on the command line.

Output is an aligned table (the default; times in Korean time, ``-`` for no value) or, with ``--format json``, one
JSON document (RFC 3339 times as stored, ISO dates, numbers as numbers). Bad input (a malformed date or race id,
an unknown race) is a :class:`~sinks.queries.QueryError`: one line on stderr and exit code 2, as for every
pipeline error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from schemas.timezones import KST
from schemas.tracks import RACE_TYPES

if TYPE_CHECKING:
    import asyncpg

    from racelab.charts import ChartData, Format
    from runtime.settings import Settings
    from sinks.queries.stats import By

Query = Callable[["asyncpg.Connection", argparse.Namespace], Awaitable[object]]
POOLS = ("WIN", "PLC", "QNL", "EXA", "QPL", "TLA", "TRI")
BUCKET = re.compile(r"^(?P<n>[1-9][0-9]*)\s*(?P<unit>s|sec|m|min|h|hour|d|day)s?$")
UNITS = {"s": "seconds", "sec": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "hour": "hours"}


# --- formatting (pure) ---------------------------------------------------------------------------------------


def cell(value: object) -> str:
    """One table cell: ``-`` for None, yes/no, floats to 3 decimals (no trailing zeros), times in Korean time."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | Decimal):
        text = f"{value:.3f}".rstrip("0")
        text = text + "0" if text.endswith(".") else text
        return "0.0" if text == "-0.0" else text
    if isinstance(value, datetime):
        return value.astimezone(KST).isoformat(sep=" ") if value.tzinfo else value.isoformat(sep=" ")
    return str(value)


def render_table(rows: Sequence[object], columns: Sequence[str]) -> str:
    """Aligned columns under a header (numbers right-aligned); ``(no rows)`` under the header when empty."""
    cells = [[cell(getattr(row, name)) for name in columns] for row in rows]
    widths = [max([width(name), *(width(r[i]) for r in cells)]) for i, name in enumerate(columns)]
    numeric = [
        all(isinstance(getattr(row, name), int | float | Decimal | type(None)) for row in rows)
        and any(getattr(row, name) is not None and not isinstance(getattr(row, name), bool) for row in rows)
        for name in columns
    ]
    lines = ["  ".join(_pad(name, w, right) for name, w, right in zip(columns, widths, numeric, strict=True))]
    lines += ["  ".join(_pad(c, w, right) for c, w, right in zip(r, widths, numeric, strict=True)) for r in cells]
    if not rows:
        lines.append("(no rows)")
    return "\n".join(line.rstrip() for line in lines)


def width(text: str) -> int:
    """Terminal columns of a text: Hangul and other wide characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, columns: int, right: bool) -> str:
    fill = " " * (columns - width(text))
    return fill + text if right else text + fill


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_json(value: object) -> str:
    """One JSON document: dataclasses as objects, datetimes RFC 3339, dates ISO, decimals as numbers."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_INDENT_2).decode()


def render(value: object, fmt: str, hide: Sequence[str] = (), model: type | None = None) -> str:
    """A query result as table or JSON text (a race with its entries is two tables).

    The columns are the fields of ``model`` (else of the first row's type) minus ``hide``.
    """
    from sinks.queries import RaceDetail

    if fmt == "json":
        return to_json(value)
    if isinstance(value, RaceDetail):
        return render(value.race, fmt) + "\n\n" + render(list(value.entries), fmt, hide=("race_id",))
    rows = value if isinstance(value, list) else [value]
    model = model or (type(rows[0]) if rows else None)
    columns = [f.name for f in dataclasses.fields(model)] if model and dataclasses.is_dataclass(model) else []
    return render_table(rows, [c for c in columns if c not in hide]) if columns else "(no rows)"


# --- argument parsing ----------------------------------------------------------------------------------------


def parse_day(text: str) -> date:
    """YYYY-MM-DD, or a one-line :class:`~sinks.queries.QueryError`."""
    from sinks.queries import QueryError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"bad date {text!r}: expected YYYY-MM-DD") from None


def day_argument(text: str) -> date:
    """:func:`parse_day` as an argparse ``type`` (a bad date is a usage error, not a traceback)."""
    from sinks.queries import QueryError

    try:
        return parse_day(text)
    except QueryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_bucket(text: str) -> timedelta:
    """A bucket width like ``30s``, ``5m``, ``1h``, ``1d``."""
    from sinks.queries import QueryError

    match = BUCKET.match(text.strip().lower())
    bad = QueryError(f"bad bucket {text!r}: expected e.g. 30s, 5m, 1h, 1d")
    if match is None:
        raise bad
    try:
        return timedelta(**{UNITS.get(match["unit"], "days"): int(match["n"])})
    except OverflowError:
        raise bad from None


def _count(text: str) -> int:
    """A positive whole number (argparse type)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return int(text)


def _optional_day(text: str | None) -> date | None:
    return None if text is None else parse_day(text)


# --- the queries ---------------------------------------------------------------------------------------------


async def _race_scoped(conn: asyncpg.Connection, race_id: str) -> None:
    from sinks import queries as q

    await q.require_race(conn, race_id)


async def _races(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    return await q.races_by_date(conn, parse_day(args.date), race_type=args.type, track=args.track)


async def _race(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    detail = await q.race(conn, args.race_id)
    if detail is None:
        raise q.RaceNotFound(args.race_id)
    return detail


async def _entries(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    await _race_scoped(conn, args.race_id)
    return await q.entries(conn, args.race_id)


async def _results(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    await _race_scoped(conn, args.race_id)
    return await q.results(conn, args.race_id)


async def _odds(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    await _race_scoped(conn, args.race_id)
    if args.bucket:
        return await q.odds_history_bucketed(conn, args.race_id, parse_bucket(args.bucket), pool=args.pool)
    return await q.odds_history(conn, args.race_id, pool=args.pool)


async def _summary(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    await _race_scoped(conn, args.race_id)
    return await q.odds_summary(conn, args.race_id, pool=args.pool)


async def _day_summary(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    day = parse_day(args.date)
    return await q.odds_day_summary(conn, day, pools=args.pool, race_type=args.type, track=args.track)


async def _wide(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    await _race_scoped(conn, args.race_id)
    return await q.odds_wide(conn, args.race_id)


async def _stats(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    start, end = parse_day(args.from_), parse_day(args.to)
    if end < start:
        raise q.QueryError("--to is before --from")
    by: By = "participant" if args.by == "horse" else "jockey"
    return await q.entry_stats(
        conn, by, start, end, race_type=args.type, track=args.track, min_starts=args.min_starts, limit=args.limit
    )


async def _form(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    await _race_scoped(conn, args.race_id)
    return await q.race_form(conn, args.race_id, days=args.days)


async def _one(conn: asyncpg.Connection, args: argparse.Namespace) -> object:
    from sinks import queries as q

    start, end = _optional_day(args.from_), _optional_day(args.to)
    find = {"horse": q.horse_win_rate, "jockey": q.jockey_stats, "racer": q.racer_stats}[args.what]
    found = await find(conn, args.id, start, end)
    if found is None:
        raise q.QueryError(f"no starts found for {args.what} {args.id}")
    return found


T = TypeVar("T")


async def with_connection(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``work`` on one connection to the configured schema (closed after); a missing table is one clear error."""
    import asyncpg

    from runtime.db import connect
    from schemas.errors import DatabaseError

    conn = await connect(settings.database)
    try:
        return await work(conn)
    except asyncpg.UndefinedTableError as exc:
        schema = settings.database.schema_name
        raise DatabaseError(f"schema {schema} is missing a table ({exc}); run 'racelab migrate'") from exc
    finally:
        await conn.close()


async def _execute(settings: Settings, args: argparse.Namespace) -> object:
    query: Query = args.query
    return await with_connection(settings, lambda conn: query(conn, args))


def _handle(settings: Settings, args: argparse.Namespace) -> int:
    from sinks import queries as q

    result = asyncio.run(_execute(settings, args))
    model = getattr(q, args.model) if args.model else None
    print(render(result, args.format, hide=args.hide, model=model))  # noqa: T201
    return 0


async def _plot(settings: Settings, args: argparse.Namespace, fmt: Format) -> tuple[ChartData, bytes]:
    from racelab.charts import draw_odds, race_odds

    post_time, rows = await with_connection(settings, lambda conn: race_odds(conn, args.race_id, args.pool))
    return await asyncio.to_thread(draw_odds, args.race_id, post_time, rows, fmt, pool=args.pool, top=args.top)


def _handle_odds(settings: Settings, args: argparse.Namespace) -> int:
    """``query odds``: the rows as a table or JSON, or with ``--plot`` the chart written to a file."""
    from racelab.charts import format_of
    from sinks.queries import QueryError

    if args.plot is None:
        if args.top is not None:
            raise QueryError("--top chooses what the chart draws: use it with --plot FILE")
        return _handle(settings, args)
    if args.bucket:
        raise QueryError("--plot draws every snapshot: leave out --bucket")
    fmt = format_of(args.plot)
    data, image = asyncio.run(_plot(settings, args, fmt))
    args.plot.write_bytes(image)
    post = cell(data.post_time)[11:16] + " KST" if data.post_time else "unknown"
    print(  # noqa: T201
        f"{args.plot}: {data.race_id} {data.pool}, {len(data.series)} of {data.selections} selection(s), "
        f"{data.snapshots} live snapshot(s), "
        f"{sum(s.final is not None for s in data.series)} final dividend(s), post time {post}"
    )
    return 0


# --- wiring --------------------------------------------------------------------------------------------------


def add_query_parser(subparsers: Any) -> None:
    """Register ``query`` and its subcommands on the ``racelab`` parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--format", choices=["table", "json"], default="table", help="output format (default table)")
    query = subparsers.add_parser("query", help="query the stored races, results and odds")
    sub = query.add_subparsers(dest="what", required=True, metavar="WHAT")

    def command(
        name: str, text: str, run: Query, model: str | None = None, hide: Sequence[str] = ()
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text, parents=[common])
        parser.set_defaults(handler=_handle, query=run, model=model, hide=tuple(hide))
        return parser

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--type", choices=list(RACE_TYPES), help="only this race type")
        parser.add_argument("--track", help="only this track code (e.g. seoul, busan_cycle)")

    filters(races := command("races", "the races of a day", _races, "Race"))
    races.add_argument("date", help="race date YYYY-MM-DD")
    command("race", "a race and its entries", _race).add_argument("race_id")
    command("entries", "the entries of a race", _entries, "Entry", hide=("race_id",)).add_argument("race_id")
    command("results", "the results of a race", _results, "Result", hide=("race_id",)).add_argument("race_id")
    form = command("form", "entry stats of a race: each runner's and jockey's record before it", _form, "EntryForm")
    form.add_argument("race_id")
    form.add_argument("--days", type=_count, default=365, help="how far back (default 365 days)")
    odds = command("odds", "a race's odds history (raw, or bucketed with --bucket), or its chart (--plot)", _odds)
    odds.add_argument("race_id")
    odds.add_argument("--pool", choices=POOLS, help="only this pool (the chart: default WIN, else the first pool)")
    odds.add_argument("--bucket", help="bucket width, e.g. 30s, 5m, 1h: open/close/high/low per bucket")
    odds.add_argument(
        "--plot",
        type=Path,
        metavar="FILE",
        help="draw the chart into FILE (.png or .svg): each selection's odds over time, post time and final "
        "dividends marked",
    )
    odds.add_argument(
        "--top",
        type=_count,
        help="chart only the N shortest-priced selections (default: all of WIN/PLC, 10 of the other pools)",
    )
    odds.set_defaults(handler=_handle_odds)
    summary = command(
        "summary", "open/close/high/low/change per selection of a race", _summary, "OddsSummary", ("race_id",)
    )
    summary.add_argument("race_id")
    summary.add_argument("--pool", choices=POOLS, help="only this pool")
    filters(
        day := command("day-summary", "open/close/high/low/change per selection of a day", _day_summary, "OddsSummary")
    )
    day.add_argument("date", help="race date YYYY-MM-DD")
    day.add_argument("--pool", action="append", choices=POOLS, help="only this pool (repeatable; default all)")
    command(
        "wide", "a race's win/place odds per runner and time (the seed's wide view)", _wide, "WideOdds"
    ).add_argument("race_id")
    filters(stats := command("stats", "leading horses/riders or jockeys of a period", _stats, "ParticipantStats"))
    stats.add_argument("--by", choices=["horse", "jockey"], default="horse", help="horse (or rider) or jockey")
    stats.add_argument("--from", dest="from_", required=True, help="first day YYYY-MM-DD")
    stats.add_argument("--to", required=True, help="last day YYYY-MM-DD")
    stats.add_argument("--min-starts", type=_count, default=1, help="leave out those with fewer starts")
    stats.add_argument("--limit", type=_count, default=20, help="how many (default 20)")
    for what, text, ident in (
        ("horse", "a horse's (or rider's) starts and win rate", "participant id"),
        ("jockey", "a jockey's record", "jockey id"),
        ("racer", "a cycle or boat racer's starts, wins, places and win rate", "KSPO racer id"),
    ):
        one = command(what, text, _one)
        one.add_argument("id", help=ident)
        one.add_argument("--from", dest="from_", help="first day YYYY-MM-DD")
        one.add_argument("--to", help="last day YYYY-MM-DD")
