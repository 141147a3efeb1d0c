"""``racelab raw show --race RACE_ID | --poll-id ID [--body]``: the archived raw responses behind a race or a poll.

A table (fetch time in Korean time, topic/partition/offset, key, endpoint, parameters, poll id, HTTP status, size);
``--body`` prints each response's headers and body as received instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from racelab.query_cli import cell, render_table, with_connection
from runtime.settings import Settings


async def _fetch(settings: Settings, args: argparse.Namespace) -> list[Any]:
    from sinks import queries as q

    if args.race:
        return await with_connection(settings, lambda conn: q.raw_for_race(conn, args.race))
    return await with_connection(settings, lambda conn: q.raw_for_poll(conn, args.poll_id))


def _handle(settings: Settings, args: argparse.Namespace) -> int:
    found = asyncio.run(_fetch(settings, args))
    if args.body:
        for r in found:
            print(f"== {r.topic}/{r.msg_partition}@{r.msg_offset}  {cell(r.fetched_at)}  {r.size_bytes} bytes")  # noqa: T201
            for name, value in r.headers.items():
                print(f"{name}: {value}")  # noqa: T201
            print()  # noqa: T201
            print(r.body.decode("utf-8", "replace"))  # noqa: T201
    else:
        columns = ("fetched_at", "topic", "msg_offset", "message_key", "endpoint", "params", "poll_id", "size_bytes")
        print(render_table(found, columns))  # noqa: T201
    what = f"race {args.race}" if args.race else f"poll {args.poll_id}"
    print(f"{len(found)} archived response(s) of {what}", file=sys.stderr)  # noqa: T201
    return 0


def add_raw_parser(subparsers: Any) -> None:
    """Register ``raw show`` on the ``racelab`` parser's subparsers."""
    raw = subparsers.add_parser("raw", help="the archived raw responses (raw_archive)")
    sub = raw.add_subparsers(dest="raw_command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="the raw responses behind a race or a poll, with their headers")
    which = show.add_mutually_exclusive_group(required=True)
    which.add_argument("--race", help="race id, e.g. horse-seoul-3-20241214 (its own calls and its day's)")
    which.add_argument("--poll-id", help="the poll_id header of a call")
    show.add_argument("--body", action="store_true", help="print the headers and bodies as received")
    show.set_defaults(handler=_handle)
