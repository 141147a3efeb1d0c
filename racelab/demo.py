"""``racelab demo``: the whole pipeline on a simulated race day, with live progress, a summary and example queries.

Brings up the local stack, migrates, starts the simulator on an accelerated clock (09:30 Korean time today, when
the first markets open) and then ``racelab run processors|sink|producers|api`` as child processes. Every couple of
seconds it prints the simulated time, polls, raw messages, normalized records, rows per table, dead letters and
consumer lag, read from the children's ``/metrics``. When the simulated day is over (or on Ctrl+C) it lets the
workers drain, asks the control API for the day's status, stops everything and prints a summary and example
queries. Child logs go to ``<stack home>/demo/``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from racelab.supervisor import Child, child_env, patient_interrupts, start, stop
from runtime.settings import WORKER_ROLES, Settings, load_settings
from schemas.errors import ConfigurationError, PipelineError
from schemas.timezones import KST, kst_today

DAY_STARTS = time(9, 30)  # the first markets open (first post 10:35)
DAY_ENDS = time(19, 45)  # the last race (19:20) is official and its final odds are in
TABLES = ("races", "entries", "odds_snapshots", "results")
DEMO_SCHEMA = "demo"  # the demo's data stays here after it ends: RACELAB_DATABASE__SCHEMA_NAME=demo racelab query ...
Samples = list[tuple[str, dict[str, str], float]]


@dataclass
class Progress:
    """What the demo shows, from the children's metrics."""

    polls_ok: float = 0
    polls_failed: float = 0
    raw: float = 0
    records: float = 0
    dead_letters: float = 0
    rows: dict[str, float] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)

    def line(self, now: datetime) -> str:
        rows = ", ".join(f"{t.removesuffix('_snapshots')} {self.rows.get(t, 0):,.0f}" for t in TABLES)
        lag = " ".join(f"{g} {v:,.0f}" for g, v in sorted(self.lag.items())) or "-"
        return (
            f"[{now.astimezone(KST):%H:%M} KST] polls {self.polls_ok:,.0f} ok / {self.polls_failed:,.0f} failed"
            f" | raw {self.raw:,.0f} | records {self.records:,.0f} | today's rows: {rows}"
            f" | DLQ {self.dead_letters:,.0f} | lag {lag}"
        )


def _total(samples: Samples, name: str, **match: str) -> float:
    return sum(v for n, labels, v in samples if n == name and all(labels.get(k) == x for k, x in match.items()))


def read_progress(by_role: dict[str, Samples]) -> Progress:
    producers, processors, sink = by_role.get("producers", []), by_role.get("processors", []), by_role.get("sink", [])
    p = Progress(
        polls_ok=_total(producers, "racelab_polls_total", outcome="ok"),
        polls_failed=_total(producers, "racelab_polls_total", outcome="failed"),
        raw=_total(producers, "racelab_raw_messages_produced_total"),
        records=_total(processors, "racelab_records_normalized_total"),
        dead_letters=_total(processors, "racelab_dlq_records_total") + _total(sink, "racelab_dlq_records_total"),
    )
    for table in TABLES:  # rows written (inserts and updates); the demo shows the day's row counts instead
        p.rows[table] = _total(sink, "racelab_sink_rows_written_total", table=table)
    for role, samples in (("processors", processors), ("sink", sink)):
        if any(n == "racelab_consumer_lag" for n, _, _ in samples):
            p.lag[role] = _total(samples, "racelab_consumer_lag")
    return p


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    """Samples of a ``/metrics`` page; empty when the process does not answer (yet)."""
    try:
        text = (await http.get(url)).text
    except httpx.HTTPError:
        return []
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]


