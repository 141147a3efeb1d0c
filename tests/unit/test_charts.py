"""The odds chart (racelab.charts) from rows written out here: what is drawn, and that the images are real images."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from racelab import charts
from racelab.charts import ChartError, NothingToDraw, chart_data, draw_odds, format_of
from sinks.queries.models import OddsSnapshot

KST = timezone(timedelta(hours=9))
RACE = "horse-seoul-2-20241214"
POST = datetime(2024, 12, 14, 11, 10, tzinfo=KST)
CLOSING = datetime(2024, 12, 14, 23, 59, 59, tzinfo=KST)  # the stored time of final dividends
SVG_NS = "{http://www.w3.org/2000/svg}"
# WIN: three runners, four live snapshots (10:55, 11:00, 11:05, 11:10 KST) and the final dividend
WIN_LIVE = {"1": [4.0, 3.8, 3.5, 3.6], "2": [2.5, 2.6, 2.8, 2.7], "3": [9.0, 9.5, 10.0, 11.0]}
WIN_FINAL = {"1": 3.4, "2": 2.9, "3": 12.5}
# QNL: the 15 pairs of six runners, final dividends only (11 + the pair's index)
QNL_FINAL = {f"{a}-{b}": 11.0 + i for i, (a, b) in enumerate((a, b) for a in range(1, 7) for b in range(a + 1, 7))}


def snapshot(at: datetime, pool: str, selection: str, odds: float, final: bool = False) -> OddsSnapshot:
    return OddsSnapshot(at.astimezone(UTC), pool, selection, odds, final, None, None)


def rows() -> list[OddsSnapshot]:
    out = []
    for selection, values in WIN_LIVE.items():
        for i, value in enumerate(values):
            out.append(snapshot(POST - timedelta(minutes=15 - 5 * i), "WIN", selection, value))
        out.append(snapshot(CLOSING, "WIN", selection, WIN_FINAL[selection], final=True))
        out.append(snapshot(CLOSING, "PLC", selection, 1.5, final=True))
    out += [snapshot(CLOSING, "QNL", s, v, final=True) for s, v in QNL_FINAL.items()]
    return out


def svg_tree(image: bytes) -> ET.Element:
    return ET.fromstring(image)  # noqa: S314 - our own drawing


def groups(tree: ET.Element, prefix: str) -> dict[str, ET.Element]:
    return {g.get("id", ""): g for g in tree.iter(f"{SVG_NS}g") if g.get("id", "").startswith(prefix)}


def texts(tree: ET.Element) -> list[str]:
    return ["".join(t.itertext()).strip() for t in tree.iter(f"{SVG_NS}text")]


def vertices(group: ET.Element) -> int:
    path = next(group.iter(f"{SVG_NS}path"))
    return len(re.findall(r"[ML]", path.get("d", "")))


# ---- what is chosen ----------------------------------------------------------------------------------------------
def test_win_is_the_default_pool_and_every_runner_is_drawn_favourite_first():
    data = chart_data(RACE, POST, rows())
    assert data.pool == "WIN" and data.selections == 3
    assert [s.selection for s in data.series] == ["2", "1", "3"]  # by final dividend: 2.9, 3.4, 12.5
    assert [s.final for s in data.series] == [2.9, 3.4, 12.5]
    assert data.series[1].odds == (4.0, 3.8, 3.5, 3.6)
    assert data.snapshots == 4
    assert data.title() == "horse-seoul-2-20241214 · WIN odds"


def test_without_win_the_first_pool_with_rows_is_drawn():
    only_qnl = [r for r in rows() if r.pool == "QNL"]
    assert chart_data(RACE, POST, only_qnl).pool == "QNL"
    assert charts.choose_pool(only_qnl + [r for r in rows() if r.pool == "PLC"]) == "PLC"


def test_multi_runner_pools_draw_the_ten_shortest_priced_and_say_so():
    data = chart_data(RACE, POST, rows(), pool="QNL")
    assert [s.selection for s in data.series] == ["1-2", "1-3", "1-4", "1-5", "1-6", "2-3", "2-4", "2-5", "2-6", "3-4"]
    assert data.selections == 15 and len(data.series) == 10
    assert data.title() == "horse-seoul-2-20241214 · QNL odds (10 shortest-priced of 15), final dividends only"


def test_top_chooses_how_many_for_any_pool():
    assert [s.selection for s in chart_data(RACE, POST, rows(), top=2).series] == ["2", "1"]
    assert len(chart_data(RACE, POST, rows(), pool="QNL", top=15).series) == 15
    assert chart_data(RACE, POST, rows(), pool="QNL", top=15).title().endswith("QNL odds, final dividends only")


def test_no_price_is_not_drawn():
    data = chart_data(RACE, POST, [*rows(), snapshot(POST, "WIN", "4", 0.0), snapshot(CLOSING, "WIN", "5", -1.0)])
    assert {s.selection for s in data.series} == {"1", "2", "3"}


def test_nothing_to_draw_is_a_clear_error():
    with pytest.raises(NothingToDraw, match=r"^no odds stored for race horse-seoul-2-20241214: nothing to draw$"):
        chart_data(RACE, POST, [])
    with pytest.raises(NothingToDraw, match="in pool TRI: nothing to draw"):
        chart_data(RACE, POST, rows(), pool="TRI")
    assert NothingToDraw.retriable is False


def test_final_dividends_stand_right_of_the_post_time_not_at_their_stored_time():
    left, right, final_at = charts.x_span(chart_data(RACE, POST, rows()))
    # live 10:55..11:10 (post 11:10): 15 min span, gap max(8 % of it, 1 min) = 72 s
    assert final_at == POST + timedelta(seconds=72)
    assert right == POST + timedelta(seconds=144)
    assert left == POST - timedelta(minutes=15, seconds=36)
    # final dividends only, with a post time: the axis shows 10 minutes up to the post time
    left, right, final_at = charts.x_span(chart_data(RACE, POST, rows(), pool="QNL"))
    assert (left, final_at) == (POST - timedelta(minutes=10, seconds=30), POST + timedelta(minutes=1))
    # neither live odds nor a post time: the stored closing time
    _, _, final_at = charts.x_span(chart_data(RACE, None, rows(), pool="QNL"))
    assert final_at == CLOSING


@pytest.mark.parametrize(("minutes", "step"), [(8, 1), (15, 2), (45, 5), (100, 10), (150, 15), (600, 60)])
def test_time_ticks(minutes, step):
    assert charts.tick_minutes(POST, POST + timedelta(minutes=minutes)) == step


def test_time_labels_are_korean_wall_clock():
    assert charts.clock_label(charts.day_number(POST.astimezone(UTC))) == "11:10"


# ---- the SVG -----------------------------------------------------------------------------------------------------
def test_svg_has_one_line_per_selection_post_time_finals_and_labelled_axes():
    _, image = draw_odds(RACE, POST, rows(), "svg")
    tree = svg_tree(image)
    lines = groups(tree, "odds-line-")
    assert sorted(lines) == ["odds-line-1", "odds-line-2", "odds-line-3"]
    assert all(vertices(g) == 5 for g in lines.values())  # four live snapshots and the final dividend
    assert sorted(groups(tree, "final-")) == ["final-1", "final-2", "final-3"]
    assert list(groups(tree, "post-time")) == ["post-time"]
    strokes = {re.search(r"stroke: (#[0-9a-f]{6})", ET.tostring(g, encoding="unicode"))[1] for g in lines.values()}
    assert len(strokes) == 3  # a colour each
    shown = texts(tree)
    for label in ("time (KST)", "odds", "horse-seoul-2-20241214 · WIN odds", "post 11:10", "final", "final dividend"):
        assert label in shown, label
    assert {"10:56", "11:00", "11:04", "11:08"} <= set(shown)  # 2-minute ticks in Korean time
    assert {"2  2.9", "1  3.4", "3  12.5"} <= set(shown)  # the legend: selection and closing odds
    assert not list(tree.iter(f"{SVG_NS}image")) and b"<script" not in image


def test_svg_of_a_big_pool_counts_the_drawn_lines():
    _, image = draw_odds(RACE, POST, rows(), "svg", pool="QNL")
    tree = svg_tree(image)
    assert len(groups(tree, "odds-line-")) == 10 and len(groups(tree, "final-")) == 10
    assert "horse-seoul-2-20241214 · QNL odds (10 shortest-priced of 15), final dividends only" in texts(tree)


def test_wide_odds_use_a_log_scale():
    wide = [*rows(), snapshot(CLOSING, "WIN", "4", 120.0, final=True)]  # 120 > 20 x 2.5
    tree = svg_tree(draw_odds(RACE, POST, wide, "svg")[1])
    assert "odds (log scale)" in texts(tree) and "odds" not in texts(tree)


def test_the_same_rows_give_the_same_file():
    assert draw_odds(RACE, POST, rows(), "svg")[1] == draw_odds(RACE, POST, list(reversed(rows())), "svg")[1]


# ---- the PNG -----------------------------------------------------------------------------------------------------
def test_png_is_a_real_picture():
    _, image = draw_odds(RACE, POST, rows(), "png")
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 20_000
    picture = Image.open(io.BytesIO(image)).convert("RGB")
    assert picture.size == (1000, 560)
    colours = picture.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # not one colour: lines, text, antialiasing
    white = max(colours)[0]
    assert white < 0.97 * picture.size[0] * picture.size[1]  # something is drawn on the white
    # the three line colours of tab10 are in the picture (blue, orange, green)
    present = {rgb for _, rgb in colours}
    assert {(31, 119, 180), (255, 127, 14), (44, 160, 44)} <= present


# ---- file names --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "fmt"), [("out.svg", "svg"), ("out.PNG", "png"), ("a.b/c.png", "png")])
def test_format_by_extension(name, fmt):
    assert format_of(Path(name)) == fmt


@pytest.mark.parametrize("name", ["out.pdf", "out", "out.svg.txt", "out.jpeg"])
def test_other_extensions_are_a_clear_error(name):
    with pytest.raises(ChartError, match=r"must end in \.png or \.svg"):
        format_of(Path(name))


# ---- the command's argument checks (before any database access) -------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--plot", "odds.pdf"],
            "a plot is written as PNG or SVG: the file name must end in .png or .svg, not 'odds.pdf'",
        ),
        (["--plot", "odds.svg", "--bucket", "5m"], "--plot draws every snapshot: leave out --bucket"),
        (["--top", "3"], "--top chooses what the chart draws: use it with --plot FILE"),
    ],
)
def test_plot_arguments_are_checked_first(monkeypatch, capsys, tmp_path, args, message):
    from racelab import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RACELAB_DATABASE__URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(cli, "setup_logging", lambda settings: None)
    assert cli.main(["query", "odds", RACE, *args]) == 2
    assert capsys.readouterr().err == f"racelab: error: {message}\n"
    assert list(tmp_path.iterdir()) == []
