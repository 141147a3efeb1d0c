"""Pictures for people, on real rows: the status page in Debian's headless Chromium and ``racelab query odds --plot``.

A short piece of the pipeline runs for real: the simulator (an accelerated clock), ``racelab run processors``,
``racelab run sink`` and ``racelab run api`` as processes on the real broker and TimescaleDB. Through the API the
test collects a race day's horse schedules, one race's entries, live odds every simulated minute or so until after
the post time, then its final dividends and results; one poison message goes to the raw results topic (the
processors route it to the DLQ). Then Chromium opens ``/``: a wrong key shows the 401 message and no numbers; the
right key shows the status per kind, which must be what the database holds (queried here) and what the status
answer says (lag, DLQ), and the race view shows the chart with one line per runner. The screenshot is checked:
its size, that it is not blank, and that the chart's region is drawn.
"""

from __future__ import annotations

import asyncio
import io
import re
import signal
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from PIL import Image
from playwright.async_api import FloatRect, Page, async_playwright, expect

from producers.simulator.clock import SimClock
from producers.simulator.world import World
from runtime.settings import Settings
from schemas.raw import RawHeaders
from schemas.topics import TopicCatalogue

from .chromium import FLAGS, chromium_path
from .conftest import pipeline_env, scalar, simulator_env, start_component
from .test_api import _listening_url, fetch
from .test_producers import start_sim

pytestmark = pytest.mark.integration
KEY = "integration-page-key-7c41d9e2a0"
H = {"X-Ingestion-Key": KEY}
DAY = date(2024, 12, 14)
WORLD = World(seed=5)
RACE = WORLD.races("seoul", DAY)[1]  # horse-seoul-2-20241214, off at 02:10Z (11:10 KST), 14 runners
START = RACE.post_time - timedelta(minutes=30)
SPEED = 60.0  # one simulated minute per second
KINDS = ("schedules", "entries", "odds", "results")
SVG_NS = "{http://www.w3.org/2000/svg}"
MARKUP_RACE = "horse-busan-9-20241214"
MARKUP = '<img src=x onerror="window.pwned=1"><b>bold</b> &amp; 경주'


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_path()


async def poison_result(settings: Settings) -> None:
    """A raw results message whose body is not JSON: the processors send it to the results DLQ."""
    headers = RawHeaders(
        source="kra",
        kind="results",
        endpoint="API299/Race_Result_total",
        params={"rc_date": "20241214"},
        fetched_at=datetime.now(UTC),
        poll_id="page-test",
        http_status=200,
    ).to_kafka()
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap_servers)
    await producer.start()
    try:
        topic = TopicCatalogue(settings.topics.prefix).raw("results")
        await producer.send_and_wait(topic, b"<html>not json</html>", key=RACE.race_id.encode(), headers=headers)
    finally:
        await producer.stop()


async def collect_a_race(http: httpx.AsyncClient, settings: Settings, clock: SimClock) -> None:
    """Schedules, entries, live odds until after the post time, then final dividends and results."""
    answer = await http.post("/api/ingestion/trigger/schedules", json={"date": "2024-12-14", "raceTypes": ["horse"]})
    assert answer.json()["success"] is True, answer.text
    async with asyncio.timeout(60):  # live odds need the stored post time (the sink writes the schedule)
        while True:
            if await scalar(settings, "SELECT count(*) FROM races WHERE race_id = $1", RACE.race_id):
                break
            await asyncio.sleep(0.3)
    assert (await http.post("/api/ingestion/trigger/entries", json={"raceIds": [RACE.race_id]})).json()["success"]
    live = 0
    while clock.now() < RACE.post_time + timedelta(minutes=1, seconds=30):
        answer = (await http.post("/api/ingestion/trigger/odds", json={"raceIds": [RACE.race_id]})).json()
        assert answer["success"] is True and answer["data"]["calls"][0]["endpoint"] == "liveOdds", answer
        live += 1
        await asyncio.sleep(1.2)
    assert live >= 8
    published = RACE.post_time + timedelta(minutes=11)  # final dividends and results from post + 10 min
    await asyncio.sleep(max(0.0, (published - clock.now()).total_seconds() / SPEED))
    for kind in ("odds", "results"):
        answer = (await http.post(f"/api/ingestion/trigger/{kind}", json={"raceIds": [RACE.race_id]})).json()
        assert answer["success"] is True and answer["data"]["collected"] >= 1, answer
    await poison_result(settings)


