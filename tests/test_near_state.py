"""The near-duplicate state the store keeps: written at import, refreshed for what changed, same answers as fresh."""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest
from datasketch import MinHash

from tests.helpers import WriteJsonl, chat
from workbench.domain import dedup
from workbench.domain.example import Message, Role, Split
from workbench.domain.filters import ExampleFilter
from workbench.domain.progress import Cancelled, Progress, ProgressState
from workbench.services import cleaning, datasets, duplicates
from workbench.services.importing import import_path
from workbench.store import Store, near_state
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

VOCAB = [f"w{i}" for i in range(3000)]


def _text(seed: int, words: int = 120) -> str:
    return " ".join(random.Random(seed).choices(VOCAB, k=words))


def _edit(text: str, changes: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words)


def _records(seeds: range, *, near_of: list[int] = (), copies_of: list[int] = (), tag: str = "a") -> list[dict]:  # type: ignore[assignment]
    records = [chat(_text(s), f"Answer {s}") for s in seeds]
    records += [chat(_edit(_text(s), 1, seed=s), f"Answer {s}") for s in near_of]  # ~0.92 similar
    records += [chat(_text(s).upper() + " !", f"answer {s}.", metadata={"copy": tag}) for s in copies_of]  # exact
    return records


def _dataset_id(store: Store, name: str = "d") -> int:
    with store.connect() as db:
        return dataset_rows.dataset_id(db, name)


def _stale(store: Store, name: str = "d") -> int:
    with store.connect() as db:
        return near_state.count_stale(db, _dataset_id(store, name))


def _in_memory(store: Store, name: str = "d", threshold: float = 0.8) -> tuple[list[dedup.DuplicateGroup], list[dedup.LeakagePair]]:
    """What the in-memory domain functions say about the same texts, keepers chosen the same way."""
    items, scores, by_split = [], {}, {}
    with store.connect() as db:
        for example in example_rows.iter_examples(db, _dataset_id(store, name)):
            assert example.id is not None
            items.append((example.id, example.plain_text()))
            scores[example.id] = dedup.keep_score(example)
            if example.split is not Split.UNASSIGNED:
                by_split.setdefault(example.split.value, []).append((example.id, example.plain_text()))
    groups = [dedup.choose_keep(g, scores) for g in dedup.near_duplicate_groups(items, threshold=threshold)]
    return groups, dedup.leakage(by_split, threshold=threshold)


def _consistent(store: Store) -> None:
    """Every band row belongs to a current signature holding that key, and every merged signature's keys have rows."""
    with store.connect() as db:
        expected = {
            (dataset_id, key, example_id)
            for example_id, dataset_id, blob in db.execute("SELECT example_id, dataset_id, bands FROM near_signatures WHERE indexed = 1")
            for key in dedup.decode_bands(blob).tolist()
        }
        held = set(db.execute("SELECT dataset_id, band_key, example_id FROM near_bands").fetchall())
        dead = near_state.count_dead(db)
    assert dead or held == expected
    assert expected <= held


# ------------------------------------------------------------------------------------------- domain


def test_signatures_are_datasketchs_minhash_of_the_same_shingles() -> None:
    texts = ["", "one", "two words", "a b c d", *(_text(s, words=n) for s, n in enumerate((5, 6, 40, 300)))]
    matrix = dedup.signatures([dedup.normalize(t) for t in texts])
    for text, row in zip(texts, matrix, strict=True):
        words = dedup.normalize(text).split()
        width = min(5, len(words))
        shingles = {" ".join(words[i : i + width]) for i in range(len(words) - width + 1)} if words else set()
        expected = MinHash(num_perm=128, seed=1, hashfunc=int)
        hashes, _ = dedup._shingle_batch([" ".join(s.split()) for s in shingles] or [""], 5)
        if shingles:
            # Each shingle alone is one hash: the same polynomial the batch applies to the whole text.
            expected.update_batch([int(h) for h in hashes])
        assert (expected.hashvalues == row).all(), text


