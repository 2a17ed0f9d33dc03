"""Undo of a bulk action takes back what the action changed and nothing else, and never brings back scrubbed PII."""

from __future__ import annotations

import sqlite3
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import Message, ReviewState, Role, Split
from workbench.domain.filters import ExampleFilter
from workbench.domain.progress import Cancelled, Progress, ProgressState
from workbench.services import cleaning, datasets, duplicates
from workbench.services.importing import import_path
from workbench.store import Store, migrations
from workbench.store import bulk as bulk_rows
from workbench.store import examples as example_rows

EMAIL = "jane.doe@example.com"


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl, sample_records: list) -> Store:
    import_path(store, write_jsonl(sample_records), "support")
    return store


def _ids(store: Store, flt: ExampleFilter) -> list[int]:
    return sorted(e.id for e in datasets.browse(store, "support", flt, page_size=500).examples)  # type: ignore[misc]


def _sql(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read straight from the SQLite file, as another tool would."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def _snapshots(path: Path) -> list[list[dict[str, Any]]]:
    """Each pending bulk action's snapshot, a row per example with the columns it holds (not NULL)."""
    conn = sqlite3.connect(path)
    try:
        held = [row[0] for row in conn.execute("SELECT id FROM bulk_actions WHERE undone = 0 ORDER BY id")]
        snapshots = []
        for bulk_id in held:
            cursor = conn.execute("SELECT * FROM bulk_snapshot WHERE bulk_id = ? ORDER BY example_id", [bulk_id])
            names = ["id" if d[0] == "example_id" else d[0] for d in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor]
            snapshots.append([{k: v for k, v in row.items() if k != "bulk_id" and v is not None} for row in rows])
        return snapshots
    finally:
        conn.close()


def test_a_label_saved_after_a_bulk_accept_survives_the_undo(loaded: Store) -> None:
    first, second, *rest = _ids(loaded, ExampleFilter(search="refund"))
    assert datasets.bulk(loaded, "support", ExampleFilter(search="refund"), "accept").affected == 4
    datasets.label(loaded, first, review_state=ReviewState.REJECTED)  # a reviewer changed their mind
    datasets.label(loaded, second, rating=2, notes="tone is off", tags=["style"])

    result = datasets.undo_last_bulk(loaded, "support")

    assert (result.affected, result.left_alone) == (3, 1)
    assert result.detail == "undid accept on 3 examples; 1 changed since and was left as it is"
    assert datasets.get_example(loaded, first).review_state == ReviewState.REJECTED
    kept = datasets.get_example(loaded, second)
    assert (kept.review_state, kept.rating, kept.notes, kept.tags) == (ReviewState.PENDING, 2, "tone is off", ["style"])
    assert {datasets.get_example(loaded, i).review_state for i in rest} == {ReviewState.PENDING}
    assert datasets.last_bulk(loaded, "support") is None


def test_accept_on_examples_already_accepted_leaves_them_accepted_after_the_undo(loaded: Store) -> None:
    already = _ids(loaded, ExampleFilter(search="refund"))[0]
    datasets.label(loaded, already, review_state=ReviewState.ACCEPTED)
    datasets.bulk(loaded, "support", ExampleFilter(search="refund"), "accept")
    assert datasets.undo_last_bulk(loaded, "support").affected == 3
    assert _ids(loaded, ExampleFilter(review_state=ReviewState.ACCEPTED)) == [already]


def test_a_tag_added_by_a_user_after_a_bulk_tag_survives_the_undo(loaded: Store) -> None:
    had, added_more, removed, *rest = _ids(loaded, ExampleFilter(search="refund"))
    datasets.label(loaded, had, tags=["money"])  # tagged before: the bulk tag did not add it
    datasets.bulk(loaded, "support", ExampleFilter(search="refund"), "tag", "money")
    datasets.label(loaded, added_more, tags=["money", "mine"])
    datasets.label(loaded, removed, tags=[])  # took the bulk tag off by hand

    result = datasets.undo_last_bulk(loaded, "support")

    assert (result.affected, result.left_alone) == (2, 1)
    assert result.detail == "undid tag money on 2 examples; 1 changed since and was left as it is"
    assert [datasets.get_example(loaded, i).tags for i in (had, added_more, removed, *rest)] == [["money"], ["mine"], [], []]
    assert datasets.facets(loaded, "support").tags == {"money": 1, "mine": 1}
    assert _ids(loaded, ExampleFilter(tags=["money"])) == [had]


def test_rating_notes_and_turn_edits_survive_an_undo_of_move_to_split(loaded: Store) -> None:
    rated, edited, moved_on, *rest = _ids(loaded, ExampleFilter(search="shipping"))
    datasets.bulk(loaded, "support", ExampleFilter(search="shipping"), "move-to-split", "test")
    datasets.label(loaded, rated, rating=4, notes="checked by hand")
    turns = [Message(role=Role.USER, content="Where is my parcel?"), Message(role=Role.ASSISTANT, content="On its way.")]
    datasets.edit_turns(loaded, edited, None, turns)
    datasets.label(loaded, moved_on, review_state=ReviewState.ACCEPTED)
    with loaded.write() as db:
        example_rows.set_column(db, [moved_on], "split", Split.VALIDATION.value)

    result = datasets.undo_last_bulk(loaded, "support")

    assert (result.affected, result.left_alone) == (3, 1)
    after = {i: datasets.get_example(loaded, i) for i in (rated, edited, moved_on, *rest)}
    assert [after[i].split for i in (rated, edited, *rest)] == [Split.UNASSIGNED] * 3
    assert (after[moved_on].split, after[moved_on].review_state) == (Split.VALIDATION, ReviewState.ACCEPTED)
    assert (after[rated].rating, after[rated].notes) == (4, "checked by hand")
    assert [m.content for m in after[edited].messages] == ["Where is my parcel?", "On its way."]
    # Every change moves the revision on (move 2, edit 3, undo 4); only the edit keeps a revision row.
    assert after[edited].revision == 4 and len(datasets.revisions(loaded, edited)) == 1
    assert _ids(loaded, ExampleFilter(search="parcel")) == [edited]


def _everything(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table an example lives in, row for row (timestamps included)."""
    return {
        "examples": _sql(path, "SELECT * FROM examples ORDER BY id"),
        "example_tags": _sql(path, "SELECT * FROM example_tags ORDER BY example_id, tag"),
        "example_metadata": _sql(path, "SELECT * FROM example_metadata ORDER BY example_id, key"),
        "examples_fts": _sql(path, "SELECT rowid, text FROM examples_fts ORDER BY rowid"),
    }


def test_undo_of_a_delete_brings_back_exactly_the_rows(loaded: Store) -> None:
    target = _ids(loaded, ExampleFilter(search="warranty"))[0]
    datasets.label(loaded, target, rating=5, tags=["keep"], notes="best answer")
    before = _everything(loaded.path)
    assert datasets.bulk(loaded, "support", ExampleFilter(search="warranty"), "delete").affected == 3

    result = datasets.undo_last_bulk(loaded, "support")

    assert (result.affected, result.left_alone, result.detail) == (3, 0, "undid delete on 3 examples")
    assert _everything(loaded.path) == before
    assert _ids(loaded, ExampleFilter(tags=["keep"])) == [target]


def test_undo_of_a_delete_leaves_out_an_example_imported_again_since(loaded: Store, write_jsonl: WriteJsonl, sample_records: list) -> None:
    deleted = _ids(loaded, ExampleFilter(search="warranty"))
    datasets.bulk(loaded, "support", ExampleFilter(search="warranty"), "delete")
    import_path(loaded, write_jsonl([sample_records[4]], "again.jsonl"), "support")  # "Question 4 about my warranty"
    (again,) = _ids(loaded, ExampleFilter(search="warranty"))
    assert again not in deleted

    result = datasets.undo_last_bulk(loaded, "support")

    assert (result.affected, result.left_alone) == (2, 1)
    assert result.detail == "undid delete on 2 examples; 1 changed since and was left as it is"
    assert len(_ids(loaded, ExampleFilter(search="warranty"))) == 3
    assert datasets.get_dataset(loaded, "support").example_count == 20


def _write_old_snapshot(store: Store, rows: list[dict[str, Any]]) -> None:
    """Turn the file into one from before migration m010, whose last bulk action's snapshot is `rows`
    as one JSON text in `bulk_actions.before` (whole example rows, as the earliest versions wrote), then
    open it again, which moves the snapshot into `bulk_snapshot`."""
    conn = sqlite3.connect(store.path)
    try:
        with conn:
            conn.execute(
                "UPDATE bulk_actions SET before = ?, example_count = ? WHERE id = (SELECT max(id) FROM bulk_actions)",
                [orjson.dumps(rows).decode(), len(rows)],
            )
            conn.execute("DROP TABLE bulk_snapshot")
            conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm010_bulk_snapshot_rows'")
            conn.execute(f"PRAGMA user_version = {migrations.latest_version() - 1}")
    finally:
        conn.close()
    Store(store.path)
    assert _sql(store.path, "SELECT count(*) FROM bulk_actions WHERE before != '[]'") == [(0,)]
    assert _sql(store.path, "SELECT count(*) FROM bulk_snapshot") == [(len(rows),)]


def test_an_old_format_accept_snapshot_still_undoes(loaded: Store) -> None:
    ids = _ids(loaded, ExampleFilter(search="refund"))
    with loaded.connect() as db:
        whole_rows = example_rows.raw_rows(db, ids)
    datasets.bulk(loaded, "support", ExampleFilter(search="refund"), "accept")
    _write_old_snapshot(loaded, whole_rows)
    datasets.label(loaded, ids[0], notes="saved after the accept")

    result = datasets.undo_last_bulk(loaded, "support")

    assert (result.affected, result.left_alone) == (4, 0)
    assert _ids(loaded, ExampleFilter(review_state=ReviewState.ACCEPTED)) == []
    assert datasets.get_example(loaded, ids[0]).notes == "saved after the accept"


def test_an_old_format_delete_snapshot_without_the_tools_column_still_undoes(loaded: Store) -> None:
    ids = _ids(loaded, ExampleFilter(search="warranty"))
    before = _everything(loaded.path)
    with loaded.connect() as db:
        # Taken before migration m004 added `tools`: the rows have no such key.
        whole_rows = [{k: v for k, v in row.items() if k != "tools"} for row in example_rows.raw_rows(db, ids)]
    datasets.bulk(loaded, "support", ExampleFilter(search="warranty"), "delete")
    _write_old_snapshot(loaded, whole_rows)

    assert datasets.undo_last_bulk(loaded, "support").affected == 3
    assert _everything(loaded.path) == before


@pytest.mark.parametrize(
    ("action", "value", "column"),
    [("tag", "seen", "tags"), ("reject", "", "review_state"), ("move-to-split", "train", "split")],
)
def test_snapshots_of_actions_other_than_delete_hold_no_text(loaded: Store, action: str, value: str, column: str) -> None:
    datasets.bulk(loaded, "support", ExampleFilter(), action, value)
    assert cleaning.scrub_dataset(loaded, "support") == 1  # rewriting snapshots adds no text to them either
    (snapshot,) = _snapshots(loaded.path)
    assert sorted({k for row in snapshot for k in row}) == ["id", column]
    assert len(snapshot) == 20


def test_only_the_last_bulk_action_keeps_a_snapshot(loaded: Store) -> None:
    datasets.bulk(loaded, "support", ExampleFilter(search="warranty"), "delete")
    datasets.bulk(loaded, "support", ExampleFilter(), "tag", "seen")
    # Only the last action can be undone: the delete's rows (and their text) are not kept.
    assert _sql(loaded.path, "SELECT b.action, count(*) FROM bulk_snapshot s JOIN bulk_actions b ON b.id = s.bulk_id GROUP BY 1") == [
        ("tag", 17)
    ]
    datasets.undo_last_bulk(loaded, "support")
    assert _sql(loaded.path, "SELECT count(*) FROM bulk_snapshot") == [(0,)]


def _all_text(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: "\n".join(str(v) for row in conn.execute(f'SELECT * FROM "{t}"') for v in row) for t in tables}
    finally:
        conn.close()


@pytest.mark.parametrize("flt", [ExampleFilter(), ExampleFilter(search="refund")], ids=["whole dataset", "filtered"])
def test_a_scrub_after_a_bulk_delete_leaves_no_pii_in_the_undo_snapshot(loaded: Store, flt: ExampleFilter) -> None:
    (target,) = _ids(loaded, ExampleFilter(search="email"))
    datasets.bulk(loaded, "support", ExampleFilter(search="email"), "delete")
    assert EMAIL in _all_text(loaded.path)["bulk_snapshot"]

    # A deleted example matches no filter; it is scrubbed in the snapshot all the same.
    assert cleaning.scrub_dataset(loaded, "support", flt) == 1

    leaks = [table for table, text in _all_text(loaded.path).items() if EMAIL in text]
    assert leaks == []
    result = datasets.undo_last_bulk(loaded, "support")
    assert (result.affected, result.left_alone) == (1, 0)
    back = datasets.get_example(loaded, target)
    assert back.messages[0].content == "Please email me at [EMAIL]"
    assert back.pii == [] and back.token_count > 0
    assert _ids(loaded, ExampleFilter(search="jane")) == [] and _ids(loaded, ExampleFilter(search="Please email")) == [target]
    assert cleaning.pii_summary(loaded, "support").examples_with_pii == 0
    assert EMAIL not in "".join(_all_text(loaded.path).values())
    assert cleaning.scrub_dataset(loaded, "support") == 0



def _bulky(n: int, start: int = 0) -> list[dict[str, Any]]:
    """`n` distinct records of about half a kilobyte, like the scale benchmark's."""
    return [
        chat(" ".join(f"q{i}w{k}" for k in range(50)), " ".join(f"a{i}w{k}" for k in range(20)), metadata={"n": i})
        for i in range(start, start + n)
    ]


def _peak_kib(run: Callable[[], Any]) -> float:
    """Peak Python allocation while `run` runs, beyond what was allocated when it started."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run()
        return (tracemalloc.get_traced_memory()[1] - base) / 1024
    finally:
        tracemalloc.stop()


def test_a_bulk_delete_and_its_undo_keep_peak_allocation_flat(
    tmp_path: Path, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "BULK_BATCH", 50)
    peaks: dict[int, tuple[float, float]] = {}
    for n in (200, 2000):
        store = Store(tmp_path / f"flat_{n}.db")
        import_path(store, write_jsonl(_bulky(n), f"flat_{n}.jsonl"), "d")
        before = _everything(store.path)
        deleted = _peak_kib(lambda: datasets.bulk(store, "d", ExampleFilter(), "delete"))  # noqa: B023
        assert datasets.get_dataset(store, "d").example_count == 0
        undone = _peak_kib(lambda: datasets.undo_last_bulk(store, "d"))  # noqa: B023
        assert _everything(store.path) == before
        peaks[n] = (deleted, undone)
    # Holding the rows (as one JSON snapshot did) costs a kilobyte or more per example: 2 MB more
    # at 2,000 than at 200. A batch of 50 costs the same at both.
    for small, large in zip(peaks[200], peaks[2000], strict=True):
        assert large <= 1.5 * small + 256, peaks


def test_resolving_duplicates_reports_each_batch_and_a_cancel_deletes_nothing(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _bulky(30)
    near = [chat(r["messages"][0]["content"] + " again", r["messages"][1]["content"]) for r in records]  # one word more
    import_path(store, write_jsonl(records + near), "d")
    monkeypatch.setattr(datasets, "BULK_BATCH", 7)
    groups = duplicates.find_duplicates(store, "d")
    doomed = sum(len(g.example_ids) - 1 for g in groups)
    assert doomed == 30
    before = _everything(store.path)
    reports: list[ProgressState] = []

    def cancelled() -> bool:
        return any(r.stage == "deleting duplicates" and r.done >= 14 for r in reports)

    with pytest.raises(Cancelled):
        duplicates.resolve_duplicates(store, "d", groups, progress=Progress(reports.append, cancelled, every=0))
    assert _everything(store.path) == before
    assert datasets.last_bulk(store, "d") is None

    reports.clear()
    assert duplicates.resolve_duplicates(store, "d", groups, progress=Progress(reports.append, every=0)) == doomed
    done = [r.done for r in reports if r.stage == "deleting duplicates"]
    assert done[0] == 0 and done[-1] == doomed and len(set(done)) >= doomed // 7
    result = datasets.undo_last_bulk(store, "d")
    assert (result.affected, result.left_alone) == (doomed, 0)
    assert _everything(store.path) == before


def test_delete_examples_leaves_out_ids_of_other_datasets(loaded: Store, write_jsonl: WriteJsonl) -> None:
    import_path(loaded, write_jsonl(_bulky(2), "other.jsonl"), "other")
    others = [e.id for e in datasets.browse(loaded, "other", ExampleFilter()).examples]
    mine = _ids(loaded, ExampleFilter(search="warranty"))
    result = datasets.delete_examples(loaded, "support", [*mine, *others, 10**9])  # type: ignore[list-item]
    assert result.affected == 3
    assert datasets.get_dataset(loaded, "other").example_count == 2
    assert datasets.undo_last_bulk(loaded, "support").affected == 3


def test_a_snapshot_row_keeps_every_column_of_an_example(store: Store) -> None:
    with store.connect() as db:
        examples = {row[1] for row in db.execute("PRAGMA table_info(examples)")} - {"id"}
        kept = {row[1] for row in db.execute("PRAGMA table_info(bulk_snapshot)")} - {"bulk_id", "example_id"}
    assert examples == kept == set(bulk_rows.SNAPSHOT_COLUMNS)


def test_an_old_format_delete_snapshot_undoes_after_migration_and_a_scrub_cleans_it(loaded: Store) -> None:
    ids = _ids(loaded, ExampleFilter(search="email"))
    before = _everything(loaded.path)
    with loaded.connect() as db:
        whole_rows = example_rows.raw_rows(db, ids)
    datasets.bulk(loaded, "support", ExampleFilter(search="email"), "delete")
    _write_old_snapshot(loaded, whole_rows)
    assert _snapshots(loaded.path) == [[{k: v for k, v in row.items() if v is not None} for row in whole_rows]]

    assert cleaning.scrub_dataset(loaded, "support") == 1
    assert EMAIL not in "".join(_all_text(loaded.path).values())
    assert datasets.undo_last_bulk(loaded, "support").affected == 1
    assert _everything(loaded.path) != before  # the text came back scrubbed
    assert datasets.get_example(loaded, ids[0]).messages[0].content == "Please email me at [EMAIL]"
