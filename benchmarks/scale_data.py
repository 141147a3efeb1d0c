"""One year of race history in a schema of its own, for query benchmarks: races, entries, results and odds.

Cards, runners, results and final odds come from the simulator's deterministic world (same ``--seed``, same rows),
each track on its real race days with its real race type; a day's card is cut to the track's usual number of
races. Odds per race: ``--snapshots`` live snapshots of WIN, PLC and QNL on the odds cadence (spread over
T-60..T-0, the last at post time; the world's live-odds curves), then the final board at the closing time the
normalizers use: every pool and combination for horse races (KRA publishes the whole board), the winning
combinations for cycle and boat races (KSPO publishes payoffs only). Rows go in by binary COPY on two connections
while the next batch is generated.

    python -m benchmarks.scale_data [--schema scale] [--days 365] [--start 2024-01-01] [--seed 7] [--replace]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import asyncpg

from processors.normalize.kra import closing_time
from producers.cadence import odds_offsets
from producers.simulator.world import MARKET_OPEN, TRACKS, Race, World
from runtime.db import connect
from runtime.settings import DatabaseSettings, load_settings
from schemas.race_ids import source_of
from sinks import rollup
from sinks.migrate import migrate
from sinks.tables import COLUMNS

# Usual number of races on a race day; the world's card (10-16 races) is cut to it.
RACES_PER_DAY = {
    "seoul": 11,
    "busan": 9,
    "jeju": 9,
    "gwangmyeong": 16,
    "changwon": 14,
    "busan_cycle": 14,
    "misari": 17,
}
LIVE_POOLS = {"WIN": 0.35, "PLC": 0.25, "QNL": 0.4}  # pool -> share of the race's betting total
BATCH_ROWS = 50_000
Record = tuple[Any, ...]


def cards(world: World, start: date, days: int) -> Iterator[tuple[date, list[Race]]]:
    """Every race day of the period with its races (all tracks), day by day."""
    for offset in range(days):
        day = start + timedelta(days=offset)
        races = [race for code in TRACKS for race in world.races(code, day)[: RACES_PER_DAY[code]]]
        if races:
            yield day, races


def live_offsets(snapshots: int) -> list[int]:
    """Seconds before post time of ``snapshots`` cadence slots spread over the cadence, the last at post time."""
    slots = odds_offsets()
    if snapshots >= len(slots):
        return slots
    if snapshots <= 1:
        return slots[-snapshots:] if snapshots else []
    return [slots[round(i * (len(slots) - 1) / (snapshots - 1))] for i in range(snapshots)]


def odds_rows_of(race: Race, snapshots: int) -> int:
    """How many odds rows :func:`odds_records` yields for a race (for the plan and the ETA)."""
    if race.cancelled:
        return 0
    n = len(race.starters)
    pairs, trios = n * (n - 1) // 2, n * (n - 1) * (n - 2) // 6
    live = len(live_offsets(snapshots)) * (2 * n + pairs)
    if race.race_type == "horse":
        return live + 2 * n + 2 * pairs + 2 * pairs + trios + 6 * trios
    return live + sum(len(sels) for pool, sels in race.winning().items() if pool in _kspo_pools(race))


def _kspo_pools(race: Race) -> tuple[str, ...]:
    return (
        ("WIN", "PLC", "QNL", "EXA", "TLA", "TRI") if race.race_type == "cycle" else ("WIN", "PLC", "QNL", "EXA", "TLA")
    )


def _text(selection: tuple[int, ...]) -> str:
    return "-".join(map(str, selection))


def live_records(race: Race, offsets: list[int]) -> Iterator[Record]:
    """WIN/PLC/QNL snapshots at the given slots: the same curves (and random draws) as ``Race.live_odds``."""
    rng = random.Random(f"{race.seed}:live")  # noqa: S311 - simulation
    base_total = rng.randint(200, 900) * 1_000_000
    curves = []
    for (pool, selection), odds in race.final_odds().items():
        if pool in LIVE_POOLS:
            phase1, phase2, amp = rng.uniform(0, 6.28), rng.uniform(0, 6.28), rng.uniform(0.15, 0.45)
            curves.append((pool, _text(selection), odds, phase1, phase2, amp, base_total * LIVE_POOLS[pool]))
    source = source_of(race.race_type)
    for offset in offsets:
        at = race.post_time - timedelta(seconds=offset)
        progress = min(1.0, (at - (race.post_time - MARKET_OPEN)) / MARKET_OPEN)
        minute = (MARKET_OPEN - timedelta(seconds=offset)).total_seconds() / 60.0
        damp, volume = 1.0 - progress, progress**1.5
        for pool, text, odds, phase1, phase2, amp, total in curves:
            wobble = math.sin(minute / 7.0 + phase1) + 0.5 * math.sin(minute / 2.3 + phase2)
            value = max(1.0, round(odds * math.exp(amp * damp * wobble), 1))
            yield (at, race.race_id, pool, text, value, False, int(total * volume), None, source)


def final_records(race: Race) -> Iterator[Record]:
    """The closing snapshot: the whole board (horse) or the winning combinations (cycle, boat)."""
    at = closing_time(race.day)
    final = race.final_odds()
    if race.race_type == "horse":
        for (pool, selection), odds in final.items():
            yield (at, race.race_id, pool, _text(selection), odds, True, None, None, "kra")
        return
    for pool, selections in race.winning().items():
        if pool in _kspo_pools(race):
            for selection in selections:
                yield (at, race.race_id, pool, _text(selection), final[(pool, selection)], True, None, None, "kspo")


def odds_records(race: Race, offsets: list[int]) -> Iterator[Record]:
    """Every odds row of a race, in time order."""
    if race.cancelled:
        return
    yield from live_records(race, offsets)
    yield from final_records(race)


def race_record(race: Race) -> Record:
    """A ``races`` row in :data:`sinks.tables.COLUMNS` order."""
    source = source_of(race.race_type)
    started = None if race.cancelled else race.post_time
    status = "cancelled" if race.cancelled else "official"
    fetched = race.post_time + timedelta(minutes=10)
    return (
        *(race.race_id, race.race_type, race.track, race.day, race.race_no, race.post_time, started),
        *(race.distance_m, race.grade, race.name, len(race.runners), status, source, fetched, "{}"),
    )


def entry_records(race: Race) -> Iterator[Record]:
    """``entries`` rows: every declared runner, scratches with their reason."""
    horse = race.race_type == "horse"
    fetched = race.post_time - timedelta(hours=1)
    for r in race.runners:
        reason = race.scratched.get(r.entry_no)
        people = (r.jockey_id, r.jockey_name, r.trainer_id, r.trainer_name, str(r.owner_id), r.owner_name)
        yield (
            *(race.race_id, r.entry_no, r.participant_id, r.name, *(people if horse else (None,) * 6)),
            *(r.age, r.sex, r.carried_weight if horse else None, r.body_weight, r.body_weight_delta, r.rating),
            *(r.grade, "scratched" if reason else "declared", reason, source_of(race.race_type), fetched, "{}"),
        )


def result_records(race: Race) -> Iterator[Record]:
    """``results`` rows: finishers in order, then disqualified and non-finishing starters."""
    if race.cancelled:
        return
    final = race.final_odds()
    horse = race.race_type == "horse"
    fetched = race.post_time + timedelta(minutes=10)
    runners = {r.entry_no: r for r in race.runners}
    placed = [(no, i + 1, "finished") for i, no in enumerate(race.finish_order)]
    others = [(no, None, "disqualified") for no in sorted(race.disqualified)]
    others += [(no, None, "did_not_finish") for no in sorted(race.did_not_finish)]
    for no, position, status in placed + others:
        r = runners[no]
        yield (
            *(race.race_id, no, position, status, None, race.finish_times.get(no), None, r.participant_id, r.name),
            *(r.jockey_id if horse else None, r.jockey_name if horse else None),
            *(final.get(("WIN", (no,))), final.get(("PLC", (no,))), True, source_of(race.race_type), fetched, "{}"),
        )


class Loader:
    """Binary COPY of queued batches on a few connections, with a progress line every few seconds."""

    def __init__(self, planned: int) -> None:
        self.planned = planned
        self.done = 0
        self.started = time.perf_counter()
        self._shown = self.started
        self.queue: asyncio.Queue[tuple[str, list[Record]] | None] = asyncio.Queue(maxsize=2)

    async def copy_worker(self, conn: asyncpg.Connection) -> None:
        while (item := await self.queue.get()) is not None:
            table, records = item
            await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])
            if table == "odds_snapshots":
                self.done += len(records)
                self._progress()

    def _progress(self) -> None:
        now = time.perf_counter()
        if now - self._shown < 3 and self.done < self.planned:
            return
        self._shown = now
        rate = self.done / (now - self.started)
        eta = (self.planned - self.done) / rate if rate else 0.0
        print(
            f"  {self.done:>12,} / {self.planned:,} odds rows ({100 * self.done / self.planned:5.1f}%)  "
            f"{rate:>9,.0f} rows/s  ETA {eta:5.0f}s",
            flush=True,
        )


async def _prepare(settings: DatabaseSettings, replace: bool) -> None:
    """A freshly migrated, empty schema (``--replace`` drops an existing one first)."""
    conn = await connect(settings)
    try:
        if replace:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_name}" CASCADE')
    finally:
        await conn.close()
    await migrate(settings)
    conn = await connect(settings)
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM races)"):
            raise SystemExit(f"schema {settings.schema_name} already has data; use --replace to rebuild it")
    finally:
        await conn.close()


async def generate(settings: DatabaseSettings, start: date, days: int, seed: int, snapshots: int) -> None:
    """Fill the schema; prints the plan, progress and the totals."""
    world, offsets = World(seed=seed), live_offsets(snapshots)
    plan = [race for _, races in cards(world, start, days) for race in races]
    planned = sum(odds_rows_of(race, snapshots) for race in plan)
    print(f"plan: {len(plan):,} races over {days} days from {start}, {planned:,} odds rows ({len(offsets)} live slots)")
    _check_live_curves(plan[0], offsets)
    loader = Loader(planned)
    conns = [await connect(settings) for _ in range(2)]
    indexes = await _drop_odds_indexes(conns[0])
    try:
        async with asyncio.TaskGroup() as group:
            for conn in conns:
                group.create_task(loader.copy_worker(conn))
            counts = await _produce(loader, world, start, days, offsets, workers=len(conns))
        print(f"loaded in {time.perf_counter() - loader.started:.1f}s; building the odds index", flush=True)
    finally:
        for definition in indexes:  # also after a failure: never leave the table without its unique key
            await conns[0].execute(definition)
        print(f"rolled up {await rollup.rebuild(conns[0]):,} day-summary rows", flush=True)  # bypassed the writer
        for table in ("races", "entries", "results", "odds_snapshots"):  # history is vacuumed: index-only scans
            await conns[0].execute(f"VACUUM (ANALYZE) {table}")
        for conn in conns:
            await conn.close()
    elapsed = time.perf_counter() - loader.started
    print(
        f"done: {loader.done:,} odds rows in {elapsed:.1f}s = {loader.done / elapsed:,.0f} rows/s "
        "(index build and VACUUM ANALYZE included); " + ", ".join(f"{n:,} {table}" for table, n in counts.items())
    )


async def _produce(
    loader: Loader, world: World, start: date, days: int, offsets: list[int], workers: int
) -> dict[str, int]:
    """Queue every day's rows, then one stop mark per copy worker; returns the row counts of the small tables."""
    counts = dict.fromkeys(("races", "entries", "results"), 0)
    for _, races in cards(world, start, days):
        for table, records in (
            ("races", [race_record(r) for r in races]),
            ("entries", [row for r in races for row in entry_records(r)]),
            ("results", [row for r in races for row in result_records(r)]),
        ):
            counts[table] += len(records)
            await loader.queue.put((table, records))
        await _queue_odds(loader, races, offsets)
        World.races.cache_clear()  # the day's boards are not needed again
    for _ in range(workers):
        await loader.queue.put(None)
    return counts


