"""``racelab audit [--from DAY] [--to DAY]``: the data-quality rules of :mod:`sinks.audit` on the stored races.

Prints each rule's count as it runs (stderr), then a table of the violations (rule, race id, what was found) and
exits 1 when there is any, 0 when the data is clean.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from racelab.query_cli import day_argument, render_table, with_connection
from runtime.settings import Settings

if TYPE_CHECKING:
    import asyncpg


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.audit import Rule, Violation, audit

    def progress(rule: Rule, found: int) -> None:
        print(f"  {rule.name:<17} {found:>6}  {rule.description}", file=sys.stderr)  # noqa: T201

    async def check(conn: asyncpg.Connection) -> list[Violation] | None:
        start, end = args.from_, args.to
        if start is None or end is None:
            first, last = await conn.fetchrow("SELECT min(race_date), max(race_date) FROM races") or (None, None)
            if first is None:
                return None
            start, end = start or first, end or last
        print(f"auditing races from {start} to {end}", file=sys.stderr)  # noqa: T201
        return await audit(conn, start, end, progress)

    violations = await with_connection(settings, check)
    if violations is None:
        print("no races stored: nothing to audit", file=sys.stderr)  # noqa: T201
        return 0
    if violations:
        print(render_table(violations, ("rule", "race_id", "detail")))  # noqa: T201
    print(f"{len(violations)} violation(s)", file=sys.stderr)  # noqa: T201
    return 1 if violations else 0


def _handle(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))


def add_audit_parser(subparsers: Any) -> None:
    """Register ``audit`` on the ``racelab`` parser's subparsers."""
    parser = subparsers.add_parser(
        "audit", help="check the stored data against the data-quality rules (exit 1 on any violation)"
    )
    parser.add_argument("--from", dest="from_", type=day_argument, help="first race date (default: the first stored)")
    parser.add_argument("--to", type=day_argument, help="last race date (default: the last stored)")
    parser.set_defaults(handler=_handle)
