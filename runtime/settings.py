"""The one settings object of RaceLab ingest.

Every command builds a :class:`Settings` once (``load_settings()``) and passes it down. Values come from, in order:
keyword arguments, ``RACELAB_*`` environment variables, the endpoints file written by ``racelab stack up``
(``<home>/stack.env``), then the defaults below. Nested groups use ``__``: ``RACELAB_BROKER__BOOTSTRAP_SERVERS``.
Secrets are :class:`pydantic.SecretStr` and print as ``**********``.
"""

from __future__ import annotations

import os
from datetime import datetime, time
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.records import RaceType
from schemas.topics import TopicCatalogue, TopicPolicy
from schemas.tracks import RACE_TYPES

ENV_PREFIX = "RACELAB_"
STACK_ENV_FILE = "stack.env"


def default_home() -> Path:
    """Where the local stack keeps its state: ``RACELAB_HOME``, else ``.racelab`` in the source checkout.

    The one name of this setting (``Settings.home``). It is read here too, before the settings exist, because the
    endpoints file that ``load_settings`` reads lives in the home.
    """
    explicit = os.environ.get(f"{ENV_PREFIX}HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".racelab"
    return Path.home() / ".racelab"


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BrokerSettings(_Group):
    """Kafka-protocol broker (Redpanda, Kafka, or Tansu in the local stack)."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "racelab"
    # Tansu's in-memory store answers InitProducerId with an error; the local stack turns this off.
    idempotence: bool = True
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    # Short group timeouts make workers join fast on the local stack; production keeps Kafka's defaults.
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    rebalance_timeout_ms: int = Field(default=60_000, ge=1_000)
    # How long the broker may hold a fetch that found nothing. Kafka and Redpanda answer as soon as data arrives;
    # Tansu waits the whole time, so the local stack keeps it short (it is the latency of each hop there).
    fetch_max_wait_ms: int = Field(default=500, ge=1, le=30_000)
    default_partitions: int = Field(default=8, ge=1)
    # How often consumers refresh the broker's metadata even when nothing failed: a subscribed topic that appears
    # (recreated after a broker restart or failover) is assigned by the next refresh at the latest (Kafka: 5 min).
    metadata_max_age_ms: int = Field(default=30_000, ge=1_000)
    # How the pipeline's producers compress their batches (consumers decompress on their own; a kafkajs consumer
    # registers an LZ4 codec, deploy/consumers/node). LZ4 halves what the broker moves for the price of a copy.
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    # LZ4's level: 0-2 is LZ4's fast mode; 3-12 its high-compression mode, which squeezes out about a sixth more at
    # a tenth of the speed (aiokafka's own choice is 9).
    lz4_level: int = Field(default=1, ge=0, le=12)


class DatabaseSettings(_Group):
    """TimescaleDB (PostgreSQL with the timescaledb extension)."""

    url: SecretStr = SecretStr("postgresql://racelab@127.0.0.1:5432/racelab")
    schema_name: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=4, ge=1)

    def display_url(self) -> str:
        """The URL with any password masked, for logs and messages."""
        return redact_url(self.url.get_secret_value())


class SourceSettings(_Group):
    """One upstream API family (KRA or KSPO on data.go.kr)."""

    base_url: str = ""
    service_key: SecretStr = SecretStr("")
    requests_per_second: float = Field(default=8.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1)
    connect_timeout_s: float = Field(default=6.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_delay_s: float = Field(default=1.0, ge=0, description="backoff 1, 2, 4, 8 s (x jitter)")
    page_size: int = Field(default=1000, ge=1, le=1000)


SIMULATOR_URL = "http://127.0.0.1:8089"


class KraSettings(SourceSettings):
    """KRA (horse racing). Default: the local simulator; real API: ``https://apis.data.go.kr/B551015``."""

    base_url: str = f"{SIMULATOR_URL}/B551015"


class KspoSettings(SourceSettings):
    """KSPO (cycle and boat racing). Default: the local simulator; real API: ``https://apis.data.go.kr/B551014``."""

    base_url: str = f"{SIMULATOR_URL}/B551014"


class OddsFeedSettings(SourceSettings):
    """A live-odds feed (the simulator has one; the public APIs do not). Empty ``base_url`` = none."""

    base_url: str = SIMULATOR_URL


class TopicSettings(_Group):
    """Topic naming; every topic name starts with ``prefix``."""

    prefix: str = Field(default="racelab", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=8, ge=1)
    replication_factor: int = Field(default=1, ge=1, description="1 on the local stack, 3 in production")
    raw_retention_days: int = Field(default=14, ge=0, description="raw topics (the archive keeps history); 0 = forever")
    normalized_retention_days: int = Field(default=30, ge=0, description="normalized topics; 0 = forever")
    dlq_retention_days: int = Field(default=365, ge=0, description="dead-letter topics; 0 = forever")

    def group(self, name: str) -> str:
        """The consumer group of a worker role or configured group suffix: ``<prefix>-<name>``."""
        return f"{self.prefix}-{name}"

    def catalogue(self) -> TopicCatalogue:
        """The topic catalogue of this prefix, with these settings per class."""
        policy = TopicPolicy(self.raw_retention_days, self.normalized_retention_days, self.dlq_retention_days)
        return TopicCatalogue(self.prefix, policy)


class ApiSettings(_Group):
    """The control API."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    ingestion_key: SecretStr = SecretStr("")
    page_enabled: bool = Field(
        default=False,
        description="serve the read-only status page at / (a shell without data; what it shows needs the key)",
    )


class AlertSettings(_Group):
    """Where alerts go; no webhook means log only."""

    slack_webhook_url: SecretStr | None = None
    min_interval_s: float = Field(default=300.0, ge=0)


class ProducerSettings(_Group):
    """What ``racelab run producers`` polls and on which clock."""

    race_types: tuple[RaceType, ...] = RACE_TYPES
    tracks: tuple[str, ...] = Field(
        default=(), description="empty = every polled track of the race types (named: any known track, 영천 too)"
    )
    schedule_time_kst: time = Field(default=time(6, 0), description="daily schedule poll (Asia/Seoul)")
    tick_s: float = Field(default=1.0, gt=0, description="real seconds between scheduler passes")
    clock: Literal["auto", "system", "simulator"] = Field(
        default="auto", description="auto = the simulator's clock when the KRA base URL is the simulator's"
    )
    simulator_url: str = SIMULATOR_URL
    recovery_interval_s: float = Field(default=300.0, gt=0)
    recovery_max_retries: int = Field(default=50, ge=1)


class ProcessorSettings(_Group):
    """The Faust workers (``racelab run processors``)."""

    batch_size: int = Field(default=500, ge=1, description="raw messages per batch (size trigger)")
    batch_within_s: float = Field(
        default=0.05, gt=0, description="time trigger of a batch (each hop adds up to this latency)"
    )
    dlq_max_ratio: float = Field(default=0.5, gt=0, le=1, description="breaker: DLQ share of the window")
    dlq_window: int = Field(default=200, ge=1)
    dlq_max_consecutive: int = Field(default=100, ge=1, description="breaker: DLQ records in a row")


class SinkSettings(_Group):
    """The TimescaleDB sink worker (``racelab run sink``)."""

    batch_size: int = Field(default=5000, ge=1, description="messages per batch (size trigger)")
    batch_within_s: float = Field(
        default=0.05, gt=0, description="time trigger of a batch (each hop adds up to this latency)"
    )
    transaction_rows: int = Field(
        default=20000,
        ge=1,
        description="the most table rows in one transaction (an odds board, one message of many rows, is not split)",
    )
    lanes: int = Field(
        default=2,
        ge=1,
        description="transactions written at once, each on a connection of its own; a partition keeps to one lane",
    )
    retry_max_delay_s: float = Field(default=10.0, gt=0, description="longest wait between retries in an outage")
    audit_interval_s: float = Field(
        default=600.0, ge=0, description="how often the data-quality rules run (racelab_audit_violations); 0 = never"
    )
    audit_days: int = Field(default=7, ge=1, description="the audit covers the races of this many days up to today")
    consumer_group: str = Field(
        default="sink",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="group suffix; a new one re-reads the topics from the beginning",
    )


class ArchiverSettings(_Group):
    """The raw archive worker (``racelab run archiver``): every raw message into ``raw_archive``."""

    batch_size: int = Field(default=2000, ge=1, description="messages per batch (size trigger)")
    batch_within_s: float = Field(default=0.5, gt=0, description="time trigger of a batch")
    retry_max_delay_s: float = Field(default=10.0, gt=0, description="longest wait between retries in an outage")
    consumer_group: str = Field(
        default="archiver",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="group suffix; a new one re-reads the raw topics from the beginning (stored once anyway)",
    )


WORKER_ROLES = ("producers", "processors", "sink", "archiver")
"""The long-running roles with ops endpoints of their own (``ops.<role>_port``); the control API serves its own."""


class OpsSettings(_Group):
    """``/metrics``, ``/healthz`` and ``/readyz`` of every long-running process (the control API serves its own)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    producers_port: int = Field(default=9101, ge=0, le=65535, description="0 picks a free port")
    processors_port: int = Field(default=9102, ge=0, le=65535, description="0 picks a free port")
    sink_port: int = Field(default=9103, ge=0, le=65535, description="0 picks a free port")
    archiver_port: int = Field(default=9104, ge=0, le=65535, description="0 picks a free port")
    lag_interval_s: float = Field(default=5.0, gt=0, description="how often consumer lag is measured")
    stuck_after_s: float = Field(
        default=120.0, gt=0, description="not ready when committed offsets did not move this long while lag > 0"
    )
    check_timeout_s: float = Field(default=3.0, gt=0, description="broker/database check timeout of /readyz")
    unstored_after_s: float = Field(
        default=600.0,
        gt=0,
        description="the sink is not ready when collected data has not landed in the tables this long",
    )
    prometheus_url: str = Field(
        default="", description="the Prometheus watching the pipeline (racelab doctor asks its /-/ready); empty = none"
    )

    def port(self, role: str) -> int:
        return int(getattr(self, f"{role}_port"))


class SimulatorSettings(_Group):
    """``racelab simulator``: where it listens and how its world and clock behave."""

    host: str = "127.0.0.1"
    port: int = Field(default=8089, ge=0, le=65535)
    seed: int = 7
    every_day: bool = Field(default=False, description="every track races every day (demos)")
    speed: float = Field(default=1.0, gt=0, description="simulated seconds per real second")
    clock_start: datetime | None = Field(default=None, description="simulated start time (ISO with offset)")
    service_key: SecretStr | None = Field(default=None, description="require this key (code 30 otherwise)")
    unapproved: tuple[str, ...] = Field(
        default=(), description="endpoint globs (SERVICE/OPERATION) the key is not approved for: KRA code 30, KSPO 403"
    )
    quota_exhausted: tuple[str, ...] = Field(
        default=(), description="endpoint globs whose daily quota the key has used up (code 22)"
    )


class StackSettings(_Group):
    """The local no-Docker stack (``racelab stack up``); where it lives is ``Settings.home`` (``RACELAB_HOME``)."""

    @model_validator(mode="before")
    @classmethod
    def _home_is_not_here(cls, data: object) -> object:
        if isinstance(data, dict) and "home" in data:
            raise ValueError("the stack's home is set by RACELAB_HOME (one name for it), not RACELAB_STACK__HOME")
        return data

    broker_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    postgres_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    postgres_bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    start_timeout_s: float = Field(default=60.0, gt=0)


class Settings(BaseSettings):
    """All settings of RaceLab ingest, read once at the entry point and passed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    home: Path = Field(
        default_factory=default_home,
        description="RACELAB_HOME: the local stack's state, its endpoints file, Faust's folders and the demo's logs",
    )
    broker: BrokerSettings = BrokerSettings()
    database: DatabaseSettings = DatabaseSettings()
    kra: KraSettings = KraSettings()
    kspo: KspoSettings = KspoSettings()
    odds_feed: OddsFeedSettings = OddsFeedSettings()
    topics: TopicSettings = TopicSettings()
    api: ApiSettings = ApiSettings()
    alerts: AlertSettings = AlertSettings()
    producers: ProducerSettings = ProducerSettings()
    processors: ProcessorSettings = ProcessorSettings()
    sink: SinkSettings = SinkSettings()
    archiver: ArchiverSettings = ArchiverSettings()
    ops: OpsSettings = OpsSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    stack: StackSettings = StackSettings()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def stack_env_path(home: Path | None = None) -> Path:
    """The endpoints file ``racelab stack up`` writes."""
    return (home or default_home()) / STACK_ENV_FILE


def load_settings() -> Settings:
    """Build the settings: environment first, then the local stack's endpoints file, then defaults."""
    env_file = stack_env_path()
    return Settings(_env_file=env_file if env_file.is_file() else None)  # type: ignore[call-arg]


def url_password(url: str) -> str | None:
    """The password a database URL carries, in its user part or as a ``password`` query parameter (libpq)."""
    parts = urlsplit(url)
    return parts.password or dict(parse_qsl(parts.query)).get("password")


def redact_url(url: str) -> str:
    """Mask the password of a URL (``postgresql://u:***@h/db``, ``...?password=***``)."""
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{netloc[-1]}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        masked = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    elif parts.password is None:
        return url  # nothing to mask: the URL exactly as given
    return urlunsplit(parts)
