"""A small normalizer of KRA API160_1 (final dividends) pages into ``odds_snapshots`` rows, for the peer pipelines.

An item ``{"meet": "서울", "rcDate": 20241213, "rcNo": 3, "pool": "단승식", "chulNo": 3, "chulNo2": 0, "chulNo3": 0,
"odds": 4.5}`` becomes ``(time, race_id, pool, selection, odds, is_final, pool_total, popularity_rank, source)``:
race id ``horse-seoul-3-20241213``, time the end of the race day in Korea (23:59:59 +09:00, the final snapshot),
unordered pools' numbers sorted (``3-7``), no pool total or popularity rank. Numbers may come as strings ("3",
"4.5"), as the API sends some of them. These are the same values RaceLab stores, so the tables compare exactly.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

COLUMNS = ("time", "race_id", "pool", "selection", "odds", "is_final", "pool_total", "popularity_rank", "source")
KST = timezone(timedelta(hours=9))
TRACKS = {"서울": "seoul", "부산경남": "busan", "부경": "busan", "제주": "jeju"}
POOLS = {
    "단승식": "WIN",
    "연승식": "PLC",
    "복승식": "QNL",
    "쌍승식": "EXA",
    "복연승식": "QPL",
    "삼복승식": "TLA",
    "삼쌍승식": "TRI",
}
UNORDERED = {"QNL", "QPL", "TLA"}
Row = tuple[datetime, str, str, str, float, bool, None, None, str]


class FirstPage:
    """Prints the wall-clock time of the first page consumed, once: the benchmark measures from the first stored
    row, and this says how much work a pipeline had done before that row appeared."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self) -> None:
        if not self.seen:
            self.seen = True
            print(f"first page consumed at {time.time():.3f}", flush=True)


def page_items(body: bytes) -> list[dict[str, Any]]:
    """The items of a data.go.kr JSON page: none (``items: ""``), one (an object) or a list."""
    items = orjson.loads(body)["response"]["body"]["items"]
    if not items:
        return []
    item = items["item"]
    return [item] if isinstance(item, dict) else list(item)


def _selection(pool: str, a: int, b: int, c: int) -> str:
    if not b:
        return str(a)
    if not c:
        if pool in UNORDERED and b < a:
            a, b = b, a
        return f"{a}-{b}"
    if pool in UNORDERED:
        a, b, c = sorted((a, b, c))
    return f"{a}-{b}-{c}"


def rows(body: bytes) -> list[Row]:
    """The odds rows of one page."""
    out: list[Row] = []
    races: dict[tuple[Any, Any, Any], tuple[str, datetime]] = {}
    for item in page_items(body):
        key = (item["meet"], item["rcDate"], item["rcNo"])
        race = races.get(key)
        if race is None:
            day = str(item["rcDate"])
            moment = datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), 23, 59, 59, tzinfo=KST)
            race = races[key] = (f"horse-{TRACKS[item['meet'].strip()]}-{int(item['rcNo'])}-{day}", moment)
        pool = POOLS[item["pool"]]
        selection = _selection(pool, int(item["chulNo"]), int(item["chulNo2"] or 0), int(item["chulNo3"] or 0))
        out.append((race[1], race[0], pool, selection, float(item["odds"]), True, None, None, "kra"))
    return out
