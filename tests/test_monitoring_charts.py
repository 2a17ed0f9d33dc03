"""The Monitoring overview's charts stay readable: whole-day axes, bounded ranges, tidy legends, a no-data note."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.services.monitoring import DayPoint
from workbench.ui import monitoring_charts as charts


def point(day: str, model: str = "m", **fields: Any) -> DayPoint:
    base: dict[str, Any] = {"day": day, "model_version": model, "task_type": "classify", "predictions": 100,
                            "errors": 1, "error_rate": 0.01, "labelled": 0, "correct": 0, "accuracy": None,
                            "rated": 0, "mean_rating": None, "mean_confidence": None, "p50_ms": 200.0,
                            "p95_ms": 900.0, "cost_usd": 1.0, "cache_hits": 0}
    return DayPoint(**{**base, **fields})


def test_one_day_of_data_gets_a_whole_day_axis_and_bounded_y_ranges() -> None:
    points = [point("2026-11-29", accuracy=1.0, labelled=10, correct=10, error_rate=0.0)]
    accuracy = charts.lines(points, [("m", "classify")], "accuracy", percent=True)
    assert accuracy.layout.xaxis.range == ("2026-11-28T12:00:00", "2026-11-29T12:00:00")
    assert accuracy.layout.xaxis.tickformat == "%b %-d"
    low, high = accuracy.layout.yaxis.range
    assert 0 <= low < 1 and high == 1  # never 150%
    errors = charts.lines(points, [("m", "classify")], "error_rate", percent=True)
    assert errors.layout.yaxis.range[0] == 0  # never -100%
    assert errors.layout.yaxis.tickformat == ".1~%"  # 0.5% reads 0.5%, not 1%
    latency = charts.latency(points, ("m", "classify"))
    assert [t.name for t in latency.data] == ["p50", "p95"]
    assert all(t.mode == "lines+markers" for t in latency.data)  # one point still shows


def test_legends_sit_above_the_plot_and_list_only_series_with_data() -> None:
    points = [point(f"2026-11-{d:02d}", "a", accuracy=0.9, labelled=5, correct=4) for d in range(1, 31)]
    points += [point(f"2026-11-{d:02d}", "b") for d in range(1, 31)]
    keys = charts.busiest(points)
    figure = charts.lines(points, keys, "accuracy", percent=True)
    assert [t.name for t in figure.data] == ["a · classify"]
    assert figure.layout.legend.y > 1 and figure.layout.legend.yanchor == "bottom"


@pytest.mark.parametrize("field", ["mean_rating", "mean_confidence"])
def test_a_chart_with_nothing_to_draw_says_so(field: str) -> None:
    figure = charts.lines([point("2026-11-29")], [("m", "classify")], field)
    assert not figure.data
    assert [a.text for a in figure.layout.annotations] == [charts.NO_DATA]
