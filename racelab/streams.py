"""What every Faust worker of the pipeline shares (processors, sink): app settings, headers, the hard stop."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, NoReturn, cast

import faust

from racelab.settings import Settings


def faust_app(settings: Settings, role: str, *, web_enabled: bool, web_port: int, buffer: int) -> faust.App:
    """A Faust app for one role (its consumer group is ``<prefix>-<role>``); raw bytes only, no tables."""
    broker = settings.broker
    return faust.App(
        f"{settings.topics.prefix}-{role}",
        broker=f"kafka://{broker.bootstrap_servers}",
        store="memory://",
        autodiscover=False,
        web_enabled=web_enabled,
        web_port=web_port,
        web_host="127.0.0.1",
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        broker_session_timeout=broker.session_timeout_ms / 1000,
        broker_rebalance_timeout=broker.rebalance_timeout_ms / 1000,
        broker_heartbeat_interval=max(0.5, broker.session_timeout_ms / 3000),
        broker_commit_interval=1.0,
        broker_max_poll_records=500,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_wait_empty=True,
        stream_buffer_maxsize=max(buffer, 4096),
    )


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
