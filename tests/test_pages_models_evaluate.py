"""The Models page's Evaluate tab: kept evaluations, fine-tuned against base, starting one, and no client configured."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double, failing
from tests.helpers import WriteJsonl, chat
from tests.test_evaluations import BASE, TUNED, add_model, base_answer, tuned_answer
from workbench.domain.comparison import RetryPolicy
from workbench.providers.inference import client_for
from workbench.services import comparisons, evaluations, importing, splits, templates, versions
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "3_Models.py")
HOSTILE = "<script>alert('owned')</script> **bold** [link](http://evil.example)"

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def double() -> Iterator[ChatDouble]:
    with chat_double() as served:
        yield served


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_jsonl: WriteJsonl, double: ChatDouble) -> Store:
    """'support' (12 questions, half test, frozen as v1; one hostile), template 'ask', fine-tune #1; no client set up."""
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    double.reset()
    double.script(BASE, answer(base_answer))
    double.script(TUNED, answer(lambda request: HOSTILE if tuned_answer(request) == "Answer ?" else tuned_answer(request)))
    store = Store(path)
    records = [chat(f"Question {i}: where is my order?", f"Answer {i}") for i in range(12)]
    importing.import_path(store, write_jsonl(records), "support")
    splits.split_dataset(store, "support", (0.5, 0.0, 0.5), seed=5)
    versions.freeze(store, "support", "v1")
    templates.create_version(store, "ask", user_template="{{ input }}", settings={"model": BASE, "max_tokens": 20})
    add_model(store, "support-ft")
    return store


def evaluated(db: Store, double: ChatDouble) -> tuple[int, int]:
    """A base and a fine-tuned evaluation on v1's test split, run through the double."""
    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    quick = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)
    base = evaluations.evaluate(db, f"openai:{BASE}", template="ask@1", dataset="support", version="v1", clients=clients, retry=quick)
    tuned = evaluations.evaluate(db, "support-ft", template="ask@1", clients=clients, retry=quick)
    return base.run_id, tuned.run_id


def run() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["tab"] = "Evaluate"
    at.run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def shown(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.code, *at.error, *at.warning, *at.success, *at.info]
    return "\n".join(shown(str(p.value)) for p in parts)


def frame_with(at: AppTest, column: str) -> Any:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def test_kept_evaluations_and_fine_tuned_against_base_are_shown(db: Store, double: ChatDouble) -> None:
    base, tuned = evaluated(db, double)
    expected = evaluations.compare_evaluations(db, base, tuned)
    at = run()

    listed = frame_with(at, "template and model")
    assert list(listed["run"]) == [tuned, base]
    assert list(listed["model"]) == ["#1 support-ft", f"openai:{BASE}"]
    assert at.selectbox(key="models.evaluate.base_run").value == base, "base against fine-tuned by default"
    at.toggle(key="models.evaluate.mine").set_value(True).run()
    assert list(frame_with(at, "template and model")["run"]) == [tuned], "the chosen model's evaluations only"
    at.toggle(key="models.evaluate.mine").set_value(False).run()
    assert at.selectbox(key="models.evaluate.candidate_run").value == tuned

    table = frame_with(at, "McNemar p")
    overall = table[table["assertion"] == "overall"].iloc[0]
    assert (overall["wins"], overall["losses"], overall["ties"]) == (
        expected.paired.overall.wins, expected.paired.overall.losses, expected.paired.overall.ties)
    assert overall["win rate"] == f"{expected.paired.overall.win_rate:.0%}"
    assert list(table["assertion"]) == ["overall", "equals"]
    assert at.get("plotly_chart"), "the win rates are charted"

    words = texts(at)
    assert "I am not sure." in words, "the best examples show the base's wrong answer"
    assert expected.worst, "question 10 is in the test split: the base knows it, the fine-tune answers hostile text"
    assert HOSTILE in [c.value.strip() for c in at.code], "model output is shown as text, exactly"
    assert all("<script>" not in m.value for m in at.markdown)


