"""The Templates page: the library, rendering, diffs, and comparisons run from the form and read as a matrix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double
from tests.helpers import WriteJsonl, chat
from workbench.domain.filters import ExampleFilter
from workbench.domain.starter_templates import STARTERS
from workbench.services import comparisons, datasets, importing, templates
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "5_Templates.py")
HOSTILE = "<script>alert('owned')</script><img src=x onerror=alert(1)> **bold** [link](http://evil.example)"

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_jsonl: WriteJsonl) -> Store:
    """The starter library, a two-version template 'ask' and a six-example dataset 'support'."""
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    store = Store(path)
    templates.install_starters(store)
    templates.create_version(store, "ask", user_template="Question: {{ input }}", system_template="Be brief.",
                             settings={"model": "amazon.nova-lite-v1:0"}, commit_message="first")
    templates.create_version(store, "ask", user_template="Please answer: {{ input }}", commit_message="politer")
    records = [chat(f"Where is parcel {i}?", f"Parcel {i} arrives soon.") for i in range(5)]
    records.append(chat(HOSTILE, "fine"))
    importing.import_path(store, write_jsonl(records), "support")
    return store


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatDouble]:
    with chat_double() as served:
        monkeypatch.setenv("OPENAI_BASE_URL", served.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        yield served


def run(**params: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update(params)
    at.run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(at: AppTest) -> str:
    """Everything shown as text (markdown, captions, code blocks, alerts), as the reader sees it."""
    parts = [*at.markdown, *at.caption, *at.code, *at.error, *at.warning, *at.success, *at.info]
    return "\n".join(shown(str(p.value)) for p in parts)


def shown(markdown: str) -> str:
    """What escaped markdown reads as: no backslash escapes, no invisible word joiners."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def alerts(elements: Any) -> list[str]:
    return [shown(e.value) for e in elements]


def test_the_library_lists_the_starters_and_shows_a_version(db: Store) -> None:
    at = run(template="ask")

    table = at.dataframe[0].value
    assert {"executive-summary-short", "risk-assessment", "ask"} <= set(table["name"])
    assert at.selectbox(key="templates.template").value == "ask"
    assert at.selectbox(key="templates.version").value == 2
    assert "Please answer: {{ input }}" in [c.value.strip() for c in at.code]
    assert "politer" in set(at.dataframe[1].value["commit message"])


def test_an_empty_library_offers_the_starters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "empty.db"))
    at = run()
    assert any("No templates yet" in text for text in alerts(at.info))

    at.button(key="templates.starters").click().run()
    ok(at)
    assert any(text.startswith(f"Installed {len(STARTERS)} starter templates") for text in alerts(at.success)), alerts(at.success)
    assert "executive-summary-short" in set(at.dataframe[0].value["name"])


def test_a_version_is_created_through_the_form(db: Store) -> None:
    at = run(template="ask")
    at.text_area(key="templates.form.user").set_value("Answer in one line: {{ input }}")
    at.text_input(key="templates.form.message").set_value("one line")
    at.button(key="templates.create").click().run()
    ok(at)

    assert "Saved ask@3." in alerts(at.success)
    version = templates.resolve(db, "ask")
    assert (version.version, version.user_template, version.commit_message) == (3, "Answer in one line: {{ input }}", "one line")
    assert at.selectbox(key="templates.version").value == 3
    assert at.query_params["version"] == "3"


def test_a_new_template_is_created_through_the_form(db: Store) -> None:
    at = run(template="ask")
    at.text_input(key="templates.form.name").set_value("triage")
    at.text_input(key="templates.form.task").set_value("qa")
    at.text_area(key="templates.form.user").set_value("Triage: {{ ticket }}")
    at.button(key="templates.create").click().run()
    ok(at)

    assert any("Created template triage" in text for text in alerts(at.success))
    assert templates.template_detail(db, "triage").template.task_type == "qa"
    assert at.selectbox(key="templates.template").value == "triage"


@pytest.mark.parametrize(("user", "named"), [
    ("{{ input.__class__ }}", "Python internals"),
    ("{% if input %}unclosed", "syntax error in the user template"),
], ids=["sandbox", "syntax"])
def test_a_bad_template_shows_the_error_and_saves_nothing(db: Store, user: str, named: str) -> None:
    at = run(template="ask")
    at.text_area(key="templates.form.user").set_value(user)
    at.button(key="templates.create").click().run()
    ok(at)

    assert any(named in text for text in alerts(at.error)), alerts(at.error)
    assert templates.resolve(db, "ask").version == 2


def test_a_bad_name_is_refused_naming_it(db: Store) -> None:
    at = run(template="ask")
    at.text_input(key="templates.form.name").set_value("has space")
    at.button(key="templates.create").click().run()
    assert any("bad template name" in text for text in alerts(at.error))


def test_a_label_moves_to_a_version(db: Store) -> None:
    at = run(template="ask")
    at.selectbox(key="templates.label").set_value("production")
    at.selectbox(key="templates.label_version").set_value(1)
    at.button(key="templates.move_label").click().run()
    ok(at)

    assert templates.template_detail(db, "ask").labels["production"] == 1
    assert any("production now points at version 1" in text for text in alerts(at.success))

    at.selectbox(key="templates.label").set_value("custom…").run()
    at.text_input(key="templates.label_custom").set_value("Bad Label")
    at.button(key="templates.move_label").click().run()
    assert any("bad label" in text for text in alerts(at.error))


