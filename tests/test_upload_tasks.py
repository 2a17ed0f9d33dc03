"""Imports started from the app: an upload saved beside the store and imported by a task in its own process.

Real SQLite files and real child processes: the task's progress is in MB of the file, Cancel stops
it between two batches with what was read kept and logged, and the saved upload never outlives it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.helpers import WriteJsonl, chat, task_ended, wait_task
from workbench.domain.progress import Cancelled, Progress
from workbench.errors import InvalidInput
from workbench.services import datasets, importing, splits, tasks, uploads
from workbench.store import Store
from workbench.store.tasks import Task, TaskState


@pytest.fixture(autouse=True)
def in_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_TASKS_INLINE", raising=False)


def wait(store: Store, task: Task, until: Callable[[Task], bool], timeout: float = 120.0) -> Task:
    return wait_task(store, task, until, timeout)  # type: ignore[no-any-return]


ended = task_ended


def lines(n: int, start: int = 0) -> bytes:
    return b"".join(orjson.dumps(chat(f"Question {i} about the order", f"Answer {i}")) + b"\n" for i in range(start, start + n))


def leftovers(store: Store) -> list[Path]:
    folder = uploads.uploads_folder(store)
    return sorted(folder.iterdir()) if folder.exists() else []


def test_an_upload_is_imported_by_a_task_whose_report_is_kept(store: Store) -> None:
    body = lines(40) + b"not json\n"
    task = uploads.start_upload_import(store, io.BytesIO(body), "tickets.jsonl", "tickets")
    assert task.dataset is None and task.params["name"] == "tickets"
    task = wait(store, task, ended)

    assert task.state is TaskState.DONE, task.error
    assert task.pid is not None and task.pid != os.getpid()
    assert (task.result["imported"], task.result["lines_read"], task.result["error_count"]) == (40, 41, 1)
    assert task.result["stopped"] is False
    assert task.dataset == "tickets", "a finished import belongs to the dataset it wrote"
    assert (task.unit, task.total, task.done) == ("bytes", len(body), len(body))
    assert datasets.get_dataset(store, "tickets").example_count == 40
    assert datasets.import_history(store, "tickets")[0].filename == "tickets.jsonl"
    kept = tasks.latest(store, "tickets", "import")
    assert kept is not None and kept.id == task.id and not kept.stale
    assert leftovers(store) == [], "the saved upload is removed when its import ends"


def test_a_compressed_upload_keeps_its_suffix_and_is_decompressed(store: Store) -> None:
    import gzip

    task = wait(store, uploads.start_upload_import(store, io.BytesIO(gzip.compress(lines(5))), "t.jsonl.gz", "t"), ended)
    assert task.state is TaskState.DONE and task.result["imported"] == 5


def test_an_upload_that_imports_nothing_fails_with_its_message_and_leaves_nothing(store: Store) -> None:
    task = wait(store, uploads.start_upload_import(store, io.BytesIO(b"  \n"), "empty.jsonl", "d"), ended)
    assert task.state is TaskState.FAILED
    assert task.error == "empty.jsonl: the file is empty; nothing to import"
    assert datasets.list_datasets(store) == [] and leftovers(store) == []


def test_a_bad_dataset_name_is_refused_before_the_upload_is_saved(store: Store) -> None:
    with pytest.raises(InvalidInput, match="name"):
        uploads.start_upload_import(store, io.BytesIO(lines(1)), "x.jsonl", "   ")
    assert leftovers(store) == [] and tasks.list_tasks(store) == []


def test_an_import_task_of_a_missing_file_is_refused_at_start(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file to import"):
        tasks.start(store, "import", None, {"path": str(tmp_path / "gone.jsonl"), "name": "d"})
    with pytest.raises(InvalidInput, match="needs a dataset"):
        tasks.start(store, "validate", None, {"target": "openai"})


def test_cancel_stops_an_import_between_batches_and_keeps_what_was_read(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_TEST_DELAY", "0.3")  # each report waits: the import is surely mid-file when cancelled
    splits.split_dataset(store, _seeded(store), (0.8, 0.1, 0.1), seed=1)
    n = 30_000
    task = uploads.start_upload_import(store, io.BytesIO(lines(n, start=100)), "big.jsonl", "seeded")
    task = wait(store, task, lambda t: t.done > 0 or not t.state.active)
    assert task.state.active, f"the import ended before it could be cancelled: {task}"
    tasks.cancel(store, task.id)
    task = wait(store, task, ended)

    assert task.state is TaskState.DONE, (task.state, task.error)
    result = task.result
    assert result["stopped"] is True and 0 < result["lines_read"] < n
    seeded = datasets.get_dataset(store, "seeded")
    assert seeded.example_count == 10 + result["imported"], "the report counts exactly what the dataset gained"
    assert result["imported"] == result["lines_read"]
    logged = datasets.import_history(store, "seeded")[0]
    assert (logged.filename, logged.imported) == ("big.jsonl", result["imported"])
    with store.connect() as db:
        unassigned = db.execute("SELECT count(*) FROM examples WHERE split = 'unassigned'").fetchone()[0]
    assert unassigned == 0, "a split dataset's new examples are assigned even after a stop"
    assert leftovers(store) == []

    again = wait(store, uploads.start_upload_import(store, io.BytesIO(lines(n, start=100)), "big.jsonl", "seeded"), ended)
    assert again.result["duplicates"] == result["imported"] and again.result["imported"] == n - result["imported"]


def test_a_stop_before_the_first_batch_writes_nothing(store: Store, write_jsonl: WriteJsonl) -> None:
    path = write_jsonl([chat(f"q{i}", "a") for i in range(10)])
    progress = Progress(lambda state: None, lambda: True)
    with pytest.raises(Cancelled):
        importing.import_path(store, path, "d", progress=progress)
    assert datasets.list_datasets(store) == []


def test_an_upload_left_by_a_dead_process_is_removed_once_stale(store: Store) -> None:
    folder = uploads.uploads_folder(store)
    folder.mkdir()
    old, recent = folder / "upload-old-x.jsonl", folder / "upload-new-y.jsonl"
    old.write_bytes(b"{}"), recent.write_bytes(b"{}")
    an_old_time = time.time() - uploads.STALE_UPLOAD_S - 60
    os.utime(old, (an_old_time, an_old_time))
    wait(store, uploads.start_upload_import(store, io.BytesIO(lines(2)), "a.jsonl", "a"), ended)
    assert leftovers(store) == [recent]


def test_the_cli_lists_a_running_import_by_the_dataset_it_writes(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TASKS_TEST_DELAY", "0.3")
    task = uploads.start_upload_import(store, io.BytesIO(lines(20_000)), "big.jsonl", "incoming")
    try:
        task = wait(store, task, lambda t: t.done > 0 or not t.state.active)
        shown = subprocess.run(
            [sys.executable, "-m", "workbench", "--db", str(store.path), "tasks", "list"], capture_output=True, text=True, check=True,
        ).stdout
        assert f"#{task.id} import on incoming: running, importing: " in shown and " MB" in shown, shown
    finally:
        tasks.cancel(store, task.id)
        wait(store, task, ended)


def _seeded(store: Store) -> str:
    importing.import_stream(store, io.BytesIO(lines(10)), "seed.jsonl", "seeded")
    return "seeded"