@dataclass
class Demo:
    settings: Settings
    speed: float
    until: time
    say: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)
    key: str = ""

    @property
    def ops_urls(self) -> dict[str, str]:
        ops = self.settings.ops
        return {r: f"http://{ops.host}:{ops.port(r)}/metrics" for r in ("producers", "processors", "sink")}

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api.host}:{self.settings.api.port}"

    def key_source(self) -> str:
        """Where the API key is: the user's settings, or a private file (a key never goes to the console)."""
        if self.settings.api.ingestion_key.get_secret_value():
            return "from your settings"
        path = self.settings.home / "demo" / "api-key"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.key + "\n")
        return f'in {path}, e.g. curl -H "X-Ingestion-Key: $(cat {path})" {self.api_url}/api/ingestion/status'

    def env(self) -> dict[str, str]:
        sim = f"http://{self.settings.simulator.host}:{self.settings.simulator.port}"
        return child_env(
            {
                "RACELAB_KRA__BASE_URL": f"{sim}/B551015",
                "RACELAB_KSPO__BASE_URL": f"{sim}/B551014",
                "RACELAB_ODDS_FEED__BASE_URL": sim,
                "RACELAB_PRODUCERS__SIMULATOR_URL": sim,
                "RACELAB_PRODUCERS__CLOCK": "simulator",
                "RACELAB_PRODUCERS__TICK_S": "0.2",
                "RACELAB_API__INGESTION_KEY": self.key,
                "RACELAB_API__PAGE_ENABLED": "true",  # the read-only status page at /
                "RACELAB_DATABASE__SCHEMA_NAME": self.settings.database.schema_name,
                "RACELAB_TOPICS__PREFIX": self.settings.topics.prefix,
                "RACELAB_OPS__ENABLED": "true",
                "RACELAB_SIMULATOR__PORT": str(self.settings.simulator.port),
                "RACELAB_API__PORT": str(self.settings.api.port),
                **{f"RACELAB_OPS__{r.upper()}_PORT": str(self.settings.ops.port(r)) for r in self.ops_urls},
                "RACELAB_LOG_LEVEL": "INFO",
            }
        )

    def start_all(self, day: date) -> None:
        log_dir = self.settings.home / "demo"
        env = self.env()
        sim_start = datetime.combine(day, DAY_STARTS, tzinfo=KST).isoformat(timespec="minutes")
        sim_args = ["simulator", "--every-day", "--speed", f"{self.speed:g}", "--clock-start", sim_start]
        self.children.append(start("simulator", sim_args, env, log_dir))
        self._wait_for_simulator()
        for role in ("archiver", "sink", "processors", "producers", "api"):  # stopped in reverse: feeders first
            self.children.append(start(role, ["run", role], env, log_dir))
        self.say(f"logs of every process: {log_dir}/")

    def _wait_for_simulator(self) -> None:
        url = f"http://{self.settings.simulator.host}:{self.settings.simulator.port}/_sim/clock"
        deadline = clock.monotonic() + 20
        while clock.monotonic() < deadline:
            self._check_children()
            try:
                httpx.get(url, timeout=1).raise_for_status()
            except httpx.HTTPError:
                clock.sleep(0.2)
            else:
                return
        raise ConfigurationError(f"the simulator did not answer on {url} within 20 s")

    def _check_children(self) -> None:
        for child in self.children:
            if not child.running:
                tail = child.log_path.read_text(errors="replace").strip().splitlines()[-5:] if child.log_path else []
                details = "\n  ".join(tail)
                code = child.process.returncode
                raise ConfigurationError(f"{child.name} exited (code {code}); end of {child.log_path}:\n  {details}")

    async def progress(self) -> Progress:
        async with httpx.AsyncClient(timeout=2) as http:
            found = await asyncio.gather(*(scrape(http, u) for u in self.ops_urls.values()))
        return read_progress(dict(zip(self.ops_urls, found, strict=True)))

    def sim_now(self) -> datetime:
        url = f"http://{self.settings.simulator.host}:{self.settings.simulator.port}/_sim/clock"
        return datetime.fromisoformat(httpx.get(url, timeout=2).json()["now"])

    def watch(self, day: date, every_s: float = 2.0) -> Progress:
        end = datetime.combine(day, self.until, tzinfo=KST)
        last = Progress()
        while True:
            self._check_children()
            now = self.sim_now()
            last = asyncio.run(self.progress())
            counts = asyncio.run(day_counts(self.settings, day))
            last.rows = {t: float(counts[t]) for t in TABLES}
            self.say(last.line(now))
            if now >= end:
                return last
            clock.sleep(every_s)

    def drain(self, limit_s: float = 30.0) -> Progress:
        """Wait until both consumer groups have no lag (or the limit passes)."""
        deadline = clock.monotonic() + limit_s
        while True:
            progress = asyncio.run(self.progress())
            if (progress.lag and not any(progress.lag.values())) or clock.monotonic() > deadline:
                return progress
            clock.sleep(1)

    def status(self, day: date) -> dict[str, object] | None:
        try:
            response = httpx.get(
                f"{self.api_url}/api/ingestion/status",
                params={"date": day.isoformat()},
                headers={"X-Ingestion-Key": self.key},
                timeout=30,
            )
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None


