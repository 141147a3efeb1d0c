"""RaceLab against peers built from public libraries: the same backlog of raw odds pages drained into odds_snapshots.

Is the project's pipeline (Faust processors + sink worker, with its validation, dead-letter handling and day rollup)
worth its weight against what a user could build in an afternoon? Every pipeline gets the same backlog of raw KRA
final-dividend pages (API160_1, 1000 rows a page, every row new) in a raw topic of its own, published as the pollers
publish (LZ4-compressed batches, the project's default), and writes the rows into a freshly migrated schema of its
own, alone on the machine, in alternating rounds:

- ``racelab``: ``racelab run processors`` and ``racelab run sink`` at their defaults (two processes, a normalized
  topic between them);
- ``quix``: a Quix Streams application with a custom batching sink (staged binary COPY + ``INSERT ... ON CONFLICT
  DO NOTHING``), Quix's defaults otherwise (:mod:`benchmarks.peers.quix_app`);
- ``loop``: one aiokafka + asyncpg loop, ``getmany`` batches through the same staged write
  (:mod:`benchmarks.peers.aiokafka_loop`);
- ``loop-direct``: the same loop copying straight into the hypertable with no conflict handling (the ceiling).

The peers run in a virtual environment of their own (``<home>/peers-venv``, made on first use from the ``peers``
extra of pyproject.toml), since their libraries' pins do not fit the project's environment.

The measured window runs from the first row visible in the table to the moment every row is committed, detected
from the consumer groups' committed offsets reaching the topics' end offsets (every pipeline commits offsets only
after its database commit), never by counting the table while it fills (a count over millions of rows would charge
the database's CPU to the pipeline). Over exactly that window the CPU time of each process group is read from /proc:
the pipeline's own processes, PostgreSQL (the postmaster, its live children and the exited ones it reaped) and the
broker. Every table is then checked: exact row count, the same content as the first racelab run's table
(``EXCEPT ALL`` both ways), and for racelab runs the day rollup against a grouping of its snapshots.

    python -m benchmarks.versus_peers [--pages 3000] [--rounds 3] [--only racelab,loop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from producers.simulator import envelope, render_kra
from producers.simulator.world import FINAL_AFTER, World
from runtime.db import connect
from runtime.kafka import durable_producer, ensure_topics
from runtime.settings import Settings, load_settings
from schemas import endpoints as ep
from schemas.errors import BrokerError, DatabaseUnavailable
from schemas.raw import RawHeaders
from schemas.topics import TopicCatalogue
from schemas.tracks import BY_CODE
from sinks import rollup
from sinks.migrate import migrate
from sinks.tables import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ("racelab", "quix", "loop", "loop-direct")
STAGED_PEERS = ("quix", "loop")  # the peers whose database work is comparable to racelab's (staged, conflict-safe)
PEER_MODULES = {
    "quix": ["benchmarks.peers.quix_app"],
    "loop": ["benchmarks.peers.aiokafka_loop"],
    "loop-direct": ["benchmarks.peers.aiokafka_loop", "--direct"],
}
PEER_LIBRARIES = ("aiokafka", "asyncpg", "cramjam", "orjson")  # the project's own pins, next to the peers extra
TRACKS = ("seoul", "busan", "jeju")
PAGE_ROWS = 1000
ODDS_COLUMNS = ", ".join(COLUMNS["odds_snapshots"])
SUMMARY_COLUMNS = (
    "day, race_id, pool, selection, open_odds, close_odds, high_odds, low_odds, snapshots, first_at, last_at"
)
# What the day summary (odds_daily_summary) must hold: per Korean day, race, pool and selection, the first and last
# price, the extremes, the number of snapshots and the first and last time.
DAY_SUMMARY = """
SELECT time_bucket(INTERVAL '1 day', time, TIMESTAMPTZ '2000-01-01 00:00:00+09'), race_id, pool, selection,
       first(odds, time), last(odds, time), max(odds), min(odds), count(*), min(time), max(time)
