"""The log of bulk actions, each with the examples as they were before it, so the last one can be undone.

The snapshot is kept one row per example in `bulk_snapshot` (migration m010), beside its action:
written and read a batch at a time, so a bulk action or its undo over a million examples holds a
batch in memory, never the whole selection. A delete copies its rows there in SQL, whole; any other
action keeps only the column it overwrites (the other columns NULL). The examples an action works
on are first listed in a temporary table (`select_targets`, `add_targets`) and walked in batches
(`target_batches`), so not even their ids are held at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel
from sqlite_utils import Database

from workbench.domain.filters import ExampleFilter
from workbench.store import utcnow, write_transaction
from workbench.store.examples import _COLUMNS

SNAPSHOT_COLUMNS = tuple(c.strip() for c in _COLUMNS.split(",") if c.strip() != "id")
"""The columns of `examples` a snapshot row keeps (`example_id` stands for `id`)."""

_CHUNK = 500
"""Ids per `IN (...)` list: below SQLite's limit on bound parameters, whatever its build."""


class BulkRecord(BaseModel):
    id: int
    action: str
    detail: str
    example_count: int
    created_at: str
    undone: bool


# ------------------------------------------------------------------------------------------ targets


def select_targets(db: Database, dataset_id: int, flt: ExampleFilter) -> int:
    """List the examples a filter selects as the targets of a bulk action; return how many there are.

    The ids go to a temporary table of this connection (gone when it closes), read back with
    `target_batches`: a filter that selects a million examples costs no memory here.
    """
    from workbench.store.examples import _matching, _plan  # the one place a filter becomes SQL

    _new_targets(db)
    sql, params = _matching(dataset_id, flt, "e.id", plan=_plan(db, dataset_id, flt))
    db.execute(f"INSERT OR IGNORE INTO temp.bulk_targets (id) {sql}", params)
    return _count_targets(db)


def add_targets(db: Database, dataset_id: int, ids: Sequence[int]) -> int:
    """List the chosen examples that belong to the dataset as the targets of a bulk action; return how many."""
    _new_targets(db)
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        db.execute(
            f"INSERT OR IGNORE INTO temp.bulk_targets (id) SELECT id FROM examples "
            f"WHERE dataset_id = ? AND id IN ({','.join('?' * len(chunk))})",
            [dataset_id, *chunk],
        )
    return _count_targets(db)


def target_batches(db: Database, batch: int) -> Iterator[list[int]]:
    """Yield the targets listed by `select_targets` or `add_targets`, `batch` ids at a time in id order."""
    last = 0
    while ids := [row[0] for row in db.execute("SELECT id FROM temp.bulk_targets WHERE id > ? ORDER BY id LIMIT ?", [last, batch])]:
        yield ids
        last = ids[-1]


def drop_targets(db: Database) -> None:
    """Forget the listed targets (the connection would at close; a long-lived one should not keep them)."""
    db.execute("DROP TABLE IF EXISTS temp.bulk_targets")


def _new_targets(db: Database) -> None:
    drop_targets(db)
    db.execute("CREATE TEMP TABLE bulk_targets (id INTEGER PRIMARY KEY)")


