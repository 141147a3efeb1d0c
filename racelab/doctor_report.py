"""What ``racelab doctor`` found, as text for people (two tables and notes) or JSON for machines; pure.

Exit code: 0 when every endpoint the configured race types use answered and the broker, the database and its
TimescaleDB are usable (and Prometheus, when one is configured, is ready); 1 otherwise. A Prometheus that is not
configured is no failure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from producers.probe import Probe
from racelab.doctor_infra import InfraCheck
from racelab.query_cli import width
from schemas.datasets import dataset_of
from schemas.records import RaceType

NOTE_WIDTH = 116
INFRA_RESULT = {"ok": "OK", "fail": "FAIL", "skipped": "SKIPPED", "not_configured": "NOT CONFIGURED"}
# What to do about an API error that is neither "not approved" nor "quota", by the API's code (reference §4.1).
CODE_ADVICE = {
    "12": "no such API at RACELAB_{src}__BASE_URL: check the base URL",
    "21": "the key is suspended for now: see its state on data.go.kr",
    "23": "too many calls per second: lower RACELAB_{src}__REQUESTS_PER_SECOND",
    "29": "data.go.kr blocks this machine's IP address",
    "31": "the key has expired: extend its period on data.go.kr",
    "32": "this machine's IP address is not registered for the key on data.go.kr",
    "33": "unsigned call: check RACELAB_{src}__SERVICE_KEY",
}
CLASS_ADVICE = {
    "AccessDenied": "the key was refused: check RACELAB_{src}__SERVICE_KEY",
    "RateLimited": "too many calls per second: lower RACELAB_{src}__REQUESTS_PER_SECOND",
    "InvalidRequest": "the API rejected the request's parameters: please report it",
    "MalformedResponse": "the answer is not a data.go.kr envelope: check RACELAB_{src}__BASE_URL",
}
UNREACHABLE_ADVICE = "the API did not answer: try again later, and check RACELAB_{src}__BASE_URL"
NOTE_NOT_APPROVED = (
    "NOT APPROVED: data.go.kr approves a key per dataset. Apply for each dataset named above on its page "
    "(https://www.data.go.kr/data/<number>/openapi.do, 활용신청); many are approved automatically, others after the "
    "provider's review. If every endpoint of a source is refused although its datasets are approved, the key is "
    "wrong or URL-encoded: put the decoded key (not the encoded one) in RACELAB_KRA__SERVICE_KEY / "
    "RACELAB_KSPO__SERVICE_KEY."
)
NOTE_QUOTA = (
    "QUOTA: the key has used up the day's calls of that dataset (a development account: 10,000 a day). The count "
    "starts again at midnight, Korean time; registering a use case (활용사례) on data.go.kr raises it."
)


def result_of(probe: Probe) -> str:
    """``OK``, ``NOT APPROVED (30)``, ``NOT APPROVED (HTTP 403)``, ``QUOTA (22)``, ``ERROR (code 31: ...)`` ..."""
    if probe.verdict == "ok":
        return "OK"
    if probe.verdict == "not_approved":
        return f"NOT APPROVED ({probe.code or f'HTTP {probe.http_status}'})"
    if probe.verdict == "quota":
        return f"QUOTA ({probe.code})"
    what = f"code {probe.code}" if probe.code else f"HTTP {probe.http_status}" if probe.http_status else ""
    detail = ": ".join(part for part in (what, probe.message) if part) or probe.error_class
    return f"ERROR ({detail})"


def advice_of(probe: Probe) -> str:
    """What to do about one endpoint's answer (empty when it is OK)."""
    src = probe.endpoint.source.upper()
    if probe.verdict == "ok":
        return ""
    if probe.verdict == "not_approved":
        if not probe.key_set:
            return f"set RACELAB_{src}__SERVICE_KEY (the decoded key from data.go.kr)"
        dataset = dataset_of(probe.endpoint)
        target = dataset.number or f"{probe.endpoint.path.split('/')[0]} {dataset.name}"
        return f"apply for {target} on data.go.kr (활용신청)"
    if probe.verdict == "quota":
        return "wait until 00:00 KST, or raise the quota (활용사례 등록)"
    template = CODE_ADVICE.get(probe.code or "") or CLASS_ADVICE.get(probe.error_class, UNREACHABLE_ADVICE)
    return template.format(src=src)


@dataclass(frozen=True)
class Report:
    """Everything ``racelab doctor`` found."""

    race_types: Sequence[RaceType]
    probes: Sequence[Probe]
    infra: Sequence[InfraCheck]
    base_urls: dict[str, str] = field(default_factory=dict)  # source -> the base URL asked (no secrets in it)

    @property
    def failing_probes(self) -> list[Probe]:
        return [p for p in self.probes if p.verdict != "ok"]

    @property
    def ok(self) -> bool:
        return not self.failing_probes and not any(c.failed for c in self.infra)

    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> bytes:
        doc = {
            "ok": self.ok,
            "race_types": list(self.race_types),
            "base_urls": self.base_urls,
            "endpoints": [
                {
                    "race_type": p.endpoint.race_type,
                    "source": p.endpoint.source,
                    "endpoint": p.endpoint.path,
                    "dataset_number": dataset_of(p.endpoint).number,
                    "dataset_name": dataset_of(p.endpoint).name,
                    "dataset_page": dataset_of(p.endpoint).page,
                    "verdict": p.verdict,
                    "result": result_of(p),
                    "code": p.code,
                    "http_status": p.http_status,
                    "message": p.message,
                    "what_to_do": advice_of(p),
                }
                for p in self.probes
            ],
            "infrastructure": [
                {"check": c.name, "status": c.status, "detail": c.detail, "what_to_do": c.advice} for c in self.infra
            ],
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    def to_text(self) -> str:
        endpoints = [
            [p.endpoint.race_type, p.endpoint.path, dataset_of(p.endpoint).label(), result_of(p), advice_of(p) or "-"]
            for p in self.probes
        ]
        infra = [[c.name, INFRA_RESULT[c.status], c.detail, c.advice or "-"] for c in self.infra]
        types = ", ".join(self.race_types) or "none"
        lines = [
            f"data.go.kr endpoints of the configured race types ({types}): one call each, numOfRows=1",
            *(f"{source.upper()} at {url}" for source, url in self.base_urls.items()),
            table(("race type", "endpoint", "dataset", "result", "what to do"), endpoints),
            "",
            "infrastructure",
            table(("check", "result", "detail", "what to do"), infra),
        ]
        notes = [
            note
            for verdict, note in (("not_approved", NOTE_NOT_APPROVED), ("quota", NOTE_QUOTA))
            if any(p.verdict == verdict for p in self.probes)
        ]
        if notes:
            lines += ["", *(textwrap.fill(note, NOTE_WIDTH) for note in notes)]
        lines += ["", self.summary()]
        return "\n".join(lines)

    def summary(self) -> str:
        failing = len(self.failing_probes)
        infra = [c.name for c in self.infra if c.failed]
        endpoints = f"{len(self.probes) - failing} of {len(self.probes)} endpoints OK"
        rest = f"failing: {', '.join(infra)}" if infra else "infrastructure OK"
        return f"{endpoints}; {rest}; exit {self.exit_code()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns under a header, Hangul counted as two columns."""
    widths = [max([width(h), *(width(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    out = [headers, *rows]
    return "\n".join("  ".join(c + " " * (w - width(c)) for c, w in zip(r, widths, strict=True)).rstrip() for r in out)
