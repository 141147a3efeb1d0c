"""Run the simulator until interrupted (``racelab simulator``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from producers.simulator.approvals import KeyApprovals
from producers.simulator.clock import SimClock
from producers.simulator.faults import FaultInjector, FaultRule
from producers.simulator.server import Simulator, parse_start, serve
from producers.simulator.world import World
from runtime.settings import SimulatorSettings
from schemas.errors import ConfigurationError

log = logging.getLogger(__name__)


def simulator_from(settings: SimulatorSettings, args: argparse.Namespace | None = None) -> tuple[Simulator, str, int]:
    """A simulator from the settings, with command-line flags (if any) taking precedence."""
    opts = vars(args) if args is not None else {}

    def pick(name: str, default: object) -> object:
        value = opts.get(name)
        return default if value is None else value

    try:
        start = parse_start(opts["clock_start"]) if opts.get("clock_start") else settings.clock_start
        rules = [FaultRule.parse(text) for text in opts.get("fault", [])]
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    seed = int(pick("seed", settings.seed))  # type: ignore[call-overload]
    key = settings.service_key.get_secret_value() if settings.service_key else None
    sim = Simulator(
        World(seed=seed, every_day=bool(pick("every_day", settings.every_day))),
        SimClock(start=start, speed=float(pick("speed", settings.speed))),  # type: ignore[arg-type]
        FaultInjector(rules, seed=seed),
        service_key=key,
        approvals=KeyApprovals(settings.unapproved, settings.quota_exhausted),
    )
    return sim, str(pick("host", settings.host)), int(pick("port", settings.port))  # type: ignore[call-overload]


async def run_simulator(settings: SimulatorSettings, args: argparse.Namespace | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    sim, host, port = simulator_from(settings, args)
    runner = await serve(sim, host, port)
    address = runner.addresses[0]
    banner = (
        f"simulator listening on http://{address[0]}:{address[1]}  (KRA: /B551015, KSPO: /B551014, "
        f"live odds: /liveOdds; clock {sim.clock.now():%Y-%m-%d %H:%M} UTC x{sim.clock.speed:g})"
    )
    print(banner, flush=True)  # noqa: T201 - the command's own output
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