FROM {source}
GROUP BY 1, race_id, pool, selection
"""
START_TIMEOUT_S = 300.0  # Quix's first group join on the local broker alone took ~23 s
IDLE_TIMEOUT_S = 300.0  # no offset committed for this long: the pipeline is stuck
STALL_CHECK_S = 10.0  # offsets not moving this long short of the end: count the table once
SETTLE_TIMEOUT_S = 120.0
TICKS = os.sysconf("SC_CLK_TCK")
# What a stopped or restarted local stack raises (a lost connection, a refused one, a server shutting down).
UNREACHABLE: tuple[type[Exception], ...] = (
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    DatabaseUnavailable,
    BrokerError,
    KafkaError,
    OSError,
    TimeoutError,
)
FIRST_PAGE = re.compile(r"first page consumed at ([0-9.]+)")  # what a peer prints (benchmarks.peers.kra_odds)


# ---- the backlog ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    """One raw message: an API160_1 page of one race."""

    key: bytes
    body: bytes
    headers: list[tuple[str, bytes]]
    rows: int


def backlog(pages: int, seed: int) -> list[Page]:
    """``pages`` raw final-dividend pages of consecutive race days of every horse track; every row is distinct."""
    world = World(seed=seed)
    out: list[Page] = []
    day = date(2024, 12, 13)
    while True:
        for track in TRACKS:
            for race in world.races(track, day):
                rows = render_kra.final_dividend_rows(race)
                for page_no, start in enumerate(range(0, len(rows), PAGE_ROWS), start=1):
                    chunk = rows[start : start + PAGE_ROWS]
                    params = {
                        "meet": str(BY_CODE[track].kra_meet),
                        "rc_date": f"{day:%Y%m%d}",
                        "rc_no": str(race.race_no),
                        "pageNo": str(page_no),
                        "numOfRows": str(PAGE_ROWS),
                    }
                    headers = RawHeaders(
                        source="kra",
                        kind="odds",
                        endpoint=ep.KRA_FINAL_DIVIDENDS.path,
                        params=params,
                        fetched_at=race.post_time + FINAL_AFTER,
                        poll_id="versus-peers",
                        http_status=200,
                    ).to_kafka()
                    body = envelope.json_body(chunk, page_no, PAGE_ROWS, len(rows))
                    out.append(Page(race.race_id.encode(), body, headers, len(chunk)))
                    if len(out) == pages:
                        return out
        day += timedelta(days=1)


async def publish(settings: Settings, topic: str, pages: Sequence[Page]) -> float:
    """Every page into ``topic`` as the pollers publish them (:func:`runtime.kafka.durable_producer`: acks from all
    replicas, batches compressed as ``broker.compression`` says); returns the seconds it took."""
    producer = durable_producer(settings.broker, "versus-peers", linger_ms=20)
    started = time.monotonic()
    await producer.start()
    try:
        pending: list[asyncio.Future[object]] = []
        for page in pages:
            pending.append(await producer.send(topic, page.body, key=page.key, headers=page.headers))
            if len(pending) >= 256:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


# ---- the peers' environment -------------------------------------------------------------------------------------
def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.-]+", requirement)
    return (match.group(0) if match else requirement).lower()


def peer_requirements() -> list[str]:
    """The ``peers`` extra of pyproject.toml, plus the project's own pins of the libraries the peers share with it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    shared = [r for r in project["dependencies"] if _name(r) in PEER_LIBRARIES]
    return [*project["optional-dependencies"]["peers"], *shared]


def peer_python(home: Path) -> Path:
    """The interpreter of the peers' virtual environment, made (or brought up to the requirements) when needed."""
    venv = home / "peers-venv"
    python = venv / "bin" / "python"
    marker = venv / ".requirements"
    wanted = peer_requirements()
    if python.is_file() and marker.is_file() and marker.read_text(encoding="utf-8").splitlines() == wanted:
        return python
    print(f"preparing the peers' environment in {venv}: {' '.join(wanted)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted], check=True)
    marker.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return python


# ---- CPU time from /proc ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcStat:
    ppid: int
    own: int  # utime + stime, ticks
    reaped: int  # cutime + cstime: children that exited and were waited for


def _proc_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ... (proc(5) numbering - 3)
    return ProcStat(int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))


def _all_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _proc_stat(int(entry))) is not None:
            stats[int(entry)] = found
    return stats


