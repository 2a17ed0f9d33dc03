"""`workbench costs ...` as a user runs it: one JSON object per command, failures included."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.domain.predictions import PredictionIn
from workbench.services import predictions
from workbench.store import Store

TODAY = "2026-11-20"


def run(store: Store, *args: str, ok: bool = True) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--db", str(store.path), "costs", *args, "--json"])
    assert (result.exit_code == 0) == ok, result.output
    assert "Traceback" not in result.output
    return orjson.loads(result.output)


@pytest.fixture
def traffic(store: Store) -> Store:
    def pred(ts: str, model: str, **fields: Any) -> PredictionIn:
        return PredictionIn(ts=datetime.fromisoformat(f"2026-11-{ts}+00:00"), model_version=model, **fields)

    predictions.ingest(store, [
        pred("19T10:00:00", "big", tokens_in=1000, tokens_out=100, input="x" * 20, task_type="qa", correct=True),
        pred("19T11:00:00", "big", tokens_in=1000, tokens_out=100, input="x" * 500, task_type="qa", correct=True),
        pred("18T11:00:00", "small", tokens_in=1000, tokens_out=100, input="x" * 20, task_type="qa", correct=False),
    ])
    return store


def test_prices_set_then_summary_budgets_reprice_and_whatif(traffic: Store) -> None:
    listed = run(traffic, "prices", "list")["prices"]
    assert any(p["model"] == "amazon.nova-micro-v1:0" and p["created_by"] == "catalogue" for p in listed)
    big = run(traffic, "prices", "set", "big", "--from", "2026-11-01", "--input", "10", "--output", "30",
              "--source", "https://example.com/prices")["price"]
    assert big["input_per_1m"] == 10 and big["effective_from"] == "2026-11-01"
    run(traffic, "prices", "set", "small", "--from", "2026-11-01", "--input", "1", "--output", "3")

    summary = run(traffic, "summary", "--today", TODAY)
    assert summary["requests"] == 3 and summary["inference_usd"] == 0
    assert "7-day daily run-rate" in summary["forecast"]["method"]

    made = run(traffic, "budgets", "set", "all spend", "--monthly", "100", "--alert-pct", "50")["budget"]
    assert made["scope"] == "all" and made["alert_pct"] == 50
    statuses = run(traffic, "budgets", "list", "--today", TODAY)["budgets"]
    assert [s["budget"]["name"] for s in statuses] == ["all spend"] and statuses[0]["alert"] is False

    again = run(traffic, "reprice", "big", "--days", "7", "--input", "20", "--today", TODAY)
    # 2000 input tokens and 200 output: 0.02 + 0.006 at the prices in force, 0.04 + 0.006 at the new ones.
    assert again["old_usd"] == pytest.approx(0.026) and again["new_usd"] == pytest.approx(0.046)

    whatif = run(traffic, "whatif", "--to", "small", "--max-input-chars", "100", "--days", "7", "--today", TODAY)
    assert whatif["routed_rows"] == 1 and whatif["saving_usd"] == pytest.approx(0.013 - 0.0013)
    assert whatif["routed_window_rows"] == 1 and whatif["window_rows"] == 3
    assert whatif["accuracy_before"] == pytest.approx(2 / 3) and whatif["accuracy_after"] == pytest.approx(1 / 3)


def test_a_budget_scope_value_no_traffic_has_is_saved_with_a_warning(traffic: Store) -> None:
    typo = run(traffic, "budgets", "set", "haiku", "--monthly", "10", "--scope", "model", "--value", "claude-3-haiku")
    assert typo["budget"]["scope_value"] == "claude-3-haiku"
    assert "no traffic in the last 90 days has model 'claude-3-haiku'" in typo["warning"]
    assert "big" in typo["warning"] and "small" in typo["warning"]
    fine = run(traffic, "budgets", "set", "big model", "--monthly", "10", "--scope", "model", "--value", "big")
    assert "warning" not in fine
    human = CliRunner().invoke(main, ["--db", str(traffic.path), "costs", "budgets", "set", "qa", "--monthly", "5",
                                      "--scope", "task", "--value", "QA"])
    assert human.exit_code == 0 and "warning: no traffic in the last 90 days has task 'QA'" in human.output


@pytest.mark.parametrize(("args", "message"), [
    (("prices", "set", "m", "--from", "yesterday", "--input", "1"), "effective_from must be a day"),
    (("prices", "set", "m", "--from", "2026-01-01", "--input", "-1"), "input_per_1m must be 0 or more USD, got -1.0"),
    (("prices", "set", "amazon.nova-micro-v1:0", "--from", "2026-11-30", "--input", "nan"),
     "input_per_1m must be a number of USD, got NaN"),
    (("prices", "set", "m", "--from", "2026-01-01", "--output", "inf"), "output_per_1m must be 0 or more USD, got inf"),
    (("prices", "set", "m", "--from", "1900-01-01", "--input", "1"), "effective_from 1900-01-01 is out of range"),
    (("prices", "set", "m", "--from", "9999-12-31", "--input", "1"), "effective_from 9999-12-31 is out of range"),
    (("prices", "delete", "99999"), "no price row with id 99999"),
    (("budgets", "set", "b", "--monthly", "0"), "monthly_usd must be more than 0"),
    (("budgets", "set", "b", "--monthly", "5", "--scope", "model"), "scope_value is empty"),
    (("budgets", "delete", "nobody"), "no budget named 'nobody'"),
    (("whatif", "--to", "nobody", "--task", "qa"), "no input and output price"),
    (("whatif", "--to", "big"), "routes nothing"),
])
def test_failures_are_one_json_object_naming_the_problem(store: Store, args: tuple[str, ...], message: str) -> None:
    got = run(store, *args, ok=False)
    assert got["ok"] is False and message in got["error"]


def test_a_bad_today_is_refused(store: Store) -> None:
    result = CliRunner().invoke(main, ["--db", str(store.path), "costs", "summary", "--today", "soon", "--json"])
    assert result.exit_code != 0 and "YYYY-MM-DD" in result.output


def test_a_refused_nan_price_leaves_the_row_in_force_alone(store: Store) -> None:
    before = run(store, "prices", "list")["prices"]
    run(store, "prices", "set", "amazon.nova-micro-v1:0", "--from", "2026-11-30", "--input", "nan", ok=False)
    assert run(store, "prices", "list")["prices"] == before
