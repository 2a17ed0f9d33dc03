"""Dataset-wide actions on the Datasets page run as tasks: progress, cancel, and a result kept across sessions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from workbench.domain.filters import ExampleFilter
from workbench.services import cleaning, datasets, importing, splits, tasks, versions
from workbench.store import Store
from workbench.store.tasks import TaskState

ROOT = Path(__file__).resolve().parents[1]
DATASETS = str(ROOT / "pages" / "1_Datasets.py")

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_jsonl: WriteJsonl, sample_records: list[dict[str, Any]]) -> Store:
    """Dataset 'support' (20 examples plus a near-copy), split, with two versions and a guardrail rule."""
    path = tmp_path / "ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    store = Store(path)
    importing.import_path(store, write_jsonl([*sample_records, chat("Question 1 about my refund!", "Answer 1 about the refund")]), "support")
    splits.split_dataset(store, "support", (0.8, 0.1, 0.1), seed=3)
    versions.freeze(store, "support", "v1")
    versions.freeze(store, "support", "v2")
    cleaning.add_rule(store, name="refunds", words="refund", action="warn")
    return store


def run(**params: str) -> AppTest:
    at = AppTest.from_file(DATASETS, default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


# tab, start button, kind, what the kept result shows
ACTIONS = [
    ("Validate", "datasets.validate", "validate", lambda at: {m.label for m in at.metric} >= {"Records", "Errors"}),
    ("Clean", "datasets.find_duplicates", "duplicates", lambda at: any("Group 1:" in e.label for e in at.expander)),
    ("Clean", "datasets.find_leakage", "leakage", lambda at: any("across splits" in str(x.value) for x in [*at.warning, *at.success])),
    ("Clean", "datasets.run_rules", "guardrails", lambda at: "Pass rate" in {m.label for m in at.metric}),
    ("Export", "datasets.export_prepare", "export", lambda at: bool(at.download_button(key="datasets.download"))),
    ("Split & versions", "datasets.diff", "diff", lambda at: "Unchanged" in {m.label for m in at.metric}),
]


@pytest.mark.parametrize(("tab", "button", "kind", "shows"), ACTIONS, ids=[a[2] for a in ACTIONS])
def test_a_finished_result_is_kept_and_shown_again_without_recomputing(db: Store, tab: str, button: str, kind: str, shows: Any) -> None:
    at = run(tab=tab)
    at.button(key=button).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert shows(at)
    assert "Computed at" in captions(at)
    count = len(tasks.list_tasks(db))

    again = run(tab=tab)  # a new session: another tab, a reload, another user

    assert shows(again)
    assert len(tasks.list_tasks(db)) == count, "the kept result is shown, nothing recomputed"
    assert tasks.latest(db, "support", kind).state is TaskState.DONE  # type: ignore[union-attr]


def test_a_result_says_when_the_dataset_changed_since_and_recomputes_on_request(db: Store) -> None:
    at = run(tab="Clean")
    at.button(key="datasets.find_duplicates").click().run()
    first = tasks.latest(db, "support", "duplicates")
    assert first is not None and not first.stale

    example = datasets.browse(db, "support", ExampleFilter()).examples[0]
    datasets.label(db, example.id or 0, rating=4)
    at = run(tab="Clean")

    assert any("the dataset has changed since" in w.value for w in at.warning)
    assert any("Group 1:" in e.label for e in at.expander), "the old result stays visible until recomputed"
    at.button(key="datasets.find_duplicates.recompute").click().run()
    latest = tasks.latest(db, "support", "duplicates")
    assert latest is not None and latest.id != first.id and not latest.stale
    assert not any("the dataset has changed since" in w.value for w in at.warning)


def test_the_pii_count_is_kept_and_refreshed_once_the_data_changes(db: Store) -> None:
    run(tab="Clean")
    scans = [t for t in tasks.list_tasks(db) if t.kind == "pii_scan"]
    assert len(scans) == 1 and scans[0].result["examples_with_pii"] == 1

    at = run(tab="Clean")
    assert len([t for t in tasks.list_tasks(db) if t.kind == "pii_scan"]) == 1
    assert {m.label: m.value for m in at.metric}["Examples with PII"] == "1"

    at.checkbox(key="datasets.scrub_all_confirm").check().run()
    at.button(key="datasets.scrub_all").click().run()
    assert "Scrubbed 1 example" in "\n".join(s.value for s in at.success)
    assert {m.label: m.value for m in at.metric}["Examples with PII"] == "0"  # counted again after the scrub


def test_split_and_freeze_run_as_tasks(db: Store) -> None:
    at = run(tab="Split & versions")
    at.checkbox(key="datasets.split_only_new").uncheck()
    at.button(key="datasets.split_submit").click().run()
    assert "Assigned 21 examples" in at.success[0].value
    assert tasks.latest(db, "support", "split").state is TaskState.DONE  # type: ignore[union-attr]

    at.text_input(key="datasets.version_name").set_value("v3")
    at.button(key="datasets.freeze_submit").click().run()
    assert "Froze 21 examples as version v3." in [s.value for s in at.success]
    assert [v.name for v in versions.list_versions(db, "support")][0] == "v3"


def test_a_running_task_shows_its_progress_and_can_be_cancelled(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_TASKS_INLINE")
    monkeypatch.setenv("WORKBENCH_TASKS_TEST_DELAY", "0.5")  # each report waits: a validate of 21 examples takes seconds
    at = run(tab="Validate")
    at.selectbox(key="datasets.target").set_value("openai").run()
    at.button(key="datasets.validate").click().run()
    task = tasks.latest(db, "support", "validate")
    assert task is not None and task.state.active
    assert at.button(key="datasets.validate").disabled, "one run at a time"

    deadline = time.monotonic() + 60
    while not tasks.get(db, task.id).done:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    at.run()  # what the live view's next refresh draws
    bar = at.get("progress")[0]
    assert "checking rules" in bar.proto.text and "of 21 examples" in bar.proto.text
    assert at.selectbox(key="datasets.target").value == "openai", "the rest of the page stays usable"

    at.button(key="datasets.validate.cancel").click().run()
    while tasks.get(db, task.id).state.active:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    at.run()
    assert tasks.get(db, task.id).state is TaskState.CANCELLED
    assert any(i.value.startswith("Stopped at") for i in at.info)
    assert not at.button(key="datasets.validate").disabled


def test_an_import_runs_as_a_task_shows_mb_and_time_left_and_its_report_is_kept(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import orjson

    monkeypatch.delenv("WORKBENCH_TASKS_INLINE")
    monkeypatch.setenv("WORKBENCH_TASKS_TEST_DELAY", "0.3")  # each report waits: the import is surely mid-file when drawn
    body = b"".join(orjson.dumps(chat(f"New question {i}", f"New answer {i}")) + b"\n" for i in range(20_000))
    at = run(tab="Import")
    at.file_uploader(key="datasets.upload").set_value(("incoming.jsonl", body, "application/jsonl"))
    at.text_input(key="datasets.import_name").input("incoming")
    at.button(key="datasets.import_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [task] = [t for t in tasks.list_tasks(db) if t.kind == "import"]

    deadline = time.monotonic() + 120
    while not tasks.get(db, task.id).done and tasks.get(db, task.id).state.active:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    other = run(tab="Import")  # another session sees the running import too
    assert any("Importing incoming.jsonl" in m.value.replace("\\", "") for m in other.markdown)
    bar = other.get("progress")[0]
    assert "importing: " in bar.proto.text and " MB" in bar.proto.text, bar.proto.text
    assert other.button(key=f"datasets.import.{task.id}.cancel")

    other.button(key=f"datasets.import.{task.id}.cancel").click().run()
    while tasks.get(db, task.id).state.active:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    at.run()  # the starting session: its import ended, so the dataset it wrote opens with the report
    assert at.selectbox(key="datasets.dataset").value == "incoming"
    assert any("Stopped on request after line" in w.value for w in at.warning)
    imported = tasks.get(db, task.id).result["imported"]
    assert {m.label: m.value for m in at.metric}["Imported"] == f"{imported:,}"

    later = run(dataset="incoming", tab="Import")  # a new session: the report is kept, not recomputed
    assert any("Last import: incoming.jsonl into incoming" in s.value.replace("\\", "") for s in later.subheader)
    assert datasets.get_dataset(db, "incoming").example_count == imported


def test_freeze_waits_while_another_freeze_runs(db: Store) -> None:
    import os

    from workbench.store import datasets as dataset_rows
    from workbench.store import tasks as task_rows

    with db.write() as conn:  # a freeze another session started, still running (in a live process: this one)
        task_id = task_rows.create_task(conn, "freeze", dataset_rows.dataset_id(conn, "support"), {"name": "v9", "split": None, "note": ""})
        task_rows.claim_task(conn, task_id, os.getpid())
    at = run(tab="Split & versions")
    assert at.button(key="datasets.freeze_submit").disabled
    with db.write() as conn:
        task_rows.finish_task(conn, task_id, TaskState.CANCELLED)
    assert not run(tab="Split & versions").button(key="datasets.freeze_submit").disabled


def test_opening_a_tab_on_a_large_dataset_starts_no_pass_over_it(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the size where a pass takes seconds, statistics and the PII count wait for a click."""
    from workbench.ui import datasets_clean, datasets_validate

    monkeypatch.setattr(datasets_clean, "AUTO_START_MAX_EXAMPLES", 5)
    monkeypatch.setattr(datasets_validate, "AUTO_START_MAX_EXAMPLES", 5)
    at = run(tab="Clean")
    assert tasks.latest(db, "support", "pii_scan") is None
    at.button(key="datasets.pii_first_scan").click().run()
    assert tasks.latest(db, "support", "pii_scan").state is TaskState.DONE  # type: ignore[union-attr]

    at = run(tab="Validate")
    assert tasks.latest(db, "support", "describe") is None
    assert at.button(key="datasets.describe").label == "Measure"
    at.button(key="datasets.describe").click().run()
    assert tasks.latest(db, "support", "describe").state is TaskState.DONE  # type: ignore[union-attr]