async def until_landed(http: httpx.AsyncClient, settings: Settings) -> dict:
    """Wait until every collected row is stored and the poison message is in the DLQ; the status answer then."""
    finals = len(RACE.final_odds())
    async with asyncio.timeout(120):
        while True:
            stored_finals = await scalar(
                settings, "SELECT count(*) FROM odds_snapshots WHERE race_id = $1 AND is_final", RACE.race_id
            )
            results = await scalar(settings, "SELECT count(*) FROM results WHERE race_id = $1", RACE.race_id)
            status = (await http.get("/api/ingestion/status", params={"date": "2024-12-14"})).json()["data"]
            dead = {d["kind"]: d["total"] for d in status["dlq"] or []}
            unstored = [s["unstoredSeconds"] for s in status["sources"] if s["unstoredSeconds"]]
            if stored_finals == finals and results == len(RACE.runners) and dead.get("results") == 1 and not unstored:
                await asyncio.sleep(2)  # commits of the last batches
                return (await http.get("/api/ingestion/status", params={"date": "2024-12-14"})).json()["data"]
            await asyncio.sleep(0.5)


async def database_numbers(settings: Settings) -> dict[str, dict[str, int]]:
    """Per kind, from the tables: calls about the day (ok, failed, pages) and the rows stored for its races."""
    calls = {
        r["kind"]: r
        for r in await fetch(
            settings,
            "SELECT kind, count(*) FILTER (WHERE ok) AS ok, count(*) FILTER (WHERE NOT ok) AS failed, "
            "coalesce(sum(pages) FILTER (WHERE ok), 0) AS pages FROM collection_log WHERE race_date = $1 "
            "GROUP BY kind",
            DAY,
        )
    }
    (rows,) = await fetch(
        settings,
        "WITH day AS (SELECT race_id, status FROM races WHERE race_date = $1) SELECT "
        "(SELECT count(*) FROM day WHERE status <> 'unknown') AS schedules, "
        "(SELECT count(*) FROM entries JOIN day USING (race_id)) AS entries, "
        "(SELECT count(*) FROM odds_snapshots JOIN day USING (race_id)) AS odds, "
        "(SELECT count(*) FROM results JOIN day USING (race_id)) AS results",
        DAY,
    )
    return {
        kind: {
            "collected": calls[kind]["ok"] if kind in calls else 0,
            "failed": calls[kind]["failed"] if kind in calls else 0,
            "messages": calls[kind]["pages"] if kind in calls else 0,
            "stored": rows[kind],
        }
        for kind in KINDS
    }


async def shown(page: Page, kind: str, field: str) -> str:
    return (await page.text_content(f'#kinds tr[data-kind="{kind}"] td[data-field="{field}"]') or "").strip()


async def check_refused(page: Page, url: str) -> None:
    await page.goto(url + "/")
    assert await page.is_visible("#key-form") and await page.is_hidden("#content")
    await page.fill("#key", "not-the-ingestion-key")
    await page.click("#key-submit")
    await page.wait_for_selector("#message:not([hidden])")
    message = await page.text_content("#message") or ""
    assert message.startswith("401 Unauthorized: the control API refused the key"), message
    assert await page.is_hidden("#content") and await page.locator("#kinds tbody tr").count() == 0
    assert await page.locator("#races tbody tr").count() == 0 and await page.text_content("#summary") == ""
    assert await page.evaluate("sessionStorage.length") == 0  # a refused key is not kept
    visible = await page.inner_text("body")
    assert not re.search(r"\d", visible.replace("401", ""))  # no numbers at all on the refused page


