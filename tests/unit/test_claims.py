"""Slot claims through a database outage (producers.claims), over a store that can be switched off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from producers.claims import SlotClaims
from schemas.errors import DatabaseUnavailable

T0 = datetime(2024, 12, 14, 1, 0, tzinfo=UTC)


class Store:
    """poll_slots in a dict; ``down`` makes every call fail as an unreachable database does."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, datetime], tuple[bool, str | None]] = {}
        self.down = False
        self.calls = 0

    def _up(self) -> None:
        self.calls += 1
        if self.down:
            raise DatabaseUnavailable("cannot reach the database at db:5432 (connection refused)")

    async def claim(self, task, target, slot) -> bool:
        self._up()
        if (task, target, slot) in self.rows:
            return False
        self.rows[(task, target, slot)] = (False, None)
        return True

    async def finish(self, task, target, slot, outcome) -> None:
        self._up()
        self.rows[(task, target, slot)] = (True, outcome)

    async def last_slot(self, task, target):
        self._up()
        return max((s for t, g, s in self.rows if t == task and g == target), default=None)

    async def record_slots(self, slots) -> int:
        self._up()
        written = 0
        for task, target, slot, outcome in slots:
            done, _ = self.rows.get((task, target, slot), (False, None))
            if not done:
                self.rows[(task, target, slot)] = (True, outcome)
                written += 1
        return written

    async def ping(self) -> None:
        self._up()


def test_odds_slots_are_claimed_once_locally_while_the_database_is_down_and_recorded_when_it_is_back():
    async def run() -> None:
        store = Store()
        claims = SlotClaims(store)  # type: ignore[arg-type]
        assert await claims.claim("odds", "r1", T0)
        await claims.finish("odds", "r1", T0, "ok")
        store.down = True
        slot = T0 + timedelta(seconds=30)
        assert await claims.claim("odds", "r1", slot) and claims.offline
        assert not await claims.claim("odds", "r1", slot)  # once, locally
        calls = store.calls
        late = T0 + timedelta(seconds=60)
        assert await claims.claim("odds", "r1", late)
        assert store.calls == calls  # offline, a claim does not wait for the database
        assert await claims.last_slot("odds", "r1") == late
        await claims.finish("odds", "r1", slot, "ok")
        await claims.finish("odds", "r1", late, "failed")
        assert await claims.reconcile() == 0 and claims.offline  # still down: kept
        store.down = False
        assert await claims.reconcile() == 2 and not claims.offline and claims.local == {}
        assert store.rows == {
            ("odds", "r1", T0): (True, "ok"),
            ("odds", "r1", slot): (True, "ok"),
            ("odds", "r1", late): (True, "failed"),
        }
        assert not await claims.claim("odds", "r1", slot)  # back in the database: another claim of it fails

    asyncio.run(run())


def test_other_tasks_wait_for_the_database():
    async def run() -> None:
        store = Store()
        claims = SlotClaims(store)  # type: ignore[arg-type]
        store.down = True
        with pytest.raises(DatabaseUnavailable):
            await claims.claim("results", "r1", T0)
        assert claims.offline and claims.local == {}
        with pytest.raises(DatabaseUnavailable, match="results slots wait for it"):
            await claims.claim("results", "r1", T0)
        with pytest.raises(DatabaseUnavailable):
            await claims.last_slot("entries", "seoul:20241214")

    asyncio.run(run())


def test_a_slot_claimed_in_the_database_is_finished_locally_when_the_database_went_away_meanwhile():
    async def run() -> None:
        store = Store()
        claims = SlotClaims(store)  # type: ignore[arg-type]
        assert await claims.claim("odds", "r1", T0)
        store.down = True
        await claims.finish("odds", "r1", T0, "ok")
        assert claims.offline and claims.local == {("odds", "r1", T0): "ok"}
        store.down = False
        assert await claims.reconcile() == 1 and store.rows[("odds", "r1", T0)] == (True, "ok")

    asyncio.run(run())


class FailingClient:
    async def run(self, call):
        from producers.errors import UpstreamError

        raise UpstreamError("HTTP 503 from liveOdds", source=call.source, endpoint=call.endpoint, http_status=503)


class FailureStore:
    def __init__(self) -> None:
        self.down = True
        self.failures: list[str] = []
        self.logged: list[dict] = []

    async def record_failure(self, **row):
        if self.down:
            raise DatabaseUnavailable("cannot reach the database at db:5432 (connection refused)")
        self.failures.append(row["message_key"])
        return len(self.failures), True

    async def log_collection(self, **row):
        if self.down:
            raise DatabaseUnavailable("cannot reach the database at db:5432 (connection refused)")
        self.logged.append(row)

    async def log_collections(self, rows):
        if self.down:
            raise DatabaseUnavailable("cannot reach the database at db:5432 (connection refused)")
        self.logged += rows


class Notifier:
    def __init__(self) -> None:
        self.alerts: list[str] = []

    async def alert(self, source, error_class, text):
        self.alerts.append(text)


def test_a_call_that_fails_while_the_database_is_down_does_not_wait_for_it_and_is_recorded_later():
    from producers.calls import live_odds
    from producers.collector import Collector

    async def run() -> None:
        notifier = Notifier()
        failures = FailureStore()
        collector = Collector({}, None, failures, notifier, live_odds=FailingClient())  # type: ignore[arg-type]
        for race in ("horse-seoul-1-20241214", "horse-seoul-2-20241214"):
            async with asyncio.timeout(1):  # returns at once: nothing waits for the database
                assert await collector.collect(live_odds(race)) is None
        assert failures.failures == [] and len(collector.unrecorded) == 2 and len(collector.unlogged) == 2
        assert await collector.flush_log() == 0  # still down: kept, in order
        failures.down = False
        assert await collector.flush_log() == 4
        assert failures.failures == ["horse-seoul-1-20241214", "horse-seoul-2-20241214"]
        assert [r["message_key"] for r in failures.logged] == failures.failures
        assert [r["ok"] for r in failures.logged] == [False, False] and len(notifier.alerts) == 2
        assert collector.unrecorded == [] and collector.unlogged == []

    asyncio.run(run())
