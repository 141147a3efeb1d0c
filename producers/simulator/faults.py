"""Fault injection per endpoint, configured at start (``--fault``) or at run time (``POST /_sim/faults``).

A rule is ``ENDPOINT_GLOB:FAULT[:RATE[:TIMES]]``, e.g. ``API214_1/*:http_503:0.5``, ``*:latency:1:0`` with
``latency_s``. Rules are tried in order; ``latency`` adds delay and lets later rules apply, every other fault
answers the request. ``rate`` is the probability per request (a seeded RNG, so runs repeat); ``times`` caps how
often a rule fires (0 = no cap).
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field
from typing import Literal, cast

FaultKind = Literal[
    "latency",
    "http_500",
    "http_503",
    "http_403",
    "http_429",
    "code_22",
    "code_23",
    "code_30",
    "code_99",
    "malformed",
    "truncated",
    "timeout",
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


@dataclass
class FaultRule:
    """One fault for the endpoints matching ``endpoint`` (a glob over ``SERVICE/OPERATION``)."""

    endpoint: str
    fault: FaultKind
    rate: float = 1.0
    times: int = 0
    latency_s: float = 0.0
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """``ENDPOINT:FAULT[:RATE[:TIMES]]``; for latency, RATE may be followed by ``@SECONDS``."""
        parts = text.split(":")
        if len(parts) < 2:
            raise ValueError(f"fault rule {text!r} is not ENDPOINT:FAULT[:RATE[:TIMES]]")
        rate_text, _, latency = (parts[2] if len(parts) > 2 else "1").partition("@")
        times = int(parts[3]) if len(parts) > 3 else 0
        return cls(parts[0], cast(FaultKind, parts[1]), float(rate_text), times, float(latency or 0.5))


class FaultInjector:
    """Decides, per request, which faults apply."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules = list(rules or [])
        self._rng = random.Random(seed)  # noqa: S311 - simulation

    def replace(self, rules: list[FaultRule]) -> None:
        self.rules = list(rules)

    def pick(self, endpoint: str) -> tuple[float, FaultRule | None]:
        """(added latency, the answering fault or None) for one request to ``endpoint``."""
        delay = 0.0
        for rule in self.rules:
            if not fnmatch.fnmatchcase(endpoint, rule.endpoint):
                continue
            if rule.times and rule.fired >= rule.times:
                continue
            if self._rng.random() >= rule.rate:
                continue
            rule.fired += 1
            if rule.fault == "latency":
                delay += rule.latency_s
                continue
            return delay, rule
        return delay, None
