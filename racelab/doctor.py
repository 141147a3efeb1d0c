"""``racelab doctor [--json]``: what the configured service key can reach, and whether the rest is in place.

It calls every data.go.kr endpoint the configured race types use once (:mod:`producers.probe`: the project's
clients, so the rate limit applies and the key travels only in the query), checks the broker, the database, its
TimescaleDB license and Prometheus (:mod:`racelab.doctor_infra`), and prints a table with what to do about each
failure (:mod:`racelab.doctor_report`), or the same as JSON. Exit code 0 when everything the configured race types
need works, 1 otherwise. The service key is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from schemas.timezones import KST

if TYPE_CHECKING:
    from racelab.doctor_report import Report
    from runtime.settings import Settings


async def diagnose(settings: Settings) -> Report:
    """Probe the endpoints and check the infrastructure at the same time."""
    from producers.probe import probe_endpoints, race_types_in_use
    from racelab.doctor_infra import check_infrastructure
    from racelab.doctor_report import Report
    from runtime.settings import redact_url

    race_types = race_types_in_use(settings.producers)
    probes, infra = await asyncio.gather(
        probe_endpoints(settings, race_types, datetime.now(KST).date()), check_infrastructure(settings)
    )
    used = {p.endpoint.source for p in probes}
    asked = {"kra": settings.kra.base_url, "kspo": settings.kspo.base_url}
    bases: dict[str, str] = {source: redact_url(url) for source, url in asked.items() if source in used}
    return Report(race_types, probes, infra, bases)


def _handle(settings: Settings, args: argparse.Namespace) -> int:
    report = asyncio.run(diagnose(settings))
    if args.json:
        sys.stdout.buffer.write(report.to_json() + b"\n")
    else:
        print(report.to_text())  # noqa: T201 - the command's output
    return report.exit_code()


def add_doctor_parser(subparsers: Any) -> None:
    """Register ``doctor`` on the ``racelab`` parser's subparsers."""
    parser = subparsers.add_parser(
        "doctor",
        help="call every data.go.kr endpoint once and check broker, database and Prometheus (exit 1 on a failure)",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as one JSON document")
    parser.set_defaults(handler=_handle)
