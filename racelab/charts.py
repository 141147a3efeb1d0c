"""The odds chart of a race: each selection's odds over time, with the post time and the final dividends marked.

One drawing for ``racelab query odds RACE_ID --plot FILE`` and for the control API's race view
(``GET /api/ingestion/races/{raceId}/odds.svg``). What it shows:

- one pool: the one asked for, else WIN when the race has it, else the first pool (in the order WIN PLC QNL EXA
  QPL TLA TRI) that has rows;
- one line per selection through its live snapshots in time order, ending in its final dividend;
- WIN and PLC: every selection. The multi-runner pools (QNL, EXA, QPL, TLA, TRI: 2,730 selections of a
  15-runner trifecta) would be unreadable, so by default only the :data:`DEFAULT_TOP` shortest-priced are drawn
  (ranked by the final dividend, else the last live odds) and the title says so ("10 shortest-priced of 66");
  ``top`` chooses the number for any pool;
- x: time in Korean time (KST); y: odds, on a log scale when the largest drawn value is more than
  :data:`LOG_SCALE_RATIO` times the smallest (a favourite at 1.5 and an outsider at 80 both stay readable);
- the post time: a dashed vertical line labelled ``post HH:MM``;
- the final dividends (``is_final`` rows): a diamond per selection in the selection's colour. Their stored time is
  a convention (23:59:59 KST on the race day: the public APIs publish them after the race without a time), so they
  stand in a column of their own labelled ``final``, a little right of the post time, not hours away.

Odds of 0 or less (not a price: a selection not sold) are left out. Drawing uses matplotlib's object API (no
pyplot, no display; the Agg renderer for PNG), one figure at a time (matplotlib is not thread-safe). SVG keeps its
text as text (``svg.fonttype: none``) and names its parts with ids, so tests and pages can find them:
``odds-line-<selection>`` (one per selection), ``final-<selection>``, ``post-time``.
"""

from __future__ import annotations

import io
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from processors.normalize.kra import closing_time
from schemas import race_ids
from schemas.errors import PipelineError
from schemas.records import Pool
from schemas.timezones import KST

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sinks.queries import Executor, OddsSnapshot

Format = Literal["svg", "png"]
POOLS: tuple[str, ...] = get_args(Pool)  # WIN PLC QNL EXA QPL TLA TRI
SINGLE_RUNNER_POOLS = frozenset({"WIN", "PLC"})
DEFAULT_TOP = 10
LOG_SCALE_RATIO = 20.0
FINAL_GAP_SHARE = 0.08  # the final column stands this share of the live span right of the post time
MIN_FINAL_GAP = timedelta(minutes=1)
MIN_WINDOW = timedelta(minutes=10)
SIZE_INCHES = (10.0, 5.6)
DPI = 100
_DRAWING = threading.Lock()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICK_STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 180)  # 180 min ticks still fall on whole Korean hours (UTC+9)
MAX_TICKS = 10
_RC: dict[Any, Any] = {  # rcParams while drawing (matplotlib's own defaults otherwise)
    "svg.fonttype": "none",
    "svg.hashsalt": "racelab",  # stable ids: the same rows give the same file
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
}


class ChartError(PipelineError):
    """A chart cannot be drawn as asked (no rows, an unknown file type)."""


class NothingToDraw(ChartError):
    """The race has no odds rows (in the chosen pool)."""


@dataclass(frozen=True)
class Series:
    """One selection: its live snapshots in time order and its final dividend."""

    selection: str
    times: tuple[datetime, ...]
    odds: tuple[float, ...]
    final: float | None

    @property
    def closing(self) -> float:
        """The final dividend, else the last live odds (the rank of "shortest-priced")."""
        return self.final if self.final is not None else self.odds[-1]