async def _drop_odds_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the indexes of the empty hypertable; returns their definitions (a sorted build beats row-by-row)."""
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1",
        "odds_snapshots",
    )
    for row in rows:
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    return [row["indexdef"] for row in rows]


async def _queue_odds(loader: Loader, races: list[Race], offsets: list[int]) -> None:
    batch: list[Record] = []
    for race in races:
        batch.extend(odds_records(race, offsets))
        if len(batch) >= BATCH_ROWS:
            await loader.queue.put(("odds_snapshots", batch))
            batch = []
    if batch:
        await loader.queue.put(("odds_snapshots", batch))


def _check_live_curves(race: Race, offsets: list[int]) -> None:
    """The fast live-odds path must give exactly what the simulator's feed serves."""
    got = {(r[0], r[2], r[3]): (r[4], r[6]) for r in live_records(race, offsets)}
    for offset in offsets:
        at = race.post_time - timedelta(seconds=offset)
        for (pool, selection), value in race.live_odds(at).items():
            assert got[(at, pool, _text(selection))] == value, (race.race_id, at, pool, selection)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", default="scale", help="schema to fill (created and migrated; default: scale)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1), help="first day YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=7, help="world seed: same seed, same rows")
    parser.add_argument("--snapshots", type=int, default=18, help="live odds snapshots per race (cadence has 30)")
    parser.add_argument("--replace", action="store_true", help="drop the schema first if it exists")
    args = parser.parse_args()
    settings = load_settings().database.model_copy(update={"schema_name": args.schema})
    asyncio.run(_prepare(settings, args.replace))
    asyncio.run(generate(settings, args.start, args.days, args.seed, args.snapshots))


if __name__ == "__main__":
    main()