def test_runs_over_different_inputs_say_why_they_cannot_be_paired(db: Store, double: ChatDouble) -> None:
    base, tuned = evaluated(db, double)
    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    fewer = evaluations.evaluate(db, "support-ft", template="ask@1", limit=2, clients=clients)
    at = run()
    at.selectbox(key="models.evaluate.base_run").set_value(base)
    at.selectbox(key="models.evaluate.candidate_run").set_value(fewer.run_id).run()
    ok(at)
    assert any("cannot be paired: different inputs" in shown(e.value) for e in at.error), [e.value for e in at.error]
    assert tuned in list(frame_with(at, "template and model")["run"])


def test_without_a_configured_client_the_page_says_what_to_set_and_still_shows_evaluations(db: Store, double: ChatDouble) -> None:
    evaluated(db, double)
    at = run()
    assert at.selectbox(key="models.evaluate.model").value == "model:1"
    warning = " ".join(shown(w.value) for w in at.warning)
    assert "The openai client is not configured" in warning and "OPENAI_API_KEY" in warning, warning
    assert at.button(key="models.evaluate.run").disabled
    assert len(frame_with(at, "template and model")) == 2, "kept evaluations still show"


def test_an_evaluation_is_started_from_the_form_and_listed(db: Store, double: ChatDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    at = run()
    assert at.selectbox(key="models.evaluate.dataset").value == "support", "the dataset it was trained on"
    assert at.selectbox(key="models.evaluate.version").value == "v1"
    assert at.selectbox(key="models.evaluate.split").value == "test"
    assert "6 examples to evaluate on" in texts(at)
    at.number_input(key="models.evaluate.limit").set_value(4)
    at.button(key="models.evaluate.run").click().run()
    ok(at)

    [run_row] = comparisons.list_runs(db, kind="evaluate")
    assert (run_row.model_ref, run_row.version_name, run_row.split, run_row.cells_total) == ("model:1", "v1", "test", 4)
    assert any(f"Evaluation finished: run {run_row.id}" in shown(s.value) for s in at.success), [s.value for s in at.success]
    assert list(frame_with(at, "template and model")["run"]) == [run_row.id]


def test_the_base_model_is_one_pick_away(db: Store, double: ChatDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    at = run()
    assert f"openai:{BASE}" in at.selectbox(key="models.evaluate.model").options[1]
    at.selectbox(key="models.evaluate.model").set_value(f"openai:{BASE}").run()
    ok(at)
    at.selectbox(key="models.evaluate.version").set_value("v1").run()
    at.number_input(key="models.evaluate.limit").set_value(3)
    at.button(key="models.evaluate.run").click().run()
    ok(at)
    [run_row] = comparisons.list_runs(db, kind="evaluate")
    assert (run_row.model_ref, run_row.dataset_name, run_row.version_name) == (f"openai:{BASE}", "support", "v1")


def test_an_empty_test_split_is_said_before_anything_runs(db: Store, write_jsonl: WriteJsonl, double: ChatDouble,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    importing.import_path(db, write_jsonl([chat("q", "a")], "raw.jsonl"), "raw")
    at = run()
    assert not at.button(key="models.evaluate.run").disabled
    at.selectbox(key="models.evaluate.dataset").set_value("raw").run()
    ok(at)
    assert any("The test split is empty (unassigned 1)" in shown(w.value) for w in at.warning), [w.value for w in at.warning]
    assert at.button(key="models.evaluate.run").disabled


def test_no_models_and_no_templates_still_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "empty.db"))
    at = run()
    assert any("An evaluation needs a template" in i.value for i in at.info)
    assert "No evaluations yet" in texts(at)


# --------------------------------------------------------------------------------------------- review fixes


def test_the_default_pair_skips_runs_that_cannot_be_paired(db: Store, double: ChatDouble) -> None:
    base, tuned = evaluated(db, double)
    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    evaluations.evaluate(db, "support-ft", template="ask@1", assertions=["contains:Answer"], clients=clients)  # newest
    at = run()
    assert not at.error, [e.value for e in at.error]
    assert (at.selectbox(key="models.evaluate.base_run").value, at.selectbox(key="models.evaluate.candidate_run").value) == (base, tuned)
    options = at.selectbox(key="models.evaluate.base_run").options
    assert f"run {tuned} · model #1 support-ft · support@v1/test" in options, options


def test_with_no_pairable_runs_the_tab_says_so_plainly(db: Store, double: ChatDouble) -> None:
    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    evaluations.evaluate(db, "support-ft", template="ask@1", limit=2, clients=clients)
    evaluations.evaluate(db, "support-ft", template="ask@1", limit=3, clients=clients)
    at = run()
    assert not at.error, [e.value for e in at.error]
    assert any("No two of these evaluations can be paired yet" in i.value for i in at.info), [i.value for i in at.info]


def test_the_form_defaults_to_a_usable_model_and_a_fitting_template(db: Store, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    add_model(db, "support-ft-2")  # a second fine-tune of the same base
    templates.create_version(db, "aaa-unrelated", user_template="{{ input }}", task_type="translation")
    templates.create_version(db, "support-reply", user_template="{{ input }}", task_type="qa")
    add_model(db, "local-ft", backend="local", base_model="tiny", output=str(tmp_path / "gone"))  # newest, folder gone
    at = run()
    assert at.selectbox(key="models.evaluate.model").value == "model:2", "the newest usable model, not the broken local one"
    assert at.selectbox(key="models.evaluate.template").value == "support-reply@1", "the template that fits the dataset"
    base_label = [o for o in at.selectbox(key="models.evaluate.model").options if o.startswith(f"openai:{BASE}")]
    assert base_label == [f"openai:{BASE} (base of #2 support-ft-2, #1 support-ft)"], base_label
    assert "4 of 6 examples" not in texts(at) and "6 examples to evaluate on" in texts(at)
    at.number_input(key="models.evaluate.limit").set_value(4).run()
    assert "4 of 6 examples to evaluate on" in texts(at)

    at.selectbox(key="models.evaluate.model").set_value("model:3").run()
    ok(at)
    warning = " ".join(shown(w.value) for w in at.warning)
    assert f"its adapter folder {tmp_path / 'gone'} does not exist" in warning, warning
    assert at.button(key="models.evaluate.run").disabled


def test_an_evaluation_whose_every_input_failed_is_not_shown_as_a_result(db: Store, double: ChatDouble,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    double.script(TUNED, failing(404, "The model does not exist"))
    at = run()
    at.number_input(key="models.evaluate.limit").set_value(3)
    at.button(key="models.evaluate.run").click().run()
    ok(at)
    assert any("all 3 inputs failed" in shown(e.value) and "does not exist" in shown(e.value) for e in at.error), \
        [e.value for e in at.error]
    assert not at.success
    assert list(frame_with(at, "template and model")["result"]) == ["passed 0/3, 3 errors"]


def test_empty_example_lists_say_plainly_what_did_not_happen(db: Store, double: ChatDouble) -> None:
    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    double.script(TUNED, answer(base_answer))  # the fine-tune answers exactly as the base does
    evaluations.evaluate(db, f"openai:{BASE}", template="ask@1", dataset="support", version="v1", clients=clients)
    evaluations.evaluate(db, "support-ft", template="ask@1", clients=clients)
    at = run()
    captions = [shown(c.value) for c in at.caption]
    assert "The fine-tuned model did not beat the base on any input." in captions
    assert "The fine-tuned model did not do worse than the base on any input." in captions


def test_the_win_rate_chart_gives_each_assertion_a_readable_row(db: Store, double: ChatDouble) -> None:
    from workbench.ui.models_evaluate import _win_rate_chart

    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    base = evaluations.evaluate(db, f"openai:{BASE}", template="ask@1", dataset="support", version="v1", clients=clients,
                                assertions=["equals", "contains:Answer"])
    tuned = evaluations.evaluate(db, "support-ft", template="ask@1", clients=clients, assertions=["equals", "contains:Answer"])
    paired = evaluations.compare_evaluations(db, base.run_id, tuned.run_id).paired
    rows = [r for r in [paired.overall, *paired.assertions] if r.win_rate is not None]
    figure = _win_rate_chart(rows)
    [trace] = figure.data
    assert len(trace.y) == len(rows) >= 2 and all(f"{r.wins} won · {r.losses} lost" in y for r, y in zip(rows, trace.y, strict=True))
    assert trace.textposition != "inside" and figure.layout.height >= 140 + 70 * len(rows)
    assert not figure.layout.annotations, "the 50% line carries no label over the data"
    assert "50% = no difference" in figure.layout.xaxis.title.text