def test_band_keys_are_fixed_63_bit_and_an_empty_text_has_none() -> None:
    keys = dedup.near_keys(["", "some text here", "some text here"])
    assert keys[0][1] == b"" and keys[1] == keys[2]
    bands = dedup.decode_bands(keys[1][1])
    assert len(bands) == dedup.BANDS and (bands >= 0).all()
    assert 0 <= keys[1][0] < 1 << 63


def test_recall_curve_in_the_docstring_matches_the_banding() -> None:
    def found(s: float) -> float:
        return 1 - (1 - s**dedup.ROWS) ** dedup.BANDS

    assert (round(found(0.5), 2), round(found(0.6), 2), round(found(0.7), 2)) == (0.55, 0.87, 0.99)
    assert found(0.8) > 0.9999


# ------------------------------------------------------------------------------------------ the store


@pytest.fixture
def two_imports(store: Store, write_jsonl: WriteJsonl) -> Store:
    import_path(store, write_jsonl(_records(range(40), near_of=[1, 2, 3], copies_of=[4, 5])), "d")
    return store


def test_an_import_writes_signatures_and_the_next_dedup_merges_their_band_keys(two_imports: Store) -> None:
    assert _stale(two_imports) == 0
    with two_imports.connect() as db:
        assert near_state.count_signatures(db, _dataset_id(two_imports)) == 45
        assert near_state.count_pending(db, _dataset_id(two_imports))[0] == 45
        assert db.execute("SELECT count(*) FROM near_bands").fetchone()[0] == 0
    assert duplicates.refresh_near_state(two_imports, "d") == 0  # nothing recomputed: only merged
    with two_imports.connect() as db:
        assert near_state.count_pending(db, _dataset_id(two_imports))[0] == 0
    _consistent(two_imports)


def test_a_merge_in_several_key_ranges_gives_the_same_index_as_one(two_imports: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duplicates, "MERGE_KEYS", 97)  # 45 examples x 25 keys: a dozen ranges
    duplicates.refresh_near_state(two_imports, "d")
    _consistent(two_imports)
    with two_imports.connect() as db:
        held = db.execute("SELECT count(*) FROM near_bands").fetchone()[0]
        expected = sum(len(dedup.decode_bands(b)) for (b,) in db.execute("SELECT bands FROM near_signatures"))
    assert held == expected
    assert duplicates.find_duplicates(two_imports, "d") == _in_memory(two_imports)[0]


def test_rows_written_without_state_are_computed_by_the_next_dedup(store: Store) -> None:
    with store.write() as db:
        dataset_id = dataset_rows.create_dataset(db, "d").id
        from workbench.domain.formats import parse

        example_rows.insert_examples(db, dataset_id, [parse(r).example for r in _records(range(10), near_of=[1])])
    assert _stale(store) == 11
    groups = duplicates.find_duplicates(store, "d")
    assert _stale(store) == 0 and len(groups) == 1
    assert groups == _in_memory(store)[0]


