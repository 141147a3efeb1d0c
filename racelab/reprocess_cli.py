"""``racelab reprocess --from DAY --to DAY [--kinds K ...] [--tracks T ...] [--dry-run] [--restart]``.

Progress on stderr (a bar with rate and ETA); the report on stdout: per table the rows inserted, per column the
rows changed with a few examples (key: stored -> new), and the responses the current normalizers reject. Ctrl+C
(or a crash) keeps every page that landed: the same command resumes after the last one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from racelab.query_cli import day_argument
from runtime.settings import Settings
from schemas.topics import KINDS
from schemas.tracks import BY_CODE


def _names(known: tuple[str, ...] | list[str], what: str) -> Any:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown)} (one of {', '.join(known)})")
        return names

    return parse


def _handle(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    from racelab.reprocess import PAGE_RESPONSES, describe, reprocess
    from schemas.errors import DatabaseError
    from sinks.reprocess import Selection

    if args.to < args.from_:
        print(f"racelab: error: --to {args.to} is before --from {args.from_}", file=sys.stderr)  # noqa: T201
        return 2
    kinds = tuple(sorted({k for group in args.kinds or [] for k in group}))
    tracks = tuple(sorted({t for group in args.tracks or [] for t in group}))
    selection = Selection(args.from_, args.to, kinds, tracks)
    what = f"{', '.join(kinds) or 'every kind'} fetched {args.from_} to {args.to} (Korean days)"
    if tracks:
        what += f", records of {', '.join(tracks)}"
    print(f"reprocessing {what}{' (dry run)' if args.dry_run else ''}", file=sys.stderr)  # noqa: T201
    try:
        run = asyncio.run(
            reprocess(
                settings,
                selection,
                dry_run=args.dry_run,
                restart=args.restart,
                page_responses=args.page_size or PAGE_RESPONSES,
            )
        )
    except asyncpg.UndefinedTableError as exc:
        schema = settings.database.schema_name
        raise DatabaseError(f"schema {schema} is missing a table ({exc}); run 'racelab migrate'") from exc
    except KeyboardInterrupt:
        if args.dry_run:
            print("\nracelab: interrupted; a dry run writes nothing", file=sys.stderr)  # noqa: T201
        else:
            print(  # noqa: T201
                "\nracelab: interrupted; every page written so far is kept: run the same command to resume",
                file=sys.stderr,
            )
        return 130
    if run.total == 0:
        print("no archived response in that selection", file=sys.stderr)  # noqa: T201
    for line in describe(run, args.dry_run):
        print(line)  # noqa: T201
    return 0


def add_reprocess_parser(subparsers: Any) -> None:
    """Register ``reprocess`` on the ``racelab`` parser's subparsers."""
    parser = subparsers.add_parser(
        "reprocess",
        help="re-normalize archived raw responses with today's normalizers and bring the tables up to date",
        description=(
            "Re-normalize the raw archive's responses fetched on the given Korean days with the current normalizers "
            "and write them straight into the tables by the sink's rules: unchanged rows are not rewritten, changed "
            "values are updated, nothing is duplicated. Resumable: the same command continues an interrupted run."
        ),
    )
    parser.add_argument(
        "--from", dest="from_", metavar="DAY", type=day_argument, required=True, help="first fetch day, YYYY-MM-DD"
    )
    parser.add_argument("--to", metavar="DAY", type=day_argument, required=True, help="last fetch day (inclusive)")
    parser.add_argument(
        "--kinds",
        nargs="+",
        metavar="KIND",
        type=_names(KINDS, "kind"),
        help=f"raw kinds (default all: {', '.join(KINDS)})",
    )
    parser.add_argument(
        "--tracks",
        nargs="+",
        metavar="TRACK",
        type=_names(list(BY_CODE), "track"),
        help="keep only these tracks' records",
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    parser.add_argument("--restart", action="store_true", help="start over instead of resuming an unfinished run")
    parser.add_argument("--page-size", type=int, help="archived responses per transaction (default 100)")
    parser.set_defaults(handler=_handle)