async def check_status(page: Page, db: dict[str, dict[str, int]], races: int, status: dict) -> None:
    await page.fill("#key", KEY)
    await page.click("#key-submit")
    await page.wait_for_selector('#kinds tr[data-kind="odds"]')
    assert await page.is_hidden("#message") and await page.is_hidden("#key-form")
    assert await page.evaluate("sessionStorage.getItem('racelab.ingestionKey')") == KEY
    assert await page.evaluate("localStorage.length") == 0
    assert KEY not in await page.content()  # the key is not written into the document
    summary = await page.text_content("#summary") or ""
    expected = f"2024-12-14 · {races:,} races ({db['schedules']['stored']:,} from a schedule) · 0 open failures · "
    assert summary.startswith(expected), summary
    lag = {(x["stage"], x["kind"]): x["lag"] for x in status["lag"]}
    dlq = {x["kind"]: x for x in status["dlq"]}
    for kind in KINDS:
        for field in ("collected", "failed", "messages", "stored"):
            assert await shown(page, kind, field) == f"{db[kind][field]:,}", (kind, field)
        assert await shown(page, kind, "dlq") == f"{dlq[kind]['onDate']:,} / {dlq[kind]['total']:,}"
        for stage in ("processors", "sink", "archiver"):
            assert await shown(page, kind, f"lag-{stage}") == f"{lag[(stage, kind)]:,}", (stage, kind)
        assert re.fullmatch(r"\d+ (s|min)", await shown(page, kind, "freshness")), kind
    assert await shown(page, "results", "dlq") == "0 / 1"  # the poison message failed today, not on the race day
    assert db["odds"]["collected"] >= 10 and db["odds"]["stored"] > len(RACE.final_odds())  # live and final


async def check_escaped(page: Page) -> None:
    """A stored text that looks like markup is shown as that text: no element is made from it."""
    row = page.locator(f'#races tr[data-race="{MARKUP_RACE}"]')
    assert await row.locator("td").first.text_content() == f"{MARKUP_RACE} · {MARKUP}"
    assert await page.locator("#races img, #races b").count() == 0
    assert await page.evaluate("window.pwned") is None


async def check_chart(page: Page, win_selections: int, win_finals: int) -> None:
    row = page.locator(f'#races tr[data-race="{RACE.race_id}"]')
    assert "11:10:00" in (await row.inner_text())  # post time in Korean time
    await row.locator("button").click()
    await page.wait_for_selector('#chart svg g[id^="odds-line-"]')
    assert await page.input_value("#pool") == "WIN"
    assert await page.locator('#chart svg g[id^="odds-line-"]').count() == win_selections
    assert await page.locator('#chart svg g[id^="odds-line-"] path').count() == win_selections
    assert await page.locator('#chart svg g[id^="final-"]').count() == win_finals
    assert await page.locator("#chart svg g#post-time").count() == 1
    title = await page.locator("#chart svg text").all_text_contents()
    assert f"{RACE.race_id} · WIN odds" in title and "time (KST)" in title
    lines = page.locator('#chart svg g[id^="odds-line-"]')
    await page.select_option("#pool", "QNL")  # the page's policy forbids eval: wait through locators, not scripts
    await expect(page.locator("#chart svg text", has_text="QNL odds (10 shortest-priced of 91)")).to_have_count(1)
    await expect(lines).to_have_count(10)
    await page.select_option("#pool", "WIN")
    await expect(page.locator("#chart svg text", has_text="WIN odds")).to_have_count(1)
    await expect(lines).to_have_count(win_selections)


def check_screenshot(png: bytes, chart_box: FloatRect) -> None:
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = picture.size
    assert width == 1280 and height > 900, picture.size
    colours = picture.getcolors(maxcolors=10_000_000)
    assert colours is not None and len(colours) > 100  # not blank: text, tables, the chart's lines
    x, y, w, h = (int(chart_box[k]) for k in ("x", "y", "width", "height"))
    assert w > 600 and h > 300, chart_box
    region = picture.crop((x, y, x + w, y + h))
    counts = {rgb: n for n, rgb in region.getcolors(maxcolors=w * h) or []}
    drawn = w * h - counts.get((255, 255, 255), 0)
    assert drawn > 0.03 * w * h  # lines, axes and labels, not an empty box
    assert len(counts) > 30  # one colour per runner, antialiased


