"""The demo history: deterministic from its seed, with the drift episode and cost spike the dashboards show,
rollups that agree with the raw rows, loaded once, and fast enough for `make run`'s first start."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pytest

from workbench.domain.drift import Verdict, categorical_drift, numeric_drift, rate_drift
from workbench.domain.predictions import PredictionIn, PriceBook, latency_bucket
from workbench.domain.progress import Progress
from workbench.services import demo_predictions as demo
from workbench.store import Store
from workbench.store import predictions as prediction_rows

NOW = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
ROWS = 20_000
HISTORY = "source = 'demo' AND experiment_id IS NULL"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(tmp_path_factory.mktemp("demo") / "workbench.db")
    demo.load_demo_history(store, total=ROWS, now=NOW)
    yield store


def day_of(day: int) -> str:
    return (NOW - timedelta(days=demo.DEMO_HISTORY_DAYS - 1 - day)).date().isoformat()


def sums(store: Store) -> tuple[Any, ...]:
    with store.connect() as db:
        return tuple(db.execute(
            f"SELECT COUNT(*), SUM(cost_usd), SUM(tokens_in), SUM(tokens_out), SUM(latency_ms), SUM(correct), "
            f"SUM(rating), MIN(ts), MAX(ts) FROM predictions WHERE {HISTORY}").fetchone()) + (
            db.execute("SELECT COUNT(*), SUM(rating) FROM prediction_feedback WHERE source = 'demo'").fetchone(),)


def test_the_same_seed_gives_the_same_history_and_another_seed_a_different_one(tmp_path: Path, loaded: Store) -> None:
    again = Store(tmp_path / "again.db")
    result = demo.load_demo_history(again, total=ROWS, now=NOW)
    assert result.predictions == ROWS and result.feedback > 0
    assert sums(again) == sums(loaded)
    other = Store(tmp_path / "other.db")
    demo.load_demo_history(other, total=ROWS, now=NOW, seed=12)
    assert sums(other)[0] == ROWS and sums(other)[1] != sums(loaded)[1]


def test_the_history_covers_the_days_up_to_now_in_the_stored_time_format(loaded: Store) -> None:
    with loaded.connect() as db:
        first, last, days = db.execute(
            f"SELECT MIN(ts), MAX(ts), COUNT(DISTINCT substr(ts, 1, 10)) FROM predictions WHERE {HISTORY}").fetchone()
        sources = {r[0] for r in db.execute("SELECT DISTINCT source FROM predictions")}
    assert days == demo.DEMO_HISTORY_DAYS and first.startswith(day_of(0)) and first.endswith("+00:00")
    assert datetime.fromisoformat(last) < NOW and sources == {"demo"}


def test_the_models_and_tasks_are_the_demo_workspaces_own(loaded: Store) -> None:
    with loaded.connect() as db:
        served = set(db.execute(f"SELECT DISTINCT model_version, task_type FROM predictions WHERE {HISTORY}").fetchall())
    assert ("demo-geo-gpt4o-mini", "geo-compliance") in served
    assert ("demo-stylist-nova-lr5e-5", "stylist-feedback") in served
    assert {task for _, task in served} == {"geo-compliance", "stylist-feedback", "optimization-modeling"}


def test_the_drift_episode_lengthens_the_compliance_inputs_and_hurts_the_fine_tune(loaded: Store) -> None:
    cut = day_of(demo.DRIFT_DAY)
    with loaded.connect() as db:
        def lengths(column: str, before: bool) -> list[int]:
            return [r[0] for r in db.execute(
                f"SELECT {column} FROM predictions WHERE task_type = ? AND ts {'<' if before else '>='} ? AND {HISTORY}",
                [demo.DRIFT_TASK, cut])]

        def rates(before: bool) -> tuple[int, int, int, int]:
            return db.execute(
                f"SELECT SUM(correct), COUNT(correct), SUM(output LIKE 'I''m sorry%' OR output NOT LIKE '%}}'), COUNT(*) "
                f"FROM predictions WHERE model_version = ? AND error IS NULL AND ts {'<' if before else '>='} ? "
                f"AND {HISTORY}", [demo.DRIFT_MODEL, cut]).fetchone()

        labels_before = [r[0] for r in db.execute(
            f"SELECT ground_truth FROM predictions WHERE task_type = ? AND ts < ? AND {HISTORY} AND ground_truth "
            "IS NOT NULL", [demo.DRIFT_TASK, cut])]
        labels_after = [r[0] for r in db.execute(
            f"SELECT ground_truth FROM predictions WHERE task_type = ? AND ts >= ? AND {HISTORY} AND ground_truth "
            "IS NOT NULL", [demo.DRIFT_TASK, cut])]
        before, after = rates(True), rates(False)
        assert numeric_drift("input length", lengths("input_chars", True), lengths("input_chars", False)).verdict \
            is Verdict.DRIFT
        assert numeric_drift("output length", lengths("output_chars", True), lengths("output_chars", False)).verdict \
            is Verdict.DRIFT
        stylist_before = [r[0] for r in db.execute(
            f"SELECT input_chars FROM predictions WHERE task_type = 'stylist-feedback' AND ts < ? AND {HISTORY}", [cut])]
        stylist_after = [r[0] for r in db.execute(
            f"SELECT input_chars FROM predictions WHERE task_type = 'stylist-feedback' AND ts >= ? AND {HISTORY}", [cut])]
    assert numeric_drift("input length", stylist_before, stylist_after).verdict is Verdict.OK  # only one task changed
    assert categorical_drift("label mix", labels_before, labels_after).verdict is Verdict.DRIFT
    assert rate_drift("accuracy", before[0], before[1], after[0], after[1]).verdict is Verdict.DRIFT
    assert after[0] / after[1] < before[0] / before[1] - 0.08
    assert after[2] / after[3] > 3 * before[2] / before[3]  # refusals and cut-off JSON


def test_the_cost_spike_shows_in_daily_spend_from_the_rollups(loaded: Store) -> None:
    with loaded.connect() as db:
        spend = dict(db.execute("SELECT day, SUM(sum_cost) FROM prediction_daily WHERE model_version = ? "
                                "AND experiment_id = '' GROUP BY day", [demo.SPIKE_MODEL]).fetchall())
    spike_days = {day_of(d) for d in demo.SPIKE_DAYS}
    usual = median(v for d, v in spend.items() if d not in spike_days)
    assert all(spend[d] > 5 * usual for d in spike_days)
    assert max(v for d, v in spend.items() if d not in spike_days) < 3 * usual


def test_costs_are_priced_like_live_ingest_and_cache_hits_cost_nothing(loaded: Store) -> None:
    with loaded.connect() as db:
        nova = db.execute("SELECT model_version, tokens_in, tokens_out, cost_usd, cost_source, price_row FROM predictions "
                          "WHERE model_version = 'amazon.nova-lite-v1:0' AND cache_hit = 0 AND error IS NULL LIMIT 1"
                          ).fetchone()
        hits = db.execute(f"SELECT COUNT(*), SUM(cost_usd), MIN(cost_source) FROM predictions WHERE cache_hit = 1 "
                          f"AND {HISTORY}").fetchone()
        errors = db.execute(f"SELECT COUNT(*), COUNT(cost_usd), COUNT(output) FROM predictions WHERE error IS NOT NULL "
                            f"AND {HISTORY}").fetchone()
    priced = PriceBook().price(PredictionIn(model_version=nova[0], tokens_in=nova[1], tokens_out=nova[2]))
    assert (nova[3], nova[4], nova[5]) == (pytest.approx(priced.cost_usd), priced.source.value, priced.price_row)
    assert hits[0] > 0 and hits[1] == 0 and hits[2] == "inferred"
    assert errors[0] > 0 and errors[1] == 0 and errors[2] == 0


def test_feedback_points_at_demo_predictions_with_ratings_corrections_and_categories(loaded: Store) -> None:
    with loaded.connect() as db:
        rows = list(db.query("SELECT f.*, p.rating AS predicted_rating, p.ts AS predicted_ts FROM prediction_feedback f "
                             "JOIN predictions p ON p.id = f.prediction_id WHERE f.source = 'demo'"))
    assert len(rows) > ROWS * 0.01
    assert all(r["rating"] == r["predicted_rating"] for r in rows if r["rating"] is not None)
    assert all(r["ts"] >= r["predicted_ts"] for r in rows)
    assert any(r["correction"] for r in rows) and any(r["categories"] != "[]" for r in rows)
    assert any('"invalid_json"' in r["categories"] or '"refusal"' in r["categories"] for r in rows)


def test_rollups_agree_with_the_raw_rows_and_latency_buckets_with_the_domain(loaded: Store) -> None:
    with loaded.connect() as db:
        daily = {tuple(r[:6]): r[6:] for r in db.execute("SELECT * FROM prediction_daily ORDER BY 1, 2, 3, 4, 5, 6")}
        raw = db.execute("SELECT COUNT(*), SUM(cost_usd), SUM(tokens_out), SUM(correct), COUNT(rating) FROM predictions"
                         ).fetchone()
        rolled = db.execute("SELECT SUM(n), SUM(sum_cost), SUM(sum_tokens_out), SUM(n_correct), SUM(n_rated) "
                            "FROM prediction_daily").fetchone()
        latencies = db.execute("SELECT latency_ms, latency_bucket FROM predictions WHERE source = 'demo'").fetchall()
        assert sum(n for (n,) in db.execute("SELECT n FROM prediction_latency_daily")) == len(latencies)
    assert daily and rolled[0] == raw[0] and rolled[1] == pytest.approx(raw[1]) and rolled[2:] == raw[2:]
    assert all(latency_bucket(ms) == bucket for ms, bucket in latencies)


def same_rows(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> bool:
    """Equal row for row; sums of floats to 1e-9 relative (the order they were added in differs)."""
    return len(left) == len(right) and all(
        a == pytest.approx(b, rel=1e-9) if isinstance(a, float) else a == b
        for row_a, row_b in zip(left, right, strict=True) for a, b in zip(row_a, row_b, strict=True))


def test_rebuilt_rollups_equal_the_incrementally_kept_ones_on_the_same_rows(tmp_path: Path) -> None:
    generator = demo._Generator(np.random.default_rng(5), 20, 12_000, NOW)
    rows = list(generator.rows(Progress()))
    incremental, bulk = Store(tmp_path / "incremental.db"), Store(tmp_path / "bulk.db")
    with incremental.write() as db:
        for start in range(0, len(rows), 1_000):
            prediction_rows.insert_predictions(db, rows[start:start + 1_000])
    with bulk.write() as db:
        assert prediction_rows.insert_predictions_bulk(db, iter(rows)) == range(1, len(rows) + 1)
    for table in ("prediction_daily", "prediction_latency_daily"):
        with incremental.connect() as a, bulk.connect() as b:
            kept, rebuilt = (db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5, 6, 7").fetchall() for db in (a, b))
        assert len(kept) == len(rebuilt) > 0
        assert same_rows(kept, rebuilt)


def test_rebuild_rollups_repairs_a_rollup_and_follows_later_deletes(loaded: Store, tmp_path: Path) -> None:
    store = Store(tmp_path / "repair.db")
    with store.write() as db:
        prediction_rows.insert_predictions(db, list(demo._Generator(np.random.default_rng(1), 5, 2_000, NOW).rows(Progress())))
        expected = db.execute("SELECT * FROM prediction_daily ORDER BY 1, 2, 3, 4, 5, 6").fetchall()
        db.execute("UPDATE prediction_daily SET n = n + 7")
        prediction_rows.rebuild_rollups(db)
        assert same_rows(db.execute("SELECT * FROM prediction_daily ORDER BY 1, 2, 3, 4, 5, 6").fetchall(), expected)
        db.execute("DELETE FROM predictions WHERE id <= 100")  # the m015 triggers keep a rebuilt rollup current
        assert db.execute("SELECT SUM(n) FROM prediction_daily").fetchone()[0] == 1_900


def test_loading_twice_adds_nothing(loaded: Store) -> None:
    before = sums(loaded)
    again = demo.load_demo_history(loaded, total=ROWS, now=NOW)
    assert again.skipped and again.predictions == 0 and sums(loaded) == before
    assert demo.history_loaded(loaded)


def test_a_hundred_thousand_rows_load_in_a_few_seconds_with_progress(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "_load_demo_experiment", lambda *args: False)  # the generator's own time only
    seen: list[str] = []
    progress = Progress(lambda state: seen.append(state.stage), every=0.0)
    store = Store(tmp_path / "timed.db")
    started = time.process_time()  # this process's CPU (SQLite's included): other work on a shared machine cannot fail it
    result = demo.load_demo_history(store, total=100_000, now=NOW, progress=progress)
    elapsed = time.process_time() - started
    with store.connect() as db:
        assert result.predictions == prediction_rows.count(db) == 100_000
    assert "generating demo predictions" in seen
    assert elapsed < 15, f"100,000 demo predictions took {elapsed:.1f} s of CPU"


def test_the_service_loads_no_history_unless_asked(store: Store) -> None:
    assert demo.load_demo_history(store, total=0).skipped is False
    assert not demo.history_loaded(store)


def test_the_demo_prices_its_own_models_and_sets_a_budget_for_the_costs_page(loaded: Store) -> None:
    from workbench.services import cost_prices, costs

    rows = cost_prices.list_prices(loaded)
    book = cost_prices.PriceBook(rows)
    for model in (m for m in demo.DEMO_MODELS if m.own_price is not None):
        found = book.row_for(model.version, NOW.date().isoformat())
        assert found is not None and found.input_per_1m == pytest.approx(model.own_price[0] * 1000)  # type: ignore[index]
    assert demo.DEMO_BUDGET["name"] in {b.name for b in costs.list_budgets(loaded)}
    demo._load_demo_costs(loaded)  # once: a second call adds nothing
    assert len(cost_prices.list_prices(loaded)) == len(rows)


def test_the_demo_sets_alert_rules_that_fire_and_its_cost_spike_is_named(loaded: Store) -> None:
    from workbench.services import alerts, costs

    rules = {r.name: r for r in alerts.list_rules(loaded)}
    assert set(rules) == {a["name"] for a in demo.DEMO_ALERTS}
    assert rules["demo: geo-compliance inputs drifted"].model_version == demo.DRIFT_MODEL
    firing = {e.rule_name for e in alerts.firing(loaded)}
    assert "demo: geo-compliance inputs drifted" in firing, "Home shows the drift on first start"
    demo._load_demo_alerts(loaded, NOW)  # once: a second call adds no rule
    assert len(alerts.list_rules(loaded)) == len(rules)
    # The spike lies outside the Costs page's default 30 days; the page names it from the last 90.
    until = NOW.date()
    spike = costs.largest_spike(costs.inference_spend(loaded, until - timedelta(days=89), until))
    assert spike is not None and spike.top_key == demo.SPIKE_MODEL
    assert (spike.first_day, spike.last_day) == (day_of(demo.SPIKE_DAYS[0]), day_of(demo.SPIKE_DAYS[-1]))
    assert spike.first_day < (until - timedelta(days=29)).isoformat()