@dataclass(frozen=True)
class ChartData:
    """What one chart draws: the chosen pool's selections (shortest-priced first) and how many the pool has."""

    race_id: str
    pool: str
    post_time: datetime | None
    series: tuple[Series, ...]
    selections: int

    @property
    def snapshots(self) -> int:
        """Distinct live snapshot times drawn."""
        return len({t for s in self.series for t in s.times})

    def title(self) -> str:
        shown = len(self.series)
        note = f" ({shown} shortest-priced of {self.selections})" if shown < self.selections else ""
        only = ", final dividends only" if not self.snapshots else ""
        return f"{self.race_id} · {self.pool} odds{note}{only}"


def format_of(path: Path) -> Format:
    """``svg`` or ``png`` from the file name; :class:`ChartError` for anything else."""
    suffix = path.suffix.lower()
    if suffix in (".svg", ".png"):
        return "svg" if suffix == ".svg" else "png"
    raise ChartError(f"a plot is written as PNG or SVG: the file name must end in .png or .svg, not {path.name!r}")


def choose_pool(rows: Sequence[OddsSnapshot], pool: str | None = None) -> str:
    """The pool to draw: ``pool`` when given, else WIN when present, else the first pool with rows."""
    if pool is not None:
        return pool
    present = {r.pool for r in rows}
    for name in POOLS:
        if name in present:
            return name
    return "WIN"


def chart_data(
    race_id: str,
    post_time: datetime | None,
    rows: Sequence[OddsSnapshot],
    *,
    pool: str | None = None,
    top: int | None = None,
) -> ChartData:
    """The series of one pool (see the module's rules); :class:`NothingToDraw` when the pool has no rows."""
    chosen = choose_pool(rows, pool)
    live: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    final: dict[str, float] = {}
    for row in rows:
        if row.pool != chosen or row.odds <= 0:
            continue
        if row.is_final:
            final[row.selection] = row.odds
        else:
            live[row.selection].append((row.time, row.odds))
    names = set(live) | set(final)
    if not names:
        where = f" in pool {chosen}" if rows else ""
        raise NothingToDraw(f"no odds stored for race {race_id}{where}: nothing to draw")
    series = []
    for name in names:
        points = sorted(live.get(name, ()))
        series.append(
            Series(name, tuple(t for t, _ in points), tuple(o for _, o in points), final.get(name)),
        )
    series.sort(key=lambda s: (s.closing, _selection_order(s.selection)))
    limit = top if top is not None else (None if chosen in SINGLE_RUNNER_POOLS else DEFAULT_TOP)
    return ChartData(race_id, chosen, post_time, tuple(series[:limit] if limit else series), len(series))


def _selection_order(selection: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in selection.split("-"))


def x_span(data: ChartData) -> tuple[datetime, datetime, datetime]:
    """Left and right ends of the time axis and where the final dividends stand: a little right of the last live
    snapshot and the post time; with neither, at their stored time (the end of the race day). The axis shows at
    least :data:`MIN_WINDOW` of time so its labels stay distinct."""
    moments = [t for s in data.series for t in s.times] + ([data.post_time] if data.post_time else [])
    if not moments:
        moments = [closing_time(race_ids.parse(data.race_id).day) - MIN_FINAL_GAP]
    first, last = min(moments), max(moments)
    gap = max((last - first) * FINAL_GAP_SHARE, MIN_FINAL_GAP)
    return min(first, last - MIN_WINDOW) - gap / 2, last + 2 * gap, last + gap


def render(data: ChartData, fmt: Format) -> bytes:
    """The chart as SVG or PNG bytes."""
    from matplotlib import rc_context

    with _DRAWING, rc_context(_RC):
        figure = _draw(data)
        out = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(out, format=fmt, dpi=DPI, metadata=metadata)
    return out.getvalue()


def day_number(moment: datetime) -> float:
    """A moment as the x value of the chart: days since 1970-01-01 UTC (labelled in Korean time)."""
    return (moment - EPOCH).total_seconds() / 86_400


def clock_label(value: float) -> str:
    """A date number as Korean wall-clock time ``HH:MM``."""
    return f"{(EPOCH + timedelta(days=value)).astimezone(KST):%H:%M}"