def _count_targets(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM temp.bulk_targets").fetchone()[0])


# -------------------------------------------------------------------------------------------- record


def begin(db: Database, dataset_id: int, action: str, detail: str, example_count: int) -> int:
    """Log a bulk action before it runs and return its id, under which its snapshot is written.

    Only a dataset's last action can be undone, so the snapshots of its earlier ones are freed
    here: kept, they would only grow the file (a bulk tag of a million examples keeps a million
    rows) and hold text a scrub would have to rewrite.
    """
    with write_transaction(db):
        db.execute(
            "DELETE FROM bulk_snapshot WHERE bulk_id IN (SELECT id FROM bulk_actions WHERE dataset_id = ?)", [dataset_id]
        )
        cursor = db.execute(
            "INSERT INTO bulk_actions (dataset_id, action, detail, example_count, before, created_at) "
            "VALUES (?, ?, ?, ?, '[]', ?)",
            [dataset_id, action, detail, example_count, utcnow()],
        )
    return int(cursor.lastrowid or 0)


def kept_columns(db: Database) -> tuple[str, ...]:
    """The columns of SNAPSHOT_COLUMNS this file's `bulk_snapshot` has.

    All of them once every migration ran; fewer in a file whose snapshot table was made again by
    m010 alone (as tests of old files do), which then keeps what it can rather than failing.
    """
    present = {row[1] for row in db.execute("PRAGMA table_info(bulk_snapshot)")}
    return tuple(c for c in SNAPSHOT_COLUMNS if c in present)


def snapshot_rows(db: Database, bulk_id: int, ids: Sequence[int]) -> None:
    """Copy whole example rows into a bulk action's snapshot, in SQL (for a delete, whose undo inserts them again)."""
    columns = ", ".join(kept_columns(db))
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        db.execute(
            f"INSERT INTO bulk_snapshot (bulk_id, example_id, {columns}) SELECT ?, id, {columns} FROM examples "
            f"WHERE id IN ({','.join('?' * len(chunk))})",
            [bulk_id, *chunk],
        )


def snapshot_column(db: Database, bulk_id: int, ids: Sequence[int], column: str, new: str) -> None:
    """Keep the value of `column` of the examples among `ids` that the action will change to `new`.

    For `tags` that is the examples without the tag `new` (the action adds it); for any other
    column, those whose value is not `new` already. Examples the action leaves as they are keep
    no snapshot row, so the undo leaves them alone too.
    """
    if column not in {"tags", "review_state", "split"}:
        raise ValueError(f"not a bulk column: {column}")
    changes = (
        "NOT EXISTS (SELECT 1 FROM json_each(examples.tags) WHERE value = ?)" if column == "tags" else f"{column} != ?"
    )
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        db.execute(
            f"INSERT INTO bulk_snapshot (bulk_id, example_id, {column}) SELECT ?, id, {column} FROM examples "
            f"WHERE id IN ({','.join('?' * len(chunk))}) AND {changes}",
            [bulk_id, *chunk, new],
        )


# ---------------------------------------------------------------------------------------------- read


def last(db: Database, dataset_id: int) -> BulkRecord | None:
    """Return the dataset's most recent bulk action, undone or not."""
    row = next(
        db.query(
            "SELECT id, action, detail, example_count, created_at, undone FROM bulk_actions "
            "WHERE dataset_id = ? ORDER BY id DESC LIMIT 1",
            [dataset_id],
        ),
        None,
    )
    return None if row is None else BulkRecord(**{**row, "undone": bool(row["undone"])})


def snapshot_size(db: Database, bulk_id: int) -> int:
    """Return how many examples a bulk action's snapshot holds."""
    return int(db.execute("SELECT count(*) FROM bulk_snapshot WHERE bulk_id = ?", [bulk_id]).fetchone()[0])


def snapshot_batches(db: Database, bulk_id: int, *, batch: int, deleted_only: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Yield a bulk action's snapshot `batch` rows at a time, in example id order, each as a dict.

    A row holding content (a delete's, or any action's from before m010) comes with every column,
    as `examples.raw_rows` reads one; any other holds `id` and the column its action overwrote.
    `deleted_only` keeps the rows with content whose example is not in the store now (what an
    undo would insert again). Each batch is read whole before it is yielded, so the caller may
    write between batches.
    """
    kept = kept_columns(db)
    columns = ", ".join(f"s.{c}" for c in kept)
    gone = " AND s.messages IS NOT NULL AND NOT EXISTS (SELECT 1 FROM examples e WHERE e.id = s.example_id)" if deleted_only else ""
    names = ("id", *kept)
    content = names.index("messages")
    last_id = -1
    while True:
        cursor = db.execute(
            f"SELECT s.example_id, {columns} FROM bulk_snapshot s WHERE s.bulk_id = ? AND s.example_id > ?{gone} "
            "ORDER BY s.example_id LIMIT ?",
            [bulk_id, last_id, batch],
        )
        rows = [
            dict(zip(names, values, strict=True))
            if values[content] is not None
            else {k: v for k, v in zip(names, values, strict=True) if v is not None}
            for values in cursor.fetchall()
        ]
        if not rows:
            return
        yield rows
        last_id = rows[-1]["id"]


def pending(db: Database, dataset_id: int) -> list[int]:
    """Return the ids of a dataset's bulk actions whose snapshot an undo could still use, oldest first."""
    return [
        row[0]
        for row in db.execute(
            "SELECT b.id FROM bulk_actions b WHERE b.dataset_id = ? AND b.undone = 0 "
            "AND EXISTS (SELECT 1 FROM bulk_snapshot s WHERE s.bulk_id = b.id) ORDER BY b.id",
            [dataset_id],
        )
    ]


def mark_undone(db: Database, bulk_id: int) -> None:
    """Mark a bulk action undone and free its snapshot."""
    with write_transaction(db):
        db.execute("UPDATE bulk_actions SET undone = 1, before = '[]' WHERE id = ?", [bulk_id])
        db.execute("DELETE FROM bulk_snapshot WHERE bulk_id = ?", [bulk_id])
