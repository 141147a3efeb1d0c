"""The topic catalogue: every topic's name, key, value and paired dead-letter topic, derived from one prefix.

=====================================  ===============================================  ==========================
topic                                  key                                              value
=====================================  ===============================================  ==========================
``<p>.raw.<kind>``                     race id, or ``{source}:{track}:{date}`` (day)    HTTP body bytes as received
``<p>.races|entries|odds|results``     race id                                          JSON of the schemas model
``<p>.raw.<kind>.dlq``                 original key                                     original bytes + headers
=====================================  ===============================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["schedules", "entries", "odds", "results"]
KINDS: tuple[Kind, ...] = ("schedules", "entries", "odds", "results")
# Normalized topic of each raw kind (schedules normalize into races).
NORMALIZED_NAME: dict[Kind, str] = {"schedules": "races", "entries": "entries", "odds": "odds", "results": "results"}


@dataclass(frozen=True)
class TopicContract:
    """One topic of the pipeline."""

    name: str
    kind: Kind
    stage: Literal["raw", "normalized", "dlq"]
    key: str
    value: str
    dlq: str | None


class TopicCatalogue:
    """All topic names for a prefix (``racelab`` by default; configurable per deployment)."""

    def __init__(self, prefix: str = "racelab") -> None:
        self.prefix = prefix

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
                )
            )
        return out

    def all_names(self) -> list[str]:
        return [c.name for c in self.contracts()]
