"""The store: migrations, pragmas, full-text search, and use from several threads at once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from workbench.domain.example import Example, Message, Role
from workbench.domain.filters import ExampleFilter, fts_query
from workbench.errors import Busy, NotFound
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store.migrations import migrations


def _example(text: str) -> Example:
    return Example(messages=[Message(role=Role.USER, content=text), Message(role=Role.ASSISTANT, content="ok")]).with_hash()


def test_new_store_is_migrated_with_wal_and_user_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    with store.connect() as db:
        assert store.schema_version() == len(migrations.applied(db)) >= 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert {"datasets", "examples", "examples_fts", "dataset_versions", "guardrail_rules"} <= set(db.table_names())


def test_new_stores_use_8k_pages_and_older_files_keep_theirs(tmp_path: Path) -> None:
    with Store(tmp_path / "new.db").connect() as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 8192
    old = sqlite3.connect(tmp_path / "old.db")
    old.execute("CREATE TABLE unrelated (x)")
    old.commit()
    old.close()
    with Store(tmp_path / "old.db").connect() as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert "examples" in db.table_names()


def test_opening_twice_applies_nothing_new(tmp_path: Path) -> None:
    Store(tmp_path / "a.db")
    with Store(tmp_path / "a.db").connect() as db:
        assert len(migrations.pending(db)) == 0


def test_default_path_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "env.db"))
    assert Store().path == tmp_path / "env.db"


def test_every_filtered_column_is_indexed(store: Store) -> None:
    with store.connect() as db:
        plan = " ".join(
            str(row) for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM examples WHERE dataset_id = 1 AND split = 'train' ORDER BY id DESC LIMIT 50"
            )
        )
    assert "examples_dataset_split" in plan


def test_search_walks_fts_first_for_a_term(store: Store) -> None:
    with store.connect() as db:
        dataset = dataset_rows.create_dataset(db, "d")
        example_rows.insert_examples(db, dataset.id, [_example(f"note {i} {'rare' if i == 3 else 'common'}") for i in range(10)])
        flt = ExampleFilter(search="rare")
        assert [e.messages[0].content for e in example_rows.page_examples(db, dataset.id, flt)] == ["note 3 rare"]
        assert example_rows.count_examples(db, dataset.id, ExampleFilter(search="common")) == 9


def test_fts_query_quotes_user_text() -> None:
    # Bare words match as prefixes; a quoted phrase stays exact; operators are just words.
    assert fts_query('refund AND "late delivery" NEAR( *') == '"refund"* "AND"* "late delivery" "NEAR("*'
    assert fts_query('say "hi') == '"say"* "hi"'
    assert fts_query("  ") == ""


def test_two_threads_write_and_read_at_once(store: Store) -> None:
    with store.connect() as db:
        dataset_id = dataset_rows.create_dataset(db, "d").id
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for batch in range(10):
                with store.connect() as db:
                    example_rows.insert_examples(
                        db, dataset_id, [_example(f"thread {offset} batch {batch} row {i}") for i in range(20)]
                    )
                with store.connect() as db:
                    example_rows.count_examples(db, dataset_id, ExampleFilter(search="thread"))
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.connect() as db:
        assert example_rows.count_examples(db, dataset_id, ExampleFilter()) == 400
        assert example_rows.count_examples(db, dataset_id, ExampleFilter(search="thread")) == 400


def test_store_object_is_usable_from_another_thread(store: Store) -> None:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(store.schema_version()))
    thread.start()
    thread.join()
    assert result == [store.schema_version()]


def test_an_older_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE unrelated (x)")
    conn.commit()
    conn.close()
    store = Store(path)
    with store.connect() as db:
        assert "examples" in db.table_names() and "unrelated" in db.table_names()


def _ranged_store(store: Store) -> int:
    """Forty examples with token counts 1..40 (the count is set directly), ratings cycling 1..5, every third in test."""
    with store.connect() as db:
        dataset_id = dataset_rows.create_dataset(db, "ranged").id
        ids, _ = example_rows.insert_examples(db, dataset_id, [_example(f"row {i}") for i in range(40)])
        for n, example_id in enumerate(ids, 1):
            db.execute(
                "UPDATE examples SET token_count = ?, rating = ?, split = ?, pii_count = ? WHERE id = ?",
                [n, n % 5 + 1, "test" if n % 3 == 0 else "train", int(n % 7 == 0), example_id],
            )
    return dataset_id


RANGE_FILTERS = [
    ExampleFilter(min_tokens=30),
    ExampleFilter(min_tokens=5, max_tokens=35),
    ExampleFilter(min_tokens=10, split="test"),
    ExampleFilter(min_rating=4, max_tokens=20),
    ExampleFilter(has_pii=True),
    ExampleFilter(has_pii=True, min_rating=2, split="train"),
]


def test_range_filters_choose_their_index_by_how_many_rows_are_in_range(store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dataset_id = _ranged_store(store)
    monkeypatch.setattr(example_rows, "SELECTIVE_RANGE", 10)
    with store.connect() as db:
        assert example_rows._page_plan(db, dataset_id, ExampleFilter(min_tokens=35)) == "examples_dataset_tokens"
        assert example_rows._page_plan(db, dataset_id, ExampleFilter(min_tokens=5)) == "examples_filter"
        # Tokens 1..20 is wide, rating 5 holds 8 rows: the narrower range drives.
        assert example_rows._page_plan(db, dataset_id, ExampleFilter(max_tokens=20, min_rating=5)) == "examples_dataset_rating"


def test_range_filters_return_the_same_rows_whichever_index_reads_them(store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dataset_id = _ranged_store(store)
    with store.connect() as db:
        everything = example_rows.page_examples(db, dataset_id, ExampleFilter(), limit=100)

    def expected(flt: ExampleFilter) -> list[int]:
        return [
            e.id for e in everything  # type: ignore[misc]
            if (flt.min_tokens is None or e.token_count >= flt.min_tokens)
            and (flt.max_tokens is None or e.token_count <= flt.max_tokens)
            and (flt.min_rating is None or (e.rating or 0) >= flt.min_rating)
            and (flt.split is None or e.split == flt.split)
            and (not flt.has_pii or e.token_count % 7 == 0)
        ]

    for selective in (1, 1_000):  # 1: every range walks the filter index; 1,000: every range reads its own index
        monkeypatch.setattr(example_rows, "SELECTIVE_RANGE", selective)
        with store.connect() as db:
            for flt in RANGE_FILTERS:
                want = expected(flt)
                assert [e.id for e in example_rows.page_examples(db, dataset_id, flt, limit=5, offset=1)] == want[1:6], flt
                assert example_rows.count_examples(db, dataset_id, flt) == len(want), flt


# -------------------------------------------------------------------------------------------- writes


def test_a_write_block_that_raises_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(RuntimeError, match="midway"), store.write() as db:
        dataset_id = dataset_rows.create_dataset(db, "d").id
        example_rows.insert_examples(db, dataset_id, [_example(f"row {i}") for i in range(5)])
        raise RuntimeError("midway")
    with store.connect() as db:
        assert db.execute("SELECT count(*) FROM datasets").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM examples").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM examples_fts").fetchone()[0] == 0


def test_a_write_block_holds_the_lock_before_its_first_statement(store: Store) -> None:
    other = sqlite3.connect(store.path, timeout=0.1, isolation_level=None)
    try:
        with store.write(), pytest.raises(sqlite3.OperationalError, match="database is locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the block has committed
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_store_write_function_nests_as_a_savepoint_inside_a_write_block(store: Store) -> None:
    with store.write() as db:
        dataset_id = dataset_rows.create_dataset(db, "d").id
        (kept,), _ = example_rows.insert_examples(db, dataset_id, [_example("kept")])
        with pytest.raises(NotFound):
            example_rows.update_labels(db, 10_000, rating=5)  # its own savepoint rolls back alone
        example_rows.update_labels(db, kept, rating=4)
    with store.connect() as db:
        assert example_rows.get_example(db, kept).rating == 4


def test_store_writes_called_on_a_plain_connection_take_the_lock_first(store: Store) -> None:
    """A store function given a reading connection still writes in an immediate transaction."""
    with store.write() as db:
        dataset_id = dataset_rows.create_dataset(db, "d").id
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    impatient = Store(store.path, busy_timeout=0.2)
    try:
        with pytest.raises(Busy, match="is busy"), impatient.connect() as db:
            example_rows.insert_examples(db, dataset_id, [_example("late")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with store.connect() as db:
        assert example_rows.count_examples(db, dataset_id, ExampleFilter()) == 0
