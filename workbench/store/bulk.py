"""The log of bulk actions, each with the rows as they were before it, so the last one can be undone."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from sqlite_utils import Database

from workbench.store import utcnow, write_transaction


class BulkRecord(BaseModel):
    id: int
    action: str
    detail: str
    example_count: int
    created_at: str
    undone: bool


def record(
    db: Database, dataset_id: int, action: str, detail: str, before: list[dict[str, Any]], example_count: int | None = None
) -> None:
    """Log a bulk action with what its undo needs to know of the examples it is about to change.

    `before` holds, per example, its id and the value the action overwrites (`review_state`,
    `split` or `tags`), or its whole row for a delete, which the undo inserts again. Snapshots
    written by earlier versions hold whole rows for every action; the undo reads both.
    `example_count` is how many examples the action selected (default: one per snapshot row).
    """
    db.execute(
        "INSERT INTO bulk_actions (dataset_id, action, detail, example_count, before, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [dataset_id, action, detail, len(before) if example_count is None else example_count, orjson.dumps(before).decode(), utcnow()],
    )


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


def take_snapshot(db: Database, bulk_id: int) -> list[dict[str, Any]]:
    """Return the rows saved before a bulk action and mark it undone, freeing the snapshot."""
    with write_transaction(db):
        (before,) = db.execute("SELECT before FROM bulk_actions WHERE id = ?", [bulk_id]).fetchone()
        db.execute("UPDATE bulk_actions SET undone = 1, before = '[]' WHERE id = ?", [bulk_id])
    return list(orjson.loads(before))
