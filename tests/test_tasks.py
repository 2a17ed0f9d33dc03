"""Tasks: dataset-wide actions in their own process, against a real SQLite file and real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl, task_ended, wait_task
from workbench.domain.filters import ExampleFilter
from workbench.errors import Busy, InvalidInput, NotFound
from workbench.services import datasets, importing, tasks
from workbench.services.tasks import DIED
from workbench.store import Store
from workbench.store.tasks import Task, TaskState

SLOW = {"total": 10_000, "step_s": 0.01}
"""A test-only task that counts for 100 s: surely still running when a test stops or kills it (each test ends it)."""


@pytest.fixture(autouse=True)
def test_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_TEST", "1")  # the `sleep` kind, in this process and the children
    monkeypatch.delenv("WORKBENCH_TASKS_INLINE", raising=False)


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl, sample_records: list[dict[str, Any]]) -> Store:
    importing.import_path(store, write_jsonl(sample_records), "support")
    return store


def wait(store: Store, task: Task, until: Callable[[Task], bool], timeout: float = 60.0) -> Task:
    return wait_task(store, task, until, timeout)  # type: ignore[no-any-return]


ended = task_ended


def test_a_task_runs_in_its_own_process_and_keeps_its_result(loaded: Store) -> None:
    params = {"target": "openai", "split": None}
    task = wait(loaded, tasks.start(loaded, "validate", "support", params), ended)

    assert task.state is TaskState.DONE, task.error
    assert task.pid is not None and task.pid != os.getpid()
    assert task.result["record_count"] == 20 and task.examples == 20
    assert not task.stale  # a validate run writes nothing its own result depends on
    kept = tasks.latest(loaded, "support", "validate", params)
    assert kept is not None and kept.id == task.id and kept.result == task.result
    assert tasks.latest(loaded, "support", "validate", {"target": "openai", "split": "train"}) is None


def test_progress_is_written_to_the_row_while_it_runs(loaded: Store) -> None:
    task = tasks.start(loaded, "sleep", "support", SLOW)
    try:
        task = wait(loaded, task, lambda t: t.done > 0)
        assert (task.state, task.stage, task.total, task.unit) == (TaskState.RUNNING, "sleeping", 10_000, "steps")
        task = wait(loaded, task, lambda t: t.eta_s is not None)
        assert 0 < task.eta_s < 1000  # type: ignore[operator]
    finally:
        tasks.cancel(loaded, task.id)


def test_cancel_stops_a_running_task_and_records_it(loaded: Store) -> None:
    task = wait(loaded, tasks.start(loaded, "sleep", "support", SLOW), lambda t: t.done > 0)

    asked = tasks.cancel(loaded, task.id)
    assert asked.cancel_requested
    task = wait(loaded, asked, ended, timeout=10)

    assert task.state is TaskState.CANCELLED and task.result is None
    assert 0 < task.done < 10_000


def test_cancel_stops_a_real_action_at_its_next_report(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_TEST_DELAY", "0.3")  # each progress report waits: validate takes seconds
    task = wait(loaded, tasks.start(loaded, "validate", "support", {"target": "openai"}), lambda t: t.stage != "")

    task = wait(loaded, tasks.cancel(loaded, task.id), ended, timeout=20)

    assert task.state is TaskState.CANCELLED, task.error


def test_a_killed_process_reads_as_failed(loaded: Store) -> None:
    task = wait(loaded, tasks.start(loaded, "sleep", "support", SLOW), lambda t: t.done > 0)
    assert task.pid is not None

    os.kill(task.pid, signal.SIGKILL)
    task = wait(loaded, task, ended, timeout=10)

    assert (task.state, task.error) == (TaskState.FAILED, DIED)
    # A new start is not refused because of the dead one.
    again = tasks.start(loaded, "sleep", "support", SLOW)
    assert again.id != task.id
    tasks.cancel(loaded, again.id)


def test_identical_starts_return_the_running_task(loaded: Store) -> None:
    with ThreadPoolExecutor(4) as pool:
        started = list(pool.map(lambda _: tasks.start(loaded, "sleep", "support", SLOW), range(4)))
    try:
        assert len({t.id for t in started}) == 1
        assert tasks.start(loaded, "sleep", "support", {**SLOW, "total": 10}).id != started[0].id  # other params: another task
    finally:
        for task in tasks.list_tasks(loaded, active_only=True):
            tasks.cancel(loaded, task.id)


def test_identical_starts_from_two_processes_return_one_task(loaded: Store) -> None:
    script = (
        "import sys; from workbench.store import Store; from workbench.services import tasks\n"
        f"print(tasks.start(Store(sys.argv[1]), 'sleep', 'support', {SLOW!r}).id)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(loaded.path)], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    ids = {int(p.communicate(timeout=60)[0]) for p in procs}
    try:
        assert len(ids) == 1
    finally:
        for task_id in ids:
            tasks.cancel(loaded, task_id)


def test_a_result_reads_stale_once_the_data_changes(loaded: Store) -> None:
    task = wait(loaded, tasks.start(loaded, "duplicates", "support", {"threshold": 0.8}), ended)
    assert task.state is TaskState.DONE and not task.stale

    example = datasets.browse(loaded, "support", ExampleFilter()).examples[0]
    datasets.label(loaded, example.id or 0, rating=5)

    assert tasks.get(loaded, task.id).stale


def test_a_writing_task_is_not_stale_from_its_own_writes(loaded: Store) -> None:
    params = {"ratios": [0.8, 0.1, 0.1], "seed": 1}
    task = wait(loaded, tasks.start(loaded, "split", "support", params), ended)

    assert task.state is TaskState.DONE and task.result["assigned"] == 20
    assert not task.stale


def test_a_failing_action_records_its_message(loaded: Store) -> None:
    task = wait(loaded, tasks.start(loaded, "diff", "support", {"old": "v1", "new": "v2"}), ended)

    assert task.state is TaskState.FAILED and "v1" in (task.error or "")


def test_unknown_kinds_and_datasets_are_refused_before_a_process_starts(loaded: Store) -> None:
    with pytest.raises(InvalidInput, match="unknown task kind 'nope'"):
        tasks.start(loaded, "nope", "support")
    with pytest.raises(NotFound):
        tasks.start(loaded, "validate", "missing", {"target": "openai"})
    assert tasks.list_tasks(loaded) == []


def test_deleting_a_dataset_removes_its_tasks(loaded: Store) -> None:
    wait(loaded, tasks.start(loaded, "pii_scan", "support"), ended)

    datasets.delete_dataset(loaded, "support")

    assert tasks.list_tasks(loaded) == []


def test_data_version_counts_real_changes_only(loaded: Store) -> None:
    def version() -> int:
        with loaded.connect() as db:
            return int(db.execute("SELECT data_version FROM datasets WHERE name = 'support'").fetchone()[0])

    before = version()
    with loaded.write() as db:
        db.execute("UPDATE examples SET split = split, validation_status = 'error'")  # nothing a result depends on
    assert version() == before
    with loaded.write() as db:
        db.execute("UPDATE examples SET rating = 3 WHERE id = (SELECT MIN(id) FROM examples)")
    assert version() == before + 1


def test_the_cli_lists_shows_and_cancels_tasks(loaded: Store) -> None:
    done = wait(loaded, tasks.start(loaded, "pii_scan", "support"), ended)
    running = wait(loaded, tasks.start(loaded, "sleep", "support", SLOW), lambda t: t.done > 0)

    listed = cli(loaded, "tasks", "list", "--json")
    assert [t["id"] for t in listed["tasks"]] == [running.id, done.id]
    assert "result" not in listed["tasks"][0]
    shown = cli(loaded, "tasks", "show", str(done.id), "--json")["task"]
    assert shown["state"] == "done" and shown["result"]["examples_with_pii"] == 1 and shown["stale"] is False
    assert cli(loaded, "tasks", "cancel", str(running.id), "--json")["task"]["cancel_requested"] is True
    assert wait(loaded, running, ended, timeout=10).state is TaskState.CANCELLED
    assert cli(loaded, "tasks", "show", "9999", "--json", ok=False)["error"].startswith("no task 9999")
    text = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(loaded.path), "tasks", "list"], capture_output=True, text=True, timeout=60,
    ).stdout
    assert f"#{running.id} sleep on support: cancelled" in text


def test_a_task_runs_once(loaded: Store) -> None:
    task = wait(loaded, tasks.start(loaded, "pii_scan", "support"), ended)

    assert cli(loaded, "tasks", "run", str(task.id), "--json", ok=False)["error"] == (
        f"task {task.id} is done, not queued; each task runs once"
    )


def cli(store: Store, *args: str, ok: bool = True) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(store.path), *args], capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert (proc.returncode == 0) is ok, proc.stderr + proc.stdout
    return orjson.loads(proc.stdout)  # type: ignore[no-any-return]


def test_a_task_line_reads_like_the_terminal_progress() -> None:
    from workbench.cli_tasks import describe

    task = Task(id=3, kind="validate", dataset_id=1, dataset="support", state=TaskState.RUNNING, stage="checking rules",
                done=120_000, total=1_000_000, eta_s=42, created_at="2026-01-01T00:00:00+00:00",
                updated_at="2026-01-01T00:00:00+00:00")
    assert describe(task) == "#3 validate on support: running, checking rules: 120,000 of 1,000,000 examples, about 42 s left"


def test_old_ended_tasks_are_pruned_as_new_ones_start(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")  # in this process: five quick runs, no children
    monkeypatch.setattr(tasks, "KEPT_PER_KIND", 3)
    ids = [tasks.start(loaded, "sleep", "support", {"total": 1, "step_s": 0}).id for _ in range(5)]

    assert [t.id for t in tasks.list_tasks(loaded)] == ids[:-4:-1]  # the newest 3


def test_progress_still_shows_while_the_write_lock_is_held(loaded: Store) -> None:
    """A freeze or a resolve reports from inside its own write: its row cannot be written until it commits."""
    from workbench.store import tasks as task_rows

    task = wait(loaded, tasks.start(loaded, "sleep", "support", SLOW), lambda t: t.done > 0)
    try:
        with loaded.write():
            time.sleep(3)
            with loaded.connect() as db:
                row = task_rows.get_task(db, task.id)
            shown = tasks.get(loaded, task.id)
        assert row is not None and shown.done > row.done, "the reports went beside the store, and reads pick them up"
    finally:
        tasks.cancel(loaded, task.id)
    assert wait(loaded, task, ended, timeout=20).state is TaskState.CANCELLED
    assert not list(loaded.path.parent.glob("*.progress"))


def test_cancel_does_not_wait_for_the_write_lock_a_task_holds(loaded: Store) -> None:
    """A split, a freeze or a scrub holds the write lock for its whole run: a cancel must reach it all the same."""
    task = wait(loaded, tasks.start(loaded, "sleep", "support", SLOW), lambda t: t.done > 0)
    with loaded.write():  # as the task's own transaction would
        started = time.monotonic()
        asked = tasks.cancel(loaded, task.id)
        waited = time.monotonic() - started
        assert waited < 2, f"cancel waited {waited:.1f} s for the lock"
        assert asked.cancel_requested
    task = wait(loaded, asked, ended, timeout=20)
    assert task.state is TaskState.CANCELLED
    assert not list(loaded.path.parent.glob("*.cancel"))


@pytest.mark.parametrize(
    ("kind", "params", "said"),
    [
        ("validate", {}, "needs target"),
        ("split", {}, "needs ratios"),
        ("split", {"ratios": "abc"}, "ratios must be a list of numbers"),
        ("split", {"ratios": [0.8, 0.2], "seed": "x"}, "seed must be a number"),
        ("freeze", {}, "needs name"),
        ("freeze", {"name": "v1", "split": "bogus"}, "split must be one of"),
        ("duplicates", {"threshold": "abc"}, "threshold must be a number"),
    ],
)
def test_bad_params_are_refused_before_a_process_starts(loaded: Store, kind: str, params: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidInput, match=said):
        tasks.start(loaded, kind, "support", params)
    assert tasks.list_tasks(loaded, "support") == []


def test_a_second_writing_action_on_a_dataset_is_refused_while_one_runs(loaded: Store) -> None:
    """Both would need the write lock for long stretches: the second is told now what runs, not failed as busy later."""
    writer = wait(loaded, tasks.start(loaded, "sleep_writing", "support", SLOW), lambda t: t.done > 0)
    try:
        with pytest.raises(Busy, match=rf"^Sleep \(tests, as a writer\) \(task {writer.id}\) is still running on support; "):
            tasks.start(loaded, "split", "support", {"ratios": [0.8, 0.1, 0.1]})
        reader = tasks.start(loaded, "sleep", "support", {"total": 1, "step_s": 0})
        assert reader.id != writer.id, "an action that only reads may run beside it"
    finally:
        tasks.cancel(loaded, writer.id)
    wait(loaded, writer, ended)
    assert wait(loaded, tasks.start(loaded, "split", "support", {"ratios": [0.8, 0.1, 0.1]}), ended).state is TaskState.DONE


def test_a_dead_writer_does_not_block_the_next_one(loaded: Store) -> None:
    writer = wait(loaded, tasks.start(loaded, "sleep_writing", "support", SLOW), lambda t: t.done > 0)
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)
    assert wait(loaded, tasks.start(loaded, "split", "support", {"ratios": [0.8, 0.1, 0.1]}), ended).state is TaskState.DONE
    assert tasks.get(loaded, writer.id).error == DIED


def test_export_files_live_as_long_as_the_tasks_that_offer_them(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.services import task_actions

    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    monkeypatch.setattr(tasks, "KEPT_PER_KIND", 2)  # counting the one starting
    first = tasks.start(loaded, "export", "support", {"format": "openai"})
    first_file = Path(first.result["path"])
    assert first_file.is_file()
    stray = task_actions.export_folder(loaded) / "someone-elses.txt"
    stray.write_text("not ours")
    an_hour_ago = time.time() - task_actions.EXPORT_GRACE_S - 60
    os.utime(first_file, (an_hour_ago, an_hour_ago))

    second = tasks.start(loaded, "export", "support", {"format": "openai", "split": None, "scrub_pii": False})
    assert first_file.is_file(), "the first export's task was still kept when the second started"
    third = tasks.start(loaded, "export", "support", {"format": "openai", "scrub_pii": False})
    # The first task was pruned: nothing offers its file any more (the third may reuse the freed name).
    on_disk = {str(p) for p in first_file.parent.glob("*.jsonl")}
    assert on_disk == {second.result["path"], third.result["path"]}, "young files are never removed"
    assert stray.read_text() == "not ours"


def test_two_exports_in_the_same_second_write_two_files(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    scrubbed = tasks.start(loaded, "export", "support", {"format": "openai", "scrub_pii": True})
    kept = tasks.start(loaded, "export", "support", {"format": "openai", "scrub_pii": False})
    assert scrubbed.result["path"] != kept.result["path"]
    assert "[EMAIL]" in Path(scrubbed.result["path"]).read_text() and "[EMAIL]" not in Path(kept.result["path"]).read_text()


# ------------------------------------------------------------------------------------------ lock holders and leftovers


def _hold_lock(path: Path) -> Any:
    """Take the store's write lock in this process, as a split or a freeze does for its whole run."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_starting_anything_while_a_task_holds_the_write_lock_is_refused_at_once_naming_it(loaded: Store) -> None:
    holder = wait(loaded, tasks.start(loaded, "sleep_locking", "support", SLOW), lambda t: t.done > 0)
    try:
        started = time.monotonic()
        with pytest.raises(Busy, match=rf"^Sleep \(tests, as a lock holder\) \(task {holder.id}\) on support holds the store's write lock"):
            tasks.start(loaded, "validate", "support", {"target": "openai"})
        assert time.monotonic() - started < 2, "refused at once, not after the busy timeout"
    finally:
        tasks.cancel(loaded, holder.id)
    wait(loaded, holder, ended)


