"""The Experiments page (AppTest): the demo test shows its winner fast, SRM is loud, define, ship with confirmation."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_evaluations import add_model
from tests.test_experiments import log, prediction
from workbench.services import experiments as svc
from workbench.store import Store
from workbench.store import models as model_rows

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "8_Experiments.py")
HOSTILE = "<script>alert(1)</script> **bold**"

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    return Store(path)


def run(tab: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if tab:
        at.query_params["tab"] = tab
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.error, *at.warning, *at.success, *at.info]
    return "\n".join(re.sub(r"\\(.)", r"\1", str(p.value)) for p in parts)


def test_the_demo_experiment_shows_its_winner_and_renders_fast(db: Store) -> None:
    """Timed on a second run with every cache emptied: an AppTest's first run also imports and scans installed
    packages for components, which a server does once at start, not per page."""
    import streamlit as st

    svc.load_demo_experiment(db, now=datetime.now(UTC))
    at = run()
    st.cache_data.clear()
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    assert not at.exception
    words = texts(at)
    assert "treatment wins on correct" in words
    assert "Demo data" in words
    table = at.dataframe[0].value
    assert list(table["result"]) == ["treatment wins on correct"] and "(demo)" in table["name"][0]
    assert "Sample ratio mismatch" not in words and "Sample ratio check" in words
    assert "Chance to beat control (Bayesian)" in [m.label for m in at.metric]
    assert len(at.get("plotly_chart")) == 2
    assert elapsed < 2.0, f"first render took {elapsed:.2f} s"


def test_a_skewed_split_shows_a_loud_warning(db: Store) -> None:
    made = svc.start(db, svc.create(db, "skewed", [svc.VariantIn(name="a", target="m1"),
                                                   svc.VariantIn(name="b", target="m2")]).id)
    log(db, [prediction(made.id, "a", f"a{i}", correct=True) for i in range(600)]
        + [prediction(made.id, "b", f"b{i}", correct=False) for i in range(400)])
    at = run()
    assert any("Sample ratio mismatch: do not trust" in str(e.value) for e in at.error)


def test_no_experiments_says_how_to_start(db: Store) -> None:
    assert "No experiments yet" in texts(run())


def test_define_creates_a_draft_and_refusals_name_the_field(db: Store) -> None:
    at = run("Define")
    at.text_input(key="experiments.name").set_value("new-test")
    at.button[0].click().run()  # the form's submit: both targets empty
    assert "variants[0].target" in texts(at)
    assert svc.list_experiments(db) == []


def test_define_with_targets(db: Store) -> None:
    at = run("Define")
    at.text_input(key="experiments.name").set_value("new-test")
    assert list(at.dataframe[0].value["name"]) == ["control", "treatment"], "the variants editor is drawn"
    # AppTest cannot type into a data editor: create through the same service the form calls.
    made = svc.create(db, "new-test", [svc.VariantIn(name="control", target="m1", weight=50),
                                       svc.VariantIn(name="treatment", target="m2", weight=50)])
    at = run()
    assert "Start assigning units" in [b.label for b in at.button]
    next(b for b in at.button if b.label == "Start assigning units").click().run()
    assert svc.get(db, made.id).state == "running"


def test_ship_needs_confirmation_and_activates_the_model(db: Store) -> None:
    first, second = add_model(db, "ft-a", output="out-a"), add_model(db, "ft-b", output="out-b")
    made = svc.create(db, "ship-me", [svc.VariantIn(name="control", target=f"model:{first}"),
                                      svc.VariantIn(name="treatment", target=f"model:{second}")],
                      task="triage", description=HOSTILE)
    svc.start(db, made.id)
    at = run()
    assert all("<script>" not in m.value for m in [*at.markdown, *at.caption])
    at.button(key="experiments.ship").click().run()
    assert svc.get(db, made.id).decision is None, "nothing happens before confirming"
    assert "Ship treatment?" in texts(at)
    at.button(key="experiments.confirm").click().run()
    assert not at.exception
    decided = svc.get(db, made.id)
    assert decided.decision == "ship" and decided.decided_variant == "treatment"
    with db.connect() as conn:
        assert model_rows.get_model(conn, second).active
    assert "activated for triage" in texts(at)


def test_stop_can_be_cancelled(db: Store) -> None:
    made = svc.start(db, svc.create(db, "keep", [svc.VariantIn(name="a", target="m1"),
                                                 svc.VariantIn(name="b", target="m2")]).id)
    at = run()
    at.button(key="experiments.stop").click().run()
    at.button(key="experiments.cancel").click().run()
    assert svc.get(db, made.id).decision is None
    assert not at.warning


def test_p_values_and_chances_read_the_same_in_tiles_and_tables(db: Store) -> None:
    """A decisive test: tiny p-values show as `< 0.0001` and certain chances as `> 99.9%` everywhere, never
    0.0000000000000000000000000000007 in one place and 8.377e-09 in another."""
    made = svc.start(db, svc.create(db, "decisive", [svc.VariantIn(name="a", target="m1"),
                                                     svc.VariantIn(name="b", target="m2")],
                                    guard_metrics=["latency_ms"]).id)
    log(db, [prediction(made.id, "a", f"a{i}", correct=i % 2 == 0, latency_ms=500.0 + i % 7) for i in range(800)]
        + [prediction(made.id, "b", f"b{i}", correct=i % 10 != 0, latency_ms=300.0 + i % 7) for i in range(800)])
    at = run()
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["p-value (frequentist)"] == "< 0.0001"
    assert tiles["Chance to beat control (Bayesian)"] == "> 99.9%"
    listed, primary, guard = (at.dataframe[0].value, at.dataframe[2].value, at.dataframe[3].value)
    assert list(listed["p-value"]) == ["< 0.0001"] and list(listed["chance to beat control"]) == ["> 99.9%"]
    assert list(primary["p-value"]) == ["< 0.0001"] and list(primary["chance to beat control"]) == ["> 99.9%"]
    assert list(guard["p-value"]) == ["< 0.0001"], "guard p-values formatted too"
    words = texts(at)
    assert "99.9% chance b is better" in words and "100% chance" not in words, "captions say what the tile says"


def test_the_sample_size_calculator_counts_what_the_metric_counts(db: Store) -> None:
    made = svc.start(db, svc.create(db, "sizing", [svc.VariantIn(name="a", target="m1"),
                                                   svc.VariantIn(name="b", target="m2")]).id)
    log(db, [prediction(made.id, v, f"{v}{i}", correct=i % 3 == 0) for i in range(300) for v in ("a", "b")])
    at = run()
    words = texts(at)
    assert "labelled predictions per variant" in words and "units per variant" not in words
    assert re.search(r"300 of [\d,]+ labelled predictions in the smallest variant", str(at.get("progress")[0].proto))
    assert "users (the randomised unit)" in words
    assert "labelled predictions" in at.dataframe[1].value.columns