def test_rendering_with_typed_variables_shows_the_prompt_tokens_and_cost(db: Store) -> None:
    at = run(template="ask", tab="Render")
    at.text_area(key="templates.render.var.input").set_value(HOSTILE).run()
    ok(at)

    shown = [c.value.strip() for c in at.code]
    assert "Be brief." in shown and f"Please answer: {HOSTILE}" in shown, "the prompt is shown as text, hostile HTML included"
    assert at.metric[0].label == "Prompt tokens" and int(at.metric[0].value) > 10
    parts = at.dataframe[0].value
    assert list(parts["part"]) == ["system", "turn 1 · user"]
    costs = at.dataframe[1].value
    assert costs["model"].iloc[0] == "amazon.nova-lite-v1:0" and costs["USD per call"].iloc[0] > 0
    assert not any("<script>" in m.value for m in at.markdown), "user text never reaches markdown unescaped"


def test_rendering_says_when_the_model_has_no_price_and_names_a_missing_variable(db: Store) -> None:
    templates.create_version(db, "unpriced", user_template="{{ input }} {{ extra }}", settings={"model": "my-own-model"})
    at = run(template="unpriced", tab="Render")
    at.text_area(key="templates.render.var.input").set_value("hello").run()
    assert any("variable 'extra'" in text for text in alerts(at.error)), "an empty box is not given, so it is named"
    at.text_area(key="templates.render.var.extra").set_value("more").run()
    assert not at.error
    assert any("no on-demand price in the catalogue for 'my-own-model'" in text for text in alerts(at.warning))

    at.radio(key="templates.render.source").set_value("From a dataset example").run()
    example_id = datasets.browse(db, "support", ExampleFilter()).examples[0].id
    at.number_input(key="templates.render.example").set_value(example_id).run()
    assert any("variable 'extra'" in text for text in alerts(at.error)), alerts(at.error)


def test_a_diff_shows_both_versions_and_the_unified_diff(db: Store) -> None:
    at = run(template="ask", tab="Diff")
    at.text_area(key="templates.diff_vars.var.input").set_value("Where is my parcel?").run()
    ok(at)

    shown = [c.value.strip() for c in at.code]
    assert "Question: Where is my parcel?" in shown and "Please answer: Where is my parcel?" in shown
    diffs = [c.value for c in at.code if c.language == "diff"]
    assert len(diffs) == 1 and "-Question: Where is my parcel?" in diffs[0] and "+Please answer: Where is my parcel?" in diffs[0]


def test_the_compare_tab_renders_without_clients_and_says_what_to_set(db: Store) -> None:
    at = run(tab="Compare")

    assert "Set `OPENAI_API_KEY`" in texts(at)
    assert "Set `ANTHROPIC_API_KEY`" in texts(at)
    assert at.button(key="templates.compare.run")
    assert "No comparison runs yet" in texts(at)


def test_a_comparison_from_the_form_shows_the_matrix_and_summary(db: Store, double: ChatDouble) -> None:
    double.script("hostile", answer(HOSTILE + " " + "very long " * 500))
    at = run(tab="Compare")
    at.selectbox(key="templates.compare.ref.0").set_value("ask@2")
    at.selectbox(key="templates.compare.ref.1").set_value("ask@2")
    at.text_input(key="templates.compare.model.0").set_value("echo")
    at.text_input(key="templates.compare.model.1").set_value("hostile")
    at.selectbox(key="templates.compare.dataset").set_value("support")
    at.number_input(key="templates.compare.limit").set_value(6)
    at.text_area(key="templates.compare.assertions").set_value("contains:parcel\nlength:..400")
    at.button(key="templates.compare.run").click().run()
    ok(at)

    runs = comparisons.list_runs(db, kind="compare")
    assert len(runs) == 1 and runs[0].state == "done"
    assert f"Comparison finished: run #{runs[0].id}, 12 cells. Its matrix is below." in alerts(at.success)
    assert at.query_params["run"] == str(runs[0].id)
    summary = at.dataframe[0].value
    assert list(summary["variant"]) == ["ask@2=openai:echo", "ask@2=openai:hostile"]
    assert list(summary["passed"]) == [5, 0] and list(summary["cells"]) == [6, 6]
    assert any("Whole output" in e.label for e in at.expander), "a very long output is cut, the whole one folded away"
    assert any(c.value.startswith(HOSTILE) for c in at.code), "hostile output is shown as text"
    assert not any("<script>" in m.value for m in at.markdown)
    assert at.download_button(key="templates.download")

    at.radio(key="templates.matrix_filter").set_value("Failures").run()
    assert "6 rows of 6" in texts(at)  # the hostile variant fails every row
    at.radio(key="templates.matrix_filter").set_value("Errors").run()
    assert "0 rows of 6" in texts(at)

    at.button(key="templates.to_review").click().run()  # failures go to the reviewers
    assert any(a.startswith("Queued 7 outputs for review") for a in alerts(at.success)), alerts(at.success)


def test_a_past_run_reopens_from_the_url(db: Store, double: ChatDouble) -> None:
    done = comparisons.run_comparison(db, ["ask@1=openai:a", "ask@2=openai:b"], dataset="support", limit=3)
    at = run(tab="Compare", run=str(done.run_id))

    assert at.selectbox(key="templates.run").value == done.run_id
    assert list(at.dataframe[0].value["cells"]) == [3, 3]
    at.radio(key="templates.matrix_filter").set_value("Different").run()
    assert "3 rows of 3" in texts(at)


def test_a_bad_assertion_is_refused_before_anything_runs(db: Store) -> None:
    at = run(tab="Compare")
    at.text_area(key="templates.compare.assertions").set_value("json-schema:{not json")
    at.button(key="templates.compare.run").click().run()
    ok(at)

    assert any("json-schema" in text for text in alerts(at.error)), alerts(at.error)
    assert comparisons.list_runs(db) == []