def test_incremental_state_gives_the_same_answers_as_a_fresh_one_and_the_domain(
    two_imports: Store, write_jsonl: WriteJsonl
) -> None:
    store = two_imports
    first = duplicates.find_duplicates(store, "d")
    assert first == _in_memory(store)[0]
    assert {g.kind.value for g in first} == {"near", "exact"}
    # A second import: near-duplicates and exact copies of the first, and new texts.
    import_path(store, write_jsonl(_records(range(40, 60), near_of=[6, 7, 41], copies_of=[8, 42], tag="b"), "b.jsonl"), "d")
    assert _stale(store) == 0
    ids = {e.plain_text().split()[0]: e.id for e in datasets.browse(store, "d", ExampleFilter(), page_size=200).examples}
    by_seed = {s: ids[_text(s).split()[0]] for s in (10, 11, 12, 13, 14, 15, 16, 20)}
    # Edits: one example becomes a near-duplicate of another, one near-duplicate stops being one.
    datasets.edit_turns(store, by_seed[10], None, [Message(role=Role.USER, content=_edit(_text(20), 1)), Message(role=Role.ASSISTANT, content="x")])
    datasets.edit_turns(store, by_seed[11], None, [Message(role=Role.USER, content=_text(999)), Message(role=Role.ASSISTANT, content="y")])
    # A scrub changes content too.
    datasets.edit_turns(store, by_seed[12], None, [Message(role=Role.USER, content=_text(12) + " mail ann@corp.example"), Message(role=Role.ASSISTANT, content="z")])
    cleaning.scrub(store, by_seed[12])
    # Deletes: one kept, one undone (the rows come back with their ids).
    datasets.delete_examples(store, "d", [by_seed[13], by_seed[14]])
    datasets.undo_last_bulk(store, "d")
    datasets.delete_examples(store, "d", [by_seed[15], by_seed[16]])
    # Splits, for leakage: half train, the copies and near-duplicates of the second import test.
    datasets.bulk(store, "d", ExampleFilter(), "move-to-split", "train")
    datasets.bulk(store, "d", ExampleFilter(search="answer"), "move-to-split", "test")

    stale = _stale(store)
    assert stale == 5  # two edits, one edit then scrub, two undone deletes
    stages: list[ProgressState] = []
    incremental = duplicates.find_duplicates(store, "d", progress=Progress(stages.append, every=0))
    refresh = [s for s in stages if s.stage == "updating near-duplicate index"]
    assert refresh[0].total >= stale and refresh[-1].done == refresh[0].total
    _consistent(store)
    leaks = duplicates.find_leakage(store, "d")
    assert leaks

    groups, pairs = _in_memory(store)
    assert incremental == groups and leaks == pairs
    assert any(by_seed[10] in g.example_ids and by_seed[20] in g.example_ids for g in incremental)
    assert not any(by_seed[15] in g.example_ids for g in incremental)

    with store.connect() as db:
        near_state.drop_state(db, _dataset_id(store))
    assert _stale(store) == datasets.get_dataset(store, "d").example_count
    assert duplicates.find_duplicates(store, "d") == incremental
    assert duplicates.find_leakage(store, "d") == leaks
    _consistent(store)


def test_resolving_and_undoing_keeps_the_state_right(two_imports: Store) -> None:
    store = two_imports
    groups = duplicates.find_duplicates(store, "d")
    assert duplicates.resolve_duplicates(store, "d", groups) == sum(len(g.example_ids) - 1 for g in groups)
    assert duplicates.find_duplicates(store, "d") == []
    datasets.undo_last_bulk(store, "d")
    assert duplicates.find_duplicates(store, "d") == groups
    _consistent(store)


