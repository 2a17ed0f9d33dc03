"""Costs: spend sums, forecast, budgets, the price table, re-pricing and the what-if router, on hand-computed data."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from workbench.domain.predictions import PredictionIn
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import cost_prices, cost_whatif, costs, predictions
from workbench.store import Store
from workbench.store import deployments as deployment_rows
from workbench.store import jobs as job_rows
from workbench.store import models as model_rows

TODAY = date(2026, 11, 20)
CHEAP = "amazon.nova-micro-v1:0"
BIG = "amazon.nova-pro-v1:0"
GPT = "ft:gpt-4o-mini-2024-07-18:acme::abc"


def pred(ts: str, model: str, cost: float | None = None, **fields: Any) -> PredictionIn:
    return PredictionIn(ts=datetime.fromisoformat(f"{ts}+00:00"), model_version=model, cost_usd=cost, **fields)


def add(store: Store, *items: PredictionIn) -> None:
    predictions.ingest(store, list(items))


@pytest.fixture
def traffic(store: Store) -> Store:
    """Three days of priced traffic: nova pro and a gpt fine-tune, tasks and tags, a cache hit and a document."""
    add(
        store,
        pred("2026-11-18T10:00:00", BIG, 0.10, task_type="classify", tags=["team-a"]),
        pred("2026-11-18T11:00:00", BIG, 0.30, task_type="classify", tags=["team-a", "document"]),
        pred("2026-11-18T12:00:00", GPT, 0.05, task_type="doc_summary"),
        pred("2026-11-19T09:00:00", BIG, 0.20, task_type="extract", tags={"team": "b"}),
        pred("2026-11-19T09:30:00", BIG, None, cache_hit=True, task_type="extract", tokens_in=100, tokens_out=10),
        pred("2026-11-20T08:00:00", GPT, 0.15),
    )
    return store


def test_spend_by_model_provider_task_and_tag_sums_exactly(traffic: Store) -> None:
    since, until = date(2026, 11, 18), TODAY
    by = {d: {(p.day, p.key): round(p.usd, 10) for p in costs.inference_spend(traffic, since, until, d)} for d in costs.Dimension}
    assert by["model"] == {("2026-11-18", BIG): 0.40, ("2026-11-18", GPT): 0.05, ("2026-11-19", BIG): 0.20,
                           ("2026-11-20", GPT): 0.15}
    assert by["provider"] == {("2026-11-18", "bedrock"): 0.40, ("2026-11-18", "openai"): 0.05,
                              ("2026-11-19", "bedrock"): 0.20, ("2026-11-20", "openai"): 0.15}
    assert by["task"] == {("2026-11-18", "classify"): 0.40, ("2026-11-18", "doc_summary"): 0.05,
                          ("2026-11-19", "extract"): 0.20, ("2026-11-20", costs.NO_TASK): 0.15}
    assert by["tag"] == {("2026-11-18", "team-a"): 0.40, ("2026-11-18", "document"): 0.30, ("2026-11-19", "team=b"): 0.20}


def test_cost_per_request_and_per_document(traffic: Store) -> None:
    days = {d.day: d for d in costs.cost_per_request(traffic, date(2026, 11, 18), TODAY)}
    assert days["2026-11-18"].requests == 3 and days["2026-11-18"].per_request == pytest.approx(0.45 / 3)
    # Documents: the row tagged `document` (0.30) and the doc_* task (0.05).
    assert days["2026-11-18"].documents == 2 and days["2026-11-18"].per_document == pytest.approx(0.175)
    assert days["2026-11-19"].requests == 2 and days["2026-11-19"].per_request == pytest.approx(0.10)
    assert days["2026-11-19"].per_document is None


def test_summary_counts_training_serving_and_app_cache_savings(traffic: Store) -> None:
    with traffic.write() as db:
        job = job_rows.insert_job(db, name="ft-1", backend="bedrock", base_model="amazon.nova-micro-v1:0:128k",
                                  estimate_usd=9.0)
        job_rows.update_job(db, job.id, state="succeeded", submitted_at="2026-11-02T00:00:00+00:00",
                            finished_at="2026-11-03T00:00:00+00:00", trained_tokens=2_000_000)
        model_id = model_rows.upsert_from_job(db, job_id=job.id, name="m", backend="bedrock", base_model=BIG,
                                              model_id="arn:aws:bedrock:us-east-1:1:custom-model/x")
        deployment_rows.insert(db, model_id=model_id, kind="provisioned", status="active", units=2, hourly_usd=10.0,
                               created_at="2026-11-19T12:00:00+00:00")
    got = costs.summary(traffic, today=TODAY, now=datetime(2026, 11, 20, 6, tzinfo=UTC))
    assert got.inference_usd == pytest.approx(0.80) and got.requests == 6
    # Nova Micro trains at $0.001 per 1K tokens in the catalogue: 2M tokens -> $2.
    assert got.training_usd == pytest.approx(2.0)
    assert got.serving_usd == pytest.approx(18 * 10.0)  # 12:00 on the 19th to 06:00 on the 20th
    # The cache hit saved the average paid extract request of nova pro that day: 0.20.
    assert got.savings.app_cache_hits == 1 and got.savings.app_cache_usd == pytest.approx(0.20)
    assert got.total_usd == pytest.approx(0.80 + 2.0 + 180.0)


def test_prompt_cache_savings_use_the_cached_input_price(store: Store) -> None:
    cost_prices.set_price(store, CHEAP, "2026-11-01", cached_input_per_1m=0.01)
    add(store, pred("2026-11-19T10:00:00", CHEAP, 0.001, tokens_in=10, tokens_out=10, tokens_cached=1_000_000))
    got = costs.summary(store, today=TODAY)
    # Nova Micro input is $0.035 per 1M in the catalogue: 1M cached tokens at 0.01 save 0.025.
    assert got.savings.prompt_cache_usd == pytest.approx(0.025)


def test_forecast_is_spend_so_far_plus_the_seven_day_rate_times_days_left() -> None:
    daily = {f"2026-11-{d:02d}": 10.0 for d in range(1, 20)} | {"2026-11-20": 4.0}
    daily |= {f"2026-11-{d:02d}": 20.0 for d in range(13, 20)}
    got = costs.forecast_from(daily, TODAY)
    assert got.spent == pytest.approx(12 * 10 + 7 * 20 + 4)
    assert got.days_left == 10 and got.rate_7 == pytest.approx(20.0) and got.rate_14 == pytest.approx(15.0)
    assert got.point == pytest.approx(264 + 20 * 10)
    assert got.low <= 264 + 15 * 10 < got.point < got.high
    flat = costs.forecast_from({f"2026-11-{d:02d}": 5.0 for d in range(1, 21)}, TODAY)
    assert flat.low == flat.point == flat.high == pytest.approx(100 + 50)


def test_forecast_at_month_end_has_no_days_left() -> None:
    got = costs.forecast_from({"2026-11-30": 3.0}, date(2026, 11, 30))
    assert got.days_left == 0 and got.point == got.spent == 3.0


def test_forecast_on_the_last_evening_counts_the_rest_of_today() -> None:
    """At 19:50 UTC on Nov 30 a fifth of the day is still to be spent: the forecast is above spend so far."""
    daily = {f"2026-11-{d:02d}": 24.0 for d in range(1, 30)} | {"2026-11-30": 20.0}
    got = costs.forecast_from(daily, date(2026, 11, 30), now=datetime(2026, 11, 30, 19, 50, tzinfo=UTC))
    left = (24 * 60 - (19 * 60 + 50)) / (24 * 60)
    assert got.days_left == pytest.approx(left)
    assert got.point == pytest.approx(got.spent + 24.0 * left) and got.point > got.spent
    assert "rest of today" in got.method
    mid_month = costs.forecast_from(daily, TODAY, now=datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    assert mid_month.days_left == pytest.approx(10.5)


def test_summary_forecast_uses_the_clock(store: Store) -> None:
    add(store, *(pred(f"2026-11-{d:02d}T01:00:00", BIG, 1.0) for d in range(16, 31)))
    got = costs.summary(store, now=datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
    assert got.forecast.days_left == pytest.approx(0.25)
    assert got.forecast.point == pytest.approx(got.forecast.spent + 0.25)


def test_prompt_cache_without_a_cached_input_price_is_counted_as_unpriced(store: Store) -> None:
    add(store, pred("2026-11-19T10:00:00", CHEAP, 0.001, tokens_in=10, tokens_out=10, tokens_cached=9_300_000))
    got = costs.summary(store, today=TODAY)
    assert got.savings.prompt_cache_usd == 0.0
    assert got.savings.prompt_cache_tokens == got.savings.prompt_cache_unpriced_tokens == 9_300_000


def test_budget_scope_values_come_from_traffic_and_a_typo_is_warned(traffic: Store) -> None:
    assert set(costs.scope_values(traffic, "model", today=TODAY)) >= {BIG, GPT}
    assert "bedrock" in costs.scope_values(traffic, "provider", today=TODAY)
    assert "classify" in costs.scope_values(traffic, "task", today=TODAY)
    assert "team-a" in costs.scope_values(traffic, "tag", today=TODAY)
    assert costs.scope_warning(traffic, "model", BIG, today=TODAY) is None
    assert costs.scope_warning(traffic, "all", None, today=TODAY) is None
    warning = costs.scope_warning(traffic, "model", "claude-3-haiku", today=TODAY)
    assert warning is not None and "'claude-3-haiku'" in warning and BIG in warning and "$0.00" in warning


def test_budgets_fire_on_spend_or_forecast_and_stay_quiet_otherwise(traffic: Store) -> None:
    costs.save_budget(traffic, {"name": "everything", "scope": "all", "monthly_usd": 0.5, "alert_pct": 100})
    costs.save_budget(traffic, {"name": "openai", "scope": "provider", "scope_value": "openai", "monthly_usd": 100})
    costs.save_budget(traffic, {"name": "team a", "scope": "tag", "scope_value": "team-a", "monthly_usd": 0.45,
                                "alert_pct": 80})
    costs.save_budget(traffic, {"name": "extract", "scope": "task", "scope_value": "extract", "monthly_usd": 1})
    got = {s.budget.name: s for s in costs.budget_statuses(traffic, today=TODAY)}
    assert got["everything"].spent == pytest.approx(0.80) and got["everything"].alert
    assert "spent 160%" in got["everything"].reason
    assert got["openai"].spent == pytest.approx(0.20) and not got["openai"].alert
    assert got["team a"].spent == pytest.approx(0.40) and got["team a"].pct_used == pytest.approx(0.40 / 0.45 * 100)
    assert got["team a"].alert
    # 0.20 in the last 7 days -> 0.2/7 a day x 10 days left, + 0.20 spent: 0.486, under 80% of 1.
    assert got["extract"].forecast == pytest.approx(0.20 + 0.20 / 7 * 10) and not got["extract"].alert
    assert [s.budget.name for s in costs.budget_alerts(traffic, today=TODAY)] == ["everything", "team a"]


def test_a_forecast_past_the_alert_fires_before_the_money_is_spent(traffic: Store) -> None:
    costs.save_budget(traffic, {"name": "bedrock", "scope": "provider", "scope_value": "bedrock", "monthly_usd": 1.0})
    (status,) = costs.budget_statuses(traffic, today=TODAY)
    assert status.pct_used == pytest.approx(60) and status.alert and "forecast" in status.reason and "spent" not in status.reason


@pytest.mark.parametrize(("raw", "field"), [
    ({"name": "", "monthly_usd": 1}, "name"),
    ({"name": "b", "scope": "team", "monthly_usd": 1}, "scope"),
    ({"name": "b", "scope": "model", "monthly_usd": 1}, "scope_value"),
    ({"name": "b", "monthly_usd": 0}, "monthly_usd"),
    ({"name": "b", "monthly_usd": "lots"}, "monthly_usd"),
    ({"name": "b", "monthly_usd": 5, "alert_pct": -1}, "alert_pct"),
])
def test_bad_budgets_are_refused_naming_the_field(store: Store, raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        costs.save_budget(store, raw)


def test_budgets_are_edited_renamed_and_deleted_by_name(store: Store) -> None:
    costs.save_budget(store, {"name": "a", "monthly_usd": 10})
    with pytest.raises(Conflict, match="already exists"):
        costs.save_budget(store, {"name": "a", "monthly_usd": 10})
    costs.save_budget(store, {"name": "b", "monthly_usd": 20, "alert_pct": 50}, replace="a")
    assert [(b.name, b.monthly_usd, b.alert_pct) for b in costs.list_budgets(store)] == [("b", 20, 50)]
    costs.delete_budget(store, "b")
    with pytest.raises(NotFound, match="no budget named 'b'"):
        costs.delete_budget(store, "b")


def test_the_price_table_starts_as_the_catalogue(store: Store) -> None:
    prices = {p.model: p for p in cost_prices.list_prices(store)}
    micro = prices["amazon.nova-micro-v1:0"]
    assert micro.created_by == cost_prices.CATALOGUE and micro.provider == "bedrock"
    assert micro.input_per_1m == pytest.approx(0.035) and micro.output_per_1m == pytest.approx(0.14)
    assert micro.training_per_1m == pytest.approx(1.0) and micro.source_url.startswith("https://")
    assert prices["amazon.titan-text-express-v1:0"].pt_hourly == pytest.approx(20.5)
    assert prices["gpt-4o-mini-2024-07-18"].training_per_1m == pytest.approx(3.0)
    assert cost_prices.seed_prices(store) == 0  # only an empty table is seeded


def test_a_price_change_applies_from_its_day_and_ends_the_row_it_replaces(store: Store) -> None:
    new = cost_prices.set_price(store, "us.amazon.nova-micro-v1:0", "2026-11-10", input_per_1m=0.05)
    assert new.model == "amazon.nova-micro-v1:0" and new.output_per_1m == pytest.approx(0.14) and new.created_by == "user"
    book = cost_prices.price_book(store)
    assert book.row_for(CHEAP, "2026-11-09").input_per_1m == pytest.approx(0.035)
    assert book.row_for(CHEAP, "2026-11-10").input_per_1m == pytest.approx(0.05)
    old = next(p for p in book.prices if p.model == new.model and p.id != new.id)
    assert old.effective_to == "2026-11-10"


def test_a_pattern_prices_fine_tuned_ids_and_names_their_provider(store: Store) -> None:
    cost_prices.save_prices(store, [{"model": "my-tuned", "provider": "openai", "match_pattern": r"^ft:gpt-4o-mini",
                               "input_per_1m": 0.3, "output_per_1m": 1.2}])
    book = cost_prices.price_book(store)
    assert book.row_for(GPT, "2026-01-01").model == "my-tuned"
    assert book.provider("us.anthropic.claude-3-haiku-20240307-v1:0") == "bedrock"
    assert book.provider("claude-sonnet-4-5") == "anthropic" and book.provider("mystery") == "other"


@pytest.mark.parametrize(("edit", "message"), [
    ({"model": ""}, "price row 2: model is empty"),
    ({"model": "m", "input_per_1m": -1}, r"price row 2 \(m\): input_per_1m must be 0 or more"),
    ({"model": "m", "output_per_1m": "cheap"}, r"price row 2 \(m\): output_per_1m must be a number"),
    ({"model": "m", "cached_input_per_1m": float("inf")}, "cached_input_per_1m must be 0 or more"),
    ({"model": "m", "pt_hourly": 5e6}, "pt_hourly is 5,000,000 USD"),
    ({"model": "m", "effective_from": "20/11/2026"}, "effective_from must be a day as YYYY-MM-DD"),
    ({"model": "m", "effective_from": "2026-02-30"}, "effective_from '2026-02-30' is not a real day"),
    ({"model": "m", "effective_from": "2026-02-02", "effective_to": "2026-02-01"}, "effective_to .* must be after"),
    ({"model": "m", "source_url": "aws pricing"}, "source_url must be an http"),
    ({"model": "m", "match_pattern": "(["}, "match_pattern is not a valid"),
])
def test_bad_price_rows_are_refused_naming_the_row_and_field(store: Store, edit: dict[str, Any], message: str) -> None:
    before = cost_prices.list_prices(store)
    with pytest.raises(InvalidInput, match=message):
        cost_prices.save_prices(store, [{"model": "fine", "input_per_1m": 1}, edit])
    assert cost_prices.list_prices(store) == before  # all or nothing


def test_a_negative_price_is_refused_as_the_cli_words_it(store: Store) -> None:
    row = cost_prices.list_prices(store)[1]
    with pytest.raises(InvalidInput, match=rf"^price row 1 \({re.escape(row.model)}\): input_per_1m must be 0 or more "
                                           r"USD, got -5\.0$"):
        cost_prices.save_prices(store, [{**row.model_dump(), "input_per_1m": np.float64(-5)}])


def test_a_price_edited_in_place_applies_from_today_and_becomes_the_persons(store: Store) -> None:
    add(store, pred("2026-11-10T10:00:00", CHEAP, 0.001, tokens_in=1_000_000, tokens_out=0))
    row = next(p for p in cost_prices.list_prices(store) if p.model == CHEAP and p.effective_to is None)
    assert row.created_by == "catalogue" and (row.effective_from or "") < TODAY.isoformat()
    cost_prices.save_prices(store, [{**row.model_dump(), "input_per_1m": 1.0}], today=TODAY)
    after = [p for p in cost_prices.list_prices(store) if p.model == CHEAP]
    old = next(p for p in after if p.id == row.id)
    new = next(p for p in after if p.id != row.id)
    assert (old.input_per_1m, old.effective_to, old.created_by) == (row.input_per_1m, TODAY.isoformat(), "catalogue")
    assert (new.input_per_1m, new.effective_from, new.effective_to, new.created_by) == (1.0, TODAY.isoformat(), None, "user")
    # Re-price's "old" column keeps the price in force on the 10th.
    got = cost_whatif.reprice(store, CHEAP, days=30, today=TODAY, input_per_1m=2.0, output_per_1m=0.14)
    assert got.old_usd == pytest.approx(row.input_per_1m)

    # Editing the days as well means the correction reaches back: in place, and the person's.
    cost_prices.save_prices(store, [{**old.model_dump(), "input_per_1m": 0.5, "effective_from": "2026-01-01"}],
                            today=TODAY)
    fixed = next(p for p in cost_prices.list_prices(store) if p.id == row.id)
    assert (fixed.input_per_1m, fixed.effective_from, fixed.created_by) == (0.5, "2026-01-01", "user")
    # A note alone is corrected in place; unchanged rows keep their author.
    other = next(p for p in cost_prices.list_prices(store) if p.created_by == "catalogue")
    cost_prices.save_prices(store, [other.model_dump(), {**new.model_dump(), "note": "checked"}], today=TODAY)
    assert next(p for p in cost_prices.list_prices(store) if p.id == other.id).created_by == "catalogue"
    assert next(p for p in cost_prices.list_prices(store) if p.id == new.id).note == "checked"


def test_editing_a_row_in_place_and_deleting_it(store: Store) -> None:
    row = cost_prices.list_prices(store)[0]
    cost_prices.save_prices(store, [{**row.model_dump(), "note": "checked 2026-11"}])
    assert next(p for p in cost_prices.list_prices(store) if p.id == row.id).note == "checked 2026-11"
    with pytest.raises(NotFound, match="no price row with id 99999"):
        cost_prices.save_prices(store, [{**row.model_dump(), "id": 99999}])
    cost_prices.delete_price(store, row.id)
    assert row.id not in {p.id for p in cost_prices.list_prices(store)}


def test_reprice_shows_old_and_new_cost_of_past_traffic(store: Store) -> None:
    add(store,
        pred("2026-11-19T10:00:00", CHEAP, tokens_in=1_000_000, tokens_out=500_000),
        pred("2026-11-20T10:00:00", f"us.{CHEAP}", tokens_in=2_000_000, tokens_out=0),
        pred("2026-11-01T10:00:00", CHEAP, tokens_in=9_000_000, tokens_out=0),  # outside the 7 days
        pred("2026-11-20T10:00:00", BIG, tokens_in=1_000_000, tokens_out=0))    # another model
    got = cost_whatif.reprice(store, CHEAP, days=7, today=TODAY, input_per_1m=0.1)
    assert got.models_matched == [CHEAP, f"us.{CHEAP}"]
    # Old: 3M in x 0.035 + 0.5M out x 0.14 = 0.175; new: 3M x 0.1 + 0.5M x 0.14 = 0.37.
    assert got.old_usd == pytest.approx(0.175) and got.stored_usd == pytest.approx(0.175)
    assert got.new_usd == pytest.approx(0.37) and got.difference_usd == pytest.approx(0.195)
    assert [d.day for d in got.by_day] == ["2026-11-19", "2026-11-20"]
    with pytest.raises(InvalidInput, match="input_per_1m must be 0 or more"):
        cost_whatif.reprice(store, CHEAP, days=7, today=TODAY, input_per_1m=-2)
    with pytest.raises(InvalidInput, match="input_per_1m and output_per_1m are needed"):
        cost_whatif.reprice(store, "unknown-model", days=7, today=TODAY, input_per_1m=1)


def test_what_if_router_saving_and_accuracy_cost_are_exact(store: Store) -> None:
    cost_prices.save_prices(store, [{"model": "big", "input_per_1m": 10, "output_per_1m": 30},
                              {"model": "small", "input_per_1m": 1, "output_per_1m": 3}])
    rows = []
    for i in range(10):  # big: short inputs (40 chars) right 9 of 10; long ones (400 chars) right 10 of 10
        rows.append(pred(f"2026-11-19T10:{i:02d}:00", "big", tokens_in=1000, tokens_out=100, task_type="qa",
                         input="x" * 40, correct=i != 0))
        rows.append(pred(f"2026-11-19T11:{i:02d}:00", "big", tokens_in=1000, tokens_out=100, task_type="qa",
                         input="x" * 400, correct=True))
    for i in range(4):  # small on its own traffic: right 3 of 4
        rows.append(pred(f"2026-11-18T10:{i:02d}:00", "small", tokens_in=1000, tokens_out=100, task_type="qa", correct=i != 0))
    add(store, *rows)
    got = cost_whatif.what_if(store, cost_whatif.RouterPolicy(to_model="small", max_input_chars=100), days=7, today=TODAY)
    # Each big call: 1000 x 10/1M + 100 x 30/1M = 0.013; on small: 0.0013. Ten routed.
    assert got.routed_rows == 10 and got.sample_rows == got.window_rows == 24
    assert got.routed_old_usd == pytest.approx(0.13) and got.routed_new_usd == pytest.approx(0.013)
    assert got.saving_usd == pytest.approx(0.117) and got.saving_window_usd == pytest.approx(0.117)
    assert got.current_usd == pytest.approx(20 * 0.013 + 4 * 0.0013)
    # Before: 19 + 3 right of 24. After: the 10 routed are right 75% of the time: 22 - 9 + 7.5 = 20.5.
    assert got.accuracy_before == pytest.approx(22 / 24) and got.accuracy_after == pytest.approx(20.5 / 24)
    (task,) = got.tasks
    assert task.task == "qa" and task.current_accuracy == pytest.approx(0.9) and task.to_model_accuracy == pytest.approx(0.75)
    by_task = cost_whatif.what_if(store, cost_whatif.RouterPolicy(to_model="small", task_type="qa", from_models=["big"]),
                            days=7, today=TODAY)
    assert by_task.routed_rows == 20 and by_task.saving_usd == pytest.approx(20 * 0.0117)


def test_what_if_samples_a_big_window_and_scales_the_saving(store: Store) -> None:
    cost_prices.save_prices(store, [{"model": "big", "input_per_1m": 10, "output_per_1m": 0},
                              {"model": "small", "input_per_1m": 1, "output_per_1m": 0}])
    add(store, *[pred(f"2026-11-19T10:{i // 60:02d}:{i % 60:02d}", "big", tokens_in=1000, tokens_out=0, input="hi")
                 for i in range(300)])
    got = cost_whatif.what_if(store, cost_whatif.RouterPolicy(to_model="small", max_input_chars=10), days=7, today=TODAY, sample=50)
    assert got.window_rows == 300 and got.sample_rows == 50 and got.routed_rows == 50
    assert got.saving_window_usd == pytest.approx(300 * 0.009)
    assert "uniform sample of 50 rows" in got.assumptions[1]


def test_what_if_refuses_a_policy_that_routes_nothing_or_a_model_without_prices(store: Store) -> None:
    with pytest.raises(InvalidInput, match="routes nothing"):
        cost_whatif.what_if(store, cost_whatif.RouterPolicy(to_model=CHEAP), today=TODAY)
    with pytest.raises(InvalidInput, match="no input and output price"):
        cost_whatif.what_if(store, cost_whatif.RouterPolicy(to_model="nobody", max_input_chars=10), today=TODAY)


def test_the_price_table_can_price_predictions_on_arrival(store: Store) -> None:
    from workbench.domain.predictions import PriceBook

    cost_prices.set_price(store, CHEAP, "2026-11-10", input_per_1m=1.0, output_per_1m=2.0)
    book = PriceBook(cost_prices.inference_prices(store, date(2026, 11, 15)))
    usd, _, row = book.price(pred("2026-11-15T00:00:00", f"us.{CHEAP}", tokens_in=1_000_000, tokens_out=1_000_000))
    assert usd == pytest.approx(3.0) and "price table row" in (row or "")
    before = PriceBook(cost_prices.inference_prices(store, date(2026, 11, 1)))
    assert before.price(pred("2026-11-01T00:00:00", CHEAP, tokens_in=1_000_000))[0] == pytest.approx(0.035)


def test_ingest_prices_new_traffic_from_the_workspace_price_table(store: Store) -> None:
    from workbench.domain.predictions import PredictionIn
    from workbench.services import predictions

    cost_prices.set_price(store, "house-model-v1", "2020-01-01", input_per_1m=2.0, output_per_1m=4.0)
    [pid] = predictions.ingest(store, [PredictionIn(model_version="house-model-v1", tokens_in=500_000, tokens_out=250_000)])
    with store.connect() as db:
        cost, row = db.execute("SELECT cost_usd, price_row FROM predictions WHERE id = ?", [pid]).fetchone()
    assert cost == pytest.approx(2.0) and "price table row" in row


def _rows_of(store: Store, model: str) -> list[tuple[str | None, str | None, float | None]]:
    return [(p.effective_from, p.effective_to, p.input_per_1m) for p in cost_prices.list_prices(store) if p.model == model]


def test_a_set_on_a_day_that_has_a_row_replaces_it(store: Store) -> None:
    first = cost_prices.set_price(store, CHEAP, "2026-11-10", input_per_1m=0.05)
    again = cost_prices.set_price(store, CHEAP, "2026-11-10", input_per_1m=0.07)
    assert again.id == first.id and again.output_per_1m == pytest.approx(0.14)
    assert _rows_of(store, CHEAP) == [(None, "2026-11-10", pytest.approx(0.035)), ("2026-11-10", None, 0.07)]


def test_sets_on_different_days_never_overlap(store: Store) -> None:
    cost_prices.set_price(store, CHEAP, "2026-12-01", input_per_1m=0.09)
    cost_prices.set_price(store, CHEAP, "2026-11-15", input_per_1m=0.05)  # before the later row: ends where it starts
    assert _rows_of(store, CHEAP) == [(None, "2026-11-15", pytest.approx(0.035)), ("2026-11-15", "2026-12-01", 0.05),
                                      ("2026-12-01", None, 0.09)]
    book = cost_prices.price_book(store)
    assert [book.row_for(CHEAP, d).input_per_1m for d in ("2026-11-14", "2026-11-20", "2026-12-02")] == \
        [pytest.approx(0.035), 0.05, 0.09]


def test_an_edit_that_makes_rows_overlap_is_refused_and_nothing_is_saved(store: Store) -> None:
    later = cost_prices.set_price(store, CHEAP, "2026-11-15", input_per_1m=0.05)
    before = cost_prices.list_prices(store)
    with pytest.raises(InvalidInput, match=rf"price rows #\d+ and #{later.id} of {re.escape(CHEAP)} overlap"):
        cost_prices.save_prices(store, [{**later.model_dump(), "effective_from": "2026-11-01", "effective_to": None},
                                        {"model": CHEAP, "input_per_1m": 1.0, "effective_from": "2026-11-05"}],
                                today=TODAY)
    assert cost_prices.list_prices(store) == before


def test_a_blank_price_keeps_the_price_it_had(store: Store) -> None:
    row = next(p for p in cost_prices.list_prices(store) if p.model == CHEAP)
    cost_prices.save_prices(store, [{**row.model_dump(), "input_per_1m": None, "output_per_1m": 0.2}], today=TODAY)
    new = next(p for p in cost_prices.list_prices(store) if p.model == CHEAP and p.effective_to is None)
    assert (new.input_per_1m, new.output_per_1m) == (pytest.approx(0.035), 0.2)
    cost_prices.save_prices(store, [{"model": CHEAP, "output_per_1m": 0.3, "effective_from": "2026-12-01"}], today=TODAY)
    assert cost_prices.price_book(store).row_for(CHEAP, "2026-12-02").input_per_1m == pytest.approx(0.035)


@pytest.mark.parametrize(("field", "day"), [("effective_from", "1999-12-31"), ("effective_to", "2027-11-22")])
def test_price_days_are_bounded(store: Store, field: str, day: str) -> None:
    with pytest.raises(InvalidInput, match=f"{field} {day} is out of range; give a day from 2000-01-01 to 2027-11-21"):
        cost_prices.save_prices(store, [{"model": "m", "input_per_1m": 1, field: day}], today=TODAY)


def test_the_largest_spike_is_measured_against_the_week_before_not_a_weekend() -> None:
    def week(start: int, usd: list[float], key: str = "a") -> list[costs.SpendPoint]:
        return [costs.SpendPoint(day=(date(2026, 10, 1) + timedelta(days=start + i)).isoformat(), key=key, usd=u)
                for i, u in enumerate(usd)]

    normal = [3.0, 3.2, 3.1, 3.3, 3.0, 1.2, 1.0]  # a quiet weekend, then Monday is no spike
    points = week(0, normal) + week(7, normal) + week(14, [3.1, 3.0]) + week(14, [9.0, 9.5], key="b") + week(16, normal)
    spike = costs.largest_spike(points)
    assert spike is not None and (spike.first_day, spike.last_day, spike.peak_day) == ("2026-10-15", "2026-10-16",
                                                                                          "2026-10-16")
    assert spike.top_key == "b" and spike.usual_usd == pytest.approx(3.1)
    assert costs.largest_spike(week(0, normal) + week(7, normal) + week(14, normal)) is None
    assert costs.largest_spike([]) is None