def test_a_queued_task_waits_for_the_write_lock_instead_of_dying(loaded: Store) -> None:
    """A task whose process starts while another holds the lock shows why it waits, and runs once the lock is free."""
    from workbench.store import datasets as dataset_rows
    from workbench.store import tasks as task_rows

    with loaded.write() as db:
        task_id = task_rows.create_task(db, "validate", dataset_rows.dataset_id(db, "support"), {"target": "openai"})
    lock = _hold_lock(loaded.path)
    child = subprocess.Popen([sys.executable, "-m", "workbench", "--db", str(loaded.path), "tasks", "run", str(task_id)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "WORKBENCH_BUSY_TIMEOUT": "1"})
    try:
        task = wait(loaded, tasks.get(loaded, task_id), lambda t: t.stage == "waiting for the store's write lock")
        time.sleep(1.5)  # past the child's busy timeout: it must still be waiting, not dead
        task = tasks.get(loaded, task_id)
        assert task.state.active and task.pid == child.pid and child.poll() is None, task
    finally:
        lock.rollback()
        lock.close()
    assert child.wait(timeout=120) == 0
    assert tasks.get(loaded, task_id).state is TaskState.DONE


def test_a_reused_task_id_does_not_inherit_an_old_cancel_request(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    next_id = tasks.start(loaded, "pii_scan", "support").id + 1
    (loaded.path.parent / f".{loaded.path.name}.task-{next_id}.cancel").touch()  # left by a killed task whose row went with its dataset
    task = tasks.start(loaded, "pii_scan", "support", {"again": 1})
    assert task.id == next_id and task.state is TaskState.DONE


def test_an_import_into_an_existing_dataset_counts_as_its_writer(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from workbench.services import uploads

    monkeypatch.setenv("WORKBENCH_TASKS_TEST_DELAY", "0.3")
    body = b"".join(orjson.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}) + b"\n"
                    for i in range(20_000))
    task = uploads.start_upload_import(loaded, io.BytesIO(body), "more.jsonl", "support")
    assert task.dataset == "support", "an import into an existing dataset belongs to it from the start"
    try:
        wait(loaded, task, lambda t: t.done > 0 or not t.state.active)
        with pytest.raises(Busy, match=rf"^Import \(task {task.id}\) is still running on support"):
            tasks.start(loaded, "split", "support", {"ratios": [0.8, 0.1, 0.1]})
    finally:
        tasks.cancel(loaded, task.id)
    wait(loaded, task, ended)


def test_imports_are_pruned_like_every_other_kind(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from workbench.services import uploads

    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    monkeypatch.setattr(tasks, "KEPT_PER_KIND", 2)
    for i in range(4):
        line = orjson.dumps({"messages": [{"role": "user", "content": f"new {i}"}, {"role": "assistant", "content": "a"}]})
        uploads.start_upload_import(loaded, io.BytesIO(line + b"\n"), f"f{i}.jsonl", "fresh" if i == 0 else "support")
    kept = [t for t in tasks.list_tasks(loaded) if t.kind == "import"]
    assert [t.params["filename"] for t in kept] == ["f3.jsonl", "f2.jsonl", "f0.jsonl"]


def test_an_exports_path_that_is_a_file_is_a_clear_failure(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    (loaded.path.parent / "exports").write_text("not a folder")
    task = tasks.start(loaded, "export", "support", {"format": "openai"})
    assert task.state is TaskState.FAILED and "cannot keep exports there" in (task.error or "")
