"""The Templates page's Generate data tab: the estimate before Run, a run as a task, Resume, and what a user is told."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double
from tests.helpers import WriteJsonl, chat
from workbench.domain.comparison import RetryPolicy
from workbench.domain.filters import ExampleFilter
from workbench.domain.progress import Progress
from workbench.providers.inference import client_for
from workbench.services import datasets, distill, importing, review, templates
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "5_Templates.py")
NOVA = "amazon.nova-lite-v1:0"
HOSTILE = "<script>alert('owned')</script> **bold** [link](http://evil.example)"
P = "templates.distill."

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_jsonl: WriteJsonl) -> Store:
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    store = Store(path)
    templates.create_version(store, "answer", user_template="Answer: {{ input }}", settings={"model": NOVA, "max_tokens": 100})
    records = [chat(f"Where is parcel {i}?", f"Parcel {i} arrives soon.") for i in range(5)]
    records.append(chat(HOSTILE, "fine"))
    importing.import_path(store, write_jsonl(records), "support")
    return store


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatDouble]:
    with chat_double() as served:
        served.script(NOVA, answer(lambda r: f"Teacher: {HOSTILE}"))
        monkeypatch.setenv("OPENAI_BASE_URL", served.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        yield served


def open_tab() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["tab"] = "Generate data"
    at.run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def shown(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.error, *at.warning, *at.success, *at.info]
    return "\n".join(shown(str(p.value)) for p in parts)


def metric(at: AppTest, label: str) -> Any:
    return next(m.value for m in at.metric if m.label == label)


def test_the_tab_shows_the_estimate_and_says_which_client_to_set(db: Store) -> None:
    at = open_tab()
    assert at.selectbox(key=P + "client").value == "bedrock", "the client follows the version's model id (amazon.…)"
    at.selectbox(key=P + "client").set_value("openai").run()
    ok(at)
    assert "is a bedrock model id, but the teacher client is openai" in texts(at), "warned before running"

    assert metric(at, "Calls") == "6" and int(metric(at, "Prompt tokens").replace(",", "")) > 6
    assert metric(at, "Cost").startswith("$")
    assert "Estimated cost $" in texts(at) and "nova-lite" in texts(at)
    assert "The openai client is not configured. Set OPENAI_API_KEY" in texts(at).replace("*", "").replace("`", "")
    assert at.button(key=P + "run").disabled, "nothing can run without a client; the estimate still shows"


def test_an_unpriced_teacher_says_the_cost_is_unknown(db: Store) -> None:
    at = open_tab()
    at.text_input(key=P + "model").set_value("my-own-model").run()
    ok(at)
    assert metric(at, "Cost") == "unknown" and "no on-demand price" in texts(at)


def test_seed_topics_estimate_two_stages(db: Store) -> None:
    at = open_tab()
    at.radio(key=P + "source").set_value("Seed topics").run()
    at.text_area(key=P + "topics").set_value("refunds\nlate parcels\n# skipped").run()
    at.number_input(key=P + "per_topic").set_value(4).run()
    ok(at)
    assert metric(at, "Calls") == "10", "2 topics to write inputs for, then 8 inputs to answer"
    assert "inputs: 2 calls" in texts(at) and "answers: 8 calls" in texts(at)


def teacher_client(at: AppTest, client: str = "openai") -> None:
    """The chat double speaks OpenAI's API, whatever the model's id says."""
    at.selectbox(key=P + "client").set_value(client).run()
    ok(at)


def test_a_typed_model_brings_its_own_client_and_a_pick_for_it_stays(db: Store) -> None:
    at = open_tab()
    at.text_input(key=P + "model").set_value("claude-sonnet-4-5").run()
    assert at.selectbox(key=P + "client").value == "anthropic"
    teacher_client(at, "bedrock")
    at.number_input(key=P + "limit").set_value(3).run()
    assert at.selectbox(key=P + "client").value == "bedrock", "the user's pick stays while the model does"
    at.text_input(key=P + "model").set_value("gpt-4o").run()
    assert at.selectbox(key=P + "client").value == "openai"
    at.text_input(key=P + "model").set_value("my-own-model").run()
    assert at.selectbox(key=P + "client").value in ("anthropic", "bedrock", "openai", "local")
    assert "model id, but the teacher client" not in texts(at)


def test_generate_lands_a_new_dataset_and_points_to_it_and_to_review(db: Store, double: ChatDouble) -> None:
    at = open_tab()
    teacher_client(at)
    at.number_input(key=P + "limit").set_value(6)
    at.text_input(key=P + "into").set_value("support-taught")
    at.button(key=P + "run").click().run()
    ok(at)

    runs = distill.list_runs(db)
    assert len(runs) == 1 and runs[0].state == "done", runs
    success = texts(at).replace("**", "")
    assert "Distillation #1 finished: 6 examples landed in support-taught; 6 examples waiting for review" in success
    assert "Datasets?dataset=support-taught" in "\n".join(m.value for m in at.markdown) and "(Review)" in "\n".join(
        m.value for m in at.markdown)
    assert not any("<script>" in m.value and "\\<" not in m.value for m in at.markdown), "model text is never raw HTML"
    landed = datasets.browse(db, "support-taught", ExampleFilter()).examples
    assert len(landed) == 6 and all(e.messages[-1].content == f"Teacher: {HOSTILE}" for e in landed)
    assert review.next_item(db, "alice") is not None


def test_a_new_dataset_that_exists_is_refused_before_anything_runs(db: Store, double: ChatDouble) -> None:
    at = open_tab()
    teacher_client(at)
    at.text_input(key=P + "into").set_value("support")
    at.button(key=P + "run").click().run()
    ok(at)
    assert "already exists" in texts(at) and distill.list_runs(db) == [] and double.calls == 0
    assert "As reference answers where missing" in texts(at) and "--fill-references" not in texts(at), "the app's words, not a flag"
    assert at.button(key=P + "run").disabled, "the name is checked as it is typed, not only on Generate"


def test_a_stopped_run_is_resumed_from_the_tab(db: Store, double: ChatDouble) -> None:
    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    asked = {"n": 0}

    def stop_soon() -> bool:
        asked["n"] += 1
        return asked["n"] > 2

    stopped = distill.distill(db, f"openai:{NOVA}", "answer@1", dataset="support", into="half", concurrency=1, clients=clients,
                              retry=RetryPolicy(base_delay_s=0.01), progress=Progress(lambda s: None, stop_soon, every=0))
    assert stopped.state == "stopped"
    calls = double.calls

    at = open_tab()
    teacher_client(at)
    assert at.selectbox(key=P + "resume_run").value == stopped.id
    at.button(key=P + "resume").click().run()
    ok(at)
    assert distill.report(db, stopped.id).state == "done"
    assert double.calls - calls == 6 - stopped.answered
    assert len(datasets.browse(db, "half", ExampleFilter()).examples) == 6


def test_a_run_where_nothing_lands_reads_as_a_failure(db: Store, double: ChatDouble) -> None:
    from tests.doubles.chat_server import failing

    double.script(NOVA, failing(401, "invalid api key"))
    at = open_tab()
    teacher_client(at)
    at.number_input(key=P + "limit").set_value(2)
    at.text_input(key=P + "into").set_value("never-made")
    at.button(key=P + "run").click().run()
    ok(at)
    said = "\n".join(shown(str(e.value)) for e in at.error)
    assert "failed: nothing landed: all 2 inputs failed" in said and "invalid api key" in said and "Resume #1" in said
    assert not at.success and "never-made" not in {d.name for d in datasets.list_datasets(db)}


def test_a_stopped_run_says_what_landed_and_offers_resume(db: Store, double: ChatDouble) -> None:
    from workbench.store import tasks as task_rows

    with db.write() as w:
        task_id = task_rows.create_task(w, "distill", None, {"teacher": f"openai:{NOVA}", "template": "answer@1", "into": "half"})
    clients = {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}
    asked = {"n": 0}

    def stop_soon() -> bool:
        asked["n"] += 1
        return asked["n"] > 2

    stopped = distill.distill(db, f"openai:{NOVA}", "answer@1", dataset="support", into="half", concurrency=1, clients=clients,
                              retry=RetryPolicy(base_delay_s=0.01), progress=Progress(lambda s: None, stop_soon, every=0))
    with db.write() as w:
        w.execute("UPDATE tasks SET state = 'cancelled' WHERE id = ?", [task_id])
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["tab"] = "Generate data"
    at.session_state[P + "task"] = task_id
    at.run()
    ok(at)
    said = "\n".join(shown(str(i.value)) for i in at.info).replace("**", "")
    landed = stopped.landed + stopped.already
    assert f"Distillation #{stopped.id} stopped: {stopped.answered} of 6 inputs answered, {landed} output" in said
    assert "landed in half" in said and f"Resume #{stopped.id} below" in said
    assert "Start it again" not in said and "Stopped at" not in said
