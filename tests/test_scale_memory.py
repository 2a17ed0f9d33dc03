"""Every dataset-wide action runs in memory that does not grow with the dataset (issue 9).

Each action runs through the CLI on the planted store (tests/scale_store.py) at 20,000 and at
200,000 examples, and its peak memory beyond what its warmed-up process already held is measured
(see `Prober`: peak resident size on Linux, SQLite's and numpy's memory included). Growth is
compared, not the whole process: the interpreter and its imports (about 120 MB) would otherwise hide
60 MB of growth inside the 1.5x.

The bounds, per action:

- growth(200k) <= RATIO x growth(20k) + SLACK_MB: the issue's "within 1.5x", a decade of examples
  apart. SLACK_MB is for what is bounded but not yet reached at 20,000: a batch of 2,000 parsed
  examples that only a filter's rarer rows fill (the PII scan reads the 2% with findings: 400 of
  them at 20,000, so its batch fills only at 200,000: measured 3.5 MB then 11.3 MB), two SQLite page
  caches of 2 MiB, the allocator's granularity (CPython's 1 MiB arenas, glibc keeping freed
  blocks), and the one thing per example an action may hold, a numpy scalar (1.6 MB at 200,000).
  Holding something of every example (its text, a model, a finding: 100 bytes or more each, 20 MB
  or more at 200,000) does not fit in it; a bare id in a Python list or set (7 to 14 MB) can, and
  is left to the benchmark at a million.
- peak(200k) <= ABS_PEAK_MB for the whole process: the issue's 1 GB at a million, divided by 1.5
  (a million is within one more such step of 200,000), so a flat but huge action fails too.

Writing actions (PII scrub, split, freeze, dedup resolve) run in that order on one copy of each
store; import reads the store's exported JSONL into a new store. The stores are built once per
session (about 1.5 min for both on 2 cores), under pytest's temporary directory, or in
$SCALE_STORE_DIR, kept between sessions, where that is set (empty it when the builder changes).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scale_store import (
    ACTIONS,
    DATASET,
    Action,
    Measurement,
    Prober,
    chunks,
    copy_store,
    ensure_built,
    remove_store,
)
from workbench.domain import dedup
from workbench.domain.example import Split
from workbench.services import duplicates
from workbench.services.importing import import_path
from workbench.services.splits import split_dataset
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

pytestmark = pytest.mark.timeout(1200)  # the first test builds both stores

TINY, SMALL, LARGE = 300, 20_000, 200_000
RATIO = 1.5
SLACK_MB = 16.0
ABS_PEAK_MB = 1024 / 1.5


class Scale:
    """The built stores, one probe server per size, and the paths each action runs on."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores = {n: root / f"scale_{n}.db" for n in (TINY, SMALL, LARGE)}
        self.jsonl = {n: root / f"scale_{n}.jsonl" for n in self.stores}
        for n, path in self.stores.items():
            ensure_built(path, n, jsonl=self.jsonl[n], log=lambda _: None)
        self.work = root / "work"
        self.work.mkdir(exist_ok=True)
        self.probers = {n: Prober(self.work / f"probe_{n}.log") for n in (SMALL, LARGE)}
        self.copies: dict[int, Path] = {}
        self.results: dict[str, tuple[Measurement, Measurement]] = {}
        self._serial = itertools.count()

    def measure(self, action: Action) -> tuple[Measurement, Measurement]:
        """Measure an action at both sizes at once (two servers), each after a warm-up on the tiny store."""
        made: list[Path] = []
        for n in (SMALL, LARGE):
            self.probers[n].submit(self._argv(action, n, made), warm=self._argv(action, TINY, made))
        result = self.probers[SMALL].result(), self.probers[LARGE].result()
        for path in made:
            remove_store(path)
        self.results[action.name] = result
        return result

    def close(self) -> None:
        for prober in self.probers.values():
            prober.close()

    def _argv(self, action: Action, n: int, made: list[Path]) -> list[str]:
        out = self._new(f"out_{n}.jsonl", made)
        return action.argv(self._target(action, n, made), out=out, jsonl=self.jsonl[n])

    def _target(self, action: Action, n: int, made: list[Path]) -> Path:
        if action.target == "store":
            return self.stores[n]
        if action.target == "fresh":
            return self._new(f"fresh_{n}.db", made)
        if n == TINY:  # every warm-up gets its own copy, so it takes the path the measured run takes
            copy = self._new(f"copy_{n}.db", made)
            copy_store(self.stores[n], copy)
            return copy
        if n not in self.copies:
            self.copies[n] = self.work / f"copy_{n}.db"
            copy_store(self.stores[n], self.copies[n])
        return self.copies[n]

    def _new(self, name: str, made: list[Path]) -> Path:
        path = self.work / f"{next(self._serial)}_{name}"
        made.append(path)
        return path


@pytest.fixture(scope="session")
def scale(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Scale]:
    kept = os.environ.get("SCALE_STORE_DIR")
    root = Path(kept) if kept else tmp_path_factory.mktemp("scale")
    root.mkdir(parents=True, exist_ok=True)
    built = Scale(root)
    yield built
    built.close()
    _report(request, built.results)


