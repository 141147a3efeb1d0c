"""``racelab run producers``: every poller of the process, the recovery job, and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from producers.alerts import AlertNotifier
from producers.clock import Clock, SimulatorClock, SystemClock
from producers.collector import Collector
from producers.kra import KraClient
from producers.kspo import KspoClient
from producers.live_odds import LiveOddsClient
from producers.pollers import RaceDayPoller
from producers.publisher import RawPublisher
from producers.state import ProducerStore
from runtime.db import create_pool
from runtime.kafka import ensure_topics
from runtime.metrics import producer_metrics
from runtime.ops import OpsServer, broker_check, database_check, topics_check
from runtime.settings import Settings
from runtime.topic_keeper import catalogue_keeper
from schemas.errors import PipelineError
from schemas.topics import KINDS

log = logging.getLogger(__name__)


async def make_clock(settings: Settings) -> Clock:
    """The clock the producers follow (see ``producers.clock`` setting)."""
    mode = settings.producers.clock
    if mode == "auto":
        mode = "simulator" if settings.kra.base_url.startswith(settings.producers.simulator_url) else "system"
    if mode == "simulator":
        return await SimulatorClock.from_simulator(settings.producers.simulator_url)
    return SystemClock()


@dataclass
class Producers:
    """The running parts, for the service loop, the control API and tests."""

    collector: Collector
    poller: RaceDayPoller
    clock: Clock


@contextlib.asynccontextmanager
async def open_producers(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Producers]:
    """Connect everything the producers need; yields :class:`Producers`; closes it all on exit."""
    topics = settings.topics.catalogue()
    await ensure_topics(
        settings.broker,
        [topics.raw(k) for k in KINDS],
        settings.topics.partitions,
        settings.topics.replication_factor,
        configs=topics.configs(),
    )
    clock = clock or await make_clock(settings)
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(settings.database)
        stack.push_async_callback(pool.close)
        publisher = await stack.enter_async_context(RawPublisher(settings.broker, topics))
        metrics = producer_metrics()
        kra = await stack.enter_async_context(KraClient(settings.kra, now=clock.now, metrics=metrics))
        kspo = await stack.enter_async_context(KspoClient(settings.kspo, now=clock.now, metrics=metrics))
        live = None
        if settings.odds_feed.base_url:
            live = await stack.enter_async_context(LiveOddsClient(settings.odds_feed, now=clock.now, metrics=metrics))
        notifier = AlertNotifier(settings.alerts)
        stack.push_async_callback(notifier.aclose)
        store = ProducerStore(pool, settings.database)
        metrics.seed(await store.last_successes())
        collector = Collector({"kra": kra, "kspo": kspo}, publisher, store, notifier, live, metrics)
        poller = RaceDayPoller(settings.producers, collector, store, clock, live is not None)
        yield Producers(collector, poller, clock)


async def _every(seconds: float, what: str, action: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await action()
        except PipelineError as exc:
            if not exc.retriable:
                raise
            log.warning("%s: %s; trying again next round", what, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def run_producers(settings: Settings, stop: asyncio.Event) -> None:
    """Poll until ``stop`` is set; serves /metrics, /healthz and /readyz meanwhile."""
    keeper = catalogue_keeper(settings)
    raw = [settings.topics.catalogue().raw(k) for k in KINDS]
    checks = [broker_check(settings), topics_check(keeper, raw, settings.ops.check_timeout_s), database_check(settings)]
    ops = OpsServer(settings.ops.host, settings.ops.producers_port, checks)
    if settings.ops.enabled:
        await ops.start()
    keeping = asyncio.create_task(keeper.run())
    try:
        await _produce(settings, stop)
    finally:
        keeping.cancel()
        await ops.stop()


async def _produce(settings: Settings, stop: asyncio.Event) -> None:
    async with open_producers(settings) as parts:
        log.info(
            "producers running (clock %s, race types %s)",
            type(parts.clock).__name__,
            ",".join(settings.producers.race_types),
        )

        async def recover() -> None:
            resolved, failing = await parts.collector.recover(max_retries=settings.producers.recovery_max_retries)
            if resolved or failing:
                log.info("recovery: %d failures resolved, %d still failing", resolved, failing)

        await asyncio.gather(
            _every(settings.producers.tick_s, "poller", parts.poller.tick, stop),
            _every(settings.producers.recovery_interval_s, "recovery", recover, stop),
        )
