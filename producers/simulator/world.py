"""The simulated world: race days, entries, results and odds, generated deterministically from a seed.

Everything about a (track, day) comes from ``random.Random(f"{seed}:{track}:{day}")``, so the same seed always
gives the same cards, results and dividends, in any order of requests. Results follow the runners' strengths
(Plackett-Luce); final odds follow the same strengths (Harville formulas minus the takeout), so the favourite wins
most often and every dividend agrees with the result. Live odds drift from market open (T-60 min) to the final
odds at post time.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from schemas import race_ids, tracks
from schemas.timezones import KST

TAKEOUT = 0.27
# KSPO breaks: no cycle or boat racing in the week (Monday to Sunday) around these dates (Seollal, summer, Chuseok).
KSPO_BREAKS = ((2, 10), (8, 5), (9, 20))
MARKET_OPEN = timedelta(minutes=60)
RESULT_AFTER = timedelta(minutes=4)  # unofficial result published
FINAL_AFTER = timedelta(minutes=10)  # result official, final dividends published


@dataclass(frozen=True)
class TrackInfo:
    """A track as the simulator knows it: the track (:mod:`schemas.tracks`) and its simulated post times."""

    code: str
    race_type: str
    name_ko: str
    weekdays: tuple[int, ...]  # Monday = 0
    first_post: time
    interval_min: int


# First post time of a race day and minutes between posts; a track not listed gets its race type's default.
POST_TIMES: dict[str, tuple[time, int]] = {
    "seoul": (time(10, 35), 35),
    "busan": (time(10, 50), 35),
    "changwon": (time(11, 10), 30),
    "busan_cycle": (time(11, 20), 30),
}
DEFAULT_POST_TIMES: dict[str, tuple[time, int]] = {
    "horse": (time(11, 0), 35),
    "cycle": (time(11, 0), 30),
    "boat": (time(11, 0), 30),
}
TRACKS: dict[str, TrackInfo] = {
    t.code: TrackInfo(
        t.code, t.race_type, t.name_ko, t.weekdays, *POST_TIMES.get(t.code, DEFAULT_POST_TIMES[t.race_type])
    )
    for t in tracks.TRACKS
}
FIELD_SIZE = {"cycle": (7, 7), "boat": (6, 6), "horse": (12, 16)}
POOLS = ("WIN", "PLC", "QNL", "EXA", "QPL", "TLA", "TRI")
ORDERED = {"EXA", "TRI"}
POOL_SIZE = {"WIN": 1, "PLC": 1, "QNL": 2, "EXA": 2, "QPL": 2, "TLA": 3, "TRI": 3}

_FAMILY = "김이박최정강조윤장임한오서신권황안송류홍"
_GIVEN = "민서준도윤우지현하은수영재성태경호진승연"
_HORSE = "바람별빛하늘강산천둥번개구름파도노을새벽태양달빛은하"


def is_kspo_holiday(day: date) -> bool:
    """Whether a day falls in a KSPO break week."""
    monday = day - timedelta(days=day.weekday())
    return any(monday <= date(day.year, m, d) <= monday + timedelta(days=6) for m, d in KSPO_BREAKS)


def _person(rng: random.Random) -> str:
    return rng.choice(_FAMILY) + rng.choice(_GIVEN) + rng.choice(_GIVEN)


def _horse_name(rng: random.Random) -> str:
    return "".join(rng.choice(_HORSE) for _ in range(rng.randint(2, 4)))


@dataclass(frozen=True)
class Runner:
    """One entry of a race."""

    entry_no: int
    participant_id: str
    name: str
    jockey_id: str
    jockey_name: str
    trainer_id: str
    trainer_name: str
    owner_id: int
    owner_name: str
    age: int
    sex: str
    carried_weight: float
    body_weight: int
    body_weight_delta: int
    rating: int | None
    grade: str
    strength: float


@dataclass
class Race:
    """One race with its card, its outcome and its market."""

    race_id: str
    race_type: str
    track: str
    day: date
    race_no: int
    post_time: datetime
    distance_m: int
    grade: str
    name: str
    runners: list[Runner]
    scratched: dict[int, str]
    disqualified: set[int]
    did_not_finish: set[int]
    finish_order: list[int]
    finish_times: dict[int, float]
    cancelled: bool
    seed: str
    _final: dict[tuple[str, tuple[int, ...]], float] | None = field(default=None, repr=False)

    @property
    def starters(self) -> list[Runner]:
        return [r for r in self.runners if r.entry_no not in self.scratched]

    def win_probabilities(self) -> dict[int, float]:
        total = sum(r.strength for r in self.starters)
        return {r.entry_no: r.strength / total for r in self.starters}

    def result_published(self, now: datetime) -> bool:
        return now >= self.post_time + RESULT_AFTER

    def result_final(self, now: datetime) -> bool:
        return now >= self.post_time + FINAL_AFTER

    def final_odds(self) -> dict[tuple[str, tuple[int, ...]], float]:
        """Final odds of every pool and selection (unordered selections sorted); empty if cancelled."""
        if self._final is None:
            self._final = {} if self.cancelled else _final_odds(self)
        return self._final

    def winning(self) -> dict[str, list[tuple[int, ...]]]:
        """Winning selections per pool (PLC: top 3, top 2 with fewer than 8 starters)."""
        order = self.finish_order
        if self.cancelled or len(order) < 3:
            return {}
        places = 3 if len(self.starters) >= 8 else 2
        return {
            "WIN": [(order[0],)],
            "PLC": [(n,) for n in order[:places]],
            "QNL": [tuple(sorted(order[:2]))],
            "EXA": [tuple(order[:2])],
            "QPL": [tuple(sorted(p)) for p in itertools.combinations(order[:3], 2)],
            "TLA": [tuple(sorted(order[:3]))],
            "TRI": [tuple(order[:3])],
        }

    def live_odds(self, now: datetime) -> dict[tuple[str, tuple[int, ...]], tuple[float, int]]:
        """(odds, pool total in KRW) of WIN, PLC and QNL at ``now``; empty before the market opens."""
        opens = self.post_time - MARKET_OPEN
        if self.cancelled or now < opens:
            return {}
        progress = min(1.0, (now - opens) / MARKET_OPEN)
        minute = (min(now, self.post_time) - opens).total_seconds() / 60.0
        rng = random.Random(f"{self.seed}:live")  # noqa: S311 - simulation
        final = self.final_odds()
        base_total = rng.randint(200, 900) * 1_000_000
        out: dict[tuple[str, tuple[int, ...]], tuple[float, int]] = {}
        for (pool, selection), odds in final.items():
            if pool not in ("WIN", "PLC", "QNL"):
                continue
            phase1, phase2, amp = rng.uniform(0, 6.28), rng.uniform(0, 6.28), rng.uniform(0.15, 0.45)
            wobble = math.sin(minute / 7.0 + phase1) + 0.5 * math.sin(minute / 2.3 + phase2)
            value = odds * math.exp(amp * (1.0 - progress) * wobble)
            share = {"WIN": 0.35, "PLC": 0.25, "QNL": 0.4}[pool]
            out[(pool, selection)] = (max(1.0, round(value, 1)), int(base_total * share * progress**1.5))
        return out


def _final_odds(race: Race) -> dict[tuple[str, tuple[int, ...]], float]:
    p = race.win_probabilities()
    rng = random.Random(f"{race.seed}:odds")  # noqa: S311 - simulation
    entries = sorted(p)
    places = 3 if len(entries) >= 8 else 2

    def price(prob: float) -> float:
        noisy = prob * rng.uniform(0.85, 1.15)
        return max(1.0, math.floor((1.0 - TAKEOUT) / max(noisy, 1e-6) * 10) / 10)

    def exacta(i: int, j: int) -> float:
        return p[i] * p[j] / (1.0 - p[i])

    def trifecta(i: int, j: int, k: int) -> float:
        return exacta(i, j) * p[k] / (1.0 - p[i] - p[j])

    odds: dict[tuple[str, tuple[int, ...]], float] = {}
    for i in entries:
        odds[("WIN", (i,))] = price(p[i])
        odds[("PLC", (i,))] = max(1.0, round(1.0 + (odds[("WIN", (i,))] - 1.0) / (places + 0.5), 1))
    for i, j in itertools.combinations(entries, 2):
        odds[("QNL", (i, j))] = price(exacta(i, j) + exacta(j, i))
        odds[("QPL", (i, j))] = max(1.0, round(odds[("QNL", (i, j))] / 2.8, 1))
    for i, j in itertools.permutations(entries, 2):
        odds[("EXA", (i, j))] = price(exacta(i, j))
    for trio in itertools.combinations(entries, 3):
        odds[("TLA", trio)] = price(sum(trifecta(*perm) for perm in itertools.permutations(trio)))
    for trio in itertools.permutations(entries, 3):
        odds[("TRI", trio)] = price(trifecta(*trio))
    return odds


class World:
    """Every race the simulator knows about; race days are generated on first use and cached."""

    def __init__(self, seed: int = 7, every_day: bool = False) -> None:
        self.seed = seed
        self.every_day = every_day

    def is_race_day(self, track: str, day: date) -> bool:
        if self.every_day:
            return True
        info = TRACKS[track]
        if day.weekday() not in info.weekdays:
            return False
        return info.race_type == "horse" or not is_kspo_holiday(day)

    def race_days(self, track: str, start: date, end: date) -> Iterator[date]:
        day = start
        while day <= end:
            if self.is_race_day(track, day):
                yield day
            day += timedelta(days=1)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - the world lives as long as the server
    def _rounds(self, race_type: str, year: int) -> dict[date, tuple[int, int]]:
        """KSPO rounds of a year: the n-th week with racing (holiday weeks have none) is round n; day n of a round is
        its n-th race day in that year. Round numbers therefore drift from ISO week numbers after each break."""
        codes = [t.code for t in TRACKS.values() if t.race_type == race_type]
        day, days = date(year, 1, 1), []
        while day.year == year:
            if any(self.is_race_day(code, day) for code in codes):
                days.append(day)
            day += timedelta(days=1)
        weeks: dict[date, list[date]] = {}
        for d in days:
            weeks.setdefault(d - timedelta(days=d.weekday()), []).append(d)
        return {
            d: (round_no, day_no)
            for round_no, monday in enumerate(sorted(weeks), start=1)
            for day_no, d in enumerate(weeks[monday], start=1)
        }

    def round_of(self, race_type: str, day: date) -> tuple[int, int, int]:
        """KSPO (year, round, day of round) of a race day; (year, 0, 0) for a day without racing."""
        round_no, day_no = self._rounds(race_type, day.year).get(day, (0, 0))
        return day.year, round_no, day_no

    def day_of_round(self, race_type: str, year: int, round_no: int, day_no: int) -> date | None:
        """Inverse of :meth:`round_of`."""
        for day, numbers in self._rounds(race_type, year).items():
            if numbers == (round_no, day_no):
                return day
        return None

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - the world lives as long as the server
    def races(self, track: str, day: date) -> tuple[Race, ...]:
        """The races of one track and day (empty when it is not a race day)."""
        if not self.is_race_day(track, day):
            return ()
        info = TRACKS[track]
        rng = random.Random(f"{self.seed}:{track}:{day.isoformat()}")  # noqa: S311 - simulation
        count = rng.randint(10, 16)
        first = datetime.combine(day, info.first_post, tzinfo=KST)
        return tuple(
            self._race(info, day, n, first + timedelta(minutes=info.interval_min * (n - 1)), rng)
            for n in range(1, count + 1)
        )

    def race(self, race_id: str) -> Race | None:
        """A race by id (``horse-seoul-3-20241210``)."""
        try:
            key = race_ids.parse_known(race_id)
        except ValueError:
            return None
        return next((r for r in self.races(key.track, key.day) if r.race_no == key.race_no), None)

    def _race(self, info: TrackInfo, day: date, race_no: int, post: datetime, rng: random.Random) -> Race:
        low, high = FIELD_SIZE[info.race_type]
        size = rng.randint(low, high)
        runners = [self._runner(info, n, rng) for n in range(1, size + 1)]
        scratched: dict[int, str] = {}
        if info.race_type == "horse":
            for r in runners:
                if rng.random() < 0.05 and len(runners) - len(scratched) > 8:
                    scratched[r.entry_no] = rng.choice(["마체이상", "질병", "기수변경불가"])
        cancelled = rng.random() < 0.01
        starters = [r for r in runners if r.entry_no not in scratched]
        # Plackett-Luce: draw finishers one by one in proportion to strength.
        pool, order = list(starters), []
        while pool:
            pick = rng.choices(pool, weights=[r.strength for r in pool])[0]
            order.append(pick.entry_no)
            pool.remove(pick)
        disqualified = {order.pop(rng.randrange(3, len(order)))} if rng.random() < 0.03 and len(order) > 6 else set()
        dnf = {order.pop()} if rng.random() < 0.02 and len(order) > 6 else set()
        distance = {"horse": rng.choice([1000, 1200, 1300, 1400, 1600, 1800, 2000]), "cycle": 1691, "boat": 600}[
            info.race_type
        ]
        speed = {"horse": 16.2, "cycle": 15.0, "boat": 13.5}[info.race_type]
        base = distance / speed
        # Finish times grow with the position (a later finisher is never faster): the winner's time plus gaps.
        times, elapsed = {}, base + rng.uniform(-0.5, 0.5)
        for entry in order:
            times[entry] = round(elapsed, 1)
            elapsed += rng.choice([0.0, 0.1, 0.1, 0.2, 0.3, 0.5, 0.8])
        grade = {
            "horse": rng.choice(["국6등급", "국5등급", "국4등급", "국3등급", "혼4등급"]),
            "cycle": rng.choice(["선발", "우수", "특선"]),
            "boat": rng.choice(["일반", "특선"]),
        }[info.race_type]
        return Race(
            race_id=f"{info.race_type}-{info.code}-{race_no}-{day:%Y%m%d}",
            race_type=info.race_type,
            track=info.code,
            day=day,
            race_no=race_no,
            post_time=post.astimezone(UTC),
            distance_m=distance,
            grade=grade,
            name="일반" if rng.random() < 0.8 else rng.choice(["스포츠서울배", "농림축산식품부장관배", "YTN배"]),
            runners=runners,
            scratched=scratched,
            disqualified=disqualified,
            did_not_finish=dnf,
            finish_order=[] if cancelled else order,
            finish_times={} if cancelled else times,
            cancelled=cancelled,
            seed=f"{self.seed}:{info.code}:{day.isoformat()}:{race_no}",
        )

    def _runner(self, info: TrackInfo, entry_no: int, rng: random.Random) -> Runner:
        horse = info.race_type == "horse"
        pid = f"{rng.randint(10000, 59999):07d}" if horse else f"{rng.randint(2000, 2025)}{rng.randint(1, 9999):04d}"
        return Runner(
            entry_no=entry_no,
            participant_id=pid,
            name=_horse_name(rng) if horse else _person(rng),
            jockey_id=f"{rng.randint(80000, 80700):06d}",
            jockey_name=_person(rng),
            trainer_id=f"{rng.randint(70000, 70300):06d}",
            trainer_name=_person(rng),
            owner_id=rng.randint(100000, 129999),
            owner_name=_person(rng),
            age=rng.randint(2, 7) if horse else rng.randint(21, 48),
            sex=rng.choice(["수", "암", "거"]) if horse else rng.choice(["남", "남", "남", "여"]),
            carried_weight=float(rng.choice([52, 53, 54, 55, 56, 57, 58])) if horse else 0.0,
            body_weight=rng.randint(420, 540) if horse else rng.randint(48, 80),
            body_weight_delta=rng.randint(-8, 8),
            rating=None if rng.random() < 0.1 else rng.randint(0, 90),
            grade=rng.choice(["A1", "A2", "B1", "B2", "B3", "S1", "S2"]),
            strength=rng.lognormvariate(0, 0.6),
        )
