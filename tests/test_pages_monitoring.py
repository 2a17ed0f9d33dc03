"""The Monitoring page (and the alerts on Home) through Streamlit's AppTest, on stores filled via insert_predictions."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from tests.monitoring_data import MODEL, fill
from workbench.services import alerts, importing
from workbench.store import Store
from workbench.ui.widgets import escape_markdown

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "6_Monitoring.py")
HOME = str(ROOT / "Home.py")
LARGE = 200_000
FIRST_RENDER_S = 2.0

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def page(tab: str | None = None, script: str = PAGE) -> AppTest:
    app = AppTest.from_file(script, default_timeout=60)
    if tab:
        app.query_params["tab"] = tab
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture
def db(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    return store


def texts(app: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "info", "error", "success", "warning", "caption")
                     for e in getattr(app, kind))


def test_an_empty_store_says_how_to_send_predictions(db: Store) -> None:
    app = page()
    shown = texts(app)
    assert [h.value for h in app.subheader][0] == "No predictions yet"
    assert "POST /v1/predictions" in shown and "workbench.track" in shown and "workbench predictions import" in shown


def test_the_overview_charts_quality_latency_errors_and_volume(db: Store) -> None:
    fill(db, days=20, per_day=100)
    app = page()
    assert len(app.get("plotly_chart")) == 6
    assert "Demo data" not in texts(app)
    assert [m.label for m in app.metric][:2] == ["Predictions", "Accuracy"]
    assert app.metric[0].value == "2,000"


def test_demo_predictions_are_marked(db: Store) -> None:
    fill(db, days=3, per_day=50, source="demo")
    assert "Demo data" in texts(page())


def test_the_drift_tab_shows_the_table_and_a_histogram_per_drifted_number(db: Store) -> None:
    fill(db)
    app = page("Drift")
    assert "**Drift.**" in texts(app)
    table = app.dataframe[0].value
    assert {"signal", "method", "statistic", "threshold", "verdict", "reference n", "current n",
            "what it means"} <= set(table.columns)
    assert set(table["verdict"]) == {"ok", "drift"}
    charts = app.get("plotly_chart")
    assert len(charts) == 1  # output length drifted; input length did not


def test_the_alerts_tab_adds_a_rule_and_shows_what_fires(db: Store) -> None:
    today = datetime.now(UTC).date()
    fill(db, days=3, per_day=50, first_day=today - timedelta(days=2))
    app = page("Alerts")
    app.text_input(key="monitoring.alert_name").input("busy")
    app.selectbox(key="monitoring.alert_metric").select("volume")
    app.selectbox(key="monitoring.alert_cmp").select(">")
    app.number_input(key="monitoring.alert_threshold").set_value(10.0)
    app.button(key="monitoring.alert_add").click()
    app.run()
    assert [r.name for r in alerts.list_rules(db)] == ["busy"]
    app.button(key="monitoring.alerts_check").click()
    app.run()
    assert any("busy" in str(e.value) for e in app.error)


def test_the_rule_form_starts_each_metric_from_its_own_default_and_clears_after_adding(db: Store) -> None:
    today = datetime.now(UTC).date()
    fill(db, days=3, per_day=50, first_day=today - timedelta(days=2))
    app = page("Alerts")
    defaults = {}
    for metric in ("accuracy", "error_rate", "latency_p95_ms"):
        app.selectbox(key="monitoring.alert_metric").select(metric).run()
        defaults[metric] = (app.selectbox(key="monitoring.alert_cmp").value,
                            app.number_input(key="monitoring.alert_threshold").value)
    assert defaults == {"accuracy": ("<", 0.9), "error_rate": (">", 0.05), "latency_p95_ms": (">", 5000.0)}
    tasks = app.selectbox(key="monitoring.alert_task").options
    assert tasks[0] == "(any task)" and len(tasks) > 1
    app.text_input(key="monitoring.alert_name").input("slow")
    app.selectbox(key="monitoring.alert_task").select(tasks[1])
    app.button(key="monitoring.alert_add").click()
    app.run()
    (rule,) = alerts.list_rules(db)
    assert (rule.name, rule.metric, rule.comparison, rule.threshold) == ("slow", "latency_p95_ms", ">", 5000.0)
    assert rule.task_type == ("" if tasks[1] == "(no task type)" else tasks[1])
    assert app.text_input(key="monitoring.alert_name").value == ""
    assert app.selectbox(key="monitoring.alert_task").value == "(any task)"


def test_home_lists_firing_alerts_and_the_weeks_numbers(db: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat("hi", "hello")]), "notes")
    today = datetime.now(UTC).date()
    fill(db, days=3, per_day=50, first_day=today - timedelta(days=2))
    alerts.create_rule(db, name="busy <script>", metric="volume", threshold=10, comparison=">")
    alerts.evaluate_rules(db)
    app = page(script=HOME)
    links = [link.proto.label for link in app.get("page_link")]
    assert any(label.startswith("Alert busy \\<script\\>") for label in links), links  # escaped, not markup
    assert [m.value for m in app.metric if m.label == "Predictions"] == ["150"]


@pytest.fixture(scope="module")
def large_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("large") / "workbench.db")
    fill(store, days=100, per_day=LARGE // 100)
    fill(store, days=100, per_day=50, model="clf-v2")
    return store


def test_first_render_is_under_two_seconds_at_200k_predictions(large_store: Store, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    small = Store(tmp_path / "warm.db")
    fill(small, days=2, per_day=10)
    monkeypatch.setenv("WORKBENCH_DB", str(small.path))
    page()  # imports (streamlit, plotly) warm, as in a running app
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("WORKBENCH_DB", str(large_store.path))
    started = time.perf_counter()
    app = page()
    elapsed = time.perf_counter() - started
    assert len(app.get("plotly_chart")) == 6
    assert app.metric[0].value == f"{30 * (LARGE // 100 + 50):,}"  # the last 30 days, both models
    assert elapsed < FIRST_RENDER_S, f"first render took {elapsed:.2f} s"
    started = time.perf_counter()
    page("Drift")
    assert time.perf_counter() - started < FIRST_RENDER_S * 2, "the drift tab reads bounded samples"
    assert MODEL


def test_a_lower_case_tab_link_opens_the_tab_and_the_drift_table_reads_for_people(db: Store) -> None:
    fill(db)
    app = page("drift")
    assert "**Drift.**" in texts(app), "?tab=drift opens Drift, not Overview"
    table = app.dataframe[0].value
    assert all(isinstance(p, str) and p != "None" for p in table["p-value"])
    assert {p for p, m in zip(table["p-value"], table["method"], strict=True) if m == "wasserstein"} == {"–"}
    for explanation in table["what it means"]:
        assert escape_markdown(str(explanation)) in texts(app), "each meaning is listed in full under the table"
