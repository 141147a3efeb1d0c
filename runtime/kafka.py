"""Broker access shared by producers, processors and tooling: admin client, topic creation, reachability."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError, for_code

from runtime.settings import BrokerSettings
from schemas.errors import BrokerError

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def durable_producer(settings: BrokerSettings, role: str, **overrides: Any) -> AIOKafkaProducer:
    """The producer every part of the pipeline uses: acks=all, idempotent where the broker allows it.

    Create it inside the running event loop (aiokafka requires one).
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.client_id}-{role}",
        "acks": "all",
        "enable_idempotence": settings.idempotence,
        "linger_ms": 5,
        "max_request_size": MAX_MESSAGE_BYTES,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    return AIOKafkaProducer(**(options | overrides))


def _admin(settings: BrokerSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        request_timeout_ms=settings.request_timeout_ms,
    )


async def _started(settings: BrokerSettings, timeout_s: float) -> AIOKafkaAdminClient:
    admin = _admin(settings)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (TimeoutError, KafkaConnectionError, OSError) as exc:
        await admin.close()
        raise BrokerError(
            f"cannot reach the broker at {settings.bootstrap_servers} ({exc.__class__.__name__})"
        ) from exc
    return admin


async def list_topics(settings: BrokerSettings, timeout_s: float = 10.0) -> set[str]:
    """Names of the broker's topics; raises :class:`BrokerError` when it does not answer."""
    admin = await _started(settings, timeout_s)
    try:
        return set(await asyncio.wait_for(admin.list_topics(), timeout_s))
    except (TimeoutError, KafkaError) as exc:
        raise BrokerError(
            f"the broker at {settings.bootstrap_servers} did not list topics ({exc.__class__.__name__})"
        ) from exc
    finally:
        await admin.close()


async def ensure_topics(
    settings: BrokerSettings,
    names: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    timeout_s: float = 10.0,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet (with their ``configs``, by name); returns the ones created."""
    admin = await _started(settings, timeout_s)
    try:
        missing = sorted(set(names) - set(await admin.list_topics()))
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(
                    n,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict((configs or {}).get(n, {})),
                )
                for n in missing
            ]
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {settings.bootstrap_servers} ({exc.__class__.__name__})") from exc
    finally:
        await admin.close()
    created = []
    for topic, code, *_ in response.topic_errors:
        if code == 0:
            created.append(topic)
        elif code != TopicAlreadyExistsError.errno:  # created concurrently by another process: fine
            raise BrokerError(f"the broker refused to create topic {topic} ({for_code(code).__name__})")
    return sorted(created)