def usable_port(host: str, port: int) -> int:
    """``port`` when nothing listens there, else a free one (the demo then says where things are)."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            probe.bind((host, 0))
        return int(probe.getsockname()[1])


async def reset_schema(settings: Settings) -> None:
    """Drop the demo's own schema, so that every demo starts from an empty database (nothing else is touched)."""
    from runtime.db import connect

    conn = await connect(settings.database)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{DEMO_SCHEMA}" CASCADE')
    finally:
        await conn.close()


async def day_counts(settings: Settings, day: date) -> dict[str, int]:
    from runtime.db import connect

    conn = await connect(settings.database)
    try:
        counts = {}
        counts["races"] = int(await conn.fetchval("SELECT count(*) FROM races WHERE race_date = $1", day))
        for table in ("entries", "odds_snapshots", "results"):
            counts[table] = int(
                await conn.fetchval(
                    f"SELECT count(*) FROM {table} t JOIN races r USING (race_id) WHERE r.race_date = $1",
                    day,
                )
            )
        counts["failures"] = int(await conn.fetchval("SELECT count(*) FROM ingestion_failures WHERE NOT resolved"))
        return counts
    finally:
        await conn.close()


async def showcase_race(settings: Settings, day: date) -> str:
    """The first horse race of the day with results and odds (what the example queries show)."""
    from runtime.db import connect

    conn = await connect(settings.database)
    try:
        found = await conn.fetchval(
            """SELECT r.race_id FROM races r
               WHERE r.race_date = $1 AND r.race_type = 'horse'
                 AND EXISTS (SELECT 1 FROM results x WHERE x.race_id = r.race_id)
                 AND EXISTS (SELECT 1 FROM odds_snapshots o WHERE o.race_id = r.race_id AND o.pool = 'WIN')
               ORDER BY r.post_time, r.race_id LIMIT 1""",
            day,
        )
        return str(found) if found else f"horse-seoul-1-{day:%Y%m%d}"
    finally:
        await conn.close()


def example_queries(day: date, race_id: str) -> list[list[str]]:
    return [
        ["query", "races", day.isoformat(), "--track", "seoul"],
        ["query", "results", race_id],
        ["query", "summary", race_id, "--pool", "WIN"],
        ["query", "odds", race_id, "--pool", "WIN", "--bucket", "15m"],
    ]


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the demo talks to its user, line by line even through a pipe


