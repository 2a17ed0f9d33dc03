"""Split, freeze, diff, export and import at any size: same answers, progress, cancellation, bounded memory."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import Example, Message, Role, Split
from workbench.domain.progress import Cancelled, Progress, ProgressState
from workbench.domain.splitting import (
    SPLITS,
    SplitItem,
    SplitRatios,
    _integer_weights,
    _rank,
    assign_new,
    assign_splits,
)
from workbench.errors import InvalidInput
from workbench.services import exporting, splits, versions
from workbench.services.importing import import_path
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store import versions as version_rows

LABELS = ("billing", "returns", "shipping", None)


def _examples(first: int, count: int, split: Split = Split.UNASSIGNED) -> Iterator[Example]:
    for i in range(first, first + count):
        label = LABELS[i % len(LABELS)]
        yield Example(
            messages=[Message(role=Role.USER, content=f"Question {i} about order {i * 7}?"),
                      Message(role=Role.ASSISTANT, content=f"Answer {i}: check the order page.")],
            metadata={"label": label, "source": "test"} if label else {"source": "test"},
            split=split,
        ).with_hash()


def _fill(store: Store, dataset: str, first: int, count: int, split: Split = Split.UNASSIGNED) -> None:
    with store.write() as db:
        found = dataset_rows.find_dataset(db, dataset)
        dataset_id = found.id if found else dataset_rows.create_dataset(db, dataset).id
        example_rows.insert_examples(db, dataset_id, _examples(first, count, split))


def _rows(store: Store, dataset: str) -> list[tuple[int, str, str, str | None]]:
    """(id, content hash, split, label) per example, as the old in-memory split read them."""
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        return [
            (row[0], row[1], row[2], row[3])
            for row in db.execute(
                "SELECT id, content_hash, split, CAST(json_extract(metadata, '$.label') AS TEXT) FROM examples "
                "WHERE dataset_id = ? ORDER BY id", [dataset_id],
            )
        ]


class Recorder:
    """A Progress that keeps every report, and asks to stop once `stop_after` records were counted."""

    def __init__(self, stop_after: int | None = None, stop_in: str | None = None) -> None:
        self.states: list[ProgressState] = []
        self.stop_after, self.stop_in = stop_after, stop_in
        self.progress = Progress(self.states.append, self._cancelled, every=0)

    def _cancelled(self) -> bool:
        if self.stop_after is None:
            return False
        state = self.progress.state
        return (self.stop_in is None or state.stage == self.stop_in) and state.done >= self.stop_after

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(state.stage for state in self.states))

    def total(self, stage: str) -> int:
        return next(state.total for state in self.states if state.stage == stage)


def _old_assign_new(
    items: list[SplitItem], ratios: SplitRatios, seed: int, existing: dict[str | None, Counter[Split]]
) -> dict[int, Split]:
    """The split as it was computed before it streamed: every item in memory, shares handed out one by one."""
    weights = _integer_weights(ratios)
    weight_sum = sum(weights.values())
    strata: dict[str | None, list[SplitItem]] = {}
    for item in items:
        strata.setdefault(item[2], []).append(item)
    assigned: dict[int, Split] = {}
    for stratum, members in strata.items():
        counts = {split: existing.get(stratum, Counter())[split] for split in SPLITS}
        total = sum(counts.values()) + len(members)
        tie_order = sorted(SPLITS, key=lambda split: _rank(seed, f"{stratum!r}:{split.value}"))
        added = dict.fromkeys(SPLITS, 0)
        for _ in range(len(members)):
            split = max(SPLITS, key=lambda s: (total * weights[s] - counts[s] * weight_sum, -tie_order.index(s)))
            counts[split] += 1
            added[split] += 1
        ordered = sorted(members, key=lambda item: (_rank(seed, item[1]), item[1], item[0]))
        position = 0
        for split in SPLITS:
            for example_id, _, _ in ordered[position : position + added[split]]:
                assigned[example_id] = split
            position += added[split]
    return assigned


@given(
    st.lists(st.integers(0, 9), min_size=3, max_size=3).filter(any),
    st.lists(st.integers(0, 40), min_size=3, max_size=3),
    st.integers(0, 300),
    st.integers(0, 2**32),
)
def test_split_counts_worked_out_at_once_match_handing_them_out_one_by_one(
    weights: list[int], old: list[int], new: int, seed: int
) -> None:
    total = sum(weights)
    ratios = SplitRatios(train=weights[0] / total, validation=weights[1] / total, test=1 - (weights[0] + weights[1]) / total)
    items = [(i, f"h{seed}-{i}", None) for i in range(new)]
    existing = {None: Counter(dict(zip(SPLITS, old, strict=True)))}
    assert assign_new(items, ratios, seed, existing) == _old_assign_new(items, ratios, seed, existing)


@pytest.fixture
def labelled(store: Store) -> Store:
    _fill(store, "d", 0, 240)
    return store


# ------------------------------------------------------------------------------------------- split


@pytest.mark.parametrize("stratify", [None, "label"])
def test_split_gives_what_the_in_memory_split_gave(labelled: Store, stratify: str | None) -> None:
    ratios = SplitRatios(train=0.7, validation=0.2, test=0.1)
    summary = splits.split_dataset(labelled, "d", ratios, seed=7, stratify_by=stratify)
    rows = _rows(labelled, "d")
    expected = _old_assign_new([(i, h, label if stratify else None) for i, h, _, label in rows], ratios, 7, {})
    assert assign_splits([(i, h, label if stratify else None) for i, h, _, label in rows], ratios, seed=7) == expected
    assert {i: split for i, _, split, _ in rows} == {i: s.value for i, s in expected.items()}
    assert summary.assigned == 240
    assert summary.counts == dict(sorted(Counter(s.value for s in expected.values()).items()))
    if stratify:
        assert set(summary.by_stratum) == {"billing", "returns", "shipping", "(none)"}
        assert all(sum(counts.values()) == 60 for counts in summary.by_stratum.values())


def test_new_arrivals_get_what_the_in_memory_split_gave_them(labelled: Store) -> None:
    ratios = SplitRatios(train=0.6, validation=0.3, test=0.1)
    splits.split_dataset(labelled, "d", ratios, seed=3, stratify_by="label")
    before = _rows(labelled, "d")
    _fill(labelled, "d", 1000, 37)
    summary = splits.assign_new_examples(labelled, "d")
    assert summary is not None and summary.assigned == 37
    after = {i: split for i, _, split, _ in _rows(labelled, "d")}
    existing: dict[str | None, Counter[Split]] = {}
    for _, _, split, label in before:
        existing.setdefault(label, Counter())[Split(split)] += 1
    new = [(i, h, label) for i, h, split, label in _rows(labelled, "d") if i not in {b[0] for b in before}]
    expected = _old_assign_new(new, ratios, 3, existing)
    assert assign_new(new, ratios, 3, existing) == expected
    assert {i: after[i] for i in expected} == {i: s.value for i, s in expected.items()}
    assert all(after[i] == split for i, _, split, _ in before)  # nobody already placed moved


def test_splitting_again_with_the_same_seed_writes_nothing(labelled: Store) -> None:
    splits.split_dataset(labelled, "d", (0.8, 0.1, 0.1), seed=5)
    with labelled.connect() as db:
        stamps = dict(db.execute("SELECT id, updated_at FROM examples").fetchall())
    summary = splits.split_dataset(labelled, "d", (0.8, 0.1, 0.1), seed=5)
    with labelled.connect() as db:
        assert dict(db.execute("SELECT id, updated_at FROM examples").fetchall()) == stamps
    assert summary.assigned == 240


def test_split_refuses_a_field_with_a_value_per_example(labelled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splits, "MAX_STRATA", 3)
    with pytest.raises(InvalidInput, match="4 different values of it, more than the 3"):
        splits.split_dataset(labelled, "d", (0.8, 0.1, 0.1), stratify_by="label")


@pytest.mark.parametrize(("stage", "after"), [("ranking examples", 1000), ("assigning splits", 700)])
def test_a_cancelled_split_leaves_every_example_where_it_was(store: Store, stage: str, after: int) -> None:
    _fill(store, "d", 0, 2500, Split.TRAIN)
    splits.split_dataset(store, "d", (0.5, 0.25, 0.25), seed=1)
    before = _rows(store, "d")
    with store.connect() as db:
        config = dataset_rows.get_dataset(db, "d").split_config
    recorder = Recorder(stop_after=after, stop_in=stage)
    with pytest.raises(Cancelled):
        splits.split_dataset(store, "d", (0.8, 0.1, 0.1), seed=2, progress=recorder.progress)
    assert recorder.stages[-1] == stage
    assert _rows(store, "d") == before
    with store.connect() as db:
        assert dataset_rows.get_dataset(db, "d").split_config == config


def test_split_reports_its_stages_with_totals(labelled: Store) -> None:
    recorder = Recorder()
    splits.split_dataset(labelled, "d", (0.8, 0.1, 0.1), progress=recorder.progress)
    assert recorder.stages == ["ranking examples", "assigning splits"]
    assert recorder.total("assigning splits") == 240
    assert recorder.states[-1].done == 240


# ------------------------------------------------------------------------------------ freeze, diff


def test_freeze_copies_in_id_order_in_batches(labelled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version_rows, "FREEZE_BATCH", 50)
    recorder = Recorder()
    version = versions.freeze(labelled, "d", "v1", progress=recorder.progress)
    assert version.example_count == 240
    assert recorder.stages == ["freezing version"] and recorder.total("freezing version") == 240
    with labelled.connect() as db:
        ids = [row[0] for row in db.execute("SELECT example_id FROM version_examples WHERE version_id = ? ORDER BY position", [version.id])]
    assert ids == [i for i, *_ in _rows(labelled, "d")]
    splits.split_dataset(labelled, "d", (0.5, 0.5, 0.0))
    train = versions.freeze(labelled, "d", "train-only", split="train")
    assert train.example_count == 120


def test_a_cancelled_freeze_leaves_no_version(labelled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version_rows, "FREEZE_BATCH", 50)
    with pytest.raises(Cancelled):
        versions.freeze(labelled, "d", "v1", progress=Recorder(stop_after=100).progress)
    with labelled.connect() as db:
        assert db.execute("SELECT count(*) FROM dataset_versions").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM version_examples").fetchone()[0] == 0
    assert versions.freeze(labelled, "d", "v1").example_count == 240  # the name is free again


def _changed(store: Store) -> None:
    """Between two versions: 3 examples deleted, 5 edited, 7 moved to another split, 600 added."""
    rows = _rows(store, "d")
    with store.write() as db:
        example_rows.delete_examples(db, [rows[i][0] for i in (0, 10, 20)])
        for i in range(30, 35):
            db.execute("UPDATE examples SET content_hash = content_hash || 'x' WHERE id = ?", [rows[i][0]])
        for i in range(40, 47):
            db.execute("UPDATE examples SET split = 'test' WHERE id = ?", [rows[i][0]])
    _fill(store, "d", 5000, 600)


def _reference_diff(store: Store, old: str, new: str) -> dict[str, list[int]]:
    """The diff as the in-memory version computed it, from both versions' keys in dicts."""
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, "d")
        keys = [
            {row[0]: (row[1], row[2]) for row in db.execute(
                "SELECT example_id, content_hash, split FROM version_examples WHERE version_id = ?",
                [version_rows.get_version(db, dataset_id, name).id])}
            for name in (old, new)
        ]
    a, b = keys
    both = sorted(set(a) & set(b))
    return {
        "added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)),
        "changed": [i for i in both if a[i][0] != b[i][0]],
        "moved": [i for i in both if a[i][0] == b[i][0] and a[i][1] != b[i][1]],
        "unchanged": [i for i in both if a[i] == b[i]],
    }