def _report(request: pytest.FixtureRequest, results: dict[str, tuple[Measurement, Measurement]]) -> None:
    """Print every action's figures at the end, failing or not, for the log of a CI run."""
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None or not results:
        return
    terminal.write_line("")
    terminal.write_line(f"peak memory growth per action ({next(iter(results.values()))[1].mode}), MB:")
    terminal.write_line(f"  {'action':<15}{'20k':>8}{'200k':>8}{'bound':>8}{'peak':>8}{'s 20k':>8}{'s 200k':>8}")
    for name, (small, large) in results.items():
        terminal.write_line(
            f"  {name:<15}{small.total_mb:8.1f}{large.total_mb:8.1f}{_bound(small, name):8.1f}{large.peak_mb:8.0f}"
            f"{small.seconds:8.1f}{large.seconds:8.1f}"
        )


FILLING_MB = {"import": 80.0}
"""Memory an action's fixed-size structures take only past 20,000 examples, where the bound leaves room for it.

An import at 20,000 examples (a 10 MB file) neither starts its worker process (files of 32 MB and
more: about 12 MB) nor fills its SQLite write cache (16 MiB), the token-count cache (4,096 texts)
or FTS5's merge buffers; at 200,000 it does all of these. They are bounded, and stop growing:
`benchmarks/scale_bench.py` measured the import's whole-process peak at 340 MB for 100,000 examples
and 336 MB for 1,000,000. The absolute ceiling below still holds it.
"""


def _bound(small: Measurement, name: str = "") -> float:
    return RATIO * small.total_mb + SLACK_MB + FILLING_MB.get(name, 0.0)


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
def test_peak_memory_does_not_grow_with_the_dataset(scale: Scale, action: Action) -> None:
    small, large = scale.measure(action)
    for n, got in ((SMALL, small), (LARGE, large)):
        assert got.ok, f"{action.name} at {n:,} examples failed: exit {got.code} {got.error}".rstrip()
    detail = (
        f"(command {large.growth_mb:.1f} MB + workers {large.worker_mb:.1f} MB, measured by {large.mode}; "
        f"{small.seconds:.1f} s and {large.seconds:.1f} s)"
    )
    assert large.total_mb <= _bound(small, action.name), (
        f"{action.name}: peak memory grew by {large.total_mb:.1f} MB at {LARGE:,} examples against "
        f"{small.total_mb:.1f} MB at {SMALL:,}; the bound is {RATIO} x {small.total_mb:.1f} + {SLACK_MB:.0f} "
        f"(+ {FILLING_MB.get(action.name, 0.0):.0f} filling) = {_bound(small, action.name):.1f} MB {detail}"
    )
    assert large.peak_mb <= ABS_PEAK_MB, (
        f"{action.name}: peak memory {large.peak_mb:.0f} MB at {LARGE:,} examples is over {ABS_PEAK_MB:.0f} MB, "
        f"which would reach 1 GB within 1.5x more {detail}"
    )


def test_incremental_near_state_at_scale_gives_the_groups_of_a_fresh_computation(scale: Scale, tmp_path: Path) -> None:
    """Import half, refresh, import the rest: the kept state must find what a fresh index of all of it finds."""
    halves = []
    for k, part in enumerate(chunks(scale.jsonl[SMALL], 2)):
        halves.append(tmp_path / f"half_{k}.jsonl")
        halves[-1].write_bytes(part)
    store = Store(tmp_path / "incremental.db")
    import_path(store, halves[0], DATASET)
    duplicates.refresh_near_state(store, DATASET)
    import_path(store, halves[1], DATASET)
    split_dataset(store, DATASET, (0.8, 0.1, 0.1))  # an export carries no splits; leaks need them

    groups = duplicates.find_duplicates(store, DATASET)
    leaks = duplicates.find_leakage(store, DATASET)

    fresh_groups, fresh_leaks = _fresh(store)
    assert len(groups) >= SMALL * 0.02, f"only {len(groups)} groups: the planted near-duplicates were not found"
    assert leaks, "no leaks found: near-duplicates split apart were not found"
    assert _differences(groups, fresh_groups) == ([], [])
    assert leaks == fresh_leaks


def _fresh(store: Store) -> tuple[list[dedup.DuplicateGroup], list[dedup.LeakagePair]]:
    """What the in-memory domain functions find in the same texts: an index of everything, built now."""
    items, scores, by_split = [], {}, {}
    with store.connect() as db:
        for example in example_rows.iter_examples(db, dataset_rows.dataset_id(db, DATASET)):
            assert example.id is not None
            items.append((example.id, example.plain_text()))
            scores[example.id] = dedup.keep_score(example)
            if example.split is not Split.UNASSIGNED:
                by_split.setdefault(example.split.value, []).append(items[-1])
    groups = [dedup.choose_keep(g, scores) for g in dedup.near_duplicate_groups(items)]
    return groups, dedup.leakage(by_split)


def _differences(got: list[dedup.DuplicateGroup], want: list[dedup.DuplicateGroup]) -> tuple[list, list]:
    """Groups only the incremental state found, and groups only the fresh index found (first few of each)."""
    got_set, want_set = set(map(_key, got)), set(map(_key, want))
    return sorted(got_set - want_set)[:5], sorted(want_set - got_set)[:5]


def _key(group: dedup.DuplicateGroup) -> tuple:
    return (group.kind.value, tuple(group.example_ids), group.keep, round(group.similarity, 6))
