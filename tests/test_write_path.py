"""One write path: writers wait for each other instead of failing, a timeout says so plainly, and
opening a new store is safe to race. Real SQLite files, real threads and real subprocesses."""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlite_utils import Database

from tests.helpers import WriteJsonl
from workbench.domain.checks import prepare
from workbench.domain.example import Example, Message, ReviewState, Role
from workbench.domain.filters import ExampleFilter
from workbench.errors import Busy, InvalidInput
from workbench.services import cleaning, datasets, splits, versions
from workbench.services.importing import import_path
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store.migrations import latest_version

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl, sample_records: list[dict[str, Any]]) -> Store:
    import_path(store, write_jsonl(sample_records), "support")
    return store


def _ids(store: Store, name: str = "support") -> list[int]:
    return [e.id for e in datasets.browse(store, name, ExampleFilter(), page_size=500).examples]  # type: ignore[misc]


def _new_example(text: str) -> Example:
    return prepare(Example(messages=[Message(role=Role.USER, content=text), Message(role=Role.ASSISTANT, content="ok")]))


@contextmanager
def _another_writer(store: Store, seconds: float, write: Callable[[Database], None]) -> Iterator[None]:
    """Hold the write lock in another thread for `seconds`, having written with `write`, then commit.

    The block runs while the lock is held, so whatever it calls has to wait for the commit.
    """
    has_lock = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with store.write() as db:
                write(db)
                has_lock.set()
                time.sleep(seconds)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
            has_lock.set()

    thread = threading.Thread(target=hold)
    thread.start()
    assert has_lock.wait(10)
    try:
        yield
    finally:
        thread.join()
        assert errors == []


def _add_pii_example(db: Database) -> None:
    example_rows.insert_examples(db, dataset_rows.dataset_id(db, "support"), [_new_example("write to late.comer@example.com")])


# Each operation reads, then writes. Another writer commits a new example (with an email address)
# while the operation waits: the operation must wait for the lock, then read the store as it is
# after that commit. A deferred transaction read first and failed with "database is locked".
OPERATIONS: dict[str, Callable[[Store], Any]] = {
    "label": lambda s: datasets.label(s, _ids(s)[-1], rating=5, notes="kept"),
    "edit turns (save a revision)": lambda s: datasets.edit_turns(
        s, _ids(s)[-1], None, [Message(role=Role.USER, content="edited"), Message(role=Role.ASSISTANT, content="yes")]
    ),
    "bulk accept": lambda s: datasets.bulk(s, "support", ExampleFilter(), "accept"),
    "bulk delete": lambda s: datasets.bulk(s, "support", ExampleFilter(search="comer"), "delete"),
    "delete chosen examples": lambda s: datasets.delete_examples(s, "support", _ids(s)[:3]),
    "scrub PII": lambda s: cleaning.scrub_dataset(s, "support"),
    "split": lambda s: splits.split_dataset(s, "support", (0.8, 0.1, 0.1)),
    "freeze": lambda s: versions.freeze(s, "support", "v1"),
    "add a rule": lambda s: cleaning.add_rule(s, name="no-refunds", words="refund"),
    "delete the dataset": lambda s: datasets.delete_dataset(s, "support"),
}


@pytest.mark.parametrize("operation", list(OPERATIONS), ids=list(OPERATIONS))
def test_a_write_waits_for_another_writer_and_reads_after_it(loaded: Store, operation: str) -> None:
    before = len(_ids(loaded))
    with _another_writer(loaded, 0.5, _add_pii_example):
        started = time.perf_counter()
        result = OPERATIONS[operation](loaded)
        waited = time.perf_counter() - started
    assert waited >= 0.2, "the operation did not wait for the lock"
    with loaded.connect() as db:
        late = db.execute("SELECT id, review_state, pii_count FROM examples WHERE id = (SELECT max(id) FROM examples)").fetchone()
    # The example committed while the operation waited is part of what it acted on.
    if operation == "bulk accept":
        assert result.affected == before + 1 and late[1] == ReviewState.ACCEPTED.value
    elif operation == "bulk delete":
        assert result.affected == 1 and len(_ids(loaded)) == before
    elif operation == "scrub PII":
        # Scrubbing plans on what it read before taking the lock (scanning is slow), then writes;
        # the example that arrived meanwhile is left for the next scrub, the planned one is clean.
        assert result >= 1
        assert datasets.browse(loaded, "support", ExampleFilter(search="jane")).total == 0
    elif operation == "split":
        assert sum(result.counts.values()) == before + 1 and "unassigned" not in result.counts
    elif operation == "freeze":
        assert result.example_count == before + 1
    elif operation == "delete the dataset":
        assert datasets.list_datasets(loaded) == []