def group_cpu(stats: dict[int, ProcStat], root: int, exclude: frozenset[int] = frozenset()) -> float:
    """CPU seconds of a process and everything under it: its own, its reaped children's and every live
    descendant's (``exclude``: descendants not to count, e.g. the benchmark's own database sessions)."""
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(stat.ppid, []).append(pid)
    top = stats.get(root)
    if top is None:
        return 0.0
    ticks = top.own + top.reaped
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in exclude:
            ticks += stats[pid].own
        todo += children.get(pid, [])
    return ticks / TICKS


@dataclass(frozen=True)
class Cpu:
    """CPU seconds each process group had used at one moment."""

    workers: dict[str, float]
    postgres: float
    broker: float

    def __sub__(self, earlier: Cpu) -> Cpu:
        return Cpu(
            {k: v - earlier.workers.get(k, 0.0) for k, v in self.workers.items()},
            self.postgres - earlier.postgres,
            self.broker - earlier.broker,
        )


@dataclass(frozen=True)
class Machine:
    """The processes whose CPU is charged to a run besides the pipeline's own: the database and the broker."""

    postmaster: int
    broker: int

    @classmethod
    def of_stack(cls, home: Path) -> Machine:
        """The local stack's PostgreSQL and broker processes (``racelab stack up``)."""
        try:
            stack = json.loads((home / "stack.json").read_text(encoding="utf-8"))
            postmaster = int((home / "pg" / "data" / "postmaster.pid").read_text(encoding="utf-8").split()[0])
        except FileNotFoundError as exc:
            raise SystemExit(f"the local stack is not running ({exc.filename} is missing): racelab stack up") from None
        machine = cls(postmaster, int(stack["broker_pid"]))
        for pid in (machine.postmaster, machine.broker):
            if _proc_stat(pid) is None:
                raise SystemExit(f"process {pid} of the local stack is gone: racelab stack up")
        return machine

    def cpu(self, workers: dict[str, int], own_sessions: frozenset[int]) -> Cpu:
        stats = _all_stats()
        return Cpu(
            {name: group_cpu(stats, pid) for name, pid in workers.items()},
            group_cpu(stats, self.postmaster, own_sessions),
            group_cpu(stats, self.broker),
        )


# ---- consumer progress ------------------------------------------------------------------------------------------
class Progress:
    """Committed offsets of consumer groups and end offsets of topics, from the broker."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.broker.bootstrap_servers
        self.partitions = settings.topics.partitions
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        self.ends_reader: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        await self.admin.start()

    async def renew(self) -> None:
        """A new reader of end offsets for each run: one that knew the deleted topics of an earlier run would keep
        asking the broker for them (and warn each time)."""
        if self.ends_reader is not None:
            await self.ends_reader.stop()
        self.ends_reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await self.ends_reader.start()

    async def close(self) -> None:
        if self.ends_reader is not None:
            await self.ends_reader.stop()
        await self.admin.close()

    def _partitions(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in range(self.partitions)]

    async def ends(self, topic: str) -> tuple[int, ...]:
        assert self.ends_reader is not None, "renew() first"
        found = await self.ends_reader.end_offsets(self._partitions(topic))
        return tuple(int(found[tp]) for tp in self._partitions(topic))

    async def committed(self, group: str, topic: str) -> tuple[int, ...]:
        found = await self.admin.list_consumer_group_offsets(group, partitions=self._partitions(topic))
        return tuple(max(0, int(found[tp].offset)) if tp in found else 0 for tp in self._partitions(topic))

    async def has_member(self, group: str) -> bool:
        described = await self.admin.describe_consumer_groups([group])
        groups = described[0].to_object()["groups"] if described else []
        return any(g["group"] == group and g["members"] for g in groups)

    async def delete_prefixed(self, prefix: str) -> None:
        """Delete every topic of a run: the catalogue's and any a client made for itself (``<prefix>-...``)."""
        names = [t for t in await self.admin.list_topics() if t.startswith((f"{prefix}.", f"{prefix}-"))]
        if names:
            await self.admin.delete_topics(names)


# ---- one run of one pipeline ------------------------------------------------------------------------------------
class RunFailed(Exception):
    """A pipeline did not start, stopped, or did not finish."""