def run_demo(settings: Settings, speed: float, until: time, say: Callable[[str], None] = _say) -> int:
    """The demo; returns the exit code (0 done, 130 interrupted)."""
    from deploy.stack.manager import LocalStack
    from sinks.migrate import migrate

    say("starting the local stack (broker, TimescaleDB)...")
    LocalStack(settings.stack, settings.home).up()
    found = load_settings()
    ops = found.ops
    settings = found.model_copy(
        update={
            "database": found.database.model_copy(update={"schema_name": DEMO_SCHEMA}),
            "topics": found.topics.model_copy(update={"prefix": f"demo{datetime.now(UTC):%H%M%S}"}),
            "simulator": found.simulator.model_copy(
                update={"port": usable_port(found.simulator.host, found.simulator.port)}
            ),
            "api": found.api.model_copy(update={"port": usable_port(found.api.host, found.api.port)}),
            "ops": ops.model_copy(update={f"{r}_port": usable_port(ops.host, ops.port(r)) for r in WORKER_ROLES}),
        }
    )
    asyncio.run(reset_schema(settings))
    applied = asyncio.run(migrate(settings.database))
    say(f"fresh database schema {DEMO_SCHEMA!r} ({len(applied)} migrations); topics {settings.topics.prefix}.*")
    demo = Demo(settings, speed, until, say, key=settings.api.ingestion_key.get_secret_value())
    demo.key = demo.key or secrets.token_urlsafe(18)
    day = kst_today()
    hours = (datetime.combine(day, until) - datetime.combine(day, DAY_STARTS)).total_seconds() / 3600
    say(
        f"simulated race day {day} from {DAY_STARTS:%H:%M} to {until:%H:%M} KST at {speed:g}x "
        f"(about {hours * 3600 / speed / 60:.1f} minutes); Ctrl+C stops early"
    )
    interrupted = False
    status = None
    try:
        demo.start_all(day)
        say(f"control API on {demo.api_url} (X-Ingestion-Key: {demo.key_source()})")
        say(f"status page with odds charts: {demo.api_url}/ (it asks for the same key)")
        demo.watch(day)
        say("the simulated day is over; letting the workers drain...")
        demo.drain()
        status = demo.status(day)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop_children(demo.children, interrupted, say)
    summary(settings, day, status, say)
    return 130 if interrupted else 0


def stop_children(children: Sequence[Child], interrupted: bool, say: Callable[[str], None]) -> None:
    """Stop the demo's processes and say how each exited; a Ctrl+C once the user is told they are stopping waits."""
    with patient_interrupts():  # entered before the line below: a Ctrl+C after it must not cut the stop short
        if interrupted:
            say("\ninterrupted; stopping every process...")
        codes = stop(children)
        say("stopped: " + ", ".join(f"{name} (exit {code})" for name, code in codes.items()))


def summary(settings: Settings, day: date, status: dict[str, object] | None, say: Callable[[str], None]) -> None:
    try:
        counts = asyncio.run(day_counts(settings, day))
    except PipelineError as exc:
        say(f"no summary: {exc}")
        return
    say(f"\nin TimescaleDB for {day}:")
    for name, n in counts.items():
        say(f"  {name:<16} {n:>10,}")
    if status is not None:
        say("control API status (GET /api/ingestion/status): " + _short_status(status))
    race_id = asyncio.run(showcase_race(settings, day))
    say(f"\nexample queries (the demo's data is in schema {DEMO_SCHEMA}: RACELAB_DATABASE__SCHEMA_NAME={DEMO_SCHEMA}):")
    for args in example_queries(day, race_id):
        say("$ racelab " + " ".join(args))
        done = subprocess.run(
            [sys.executable, "-m", "racelab.cli", *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "RACELAB_DATABASE__SCHEMA_NAME": DEMO_SCHEMA},
        )
        say(_head(done.stdout or done.stderr, 14))


def _short_status(status: dict[str, object]) -> str:
    data = status.get("data")
    if not isinstance(data, dict):
        return str(status)[:300]
    summary = data.get("summary")
    return str(summary)[:300] if summary is not None else str(data)[:300]


def _head(text: str, lines: int) -> str:
    rows = text.rstrip().splitlines()
    more = f"\n  ... ({len(rows) - lines} more lines)" if len(rows) > lines else ""
    return "\n".join("  " + r for r in rows[:lines]) + more


def parse_until(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise ConfigurationError(f"--until wants HH:MM (Korean time), got {text!r}") from exc
