"""`workbench drift` and `workbench alerts ...` with --json, as a script reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.monitoring_data import MODEL, fill
from workbench.cli import main
from workbench.store import Store


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--db", str(db), *args, "--json"])
    assert (result.exit_code == 0) == ok, result.output
    assert "Traceback" not in result.output
    return orjson.loads(result.output)  # exactly one JSON object


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("cli") / "workbench.db")
    fill(store, per_day=150)
    return store


def test_drift_prints_each_signal_with_method_statistic_threshold_and_verdict(filled: Store) -> None:
    out = run(filled.path, "drift", "--model", MODEL, "--reference-days", "7", "--current-days", "7",
              "--task", "classify")
    assert out["ok"] and out["current"]["until_day"] == "2026-11-09" and out["overall"]["verdict"] == "drift"
    signals = {s["key"]: s for s in out["signals"]}
    assert signals["accuracy"]["verdict"] == "drift" and signals["input_length"]["verdict"] == "ok"
    for signal in signals.values():
        assert {"method", "statistic", "threshold", "rule", "verdict", "reference_size", "current_size",
                "explanation"} <= set(signal)


def test_drift_before_the_change_finds_none_and_a_text_report_reads(filled: Store) -> None:
    out = run(filled.path, "drift", "--model", MODEL, "--until", "2026-10-30")
    assert out["overall"]["verdict"] == "ok"
    text = CliRunner().invoke(main, ["--db", str(filled.path), "drift", "--model", MODEL])
    assert text.exit_code == 0 and "overall: drift" in text.output and "accuracy" in text.output


def test_drift_failures_are_one_json_object(filled: Store) -> None:
    assert "no predictions for model version 'nope'" in run(filled.path, "drift", "--model", "nope", ok=False)["error"]
    assert "YYYY-MM-DD" in run(filled.path, "drift", "--model", MODEL, "--until", "soon", ok=False)["error"]
    assert run(filled.path, "drift", "--model", MODEL, "--current-days", "0", ok=False)["ok"] is False


def test_alert_rules_are_created_listed_checked_and_deleted(store: Store) -> None:
    made = run(store.path, "alerts", "create", "--name", "slow", "--metric", "latency_p95_ms", "--threshold", "2000",
               "--window-days", "2")
    assert made["rule"]["comparison"] == ">" and made["rule"]["window_days"] == 2
    run(store.path, "alerts", "create", "--name", "drifting", "--metric", "drift:output_length", "--model", MODEL)
    assert [r["name"] for r in run(store.path, "alerts", "list")["rules"]] == ["drifting", "slow"]
    checked = run(store.path, "alerts", "check")
    assert checked["checked"] == 2 and checked["fired"] == [] and checked["firing"] == []
    assert run(store.path, "alerts", "delete", "slow")["deleted"]["name"] == "slow"
    assert [r["name"] for r in run(store.path, "alerts", "list")["rules"]] == ["drifting"]


def test_alert_errors_are_one_json_object(store: Store) -> None:
    assert "choose one of" in run(store.path, "alerts", "create", "--name", "x", "--metric", "mood", ok=False)["error"]
    assert "workbench alerts list" in run(store.path, "alerts", "delete", "nope", ok=False)["error"]
    assert "needs a model version (--model" in run(store.path, "alerts", "create", "--name", "x", "--metric",
                                                   "drift:output_length", ok=False)["error"]
