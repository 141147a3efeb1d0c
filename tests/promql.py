"""Every PromQL expression the project ships, read from the files themselves, and a small PromQL scanner.

The expressions come from ``deploy/prometheus/rules.yml`` (recording and alerting rules) and from the targets of
every Grafana dashboard in ``deploy/grafana/dashboards``; Grafana's interval variables are replaced by fixed
durations so Prometheus can evaluate them. The scanner knows just enough PromQL to find the vector selectors of an
expression (metric name and label matchers) and to turn comparisons into ``bool`` comparisons, which keep every
series (0 or 1) instead of filtering: an alert's condition then shows whether its series exist at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

import deploy

DEPLOY = Path(deploy.__file__).parent
RULES_FILE = DEPLOY / "prometheus" / "rules.yml"
CONFIG_FILE = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"

# Grafana's built-in interval variables, as fixed durations Prometheus understands.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "30s", "__range": "1h"}

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
TOKEN = re.compile(
    r"""
      (?P<space>\s+|\#[^\n]*)
    | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])*)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=])
    | (?P<punct>[{}()\[\],])
    """,
    re.X | re.I,
)


@dataclass(frozen=True)
class Expression:
    """One shipped expression and where it comes from."""

    kind: Literal["record", "alert", "panel"]
    name: str
    expr: str

    @property
    def origin(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


def tokens(expr: str) -> list[Token]:
    """The tokens of ``expr`` without whitespace and comments; unknown characters raise ``ValueError``."""
    out: list[Token] = []
    pos = 0
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot read PromQL at {expr[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(Token(kind, match.group(), match.start(), match.end()))
        pos = match.end()
    return out


def _scan(expr: str) -> Iterator[tuple[Token, str]]:
    """Each token with its role: ``metric``, ``matchers`` (a whole ``{...}``), ``comparison`` or ``other``."""
    toks = tokens(expr)
    i = 0
    while i < len(toks):
        tok = toks[i]
        after = toks[i + 1] if i + 1 < len(toks) else None
        if tok.kind == "ident" and tok.text.lower() in LABEL_LISTS and after is not None and after.text == "(":
            close = next(j for j in range(i + 1, len(toks)) if toks[j].text == ")")
            yield tok, "other"
            i = close + 1  # label names, not metrics
            continue
        if tok.text in {"[", "{"}:
            closing = "]" if tok.text == "[" else "}"
            close = next(j for j in range(i + 1, len(toks)) if toks[j].text == closing)
            whole = Token("group", expr[tok.start : toks[close].end], tok.start, toks[close].end)
            yield whole, "matchers" if tok.text == "{" else "other"
            i = close + 1
            continue
        if tok.kind == "ident" and tok.text.lower() == "offset" and after is not None:
            yield tok, "other"
            i += 2  # the offset's duration
            continue
        if tok.kind == "ident" and tok.text.lower() not in KEYWORDS | {"inf", "nan"}:
            # a function or an aggregation; ``sum by (...) (...)`` puts its grouping before the parenthesis
            is_call = after is not None and (after.text == "(" or after.text.lower() in {"by", "without"})
            yield tok, "other" if is_call else "metric"
        elif tok.kind == "op" and tok.text in COMPARISONS:
            yield tok, "comparison"
        else:
            yield tok, "other"
        i += 1


def selectors(expr: str) -> list[str]:
    """The vector selectors of ``expr``: ``name{matchers}`` as written (``name`` alone, or ``{matchers}`` alone)."""
    found: list[str] = []
    previous_metric: Token | None = None
    for tok, role in _scan(expr):
        if role == "matchers":
            found.append((previous_metric.text if previous_metric else "") + tok.text)
            previous_metric = None
            continue
        if previous_metric is not None:
            found.append(previous_metric.text)
        previous_metric = tok if role == "metric" else None
    if previous_metric is not None:
        found.append(previous_metric.text)
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (selectors by ``__name__`` only are not resolved)."""
    return {re.split(r"[{]", s, maxsplit=1)[0] for s in selectors(expr)} - {""}


def with_bool(expr: str) -> str:
    """``expr`` with every comparison turned into a ``bool`` comparison (series kept, 0 or 1)."""
    toks = list(_scan(expr))
    out, last = [], 0
    for n, (tok, role) in enumerate(toks):
        following = toks[n + 1][0] if n + 1 < len(toks) else None
        if role == "comparison" and not (following is not None and following.text.lower() == "bool"):
            out.append(expr[last : tok.end] + " bool")
            last = tok.end
    out.append(expr[last:])
    return "".join(out)


def substitute_grafana_variables(expr: str) -> str:
    """Grafana's ``$__rate_interval`` & co. as fixed durations; any other variable is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            raise ValueError(f"dashboard variable ${name} has no value for evaluation")
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def rule_expressions(rules: Mapping[str, Any]) -> list[Expression]:
    """The expressions of a Prometheus rule file (parsed YAML), in file order."""
    out: list[Expression] = []
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            kind: Literal["record", "alert"] = "record" if "record" in rule else "alert"
            out.append(Expression(kind, str(rule[kind]), str(rule["expr"]).strip()))
    return out


def dashboard_expressions(dashboard: Mapping[str, Any]) -> list[Expression]:
    """The query of every target of every panel (rows' nested panels included), variables substituted."""
    out: list[Expression] = []

    def walk(panels: list[Mapping[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets") or []:
                expr = str(target.get("expr") or "").strip()
                if expr:
                    name = f"{dashboard.get('uid')}/{panel.get('title')}/{target.get('refId')}"
                    out.append(Expression("panel", name, substitute_grafana_variables(expr)))
            walk(panel.get("panels") or [])

    walk(list(dashboard.get("panels") or []))
    return out


def load_rules(path: Path = RULES_FILE) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def load_dashboards(folder: Path = DASHBOARDS) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def shipped_expressions() -> list[Expression]:
    """Every expression of the rule file and of every dashboard."""
    out = rule_expressions(load_rules())
    for dashboard in load_dashboards():
        out += dashboard_expressions(dashboard)
    return out
