"""Progress: what a long action reports, the time-left estimate a person reads, and how a caller stops it."""

from __future__ import annotations

import pytest

from workbench.domain.progress import Cancelled, Progress, ProgressState, format_duration


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (42.4, "42 s"), (60, "1 min"), (185, "3 min 5 s"), (3600, "1 h"), (4800, "1 h 20 min")],
)
def test_durations_read_the_way_a_person_says_them(seconds: float, said: str) -> None:
    assert format_duration(seconds) == said


def test_the_estimate_is_the_rate_so_far_applied_to_what_is_left() -> None:
    state = ProgressState("checking rules", 250, 1000, "examples", elapsed_s=10.0)
    assert state.eta_s == pytest.approx(30.0)
    assert state.describe() == "checking rules: 250 of 1,000 examples (25%), about 30 s left"


def test_the_estimate_leaves_out_a_warm_up_before_the_first_record() -> None:
    # 10 s loading, then 100 records in 2 s: 900 left take about 18 s, not 108 s.
    state = ProgressState("checking rules", 100, 1000, "examples", elapsed_s=12.0, rate_s=2.0, rate_done=100)
    assert state.eta_s == pytest.approx(18.0)
    assert ProgressState("checking rules", 1, 1000, "examples", elapsed_s=10.0, rate_s=0.0, rate_done=0).eta_s is None


@pytest.mark.parametrize(("done", "total", "elapsed"), [(0, 100, 5.0), (10, 0, 5.0), (10, 100, 0.1)])
def test_no_estimate_without_a_rate_to_go_by(done: int, total: int, elapsed: float) -> None:
    state = ProgressState("s", done, total, "examples", elapsed_s=elapsed)
    assert state.eta_s is None
    assert "left" not in state.describe()


def test_each_stage_reports_at_its_start_and_its_last_count_before_the_next() -> None:
    seen: list[tuple[str, int, int]] = []
    progress = Progress(lambda s: seen.append((s.stage, s.done, s.total)), every=3600)
    progress.stage("first", 10)
    progress.advance(4)
    progress.advance(6)  # throttled: not reported until the next stage starts
    progress.stage("second", 5)
    progress.finish()
    assert seen == [("first", 0, 10), ("first", 10, 10), ("second", 0, 5), ("second", 5, 5)]


def test_a_caller_stops_the_work_at_the_next_report() -> None:
    stop = False
    progress = Progress(cancelled=lambda: stop, every=0)
    progress.stage("scan", 100)
    progress.advance(1)
    stop = True
    with pytest.raises(Cancelled):
        progress.advance(1)
    with pytest.raises(Cancelled):
        progress.check()


def test_iterate_counts_each_item_and_a_default_progress_never_stops() -> None:
    progress = Progress()
    progress.stage("walk", 3)
    assert list(progress.iterate("abc")) == ["a", "b", "c"]
    assert progress.state.done == 3
    progress.check()  # nobody asked to stop
