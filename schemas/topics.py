"""The topic catalogue: every topic's name, key, value and paired dead-letter topic, derived from one prefix.

=====================================  ===============================================  ==========================
topic                                  key                                              value
=====================================  ===============================================  ==========================
``<p>.raw.<kind>``                     race id, or ``{source}:{track}:{date}`` (day)    HTTP body bytes as received
``<p>.races|entries|odds|results``     race id                                          JSON of the schemas model
``<p>.raw.<kind>.dlq``                 original key                                     original bytes + headers
=====================================  ===============================================  ==========================

Settings per class (:class:`TopicPolicy`, applied when a topic is created): the raw topics keep their messages for a
bounded time (the raw archive keeps the history), the normalized topics as long as downstream consumers need, the
dead-letter topics long, for a replay after a fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["schedules", "entries", "odds", "results"]
KINDS: tuple[Kind, ...] = ("schedules", "entries", "odds", "results")
# Normalized topic of each raw kind (schedules normalize into races).
NORMALIZED_NAME: dict[Kind, str] = {"schedules": "races", "entries": "entries", "odds": "odds", "results": "results"}


DAY_MS = 86_400_000
Stage = Literal["raw", "normalized", "dlq"]


@dataclass(frozen=True)
class TopicPolicy:
    """Retention of each class of topics, in days (0 = keep forever)."""

    raw_days: int = 14
    normalized_days: int = 30
    dlq_days: int = 365

    def config(self, stage: Stage) -> dict[str, str]:
        """The topic-level configuration a topic of this class is created with."""
        days = {"raw": self.raw_days, "normalized": self.normalized_days, "dlq": self.dlq_days}[stage]
        return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS if days > 0 else -1)}


@dataclass(frozen=True)
class TopicContract:
    """One topic of the pipeline."""

    name: str
    kind: Kind
    stage: Stage
    key: str
    value: str
    dlq: str | None
    config: dict[str, str]


class TopicCatalogue:
    """All topic names for a prefix (``racelab`` by default; configurable per deployment)."""

    def __init__(self, prefix: str = "racelab", policy: TopicPolicy | None = None) -> None:
        self.prefix = prefix
        self.policy = policy or TopicPolicy()

    def raw(self, kind: Kind) -> str:
        return f"{self.prefix}.raw.{kind}"

    def dlq(self, kind: Kind) -> str:
        return f"{self.raw(kind)}.dlq"

    def normalized(self, kind: Kind) -> str:
        return f"{self.prefix}.{NORMALIZED_NAME[kind]}"

    def contracts(self) -> list[TopicContract]:
        out: list[TopicContract] = []
        for kind in KINDS:
            out.append(
                TopicContract(
                    self.raw(kind),
                    kind,
                    "raw",
                    "race id or {source}:{track}:{date}",
                    "HTTP body bytes as received",
                    self.dlq(kind),
                    self.policy.config("raw"),
                )
            )
            out.append(
                TopicContract(
                    self.normalized(kind),
                    kind,
                    "normalized",
                    "race id",
                    f"JSON of the {NORMALIZED_NAME[kind]} model with schema_version",
                    None,
                    self.policy.config("normalized"),
                )
            )
            out.append(
                TopicContract(
                    self.dlq(kind),
                    kind,
                    "dlq",
                    "original key",
                    "original bytes, original headers plus dlq.* headers",
                    None,
                    self.policy.config("dlq"),
                )
            )
        return out

    def all_names(self) -> list[str]:
        return [c.name for c in self.contracts()]

    def configs(self) -> dict[str, dict[str, str]]:
        """Every topic's creation settings, by name."""
        return {c.name: c.config for c in self.contracts()}
