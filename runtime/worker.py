"""What every Faust worker of the pipeline shares (processors, sink, archiver): app settings, headers, the batch
loop and the hard stop."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

import faust

from runtime.commits import CommitWatch
from runtime.consumer import transport_class

if TYPE_CHECKING:
    from runtime.ops import Check
from runtime.settings import Settings

log = logging.getLogger(__name__)
SHUTDOWN_LIMIT_S = 30
EXIT_STUCK_SHUTDOWN = 75


def faust_app(settings: Settings, role: str, *, buffer: int) -> faust.App:
    """A Faust app for one role (its consumer group is ``<prefix>-<role>``); raw bytes only, no tables.

    Faust's own web server stays off: metrics and health are served by :mod:`runtime.ops`.
    """
    broker = settings.broker
    (settings.home / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.topics.group(role),
        broker=f"kafka://{broker.bootstrap_servers}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        # Faust keeps a folder per app (empty here: memory store, no tables); under RACELAB_HOME, not the cwd.
        datadir=str(settings.home / "faust" / "{conf.name}"),
        topic_partitions=settings.topics.partitions,
        # No leader election: no table or timer of the pipeline needs one, and its topic
        # (``<group>-__assignor-__leader``) is not in the catalogue: a broker that came back empty lacked it, and
        # the group's consumer asked for it again and again (an error logged about 20 times a second).
        topic_disable_leader=True,
        topic_replication_factor=settings.topics.replication_factor,
        broker_session_timeout=broker.session_timeout_ms / 1000,
        broker_rebalance_timeout=broker.rebalance_timeout_ms / 1000,
        broker_heartbeat_interval=max(0.5, broker.session_timeout_ms / 3000),
        broker_commit_interval=1.0,
        broker_max_poll_records=500,
        consumer_auto_offset_reset="earliest",
        consumer_metadata_max_age_ms=broker.metadata_max_age_ms,
        producer_acks=-1,
        stream_wait_empty=True,
        stream_buffer_maxsize=max(buffer, 4096),
    )
    app.transport = transport_class(broker.fetch_max_wait_ms, CommitWatch())(app.conf.broker_consumer, app)
    app.on_before_shutdown.connect(_shutdown_deadline)
    return app


async def _shutdown_deadline(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """A stop that has not finished after SHUTDOWN_LIMIT_S ends the process (a hang must not keep it alive).

    Nothing is lost by it: offsets are committed only after a batch is durable, so whatever was in flight is
    delivered again to the next worker.
    """

    def give_up() -> None:
        logging.getLogger(__name__).critical(
            "worker did not stop within %ds; exiting now (uncommitted batches are redelivered)", SHUTDOWN_LIMIT_S
        )
        stop_now(EXIT_STUCK_SHUTDOWN)

    timer = threading.Timer(SHUTDOWN_LIMIT_S, give_up)
    timer.daemon = True
    timer.start()


def run_faust_worker(settings: Settings, build: Callable[[Settings], faust.App]) -> None:
    """Create the topics, build the app and run a Faust worker until SIGINT/SIGTERM (exits the process).

    Faust replaces the root logger's handlers when it starts; the secret mask goes back on the new ones.
    """
    import asyncio
    import gc

    from runtime.kafka import ensure_topics
    from runtime.logs import guard_handlers

    t = settings.topics
    catalogue = t.catalogue()
    asyncio.run(
        ensure_topics(
            settings.broker, catalogue.all_names(), t.partitions, t.replication_factor, configs=catalogue.configs()
        )
    )
    asyncio.set_event_loop(asyncio.new_event_loop())  # asyncio.run closed its loop; Faust runs on this one
    # Batches create many short-lived objects; collecting the young generation less often is measurably faster.
    gc.set_threshold(50_000, 20, 20)

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            guard_handlers(settings)

    level = settings.log_level.lower().replace("warning", "warn")
    Worker(build(settings), loglevel=level, quiet=True, redirect_stdouts=False).execute_from_commandline()


def header_list(headers: object) -> list[tuple[str, bytes]]:
    """Kafka headers as a list of pairs, whether Faust hands over a list or a mapping."""
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(cast(Any, headers))


def stop_now(code: int) -> NoReturn:
    """Leave at once, without acking the batch in hand (Faust would commit it on any orderly stop)."""
    logging.shutdown()
    os._exit(code)


EXIT_BUG = 70


async def each_batch(
    stream: Any, size: int, within_s: float, handle: Callable[[list[Any]], Awaitable[None]], role: str
) -> None:
    """Hand every batch of a stream to ``handle``; the batch is acked only when ``handle`` returned.

    ``take_events`` acks a batch when the loop body ends, even by an exception, so nothing may leave the body: a
    stop in the middle of a batch (cancellation) or an unexpected error ends the process at once, before the ack,
    and the next worker reads the batch again.
    """
    events: AsyncIterator[list[Any]] = stream.take_events(size, within=within_s)
    async for chunk in events:
        try:
            await handle(chunk)
        except asyncio.CancelledError:
            log.warning("%s: stopping during a batch of %d messages; it is not acknowledged", role, len(chunk))
            stop_now(0)
        except BaseException:
            log.critical("%s: unexpected error; stopping without acknowledging the batch", role, exc_info=True)
            stop_now(EXIT_BUG)


def attach_ops(
    app: faust.App,
    settings: Settings,
    role: str,
    topics: list[str],
    *,
    database: bool,
    extra_checks: Sequence[Check] = (),
) -> None:
    """Serve /metrics, /healthz and /readyz from the worker's loop, measure its group's lag and keep the catalogue's
    topics on the broker (:class:`runtime.topic_keeper.TopicKeeper`) meanwhile.

    Readiness: the broker (and the database, for a worker that writes to it) answers; its topics are there with the
    catalogue's partition counts; its commits return and succeed; it has partitions whenever its group has work;
    and the group made progress within ``ops.stuck_after_s`` whenever messages were waiting.
    """
    from runtime.lag import LagMonitor
    from runtime.metrics import consumer_metrics
    from runtime.ops import OpsServer, broker_check, commit_check, database_check, progress_check, topics_check
    from runtime.topic_keeper import catalogue_keeper

    ops = settings.ops
    keeper = catalogue_keeper(settings)
    commits: CommitWatch = cast(Any, app.transport).commits
    consumed = set(topics)

    def recreated(names: list[str]) -> None:
        mine = sorted(consumed & set(names))
        if mine:  # the rebalance also drops Faust's own offset bookkeeping of the old topics
            log.warning("rejoining group %s: its topics %s were recreated", app.conf.id, ", ".join(mine))
            commits.request_rejoin()

    keeper.on_recreated = recreated  # recreated by this process
    if not ops.enabled:
        app.task(keeper.run)
        return
    monitor = LagMonitor(settings.broker, app.conf.id, topics, consumer_metrics(), ops.lag_interval_s)
    # Recreated by another process: the group may have rejoined while the topic was missing and left it unassigned.
    monitor.on_lost = recreated
    checks = [
        broker_check(settings),
        topics_check(keeper, topics, ops.check_timeout_s, commits),
        commit_check(commits, monitor, ops.stuck_after_s),
        progress_check(monitor, ops.stuck_after_s),
        *extra_checks,
    ]
    if database:
        checks.insert(1, database_check(settings))
    server = OpsServer(ops.host, ops.port(role), checks)

    async def serve() -> None:
        await server.start()
        await asyncio.gather(monitor.run(), keeper.run())

    async def close(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await monitor.close()
        await server.stop()

    app.task(serve)
    app.on_before_shutdown.connect(close)
