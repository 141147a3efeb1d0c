"""``racelab simulator``: the KRA and KSPO APIs on loopback, with a live-odds feed and fault injection.

Paths: ``/B551015/<API>/<operation>`` (KRA), ``/B551014/<SERVICE>/<OPERATION>`` (KSPO, case-sensitive),
``/liveOdds?race_id=...``. Control: ``GET /_sim/clock``, ``GET|POST /_sim/faults``, ``GET /_sim/stats``,
``POST /_sim/stats/reset``, ``GET /_sim/races?date=YYYYMMDD``.

What is visible depends on the simulator clock: entry sheets always; results from post time + 4 min (API299
``finalBit`` 1 from + 10 min); final dividends from + 10 min; live odds from T-60 min, frozen at post time.
Simplification: KRA calls need ``rc_date`` (the real APIs fall back to "last month" without it); the exception is
API9_1, which returns the 30 days up to ``rc_date`` as the real one does. With a service key configured, a call
without it gets code 30; per endpoint, the key may be not approved or out of quota (:mod:`.approvals`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta

import orjson
from aiohttp import web

from producers.simulator import envelope as env
from producers.simulator import render_kra as kra
from producers.simulator import render_kspo as kspo
from producers.simulator.approvals import KeyApprovals
from producers.simulator.clock import SimClock
from producers.simulator.faults import FaultInjector, FaultRule
from producers.simulator.world import TRACKS, Race, World
from schemas import endpoints as ep
from schemas import tracks

log = logging.getLogger(__name__)
KRA_MEETS = {str(t.kra_meet): t.code for t in tracks.TRACKS if t.kra_meet is not None}
CYCLE_TRACK_BY_NAME = {t.kspo_meet: t.code for t in tracks.TRACKS if t.race_type == "cycle" and t.kspo_meet}
DEFAULT_ROWS = 10


class ApiError(Exception):
    """An answer with an API error code instead of data."""

    def __init__(self, code: str, message: str, gateway: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.gateway = code, message, gateway


def _date(text: str | None) -> date:
    if not text or len(text) != 8 or not text.isdigit():
        raise ApiError("11", "NO_MANDATORY_REQUEST_PARAMETERS_ERROR")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ApiError("10", "INVALID_REQUEST_PARAMETER_ERROR") from None


def _paging(prefix: str, q: dict[str, str]) -> tuple[int, int]:
    page_no = int(q.get("pageNo", "1"))
    num_rows = int(q.get("numOfRows", str(DEFAULT_ROWS)))
    if prefix == "B551014" and num_rows > 1000:
        raise ApiError("336", "CANNOT REQUEST MORE THAN 1000 DATA AT A TIME")
    if page_no < 1 or num_rows < 1:
        raise ApiError("10", "INVALID_REQUEST_PARAMETER_ERROR")
    return page_no, num_rows


class Simulator:
    """The simulator's state: world, clock, faults, counters."""

    def __init__(
        self,
        world: World,
        clock: SimClock,
        faults: FaultInjector,
        service_key: str | None = None,
        approvals: KeyApprovals | None = None,
    ) -> None:
        self.world, self.clock, self.faults, self.service_key = world, clock, faults, service_key
        self.approvals = approvals or KeyApprovals()
        self.requests: dict[str, int] = {}
        self.fault_counts: dict[str, dict[str, int]] = {}
        self._dividends: dict[str, list[env.Row]] = {}

    # ---- KRA -------------------------------------------------------------------------------------------------
    def _kra_races(self, q: dict[str, str]) -> tuple[str, date, list[Race]]:
        track = KRA_MEETS.get(q.get("meet", "1"))  # the real APIs default to meet=1 too
        if track is None:
            raise ApiError("10", "INVALID_REQUEST_PARAMETER_ERROR")
        day = _date(q.get("rc_date"))
        races = list(self.world.races(track, day))
        if q.get("rc_no"):
            races = [r for r in races if str(r.race_no) == q["rc_no"].strip()]
        return track, day, races

    def kra_rows(self, path: str, q: dict[str, str]) -> list[env.Row]:
        now = self.clock.now()
        track, day, races = self._kra_races(q)
        if path == ep.KRA_RACE_PLAN.path:
            return kra.race_plan_rows(tuple(races))
        if path == ep.KRA_ENTRY_SHEET.path:
            return kra.entry_sheet_rows(tuple(races))
        if path == ep.KRA_SCRATCHES.path:
            month = [r for d in range(30, -1, -1) for r in self.world.races(track, day - timedelta(days=d))]
            return kra.scratch_rows([r for r in month if r.post_time <= now or r.day == day])
        published = [r for r in races if r.result_published(now)]
        if path == ep.KRA_RACE_RESULT.path:
            return kra.race_result_rows(published)
        if path == ep.KRA_RACE_RESULT_TOTAL.path:
            return kra.race_result_total_rows(published, now)
        if path == ep.KRA_FINAL_DIVIDENDS.path:
            rows = []
            for race in races:
                if race.result_final(now):
                    if race.race_id not in self._dividends:
                        self._dividends[race.race_id] = kra.final_dividend_rows(race)
                    rows.extend(self._dividends[race.race_id])
            return rows
        raise ApiError("12", "NO_OPENAPI_SERVICE_ERROR", gateway=True)

    # ---- KSPO ------------------------------------------------------------------------------------------------
    def _round_races(
        self,
        race_type: str,
        year: str | None,
        round_no: str | None,
        day_no: str | None,
        race_no: str | None,
        meet: str | None,
        final_only: bool,
    ) -> tuple[list[Race], int, int, int]:
        if not year or not year.isdigit() or not round_no:
            raise ApiError("340", "NO MANDATORY REQUEST PARAMETERS ERROR")
        if len(round_no) != 2 or (race_no is not None and len(race_no) != 2):
            return [], 0, 0, 0  # the real gateway: "9" finds nothing, "09" finds the rows
        now = self.clock.now()
        days = [int(day_no)] if day_no else list(range(1, 8))  # a round has up to 7 race days (every-day mode)
        races: list[Race] = []
        for d in days:
            day = self.world.day_of_round(race_type, int(year), int(round_no), d)
            if day is None:
                continue
            for info in TRACKS.values():
                if info.race_type != race_type or (meet and info.name_ko != meet.strip()):
                    continue
                races.extend(r for r in self.world.races(info.code, day) if not final_only or r.result_final(now))
        if race_no is not None:
            races = [r for r in races if r.race_no == int(race_no)]
        return races, int(year), int(round_no), int(day_no or 1)

    def kspo_rows(self, path: str, q: dict[str, str]) -> list[env.Row]:
        endpoint = ep.BY_PATH.get(path)
        if endpoint is None or endpoint.source != "kspo":
            raise ApiError("12", "NO_OPENAPI_SERVICE_ERROR", gateway=True)
        race_type = endpoint.race_type
        if endpoint in (ep.CYCLE_RANK, ep.BOAT_RANK) and q.get("race_day"):
            # Finishers of one date (any round): the rows name their round (tms, day_ord) and their track.
            on = _date(q["race_day"])
            year, rnd, day_no = self.world.round_of(race_type, on)
            now = self.clock.now()
            races = [
                r
                for info in TRACKS.values()
                if info.race_type == race_type
                for r in self.world.races(info.code, on)
                if r.result_final(now) and (not q.get("race_no") or f"{r.race_no:02d}" == q["race_no"])
            ]
            return kspo.rank_rows(races, year, rnd, day_no) if rnd else []
        if endpoint in (ep.CYCLE_RANK, ep.BOAT_RANK):
            races, year, rnd, day = self._round_races(
                race_type, q.get("stnd_year"), q.get("tms"), q.get("day_ord"), q.get("race_no"), None, final_only=True
            )
            by_day: dict[date, list[Race]] = {}
            for race in races:
                by_day.setdefault(race.day, []).append(race)
            return [
                row
                for d, rs in by_day.items()
                for row in kspo.rank_rows(rs, year, rnd, self.world.round_of(race_type, d)[2])
            ]
        required = {
            ep.CYCLE_RESULT: ("stnd_yr", "meet_nm", "week_tcnt", "day_tcnt", "race_no"),
            ep.BOAT_PAYOFF: ("stnd_yr", "week_tcnt", "day_tcnt", "race_no"),
        }.get(endpoint, ())
        if any(not q.get(name) for name in required):
            raise ApiError("340", "NO MANDATORY REQUEST PARAMETERS ERROR")
        final_only = endpoint.kind in ("results", "odds")
        races, year, rnd, day = self._round_races(
            race_type,
            q.get("stnd_yr"),
            q.get("week_tcnt"),
            q.get("day_tcnt"),
            q.get("race_no"),
            q.get("meet_nm"),
            final_only,
        )
        render: dict[ep.Endpoint, Callable[[list[Race], int, int, int], list[env.Row]]] = {
            ep.CYCLE_ENTRIES: kspo.cycle_entry_rows,
            ep.CYCLE_RESULT: kspo.cycle_result_rows,
            ep.CYCLE_PAYOFF: kspo.cycle_payoff_rows,
            ep.BOAT_ENTRIES: kspo.boat_entry_rows,
            ep.BOAT_RESULT: kspo.boat_result_rows,
            ep.BOAT_PAYOFF: kspo.boat_payoff_rows,
        }
        if q.get("day_tcnt"):
            return render[endpoint](races, year, rnd, day)
        rows = []
        for d in sorted({r.day for r in races}):
            rows.extend(
                render[endpoint]([r for r in races if r.day == d], year, rnd, self.world.round_of(race_type, d)[2])
            )
        return rows

    def live_rows(self, q: dict[str, str]) -> list[env.Row]:
        race = self.world.race(q.get("race_id", ""))
        return [] if race is None else kra.live_odds_rows(race, self.clock.now())

    # ---- HTTP ------------------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        prefix = request.match_info.get("prefix", "")
        path = request.path.removeprefix(f"/{prefix}/").lstrip("/") if prefix else request.path.lstrip("/")
        self.requests[path] = self.requests.get(path, 0) + 1
        delay, fault = self.faults.pick(path)
        if delay:
            await asyncio.sleep(delay)
        q = dict(request.query)
        if fault is not None and fault.fault not in ("truncated",):
            self._count_fault(path, fault.fault)
            return await self._fault_response(fault.fault)
        key = q.pop("serviceKey", q.pop("ServiceKey", ""))
        if self.service_key is not None and key != self.service_key:
            return web.Response(body=env.gateway_error("30"), content_type="text/xml")
        refusal = self.approvals.refusal(prefix, path)
        if refusal is not None:
            return web.Response(status=refusal.status, body=refusal.body, content_type=refusal.content_type)
        body, content_type = self._answer(prefix, path, q)
        if fault is not None:  # truncated: the real body, cut short
            self._count_fault(path, fault.fault)
            body = body[: max(1, len(body) // 2)]
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    def _answer(self, prefix: str, path: str, q: dict[str, str]) -> tuple[bytes, str]:
        json_wanted = q.get("_type") == "json" if prefix != "B551014" else q.get("resultType") == "json"
        try:
            page_no, num_rows = _paging(prefix, q)
            if prefix == "B551015":
                rows = self.kra_rows(path, q)
            elif prefix == "B551014":
                rows = self.kspo_rows(path, q)
            else:
                rows = self.live_rows(q)
        except ValueError:
            return env.json_error("10", "INVALID_REQUEST_PARAMETER_ERROR"), "application/json"
        except ApiError as exc:
            if exc.gateway:
                return env.gateway_error(exc.code), "text/xml"
            return env.json_error(exc.code, exc.message), "application/json"
        chunk, total = env.page(rows, page_no, num_rows)
        if json_wanted:
            return env.json_body(chunk, page_no, num_rows, total), "application/json"
        return env.xml_body(chunk, page_no, num_rows, total), "text/xml"

    def _count_fault(self, path: str, fault: str) -> None:
        counts = self.fault_counts.setdefault(path, {})
        counts[fault] = counts.get(fault, 0) + 1

    async def _fault_response(self, fault: str) -> web.Response:
        if fault.startswith("http_"):
            return web.Response(status=int(fault[5:]), text="upstream error")
        if fault in ("code_22", "code_23", "code_30"):
            return web.Response(body=env.gateway_error(fault[5:]), content_type="text/xml")
        if fault == "code_99":
            return web.Response(body=env.json_error("99", "UNKNOWN_ERROR"), content_type="application/json")
        if fault == "timeout":
            await asyncio.sleep(3600)
        return web.Response(body=b'{"response": {"header": ]] not json', content_type="application/json")

    # ---- control ---------------------------------------------------------------------------------------------
    async def get_clock(self, request: web.Request) -> web.Response:
        return web.json_response({"now": self.clock.now().isoformat(), "speed": self.clock.speed})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"rules": [asdict(r) for r in self.faults.rules]})

    async def set_faults(self, request: web.Request) -> web.Response:
        try:
            payload = orjson.loads(await request.read())
            rules = [FaultRule(**{k: v for k, v in r.items() if k != "fired"}) for r in payload.get("rules", [])]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=422)
        self.faults.replace(rules)
        return web.json_response({"rules": [asdict(r) for r in rules]})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "faults": self.fault_counts})

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.requests.clear()
        self.fault_counts.clear()
        return web.json_response({"ok": True})

    async def get_races(self, request: web.Request) -> web.Response:
        day = _date(request.query.get("date"))
        races = [
            {
                "race_id": r.race_id,
                "post_time": r.post_time.isoformat(),
                "runners": len(r.runners),
                "scratched": sorted(r.scratched),
                "cancelled": r.cancelled,
            }
            for t in TRACKS
            for r in self.world.races(t, day)
        ]
        return web.json_response({"date": day.isoformat(), "races": races})


def build_app(sim: Simulator) -> web.Application:
    """The aiohttp application of a simulator."""
    app = web.Application()
    app.router.add_get("/_sim/clock", sim.get_clock)
    app.router.add_get("/_sim/faults", sim.get_faults)
    app.router.add_post("/_sim/faults", sim.set_faults)
    app.router.add_get("/_sim/stats", sim.get_stats)
    app.router.add_post("/_sim/stats/reset", sim.reset_stats)
    app.router.add_get("/_sim/races", sim.get_races)
    app.router.add_get("/liveOdds", sim.handle)
    app.router.add_get("/{prefix:B55101[45]}/{service}/{operation}", sim.handle)
    return app


async def serve(sim: Simulator, host: str, port: int) -> web.AppRunner:
    """Start serving on ``host:port`` (port 0 = free port); returns the runner (``runner.addresses``)."""
    runner = web.AppRunner(build_app(sim), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def parse_start(text: str | None) -> datetime | None:
    """``--clock-start`` value: ISO time with offset, e.g. ``2024-12-14T10:00+09:00``."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("--clock-start needs a UTC offset, e.g. 2024-12-14T10:00+09:00")
    return moment