def test_the_refresh_touches_only_stale_examples(two_imports: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store = two_imports
    seen: list[int] = []
    original = dedup.near_keys
    monkeypatch.setattr(duplicates, "near_keys", lambda texts: seen.append(len(texts)) or original(texts))
    # One example is recomputed on every refresh, to tell whether the banding changed; nothing else.
    assert duplicates.refresh_near_state(store, "d") == 0 and seen == [1]
    first = datasets.browse(store, "d", ExampleFilter(), page_size=3).examples
    for example in first:
        datasets.edit_turns(store, example.id, None, [Message(role=Role.USER, content="new " + example.plain_text()), Message(role=Role.ASSISTANT, content="ok")])  # type: ignore[arg-type]
    assert duplicates.refresh_near_state(store, "d") == 3 and seen == [1, 1, 3]


def test_progress_names_each_stage(two_imports: Store) -> None:
    stages: list[str] = []
    progress = Progress(lambda s: stages.append(s.stage), every=0)
    duplicates.find_duplicates(two_imports, "d", progress=progress)
    assert list(dict.fromkeys(stages)) == [
        "updating near-duplicate index", "indexing new examples", "finding candidates", "comparing candidates"
    ]


def test_a_cancelled_refresh_keeps_whole_batches_and_the_next_one_finishes(
    two_imports: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = two_imports
    expected = duplicates.find_duplicates(store, "d")
    with store.connect() as db:
        near_state.drop_state(db, _dataset_id(store))
    monkeypatch.setattr(duplicates, "REFRESH_BATCH", 10)
    reports: list[ProgressState] = []

    def cancelled() -> bool:
        return any(r.done >= 20 for r in reports)

    with pytest.raises(Cancelled):
        duplicates.find_duplicates(store, "d", progress=Progress(reports.append, cancelled, every=0))
    with store.connect() as db:
        assert near_state.count_signatures(db, _dataset_id(store)) == 20
    _consistent(store)
    assert _stale(store) == 25
    assert duplicates.find_duplicates(store, "d") == expected


def test_candidate_work_grows_with_the_candidates_not_the_dataset(store: Store, write_jsonl: WriteJsonl) -> None:
    import_path(store, write_jsonl(_records(range(400), near_of=[1, 2, 3])), "d")
    totals: dict[str, int] = {}
    progress = Progress(lambda s: totals.__setitem__(s.stage, s.total), every=0)
    groups = duplicates.find_duplicates(store, "d", progress=progress)
    assert len(groups) == 3
    assert totals["finding candidates"] == 403
    assert totals["comparing candidates"] <= 10  # the six texts of three pairs, and a chance look-alike or two


def test_a_deleted_dataset_leaves_no_band_rows_behind_once_purged(two_imports: Store) -> None:
    datasets.delete_dataset(two_imports, "d")
    with two_imports.connect() as db:
        assert near_state.count_dead(db) == 45
        while near_state.purge_dead(db, limit=7):
            pass
        assert db.execute("SELECT count(*) FROM near_bands").fetchone()[0] == 0


def test_the_state_tables_exist_with_their_trigger(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert {"near_signatures", "near_bands", "near_dead", "near_signatures_gone", "near_signatures_text"} <= names


def test_signature_rows_are_compact() -> None:
    (text_hash, bands), = dedup.near_keys([_text(1)])
    assert len(bands) == 8 * dedup.BANDS and isinstance(text_hash, int)
    assert np.frombuffer(bands, dtype="<i8").tolist() == dedup.decode_bands(bands).tolist()


def test_the_cli_shows_each_stage_on_stderr_and_none_under_json(two_imports: Store) -> None:
    import os
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "WORKBENCH_PROGRESS": "1"}
        command = [sys.executable, "-m", "workbench", "--db", str(two_imports.path), "datasets", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=True)

    with two_imports.connect() as db:
        near_state.drop_state(db, _dataset_id(two_imports))
    shown = cli("dedup", "d")
    assert "updating near-duplicate index: 45 of 45 examples" in shown.stderr
    assert "comparing candidates" in shown.stderr and "duplicate groups" in shown.stdout
    assert "leak across splits" in cli("leakage", "d").stdout
    quiet = cli("dedup", "d", "--json")
    assert quiet.stderr == "" and '"groups"' in quiet.stdout


def test_state_from_another_banding_is_dropped_and_rebuilt(two_imports: Store) -> None:
    store = two_imports
    expected = duplicates.find_duplicates(store, "d")
    with store.write() as db:  # as if an older version had computed other keys for the same content
        db.execute("UPDATE near_signatures SET bands = zeroblob(200), text_hash = text_hash + 1")
    assert duplicates.refresh_near_state(store, "d") == 45
    assert duplicates.find_duplicates(store, "d") == expected
    _consistent(store)


def test_a_second_refresh_waits_for_the_first_and_can_be_cancelled_while_it_waits(two_imports: Store) -> None:
    """Two refreshes at once could mark merged a row the other recomputed meanwhile: one waits for the other."""
    import threading

    from workbench.domain.progress import Cancelled, Progress

    dataset_id = _dataset_id(two_imports)
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with duplicates._one_refresh_at_a_time(two_imports, dataset_id, Progress()):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=first)
    holder.start()
    assert held.wait(10)
    stages: list[str] = []
    stop = True
    with pytest.raises(Cancelled):
        duplicates.refresh_near_state(two_imports, "d", Progress(lambda s: stages.append(s.stage), lambda: stop, every=0))
    assert stages == ["waiting for another near-duplicate check to finish"]
    stop = False
    waiter = threading.Thread(target=duplicates.refresh_near_state, args=(two_imports, "d"))
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive(), "the second refresh ran while the first held the state"
    release.set()
    waiter.join(30)
    holder.join(30)
    assert not waiter.is_alive()
    _consistent(two_imports)
    assert duplicates.find_duplicates(two_imports, "d") == _in_memory(two_imports)[0]
