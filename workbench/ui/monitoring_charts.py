"""The Monitoring overview's charts, built from daily points without Streamlit so tests can read them.

Readability rules every chart follows: the x-axis always spans whole days (half a day of room either
side), so one day of data shows one labelled date rather than plotly's zoom to milliseconds; bounded
metrics keep a y-range inside their bounds (a single point does not stretch accuracy to 150%);
legends sit above the plot, clear of the date labels, and list only series that have data; a chart
with nothing to draw says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import plotly.graph_objects as go
from plotly.colors import qualitative

from workbench.services.monitoring import DayPoint
from workbench.ui.widgets import chart_text

Key = tuple[str, str]
NO_TASK = "(no task type)"
NO_DATA = "No data in these dates"
CHART_HEIGHT = 320
MARGIN = {"l": 0, "r": 0, "t": 10, "b": 0}
LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "xanchor": "left"}
"""Above the plot: below it, a horizontal legend covers the date labels."""

PALETTE = qualitative.Plotly
BAR_WIDTH_MS = 0.8 * 86_400_000
"""A day's bar is most of a day wide: left to plotly, a lone day's bar is drawn one pixel wide."""
BOUNDS: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "error_rate": (0.0, 1.0),
    "mean_confidence": (0.0, 1.0),
    "mean_rating": (1.0, 5.0),
}
"""Where each bounded metric can lie: its y-range never leaves them."""


def series_name(key: Key) -> str:
    return chart_text(f"{key[0]} · {NO_TASK if key[1] == '' else key[1]}")


def _mine(points: Sequence[DayPoint], key: Key) -> list[DayPoint]:
    return [p for p in points if (p.model_version, p.task_type) == key]


def _base(points: Sequence[DayPoint], *, percent: bool = False) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(height=CHART_HEIGHT, margin=MARGIN, legend=LEGEND, barmode="stack", showlegend=True)
    if points:
        first = date.fromisoformat(min(p.day for p in points))
        last = date.fromisoformat(max(p.day for p in points))
        span = (last - first).days
        figure.update_xaxes(type="date", tickformat="%b %-d",
                            range=[f"{first - timedelta(days=1)}T12:00:00", f"{last}T12:00:00"],
                            dtick=86_400_000 * max(1, -(-span // 7)))
    if percent:
        figure.update_yaxes(tickformat=".1~%")
    return figure


def _y_range(values: list[float], bounds: tuple[float, float]) -> list[float]:
    """Pad the data's range by a tenth (at least 2% of the bounds) and keep it inside the bounds."""
    low, high = min(values), max(values)
    pad = max((high - low) * 0.1, (bounds[1] - bounds[0]) * 0.02)
    return [max(bounds[0], low - pad), min(bounds[1], high + pad)]


def _no_data(figure: go.Figure) -> go.Figure:
    figure.add_annotation(text=NO_DATA, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                          font={"size": 14, "color": "gray"})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(showlegend=False)
    return figure


def lines(points: Sequence[DayPoint], keys: Sequence[Key], field: str, *, percent: bool = False,
          bars: bool = False) -> go.Figure:
    """One line (or stacked bar) per model-and-task pair that has a value of `field` in the dates."""
    figure = _base(points, percent=percent)
    drawn: list[float] = []
    for index, key in enumerate(keys):
        mine = [p for p in _mine(points, key) if getattr(p, field) is not None]
        if not mine:
            continue  # a model with no labels (or no ratings) has nothing to show: keep it out of the legend
        x, y = [p.day for p in mine], [getattr(p, field) for p in mine]
        drawn += y
        color = PALETTE[index % len(PALETTE)]  # by the pair's place in `keys`: one colour per model on every chart
        trace = go.Bar(x=x, y=y, name=series_name(key), marker_color=color, width=BAR_WIDTH_MS) if bars else go.Scatter(
            x=x, y=y, mode="lines+markers", marker={"size": 5 if len(mine) < 60 else 3}, line_color=color,
            name=series_name(key))
        figure.add_trace(trace)
    if not drawn:
        return _no_data(figure)
    if field in BOUNDS:
        figure.update_yaxes(range=_y_range(drawn, BOUNDS[field]))
    elif bars or min(drawn) >= 0:
        figure.update_yaxes(rangemode="tozero")
    return figure


def latency(points: Sequence[DayPoint], key: Key) -> go.Figure:
    """p50 and p95 of one model-and-task pair: with several models at once the p50 lines pile on each other."""
    figure = _base(points)
    mine = _mine(points, key)
    drawn = 0
    for field, label, dash in (("p50_ms", "p50", "solid"), ("p95_ms", "p95", "dot")):
        shown = [p for p in mine if getattr(p, field) is not None]
        drawn += len(shown)
        if shown:
            figure.add_trace(go.Scatter(x=[p.day for p in shown], y=[getattr(p, field) for p in shown],
                                        mode="lines+markers", line={"dash": dash}, name=label))
    if not drawn:
        return _no_data(figure)
    figure.update_yaxes(rangemode="tozero", title_text="ms")
    return figure


def busiest(points: Sequence[DayPoint]) -> list[Key]:
    """Model-and-task pairs, busiest first."""
    volume: dict[Key, int] = {}
    for p in points:
        volume[(p.model_version, p.task_type)] = volume.get((p.model_version, p.task_type), 0) + p.predictions
    return sorted(volume, key=lambda k: (-volume[k], k))

