"""Undo of a bulk action takes back what the action changed and nothing else, and never brings back scrubbed PII."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl
from workbench.domain.example import Message, ReviewState, Role, Split
from workbench.domain.filters import ExampleFilter
from workbench.services import cleaning, datasets
from workbench.services.importing import import_path
from workbench.store import Store
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
    return [orjson.loads(before) for (before,) in _sql(path, "SELECT before FROM bulk_actions ORDER BY id")]


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
    assert after[edited].revision == 2 and len(datasets.revisions(loaded, edited)) == 1
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
    """Rewrite the last bulk action's snapshot as earlier versions stored it: whole example rows."""
    conn = sqlite3.connect(store.path)
    try:
        with conn:
            conn.execute(
                "UPDATE bulk_actions SET before = ?, example_count = ? WHERE id = (SELECT max(id) FROM bulk_actions)",
                [orjson.dumps(rows).decode(), len(rows)],
            )
    finally:
        conn.close()


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


def test_snapshots_of_actions_other_than_delete_hold_no_text(loaded: Store) -> None:
    datasets.bulk(loaded, "support", ExampleFilter(), "tag", "seen")
    datasets.bulk(loaded, "support", ExampleFilter(), "reject")
    datasets.bulk(loaded, "support", ExampleFilter(), "move-to-split", "train")
    assert cleaning.scrub_dataset(loaded, "support") == 1  # rewriting snapshots adds no text to them either
    assert [sorted({k for row in snap for k in row}) for snap in _snapshots(loaded.path)] == [
        ["id", "tags"],
        ["id", "review_state"],
        ["id", "split"],
    ]
    assert [len(snap) for snap in _snapshots(loaded.path)] == [20, 20, 20]


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
    assert EMAIL in _all_text(loaded.path)["bulk_actions"]

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

