"""The ``racelab`` command: one entry point, one settings object for every subcommand.

Errors of the pipeline (:class:`schemas.errors.PipelineError`) end the command with one line on stderr and
exit code 2; a bad setting ends it with the validation message. Tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, get_args

from pydantic import ValidationError

from racelab.audit_cli import add_audit_parser
from racelab.doctor import add_doctor_parser
from racelab.query_cli import add_query_parser
from racelab.raw_cli import add_raw_parser
from racelab.reprocess_cli import add_reprocess_parser
from runtime.logs import setup_logging
from runtime.settings import WORKER_ROLES, Settings, load_settings
from schemas.dlq import Stage
from schemas.errors import PipelineError
from schemas.topics import KINDS

if TYPE_CHECKING:
    from processors.replay import Filters

log = logging.getLogger("racelab")
T = TypeVar("T")
Handler = Callable[[Settings, argparse.Namespace], int]


def _stack_up(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.stack.manager import LocalStack

    stack = LocalStack(settings.stack, settings.home)
    changed = stack.up()
    for component in stack.status():
        print(f"{component.name:<12} {component.state:<7} {component.endpoint}")
    print(f"endpoints written to {stack.env_file}" if changed else "stack already up; nothing to do")
    return 0


def _stack_status(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.stack.manager import LocalStack

    statuses = LocalStack(settings.stack, settings.home).status()
    for component in statuses:
        print(f"{component.name:<12} {component.state:<7} {component.endpoint:<22} {component.detail}")
    return 0 if all(c.running for c in statuses) else 1


def _stack_down(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.stack.manager import LocalStack

    LocalStack(settings.stack, settings.home).down(purge=args.purge)
    print("stack stopped" + (" and its data deleted" if args.purge else ""))
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.migrate import migrate

    applied = asyncio.run(migrate(settings.database))
    if applied:
        print(f"applied {len(applied)} migration(s): " + ", ".join(m.path.name for m in applied))
    else:
        print("database schema is up to date; nothing to do")
    return 0


def _check(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.health import check_all

    results = asyncio.run(check_all(settings))
    for name, ok, detail in results:
        print(f"{name:<9} {'ok' if ok else 'FAIL':<5} {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def _simulator(settings: Settings, args: argparse.Namespace) -> int:
    from producers.simulator.run import run_simulator

    asyncio.run(run_simulator(settings.simulator, args))
    return 0


async def _until_signalled(run: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run with an event that SIGINT/SIGTERM set (the run finishes its current step and returns)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run(stop)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    if args.component == "all":
        from racelab.supervisor import child_env, run_all

        roles = ["archiver", "sink", "processors", "producers"]  # stopped in reverse: feeders first
        if settings.api.ingestion_key.get_secret_value():
            roles.append("api")
        else:
            logging.getLogger(__name__).warning("no RACELAB_API__INGESTION_KEY: running without the control API")
        return run_all(roles, child_env({}))
    if args.component == "processors":
        from processors.app import run_worker

        run_worker(settings)  # a Faust worker: exits the process when it stops
    elif args.component == "sink":
        from sinks.agent import run_sink

        run_sink(settings)  # a Faust worker: exits the process when it stops
    elif args.component == "archiver":
        from sinks.archiver import run_archiver

        run_archiver(settings)  # a Faust worker: exits the process when it stops
    elif args.component == "api":
        from racelab.api.server import run_api

        asyncio.run(_until_signalled(lambda stop: run_api(settings, stop)))
    else:
        from producers.service import run_producers

        asyncio.run(_until_signalled(lambda stop: run_producers(settings, stop)))
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from racelab.demo import parse_until, run_demo

    return run_demo(settings, args.speed, parse_until(args.until))


def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    from producers.backfill import Backfill
    from producers.service import open_producers
    from schemas.errors import ConfigurationError

    names = args.kinds.split(",") if args.kinds else list(KINDS)
    unknown = set(names) - set(KINDS)
    if unknown or args.to < args.from_:
        raise ConfigurationError(f"unknown kinds {sorted(unknown)}" if unknown else "--to is before --from")
    kinds = [k for k in KINDS if k in names]

    async def run(stop: asyncio.Event) -> int:
        async with open_producers(settings) as parts:
            tracks = parts.poller.tracks(tracks=args.tracks.split(",") if args.tracks else None)
            if not tracks:
                raise ConfigurationError("no track matches --tracks")
            job = Backfill(parts.collector, parts.collector.store, tracks, kinds)
            summary = await job.run(args.from_, args.to, stop)
        print("\n".join(summary.lines()))
        return 0 if summary.stopped is None else 3

    return asyncio.run(_until_signalled(run))


def _normalize(settings: Settings, args: argparse.Namespace) -> int:
    from processors.offline import normalize_file

    endpoint, records = normalize_file(args.kind, args.file, args.endpoint, args.key or "", params=dict(args.param))
    for topic, items in records.by_topic().items():
        for record in items:
            print(f'{{"topic": "{settings.topics.prefix}.{topic}", "record": {record.model_dump_json()}}}')
    print(f"{args.file}: {records.count()} record(s) from {endpoint}", file=sys.stderr)
    return 0


def _filters(args: argparse.Namespace) -> Filters:
    from processors.replay import Filters

    return Filters(
        kinds=args.kind or KINDS,
        stage=args.stage,
        exception_class=args.exception_class,
        since=args.since,
        until=args.until,
    )


def _dlq_list(settings: Settings, args: argparse.Namespace) -> int:
    from processors.replay import DlqSummary, read_dead_letters
    from schemas.topics import TopicCatalogue

    filters = _filters(args)
    letters = asyncio.run(read_dead_letters(settings.broker, TopicCatalogue(settings.topics.prefix), filters))
    summary = DlqSummary.of(letters)
    print(f"{'topic':<32} {'stage':<10} {'exception':<22} {'count':>7}  first failed              last failed")
    for topic, stage, cls_name, count, first, last in summary.rows:
        print(f"{topic:<32} {stage:<10} {cls_name:<22} {count:>7}  {first or '-'!s:<25} {last or '-'!s}")
    print(f"{len(letters)} dead letter(s)")
    return 0


def _dlq_replay(settings: Settings, args: argparse.Namespace) -> int:
    from processors.replay import replay
    from schemas.topics import TopicCatalogue

    filters = _filters(args)
    result = asyncio.run(
        replay(settings.broker, TopicCatalogue(settings.topics.prefix), filters, dry_run=args.dry_run, rate=args.rate)
    )
    verb = "would replay" if args.dry_run else "replayed"
    for topic, count in sorted(result.by_topic.items()):
        print(f"{verb} {count} to {topic}")
    print(
        f"{result.selected} selected, {verb} {sum(result.by_topic.values())}"
        + (f", {result.skipped_no_origin} without an original topic (skipped)" if result.skipped_no_origin else "")
    )
    return 0


def _api_openapi(settings: Settings, args: argparse.Namespace) -> int:
    from racelab.api.server import write_openapi

    write_openapi(args.file)
    print(args.file)
    return 0


def _schemas_export(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.export import export

    for path in export(args.directory, settings.topics.prefix):
        print(path)
    return 0


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2024-12-14T10:00+09:00")
    return moment


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="racelab", description="RaceLab ingest: Korean race data pipeline")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_stack(sub)
    sub.add_parser("migrate", help="apply pending database migrations; idempotent").set_defaults(handler=_migrate)
    sub.add_parser("check", help="check that the broker and the database answer").set_defaults(handler=_check)
    _add_simulator(sub)
    _add_backfill(sub)
    _add_normalize(sub)
    _add_dlq(sub)
    _add_contracts(sub)
    _add_demo_and_run(sub)
    add_query_parser(sub)
    add_audit_parser(sub)
    add_raw_parser(sub)
    add_reprocess_parser(sub)
    add_doctor_parser(sub)
    return parser


def _add_stack(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stack = sub.add_parser("stack", help="the local no-Docker stack (broker + TimescaleDB)")
    stack_sub = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    stack_sub.add_parser("up", help="build/start what is missing; idempotent").set_defaults(handler=_stack_up)
    stack_sub.add_parser("status", help="show each component; exit 1 if any is down").set_defaults(
        handler=_stack_status
    )
    down = stack_sub.add_parser("down", help="stop the stack")
    down.add_argument("--purge", action="store_true", help="also delete the database files")
    down.set_defaults(handler=_stack_down)


def _add_simulator(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulator", help="serve simulated KRA/KSPO APIs and live odds on loopback")
    sim.add_argument("--host", help="listen address (default from settings: 127.0.0.1)")
    sim.add_argument("--port", type=int, help="port (default 8089; 0 = free port)")
    sim.add_argument("--seed", type=int, help="world seed (same seed, same data)")
    sim.add_argument("--every-day", action="store_true", default=None, help="every track races every day")
    sim.add_argument("--speed", type=float, help="simulated seconds per real second (e.g. 60)")
    sim.add_argument("--clock-start", help="simulated start, ISO with offset (2024-12-14T10:00+09:00)")
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ENDPOINT:FAULT[:RATE[:TIMES]]",
        help="inject a fault, e.g. 'API214_1/*:http_503:0.3' (repeatable)",
    )
    sim.set_defaults(handler=_simulator)


def _add_backfill(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backfill = sub.add_parser("backfill", help="collect history day by day (resumable)")
    backfill.add_argument("--from", dest="from_", required=True, type=date.fromisoformat, help="first day YYYY-MM-DD")
    backfill.add_argument("--to", required=True, type=date.fromisoformat, help="last day YYYY-MM-DD")
    backfill.add_argument("--kinds", help="comma-separated: schedules,entries,odds,results (default all)")
    backfill.add_argument("--tracks", help="comma-separated track codes (default: every track)")
    backfill.set_defaults(handler=_backfill)


def _add_normalize(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    norm = sub.add_parser("normalize", help="normalize a saved API response offline (JSON lines on stdout)")
    norm.add_argument("kind", choices=list(KINDS))
    norm.add_argument("file", type=Path)
    norm.add_argument("--endpoint", help="e.g. API214_1/RaceDetailResult_1 (guessed from the rows when omitted)")
    norm.add_argument("--key", help="message key (boat responses carry no date: kspo:misari:YYYYMMDD)")
    norm.add_argument(
        "--param",
        action="append",
        default=[],
        type=_param,
        metavar="NAME=VALUE",
        help="a parameter of the request (repeatable; a boat card: --param day_tcnt=1)",
    )
    norm.set_defaults(handler=_normalize)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _add_dlq(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="dead-letter topics: list and replay")
    dlq_sub = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("list", _dlq_list, "counts by topic, stage, exception class and time"),
        ("replay", _dlq_replay, "re-publish dead letters to their original topics"),
    ):
        cmd = dlq_sub.add_parser(name, help=text)
        cmd.add_argument(
            "--kind", action="append", choices=list(KINDS), help="raw topic kind (repeatable; default all)"
        )
        cmd.add_argument("--stage", choices=list(get_args(Stage)))
        cmd.add_argument("--exception-class", help="e.g. DecodeError")
        cmd.add_argument("--since", type=_moment, help="first failed at or after (ISO with offset)")
        cmd.add_argument("--until", type=_moment, help="first failed before (ISO with offset)")
        if name == "replay":
            cmd.add_argument("--dry-run", action="store_true", help="only count what would be replayed")
            cmd.add_argument("--rate", type=float, help="messages per second (default: as fast as possible)")
        cmd.set_defaults(handler=handler)


def _add_contracts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = sub.add_parser("schemas", help="contracts of the normalized topics")
    schemas_sub = schemas.add_subparsers(dest="action", required=True, metavar="ACTION")
    exp = schemas_sub.add_parser("export", help="write JSON Schema for every normalized topic")
    exp.add_argument("directory", type=Path)
    exp.set_defaults(handler=_schemas_export)

    api = sub.add_parser("api", help="the control API's contract")
    api_sub = api.add_subparsers(dest="action", required=True, metavar="ACTION")
    openapi = api_sub.add_parser("openapi", help="write the OpenAPI document (JSON) to FILE")
    openapi.add_argument("file", type=Path)
    openapi.set_defaults(handler=_api_openapi)


def _add_demo_and_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="the whole pipeline on a simulated race day, with live progress")
    demo.add_argument("--speed", type=float, default=200.0, help="simulated seconds per real second (default 200)")
    demo.add_argument("--until", default="19:45", help="end of the simulated day, Korean time (default 19:45)")
    demo.set_defaults(handler=_demo)

    run = sub.add_parser("run", help="run a long-lived part of the pipeline until Ctrl+C / SIGTERM")
    run.add_argument(
        "component",
        choices=[*WORKER_ROLES, "api", "all"],
        help="producers: every poller and the recovery job; processors: one normalizing worker; "
        "sink: one TimescaleDB writer; archiver: the raw archive writer; api: the control API (needs "
        "RACELAB_API__INGESTION_KEY); "
        "all: each of them as a child process",
    )
    run.set_defaults(handler=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``racelab`` script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"racelab: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    handler: Handler = args.handler
    try:
        return handler(settings, args)
    except PipelineError as exc:
        print(f"racelab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("racelab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