@dataclass
class Run:
    """What one run of one pipeline measured and found."""

    pipeline: str
    round_no: int
    prefix: str
    rows: int = 0
    window_s: float = math.nan
    cpu: Cpu = field(default_factory=lambda: Cpu({}, math.nan, math.nan))
    problems: list[str] = field(default_factory=list)
    lead_s: float = math.nan  # a peer's first page consumed -> the first row visible: its work before the window

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.window_s if self.window_s > 0 else math.nan

    @property
    def worker_cpu(self) -> float:
        return sum(self.cpu.workers.values()) if self.cpu.workers else math.nan

    def per_million(self, seconds: float) -> float:
        return seconds / self.rows * 1e6 if self.rows else math.nan

    @property
    def cores_busy(self) -> float:
        return (
            (self.worker_cpu + self.cpu.postgres + self.cpu.broker) / self.window_s if self.window_s > 0 else math.nan
        )


# (consumer group, topic, its end offsets when fixed, else None: read when the stages before it are done)
Stage = tuple[str, str, tuple[int, ...] | None]


@dataclass
class Bench:
    """Runs the pipelines one at a time over the same backlog and checks what each one stored."""

    settings: Settings
    machine: Machine
    progress: Progress
    verifier: asyncpg.Connection
    pages: list[Page]
    peer_python: Path | None
    logs: Path
    chosen: tuple[str, ...]
    reference: str | None = None  # the schema every run's table is compared with (the first racelab run's)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)  # prefixes of the runs whose topics are not deleted yet
    schemas: list[str] = field(default_factory=list)  # until dropped
    log_files: list[IO[bytes]] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(page.rows for page in self.pages)

    # -- processes
    def _spawn(self, prefix: str, role: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{prefix}-{role}.log").open("wb")
        self.log_files.append(log)
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    async def stop_processes(self) -> None:
        """Stop every pipeline process still running (SIGTERM, then SIGKILL after 30 s)."""
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        self.processes.clear()
        for log in self.log_files:
            log.close()
        self.log_files.clear()

    def _check_alive(self, workers: dict[str, subprocess.Popen[bytes]], prefix: str) -> None:
        for role, process in workers.items():
            if process.poll() is not None:
                raise RunFailed(f"{role} exited with {process.returncode}; see {self.logs / f'{prefix}-{role}.log'}")

    async def _start_racelab(self, prefix: str) -> tuple[dict[str, subprocess.Popen[bytes]], list[Stage]]:
        env = {
            **os.environ,
            "RACELAB_TOPICS__PREFIX": prefix,
            "RACELAB_DATABASE__SCHEMA_NAME": prefix,
            "RACELAB_LOG_LEVEL": "WARNING",
        }
        naming = self.settings.topics.model_copy(update={"prefix": prefix})
        catalogue = TopicCatalogue(prefix)
        sink_group = naming.group(self.settings.sink.consumer_group)
        command = [sys.executable, "-m", "racelab.cli", "run"]
        workers = {"sink": self._spawn(prefix, "sink", [*command, "sink"], env)}
        deadline = time.monotonic() + START_TIMEOUT_S
        while not await self.progress.has_member(sink_group):
            self._check_alive(workers, prefix)
            if time.monotonic() > deadline:
                raise RunFailed("the sink did not join its consumer group")
            await asyncio.sleep(0.2)
        # The local broker holds a new group's first join for about half the rebalance timeout.
        await asyncio.sleep(self.settings.broker.rebalance_timeout_ms / 2000 + 2)
        workers["processors"] = self._spawn(prefix, "processors", [*command, "processors"], env)
        stages: list[Stage] = [
            (naming.group("processors"), catalogue.raw("odds"), None),
            (sink_group, catalogue.normalized("odds"), None),
        ]
        return workers, stages

    def _start_peer(self, name: str, prefix: str) -> tuple[dict[str, subprocess.Popen[bytes]], list[Stage]]:
        assert self.peer_python is not None
        group = f"{prefix}-{name}"
        topic = TopicCatalogue(prefix).raw("odds")
        argv = [str(self.peer_python), "-m", *PEER_MODULES[name]]
        argv += ["--bootstrap", self.settings.broker.bootstrap_servers, "--topic", topic, "--group", group]
        argv += ["--schema", prefix]
        env = {**os.environ, "DATABASE_URL": self.settings.database.url.get_secret_value()}
        return {name: self._spawn(prefix, name, argv, env)}, [(group, topic, None)]

    # -- the window
    async def _first_row(
        self, conn: asyncpg.Connection, workers: dict[str, subprocess.Popen[bytes]], prefix: str
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM odds_snapshots)"):
            self._check_alive(workers, prefix)
            if time.monotonic() > deadline:
                raise RunFailed(f"no row stored within {START_TIMEOUT_S:.0f}s")
            await asyncio.sleep(0.1)

    async def _stages_done(self, stages: list[Stage]) -> tuple[bool, list[tuple[int, ...]], dict[str, int]]:
        """Whether every stage's group committed up to its topic's end (in order), the committed offsets, and the
        end offsets read (by topic)."""
        done, committed, ends = True, [], {}
        for group, topic, fixed in stages:
            offsets = await self.progress.committed(group, topic)
            committed.append(offsets)
            if done:
                end = fixed if fixed is not None else await self.progress.ends(topic)
                ends[topic] = sum(end)
                done = all(c >= e for c, e in zip(offsets, end, strict=True))
        return done, committed, ends

    async def _drained(
        self,
        run: Run,
        stages: list[Stage],
        cpu: Callable[[], Cpu],
        count: Callable[[], Awaitable[int]],
        alive: Callable[[], None],
    ) -> tuple[float, Cpu, dict[str, int]]:
        """When the last offset was committed (every stage at its topic's end; NaN when the offsets stopped short of
        it but the table is complete), the CPU then and the topics' ends."""
        last: list[tuple[int, ...]] = []
        last_change, cpu_then, counted = time.monotonic(), cpu(), 0.0
        while True:
            done, committed, ends = await self._stages_done(stages)
            now = time.monotonic()
            if committed != last:
                last, last_change, cpu_then = committed, now, cpu()
            if done:
                return last_change, cpu_then, ends
            if now - last_change > STALL_CHECK_S and now - counted > STALL_CHECK_S:
                counted = now
                if await count() == self.total_rows:
                    # The rows went on landing after the last offset commit: when they were all in is unknown, and
                    # the last commit's time would make the window too short (a rate of 272k once for quix).
                    run.problems.append(
                        "note: offsets stopped short of the reported end offsets, table complete; the window's end is"
                        " unknown, so the run is left out of the figures"
                    )
                    return math.nan, cpu_then, ends
            if now - last_change > IDLE_TIMEOUT_S:
                raise RunFailed(f"no offset committed for {IDLE_TIMEOUT_S:.0f}s")
            alive()
            await asyncio.sleep(0.25)

    async def run(self, name: str, round_no: int, prefix: str) -> Run:
        run = Run(name, round_no, prefix)
        ends: dict[str, int] = {}
        catalogue = TopicCatalogue(prefix)
        database = self.settings.database.model_copy(update={"schema_name": prefix})
        self.schemas.append(prefix)
        await migrate(database)
        self.topics.append(prefix)
        await self.progress.renew()
        await ensure_topics(self.settings.broker, catalogue.all_names(), self.settings.topics.partitions)
        raw = catalogue.raw("odds")
        took = await publish(self.settings, raw, self.pages)
        raw_ends = await self.progress.ends(raw)
        print(f"  [{name} round {round_no}] published {len(self.pages):,} pages in {took:.1f}s; starting", flush=True)
        await self._quiet_database()
        conn = await connect(database)
        try:
            if name == "racelab":
                workers, stages = await self._start_racelab(prefix)
            else:
                workers, stages = self._start_peer(name, prefix)
            stages[0] = (stages[0][0], stages[0][1], raw_ends)
            own = frozenset({conn.get_server_pid(), self.verifier.get_server_pid()})
            pids = {role: process.pid for role, process in workers.items()}

            def cpu() -> Cpu:
                return self.machine.cpu(pids, own)

            async def count() -> int:
                return int(await conn.fetchval("SELECT count(*) FROM odds_snapshots"))

            await self._first_row(conn, workers, prefix)
            started, cpu_start, first_row_at = time.monotonic(), cpu(), time.time()
            ended, cpu_end, ends = await self._drained(
                run, stages, cpu, count, lambda: self._check_alive(workers, prefix)
            )
            run.rows = await count()
            settle = time.monotonic() + SETTLE_TIMEOUT_S
            while run.rows < self.total_rows and time.monotonic() < settle:
                await asyncio.sleep(2)
                run.rows = await count()
                ended, cpu_end = time.monotonic(), cpu()
            run.window_s, run.cpu = ended - started, cpu_end - cpu_start
        finally:
            await conn.close()
            await self.stop_processes()
        if name != "racelab":
            found = FIRST_PAGE.search(
                (self.logs / f"{prefix}-{name}.log").read_text(encoding="utf-8", errors="replace")
            )
            run.lead_s = first_row_at - float(found.group(1)) if found else math.nan
        if name == "racelab" and ends.get(catalogue.normalized("odds"), 0) <= 0:
            run.problems.append(f"nothing published to {catalogue.normalized('odds')}")
        await self._delete_topics(prefix)
        await self.verify(run)
        if self.reference != prefix:
            await self._drop_schema(prefix)
        elif not run.problems:  # kept: vacuum it now, not by autovacuum during a later run (charged to that run)
            await self.verifier.execute(f'VACUUM ANALYZE "{prefix}".odds_snapshots')
        return run

    async def _quiet_database(self) -> None:
        """Write out what earlier runs left dirty, so that the checkpointer does not do it during this run's window
        (where its CPU would count as this pipeline's)."""
        try:
            await self.verifier.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            print("  (no privilege to CHECKPOINT: an earlier run's writes may be flushed during this one)")

    # -- verification
    async def _count(self, sql: str) -> int:
        return int(await self.verifier.fetchval(sql))

    async def verify(self, run: Run) -> None:
        """Exact row count, the same rows as the reference table, and (racelab) the day rollup of its rows."""
        schema = run.prefix
        if run.rows != self.total_rows:
            run.problems.append(f"{run.rows:,} rows stored, {self.total_rows:,} expected")
        if self.reference is None and (run.pipeline == "racelab" or "racelab" not in self.chosen):
            self.reference = schema
        elif self.reference is not None and self.reference != schema:
            for a, b in ((schema, self.reference), (self.reference, schema)):
                extra = await self._count(
                    f'SELECT count(*) FROM (SELECT {ODDS_COLUMNS} FROM "{a}".odds_snapshots '
                    f'EXCEPT ALL SELECT {ODDS_COLUMNS} FROM "{b}".odds_snapshots) d'
                )
                if extra:
                    run.problems.append(f"{extra:,} rows of {a}.odds_snapshots are not in {b}.odds_snapshots")
        if run.pipeline == "racelab":
            await self._verify_rollup(run)

    async def _verify_rollup(self, run: Run) -> None:
        """The day summary the sink keeps (the Apache build's rollup, read through its view) equals a grouping of
        the stored snapshots."""
        schema = run.prefix
        if not await self.verifier.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".{rollup.TABLE}'):
            print(f"  ({rollup.TABLE} is absent on this server: the day summary is not checked)")
            return
        grouped = DAY_SUMMARY.replace("{source}", f'"{schema}".odds_snapshots')
        stored = f'SELECT {SUMMARY_COLUMNS} FROM "{schema}".odds_daily_summary'
        missing = await self._count(f"SELECT count(*) FROM (({grouped}) EXCEPT ALL ({stored})) d")
        extra = await self._count(f"SELECT count(*) FROM (({stored}) EXCEPT ALL ({grouped})) d")
        groups = await self._count(f"SELECT count(*) FROM ({grouped}) g")
        summarized = await self._count(f"SELECT count(*) FROM ({stored}) s")
        if missing or extra or groups != summarized:
            run.problems.append(
                f"{rollup.TABLE}: {summarized:,} day summary rows for {groups:,} selections; {missing:,} missing or "
                f"different, {extra:,} not matching a selection"
            )

    # -- cleanup
    async def discard(self, prefix: str) -> None:
        """Delete a failed run's topics and drop its schema."""
        await self.stop_processes()
        await self._delete_topics(prefix)
        if prefix != self.reference:
            await self._drop_schema(prefix)

    async def _delete_topics(self, prefix: str) -> None:
        if prefix in self.topics:
            await self.progress.delete_prefixed(prefix)
            self.topics.remove(prefix)

    async def _drop_schema(self, schema: str) -> None:
        await self.verifier.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if schema in self.schemas:
            self.schemas.remove(schema)

    async def cleanup(self) -> None:
        """Stop what still runs, delete the topics and drop the schemas that are left (after any exit, also when the
        database or the broker went away: then whatever cannot be reached is left)."""
        await self.stop_processes()
        for prefix in list(self.topics):
            with contextlib.suppress(*UNREACHABLE):
                await self._delete_topics(prefix)
        if self.schemas:
            with contextlib.suppress(*UNREACHABLE):
                if self.verifier.is_closed():
                    self.verifier = await connect(self.settings.database)
                for schema in list(self.schemas):
                    await self._drop_schema(schema)


# ---- report -----------------------------------------------------------------------------------------------------
def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _worker_cell(runs: Sequence[Run]) -> str:
    total = _median([r.per_million(r.worker_cpu) for r in runs])
    roles = sorted({role for r in runs for role in r.cpu.workers})
    if len(roles) < 2:
        return f"{total:.1f}"
    parts = " + ".join(
        f"{role} {_median([r.per_million(r.cpu.workers.get(role, math.nan)) for r in runs]):.1f}" for role in roles
    )
    return f"{total:.1f} ({parts})"


def report(runs: Sequence[Run], chosen: Sequence[str]) -> None:
    by_pipeline = {name: [r for r in runs if r.pipeline == name and math.isfinite(r.window_s)] for name in chosen}
    header: tuple[str, ...] = (
        "pipeline",
        "rows/s median (min-max)",
        "worker CPU s/M rows",
        "PostgreSQL CPU s/M",
        "broker CPU s/M",
        "cores busy",
    )
    lines: list[tuple[str, ...]] = [header]
    for name, done in by_pipeline.items():
        if not done:
            lines.append((name, "no complete run", "", "", "", ""))
            continue
        rates = [r.rows_per_s for r in done]
        lines.append(
            (
                name,
                f"{_median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})",
                _worker_cell(done),
                f"{_median([r.per_million(r.cpu.postgres) for r in done]):.1f}",
                f"{_median([r.per_million(r.cpu.broker) for r in done]):.1f}",
                f"{_median([r.cores_busy for r in done]):.2f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for i, line in enumerate(lines):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    leads = {name: _median([r.lead_s for r in done]) for name, done in by_pipeline.items() if name != "racelab"}
    if any(math.isfinite(v) for v in leads.values()):
        print(
            "peers' first page consumed before their first row was visible (work before the window), median: "
            + ", ".join(f"{name} {lead:.1f}s" for name, lead in leads.items() if math.isfinite(lead))
        )
    racelab = by_pipeline.get("racelab")
    peers = [name for name in chosen if name != "racelab" and by_pipeline[name]]
    if not racelab or not peers:
        return
    print()

    def median_of(name: str, value: Callable[[Run], float]) -> float:
        return _median([value(r) for r in by_pipeline[name]])

    def ratio(value: Callable[[Run], float], peer: str) -> float:
        theirs = median_of(peer, value)
        return median_of("racelab", value) / theirs if theirs else math.nan

    for peer in peers:
        summary = (
            f"racelab / {peer}: rows/s x{ratio(lambda r: r.rows_per_s, peer):.2f}, "
            f"worker CPU per row x{ratio(lambda r: r.per_million(r.worker_cpu), peer):.2f}"
        )
        if peer in STAGED_PEERS:
            summary += f", PostgreSQL CPU per row x{ratio(lambda r: r.per_million(r.cpu.postgres), peer):.2f}"
        print(summary)


# ---- main -------------------------------------------------------------------------------------------------------
def _summary(run: Run) -> str:
    if not math.isfinite(run.window_s):
        return f"{run.rows:,} rows stored, window unknown: left out of the figures" if run.rows else "failed"
    return (
        f"{run.rows:,} rows in {run.window_s:.1f}s = {run.rows_per_s:,.0f} rows/s; CPU s/M rows: workers "
        f"{run.per_million(run.worker_cpu):.1f}, PostgreSQL {run.per_million(run.cpu.postgres):.1f}, broker "
        f"{run.per_million(run.cpu.broker):.1f}"
        + (f"; first page consumed {run.lead_s:.1f}s before the first row" if math.isfinite(run.lead_s) else "")
    )


async def run_rounds(work: Bench, chosen: tuple[str, ...], rounds: int, runs: list[Run]) -> None:
    """Every pipeline once a round, the order alternating; stops early when the local stack goes away."""
    for round_no in range(1, rounds + 1):
        for name in chosen if round_no % 2 else tuple(reversed(chosen)):
            prefix = f"vp_{name.replace('-', '')}_{uuid.uuid4().hex[:6]}"
            print(f"round {round_no}: {name} (topics and schema {prefix})", flush=True)
            lost = False
            try:
                run = await work.run(name, round_no, prefix)
            except RunFailed as exc:
                run = Run(name, round_no, prefix, problems=[str(exc)])
                await work.discard(prefix)
            except UNREACHABLE as exc:  # the local stack was stopped or restarted (its broker keeps nothing)
                problem = f"lost the database or the broker ({exc.__class__.__name__}: {exc}); stopping here"
                run, lost = Run(name, round_no, prefix, problems=[problem]), True
            runs.append(run)
            print(f"  [{name} round {round_no}] {_summary(run)}", flush=True)
            for problem in run.problems:
                print(f"  [{name} round {round_no}] {problem}", flush=True)
            if lost:
                return


async def bench(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    settings = load_settings()
    chosen = tuple(name for name in PIPELINES if name in args.only)
    machine = Machine.of_stack(settings.home)
    started = time.monotonic()
    pages = await asyncio.to_thread(backlog, args.pages, args.seed)
    size = sum(len(page.body) for page in pages)
    print(
        f"built {len(pages):,} raw pages, {sum(p.rows for p in pages):,} odds rows ({size / 2**20:,.0f} MiB) "
        f"in {time.monotonic() - started:.1f}s",
        flush=True,
    )
    peers = any(name != "racelab" for name in chosen)
    python = await asyncio.to_thread(peer_python, settings.home) if peers else None
    logs = settings.home / "logs" / "versus-peers"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"pipeline logs in {logs}", flush=True)
    progress = Progress(settings)
    await progress.start()
    verifier = await connect(settings.database)
    await verifier.execute("SET work_mem = '256MB'")
    work = Bench(settings, machine, progress, verifier, pages, python, logs, chosen)
    runs: list[Run] = []
    try:
        await run_rounds(work, chosen, args.rounds, runs)
    finally:
        try:
            await work.cleanup()
        finally:
            with contextlib.suppress(*UNREACHABLE):
                await work.verifier.close()
            with contextlib.suppress(*UNREACHABLE):
                await progress.close()
    report(runs, chosen)
    failures = [(r, p) for r in runs for p in r.problems if not p.startswith("note:")]
    if failures:
        print("\nNOT VERIFIED:")
        for run, problem in failures:
            print(f"  {run.pipeline} round {run.round_no}: {problem}")
        return 1
    print(f"\nevery table verified: {len(runs)} runs, {work.total_rows:,} rows each")
    return 0


def _pipelines(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in PIPELINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"pipelines are {', '.join(PIPELINES)} (got {text!r})")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000, help="raw pages of up to 1000 rows in the backlog")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the order of the pipelines alternates")
    parser.add_argument("--only", type=_pipelines, default=PIPELINES, help=f"some of {','.join(PIPELINES)}")
    parser.add_argument("--seed", type=int, default=11, help="seed of the simulated races")
    try:
        code = asyncio.run(bench(parser.parse_args()))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl+C, SIGTERM: the pipelines, topics and schemas are gone
        print("interrupted: pipelines stopped, topics deleted, schemas dropped", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