def test_undo_waits_for_a_writer_and_restores_the_rows_it_changed(loaded: Store) -> None:
    datasets.bulk(loaded, "support", ExampleFilter(search="refund"), "reject")
    with _another_writer(loaded, 0.5, _add_pii_example):
        result = datasets.undo_last_bulk(loaded, "support")
    assert result.affected == 4
    assert datasets.browse(loaded, "support", ExampleFilter(review_state=ReviewState.REJECTED)).total == 0
    assert datasets.last_bulk(loaded, "support") is None


# ------------------------------------------------------------------------------------------- timeout


def _hold_lock(path: Path) -> sqlite3.Connection:
    """Take the write lock on a plain connection, as a stuck process or a sqlite3 shell would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE datasets SET description = 'held' WHERE name = 'support'")
    return conn


BUSY_CASES: dict[str, Callable[[Store], Any]] = {
    "bulk tag": lambda s: datasets.bulk(s, "support", ExampleFilter(), "tag", "x"),
    "label": lambda s: datasets.label(s, _ids(s)[0], rating=1, tags=["x"]),
    "scrub PII": lambda s: cleaning.scrub_dataset(s, "support"),
    "delete chosen examples": lambda s: datasets.delete_examples(s, "support", _ids(s)),
}


@pytest.mark.parametrize("operation", list(BUSY_CASES), ids=list(BUSY_CASES))
def test_a_lock_held_past_the_timeout_is_a_clear_error_and_writes_nothing(loaded: Store, operation: str) -> None:
    impatient = Store(loaded.path, busy_timeout=0.3)
    with loaded.connect() as db:
        before = [dict(row) for row in db.query("SELECT * FROM examples ORDER BY id")]
    holder = _hold_lock(loaded.path)
    try:
        started = time.perf_counter()
        with pytest.raises(Busy, match=r"is busy: another process has held the write lock for 0\.3 s \(an import\?\); try again"):
            BUSY_CASES[operation](impatient)
        assert 0.25 <= time.perf_counter() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with loaded.connect() as db:
        assert [dict(row) for row in db.query("SELECT * FROM examples ORDER BY id")] == before
        assert db.execute("SELECT count(*) FROM bulk_actions").fetchone()[0] == 0
    BUSY_CASES[operation](impatient)  # with the lock free, the same call goes through


def test_the_cli_reports_a_busy_store_as_one_json_error(loaded: Store) -> None:
    holder = _hold_lock(loaded.path)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "workbench", "--db", str(loaded.path), "rules", "add", "no-refunds", "--words", "refund", "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "WORKBENCH_BUSY_TIMEOUT": "0.5"},
            timeout=120,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "database is locked" not in proc.stderr
    payload = orjson.loads(proc.stdout)
    assert payload["ok"] is False
    assert payload["error"] == f"the store {loaded.path} is busy: another process has held the write lock for 0.5 s (an import?); try again"
    assert cleaning.list_rules(loaded) == []


@pytest.mark.parametrize("raw", ["soon", "-1", "99999"])
def test_a_bad_busy_timeout_setting_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("WORKBENCH_BUSY_TIMEOUT", raw)
    with pytest.raises(InvalidInput, match=f"WORKBENCH_BUSY_TIMEOUT must be a number of seconds from 0 to 3600, not '{raw}'"):
        Store(tmp_path / "a.db")


# ------------------------------------------------------------------------------- writers at once


def test_undo_and_labels_from_two_threads_all_succeed(loaded: Store) -> None:
    ids = _ids(loaded)
    errors: list[BaseException] = []
    labelled: list[int] = []

    def label() -> None:
        try:
            for i in range(60):
                datasets.label(loaded, ids[i % len(ids)], rating=i % 5 + 1, notes=f"pass {i}")
                labelled.append(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    def bulk_and_undo() -> None:
        try:
            for i in range(15):
                datasets.bulk(loaded, "support", ExampleFilter(), "tag", f"round-{i}")
                datasets.undo_last_bulk(loaded, "support")
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=label), threading.Thread(target=bulk_and_undo)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(labelled) == 60
    # Every bulk tag was undone, and the undo put the rows back whole: no tag survives.
    assert datasets.facets(loaded, "support").tags == {}


def _training_file(path: Path, n: int, seed: int = 5) -> Path:
    """Write n OpenAI chat records of about 1.2 KB of varied words each (so the search index works)."""
    rng = random.Random(seed)
    syllables = ["ka", "to", "ri", "mon", "sel", "ver", "an", "tel", "or", "qui", "lo", "pra", "den", "fi", "ux", "zo"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(20_000)]
    with path.open("wb") as out:
        for i in range(n):
            user = f"question {i} " + " ".join(rng.choices(words, k=40))
            answer = " ".join(rng.choices(words, k=120))
            out.write(orjson.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}) + b"\n")
    return path


def _start_import(store: Store, path: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", "--db", str(store.path), "datasets", "import", str(path), "--name", name, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )


def _finish_import(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return orjson.loads(out)  # type: ignore[no-any-return]


def test_bulk_actions_and_undo_while_an_import_runs_all_succeed(loaded: Store, tmp_path: Path) -> None:
    big = _training_file(tmp_path / "big.jsonl", 6000)
    proc = _start_import(loaded, big, "incoming")
    done: list[str] = []
    while proc.poll() is None:
        datasets.bulk(loaded, "support", ExampleFilter(), "tag", f"pass-{len(done)}")
        datasets.bulk(loaded, "support", ExampleFilter(search="refund"), "accept")
        datasets.undo_last_bulk(loaded, "support")
        if any(d.name == "incoming" for d in datasets.list_datasets(loaded)):
            # The growing dataset itself (one example, once it has arrived).
            datasets.bulk(loaded, "incoming", ExampleFilter(search="question 5"), "move-to-split", "train")
        done.append("round")
    result = _finish_import(proc)
    assert result["imported"] == 6000 and result["error_count"] == 0
    assert datasets.get_dataset(loaded, "incoming").example_count == 6000
    assert len(done) >= 2, "the import finished before the bulk actions could overlap it"
    tags = datasets.facets(loaded, "support").tags
    assert tags == {f"pass-{i}": 20 for i in range(len(done))}


def test_a_label_waits_under_a_second_while_a_large_import_runs(loaded: Store, tmp_path: Path) -> None:
    """The longest wait a small write sees while another process imports ~36 MB (its worker path)."""
    n = 30_000
    big = _training_file(tmp_path / "big.jsonl", n)
    target = _ids(loaded)[0]
    proc = _start_import(loaded, big, "incoming")
    started = time.perf_counter()
    waits: list[float] = []
    while proc.poll() is None:
        t = time.perf_counter()
        datasets.label(loaded, target, rating=len(waits) % 5 + 1)
        waits.append(time.perf_counter() - t)
        time.sleep(0.02)
    took = time.perf_counter() - started
    result = _finish_import(proc)
    assert result["imported"] == n
    longest = max(waits)
    figure = (
        f"longest label wait during a {big.stat().st_size / 1e6:.0f} MB import: {longest:.3f} s "
        f"(median {statistics.median(waits):.3f} s, {len(waits)} labels, import {took:.1f} s)"
    )
    print(figure)
    assert took > 3, f"the import was too quick to measure anything: {figure}"
    assert longest < 1.0, figure


# ------------------------------------------------------------------------------------- migrations


def _open_rounds(barrier: Any, folder: str, rounds: int, results: Any) -> None:
    """Open a new store file per round, all processes at the same moment; report any failure."""
    failures = []
    for r in range(rounds):
        barrier.wait()
        try:
            Store(Path(folder) / f"round-{r}.db")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failures.append(f"round {r}: {type(exc).__name__}: {exc}")
    results.put(failures)


def _gather(results: Any, workers: list[Any], deadline: float) -> list[str]:
    """Each worker's failures; a worker that died before reporting fails the test at once, not at the deadline."""
    failures: list[str] = []
    for reported in range(len(workers)):
        while True:
            try:
                failures += results.get(timeout=1)
                break
            except queue.Empty:
                dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                assert not dead, f"a worker died with exit code {dead[0]} after {reported} reported"
                assert time.monotonic() < deadline, f"only {reported} of {len(workers)} workers reported in time"
    return failures


def test_eight_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    processes, rounds = 8, 20
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_open_rounds, args=(barrier, str(tmp_path), rounds, results)) for _ in range(processes)]
    for w in workers:
        w.start()
    failures = _gather(results, workers, deadline=time.monotonic() + 300)
    for w in workers:
        w.join(timeout=60)
    assert failures == [], f"{len(failures)} of {processes * rounds} opens failed"
    for r in range(rounds):
        with Store(tmp_path / f"round-{r}.db").connect() as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == latest_version()
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA page_size").fetchone()[0] == 8192
            assert db.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == latest_version()


def test_opening_an_up_to_date_store_needs_no_write_lock(loaded: Store) -> None:
    holder = _hold_lock(loaded.path)
    try:
        started = time.perf_counter()
        reopened = Store(loaded.path, busy_timeout=2)
        assert datasets.get_dataset(reopened, "support").example_count == 20
        assert time.perf_counter() - started < 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