def tick_minutes(left: datetime, right: datetime) -> int:
    """The smallest step of :data:`TICK_STEPS_MIN` that puts at most :data:`MAX_TICKS` ticks on the axis."""
    minutes = (right - left).total_seconds() / 60
    return next((step for step in TICK_STEPS_MIN if minutes / step <= MAX_TICKS), TICK_STEPS_MIN[-1])


def _draw(data: ChartData) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator, NullFormatter

    figure = Figure(figsize=SIZE_INCHES, layout="constrained")
    ax = figure.add_subplot()
    left, right, at_final = x_span(data)
    final_x = day_number(at_final)
    for colour, s in zip(_colours(len(data.series)), data.series, strict=True):
        xs = [day_number(t) for t in s.times] + ([final_x] if s.final is not None else [])
        ys = [*s.odds, *([s.final] if s.final is not None else [])]
        (line,) = ax.plot(xs, ys, color=colour, linewidth=1.4, label=f"{s.selection}  {s.closing:g}")
        line.set_gid(f"odds-line-{s.selection}")
        if s.final is not None:
            (mark,) = ax.plot([final_x], [s.final], linestyle="none", marker="D", markersize=6, color=colour)
            mark.set_markeredgecolor("black")
            mark.set_markeredgewidth(0.6)
            mark.set_gid(f"final-{s.selection}")
    if data.post_time is not None:
        post_x = day_number(data.post_time)
        ax.axvline(post_x, color="dimgray", linestyle="--", linewidth=1.0, label="post time").set_gid("post-time")
        _label_top(ax, post_x, f"post {data.post_time.astimezone(KST):%H:%M}", "right", "dimgray")
    if any(s.final is not None for s in data.series):
        ax.plot([], [], linestyle="none", marker="D", color="white", markeredgecolor="black", label="final dividend")
        _label_top(ax, final_x, "final", "center", "black")
    _y_axis(ax, [v for s in data.series for v in (*s.odds, *([s.final] if s.final is not None else []))])
    ax.set_xlim(day_number(left), day_number(right))
    ax.xaxis.set_major_locator(MultipleLocator(tick_minutes(left, right) / 1440))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: clock_label(value)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("time (KST)")
    ax.grid(True, which="major", color="0.9", linewidth=0.8)
    ax.set_title(data.title())
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title="selection  closing",
        title_fontsize=8,
        frameon=False,
    )
    return figure


def _y_axis(ax: Axes, values: Sequence[float]) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    if values and max(values) > LOG_SCALE_RATIO * min(values):
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.set_ylabel("odds (log scale)")
    else:
        ax.set_ylabel("odds")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _label_top(ax: Axes, x: float, text: str, align: Literal["left", "right", "center"], colour: str) -> None:
    """A small label just under the top edge of the axes at ``x``."""
    ax.annotate(
        text,
        xy=(x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(-3 if align == "right" else 0, -3),
        textcoords="offset points",
        ha=align,
        va="top",
        fontsize=8,
        color=colour,
    )


def _colours(count: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    palette = colormaps["tab10" if count <= 10 else "tab20"]
    return [palette(i % palette.N) for i in range(count)]


def draw_odds(
    race_id: str,
    post_time: datetime | None,
    rows: Sequence[OddsSnapshot],
    fmt: Format,
    *,
    pool: str | None = None,
    top: int | None = None,
) -> tuple[ChartData, bytes]:
    """Choose, then draw: the chart's data and its bytes."""
    data = chart_data(race_id, post_time, rows, pool=pool, top=top)
    return data, render(data, fmt)


async def race_odds(db: Executor, race_id: str, pool: str | None) -> tuple[datetime | None, list[OddsSnapshot]]:
    """A stored race's post time and its odds rows (of one pool, or all); :class:`~sinks.queries.RaceNotFound`."""
    from sinks import queries as q

    race = await q.require_race(db, race_id)
    return race.post_time, await q.odds_history(db, race_id, pool=pool)