def test_diff_gives_what_the_in_memory_diff_gave_with_counts_and_samples(labelled: Store) -> None:
    splits.split_dataset(labelled, "d", (0.8, 0.1, 0.1), seed=9)
    versions.freeze(labelled, "d", "v1")
    _changed(labelled)
    versions.freeze(labelled, "d", "v2")
    recorder = Recorder()
    got = versions.diff(labelled, "d", "v1", "v2", progress=recorder.progress)
    expected = _reference_diff(labelled, "v1", "v2")
    for kind in ("added", "removed", "changed", "moved"):
        assert getattr(got, f"{kind}_count") == len(expected[kind])
        assert getattr(got, kind) == expected[kind][: versions.DIFF_SAMPLE]
    assert (got.removed_count, got.changed_count, got.moved_count, got.added_count) == (3, 5, 7, 600)
    assert len(got.added) == versions.DIFF_SAMPLE == got.sample_limit
    assert got.unchanged == len(expected["unchanged"])
    assert recorder.stages == ["comparing versions"]
    assert recorder.total("comparing versions") == 240 + 237 + 600 == recorder.states[-1].done
    reverse = versions.diff(labelled, "d", "v2", "v1")
    assert (reverse.added_count, reverse.removed_count) == (3, 600)


def test_a_cancelled_diff_stops(labelled: Store) -> None:
    versions.freeze(labelled, "d", "v1")
    versions.freeze(labelled, "d", "v2")
    with pytest.raises(Cancelled):
        versions.diff(labelled, "d", "v1", "v2", progress=Recorder(stop_after=10).progress)