async def test_status_page_in_chromium_and_the_plot_command(
    settings: Settings, db_schema: str, chromium: str, tmp_path: Path
):
    simulator, runner, base = await start_sim(WORLD, START, speed=SPEED)
    fast = {
        f"RACELAB_{source}__{name}": value
        for source in ("KRA", "KSPO", "ODDS_FEED")
        for name, value in (("REQUESTS_PER_SECOND", "200"), ("MAX_ATTEMPTS", "2"), ("RETRY_BASE_DELAY_S", "0"))
    }
    env = pipeline_env(settings, **simulator_env(base), **fast, RACELAB_API__INGESTION_KEY=KEY, RACELAB_API__PORT="0")
    workers = [await start_component(role, env) for role in ("processors", "sink")]
    api = await start_component("api", {**env, "RACELAB_API__PAGE_ENABLED": "true"})
    lines: list[str] = []
    try:
        url = await _listening_url(api, lines)
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=H) as http:
            await collect_a_race(http, settings, simulator.clock)  # type: ignore[arg-type]
            status = await until_landed(http, settings)
        await scalar(
            settings,
            "INSERT INTO races (race_id, race_type, track_code, race_date, race_no, status, race_name, source) "
            "VALUES ($1, 'horse', 'busan', $2, 9, 'scheduled', $3, 'kra') RETURNING race_no",
            MARKUP_RACE,
            DAY,
            MARKUP,
        )
        db = await database_numbers(settings)
        races = await scalar(settings, "SELECT count(*) FROM races WHERE race_date = $1", DAY)
        win = await fetch(
            settings,
            "SELECT count(DISTINCT selection) AS selections, count(*) FILTER (WHERE is_final) AS finals "
            "FROM odds_snapshots WHERE race_id = $1 AND pool = 'WIN'",
            RACE.race_id,
        )
        assert (win[0]["selections"], win[0]["finals"]) == (len(RACE.runners), len(RACE.runners))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await check_refused(page, url)
                (tmp_path / "refused.png").write_bytes(await page.screenshot(full_page=True))
                await check_status(page, db, races, status)
                await check_escaped(page)
                await check_chart(page, win[0]["selections"], win[0]["finals"])
                box = await page.locator("#chart svg").bounding_box()
                png = await page.screenshot(full_page=True)
                (tmp_path / "status-page.png").write_bytes(png)
            finally:
                await browser.close()
        assert box is not None
        check_screenshot(png, box)
        assert all(w.returncode is None for w in workers)
        await check_page_disabled(env)
    finally:
        for process in [api, *workers]:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in [api, *workers]:
            await asyncio.wait_for(process.wait(), 60)
        await runner.cleanup()
    await check_plot_command(settings, tmp_path, win[0]["selections"])


async def check_plot_command(settings: Settings, tmp_path: Path, win_selections: int) -> None:
    """``racelab query odds RACE --plot FILE`` on the rows the pipeline stored."""
    env = pipeline_env(settings)
    for name, extra, lines in (("win.svg", [], win_selections), ("qnl.svg", ["--pool", "QNL"], 10)):
        out = tmp_path / name
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "racelab.cli", "query", "odds", RACE.race_id, "--plot", str(out), *extra,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, stderr.decode()
        pool = "QNL" if extra else "WIN"
        selections = 91 if extra else win_selections
        assert stdout.decode().startswith(f"{out}: {RACE.race_id} {pool}, {lines} of {selections} selection(s), ")
        assert stdout.decode().rstrip().endswith(f"{lines} final dividend(s), post time 11:10 KST")
        tree = ET.fromstring(out.read_bytes())  # noqa: S314 - our own drawing
        drawn = [g for g in tree.iter(f"{SVG_NS}g") if g.get("id", "").startswith("odds-line-")]
        assert len(drawn) == lines
        texts = ["".join(t.itertext()) for t in tree.iter(f"{SVG_NS}text")]
        assert "time (KST)" in texts and any(t.startswith("odds") for t in texts) and "post 11:10" in texts
    png = tmp_path / "win.png"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "racelab.cli", "query", "odds", RACE.race_id, "--plot", str(png), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()
    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.size == (1000, 560)


async def check_page_disabled(env: dict[str, str]) -> None:
    """Without ``api.page_enabled``, ``/`` is not served: 404 with the key, 401 without (like any unknown path)."""
    api = await start_component("api", {k: v for k, v in env.items() if k != "RACELAB_API__PAGE_ENABLED"})
    try:
        url = await _listening_url(api, [])
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            found = await http.get("/", headers=H)
            assert found.status_code == 404 and found.json()["error"]["code"] == "NOT_FOUND"
            assert (await http.get("/")).status_code == 401
    finally:
        api.send_signal(signal.SIGTERM)
        await asyncio.wait_for(api.wait(), 60)
