"""Requests/s one KRA client sustains against the simulator, rate limiter off.

The simulator runs in its own process (``racelab simulator``) so client and server each get a core, as they
would in production where the API is remote. Usage::

    python -m benchmarks.client_requests [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from datetime import date

from producers.kra import KraClient
from producers.ratelimit import RateLimiter
from runtime.settings import KraSettings

DAY = date(2024, 12, 14)


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "racelab.cli", "simulator", "--port", "0", "--clock-start", "2024-12-15T00:00+09:00"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, match.group(0)


async def run(base: str, seconds: float, concurrency: int, endpoint: str, race_no: int | None) -> None:
    settings = KraSettings(base_url=f"{base}/B551015", max_concurrency=concurrency, page_size=1000)
    latencies: list[float] = []
    rows = 0
    async with KraClient(settings, limiter=RateLimiter(None, concurrency)) as client:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal rows
            while time.monotonic() < deadline:
                started = time.monotonic()
                params = {"meet": "1", "rc_date": f"{DAY:%Y%m%d}"}
                if race_no is not None:
                    params["rc_no"] = str(race_no)
                page = await client.fetch_page(endpoint, params)
                latencies.append(time.monotonic() - started)
                rows += page.item_count

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    print(
        f"{endpoint}: {len(latencies)} requests in {elapsed:.1f}s = {len(latencies) / elapsed:,.0f} req/s, "
        f"{rows / elapsed:,.0f} rows/s; latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms (concurrency {concurrency}, limiter off)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    proc, base = start_simulator()
    try:
        asyncio.run(run(base, args.seconds, args.concurrency, "API26_2/entrySheet_2", None))
        asyncio.run(run(base, args.seconds, args.concurrency, "API160_1/integratedInfo_1", 1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