# ------------------------------------------------------------------------------------------ export


def test_export_lists_a_sample_of_lossy_examples_and_counts_them_all(labelled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporting, "LOSSY_SAMPLE", 5)
    recorder = Recorder()
    data, result = exporting.export_bytes(labelled, "d", "openai", progress=recorder.progress)
    assert result.written == 240 == len(data.splitlines())
    assert result.lossy_count == 240 and len(result.lossy) == 5  # metadata has no place in an OpenAI file
    assert [lossy.example_id for lossy in result.lossy] == [i for i, *_ in _rows(labelled, "d")][:5]
    assert result.lost_fields == {"metadata.source": 240, "metadata.label": 180}
    assert recorder.stages == ["exporting"] and recorder.total("exporting") == 240


def test_export_counts_a_split_of_a_version_up_front(labelled: Store) -> None:
    splits.split_dataset(labelled, "d", (0.5, 0.5, 0.0))
    versions.freeze(labelled, "d", "v1")
    recorder = Recorder()
    _, result = exporting.export_bytes(labelled, "d", "openai", version="v1", split="validation", progress=recorder.progress)
    assert recorder.total("exporting") == 120 == result.written


def test_a_cancelled_export_leaves_the_destination_as_it_was(labelled: Store, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(Cancelled):
        exporting.export_path(labelled, "d", "openai", target, progress=Recorder(stop_after=50).progress)
    assert target.read_text() == "old\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]


# ------------------------------------------------------------------------------------------ import


def test_import_reports_bytes_then_assigns_new_arrivals(labelled: Store, write_jsonl: WriteJsonl) -> None:
    splits.split_dataset(labelled, "d", (0.8, 0.1, 0.1))
    path = write_jsonl([chat(f"new question {i}", f"new answer {i}") for i in range(30)])
    recorder = Recorder()
    result = import_path(labelled, path, "d", progress=recorder.progress)
    assert result.imported == 30
    assert recorder.stages == ["importing", "ranking examples", "assigning splits"]
    importing = [s for s in recorder.states if s.stage == "importing"]
    assert importing[0].unit == "bytes" and importing[0].total == path.stat().st_size == importing[-1].done
    assert "unassigned" not in splits.split_dataset(labelled, "d", (0.8, 0.1, 0.1), only_new=True).counts


def test_import_still_takes_a_bytes_callback(store: Store, write_jsonl: WriteJsonl) -> None:
    seen: list[int] = []
    path = write_jsonl([chat(f"q{i}", f"a{i}") for i in range(10)])
    import_path(store, path, "d", progress=seen.append)
    assert seen[-1] == path.stat().st_size


def test_a_cancelled_import_stops_reading(store: Store, write_jsonl: WriteJsonl) -> None:
    """A stop between batches writes what was read, reports it as stopped, and reads no further."""
    path = write_jsonl([chat(f"q{i}", "a" * 3000) for i in range(3000)])  # several batches
    result = import_path(store, path, "d", progress=Recorder(stop_after=1).progress)
    with store.connect() as db:
        count = db.execute("SELECT count(*) FROM examples").fetchone()[0]
    assert result.stopped and 0 < result.lines_read < 3000
    assert count == result.imported == result.lines_read


# --------------------------------------------------------------------------------------------- CLI


def _cli(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(db), *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture
def cli_db(tmp_path: Path, write_jsonl: WriteJsonl) -> Path:
    db = tmp_path / "cli.db"
    _cli(db, "datasets", "import", str(write_jsonl([chat(f"q{i}", f"a{i}") for i in range(20)])), "--name", "qa")
    _cli(db, "datasets", "freeze", "qa", "v0")
    return db


COMMANDS: list[tuple[list[str], str]] = [
    (["datasets", "split", "qa"], "assigning splits: "),
    (["datasets", "freeze", "qa", "v1"], "freezing version: "),
    (["datasets", "diff", "qa", "v0", "v0"], "comparing versions: "),
    (["datasets", "export", "qa", "--format", "openai", "--out", "{tmp}/out.jsonl"], "exporting: "),
    (["datasets", "import", "{tmp}/more.jsonl", "--name", "qa"], "importing: "),
]


def _args(args: list[str], tmp: Path) -> list[str]:
    more = tmp / "more.jsonl"
    if not more.exists():
        more.write_bytes(b"".join(orjson.dumps(chat(f"more {i}", "yes")) + b"\n" for i in range(5)))
    return [a.replace("{tmp}", str(tmp)) for a in args]


@pytest.mark.parametrize(("args", "line"), COMMANDS, ids=[c[0][1] for c in COMMANDS])
def test_cli_shows_progress_on_stderr_when_asked(cli_db: Path, tmp_path: Path, args: list[str], line: str) -> None:
    proc = _cli(cli_db, *_args(args, tmp_path), env={"WORKBENCH_PROGRESS": "1"})
    assert any(text.startswith(line) for text in proc.stderr.splitlines()), proc.stderr


@pytest.mark.parametrize(("args", "line"), COMMANDS, ids=[c[0][1] for c in COMMANDS])
def test_cli_under_json_prints_one_object_and_no_progress(cli_db: Path, tmp_path: Path, args: list[str], line: str) -> None:
    proc = _cli(cli_db, *_args(args, tmp_path), "--json", env={"WORKBENCH_PROGRESS": "1"})
    assert orjson.loads(proc.stdout)["ok"] is True
    assert line not in proc.stderr and "progress" not in proc.stderr


def test_cli_import_keeps_its_machine_progress_lines(cli_db: Path, tmp_path: Path) -> None:
    path = _args(["{tmp}/more.jsonl"], tmp_path)[0]
    proc = _cli(cli_db, "datasets", "import", path, "--name", "other", "--progress", "--json", env={"WORKBENCH_PROGRESS": "1"})
    size = Path(path).stat().st_size
    assert proc.stderr.splitlines()[-1] == f"progress {size} {size}"
    assert orjson.loads(proc.stdout)["imported"] == 5


# ------------------------------------------------------------------------------------------ memory


SMALL = 500
"""Examples in the small dataset; every batch and sample is made smaller than it (`small_batches`), so
the 10x dataset differs only in how many batches go by."""


@pytest.fixture(scope="module")
def sized(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("sized") / "sized.db")
    for name, count in (("small", SMALL), ("large", 10 * SMALL)):
        _fill(store, name, 0, count, Split.TRAIN)
        versions.freeze(store, name, "v1")
        with store.write() as db:
            dataset_id = dataset_rows.dataset_id(db, name)
            db.execute("UPDATE examples SET split = 'test' WHERE dataset_id = ? AND id % 7 = 0", [dataset_id])
        _fill(store, name, count, count // 20)
        versions.freeze(store, name, "v2")
    return store


def _peak(action: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        action()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


SEEDS = itertools.count(100)
ACTIONS: dict[str, Callable[[Store, str], Any]] = {
    # A new seed each run, so every run moves most examples (a split that changes nothing writes nothing).
    "split": lambda store, name: splits.split_dataset(store, name, (0.7, 0.2, 0.1), seed=next(SEEDS), stratify_by="label"),
    "freeze": lambda store, name: versions.freeze(store, name, f"f{os.urandom(4).hex()}"),
    "diff": lambda store, name: versions.diff(store, name, "v1", "v2"),
    "export": lambda store, name: exporting.export_path(store, name, "openai", store.path.with_name(f"{name}.jsonl")),
}


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(example_rows, "iter_examples", partial(example_rows.iter_examples, batch=50))
    monkeypatch.setattr(example_rows, "SPLIT_FETCH", 50)
    monkeypatch.setattr(splits, "WRITE_BATCH", 50)
    monkeypatch.setattr(version_rows, "FREEZE_BATCH", 50)
    monkeypatch.setattr(versions, "DIFF_SAMPLE", 10)
    monkeypatch.setattr(exporting, "LOSSY_SAMPLE", 10)


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.usefixtures("small_batches")
def test_peak_allocation_does_not_grow_with_the_dataset(sized: Store, action: str) -> None:
    run = ACTIONS[action]
    run(sized, "small")  # warm up: imports, caches, compiled statements
    small = _peak(lambda: run(sized, "small"))
    large = _peak(lambda: run(sized, "large"))
    print(f"PEAK {action}: {small:,} {large:,}")
    assert large <= 1.5 * small + 64 * 1024, f"{action}: {small:,} bytes at {SMALL:,} examples, {large:,} at {10 * SMALL:,}"
