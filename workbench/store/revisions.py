"""Earlier states of an example kept beside it: numbered revisions, and the rows undo keeps.

Both hold an example's text as it was, so anything that must remove text from the store for good (a
PII scrub) has to rewrite them too: a revision is shown in the revision history, and an undo
snapshot would put the old text back on the next "undo". Frozen versions (`versions`) are copies
too, but jobs train on them and they never change; `versions_with_pii` says which still hold PII.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from sqlite_utils import Database

from workbench.domain.example import Example, Message
from workbench.domain.filters import ExampleFilter
from workbench.domain.rows import decode_tools, encode_messages
from workbench.store import bulk as bulk_rows
from workbench.store import write_transaction

# The columns of an example row that hold or derive from its content; the rest (split, labels,
# tags, notes) is curation, which an undo must still put back as it was.
CONTENT_COLUMNS = (
    "system",
    "messages",
    "content_hash",
    "pii",
    "pii_count",
    "token_count",
    "turn_count",
    "validation_status",
    "validation_messages",
    "tools",
)


def erase_on_delete(db: Database) -> None:
    """Make this connection overwrite deleted and replaced content with zeros (PRAGMA secure_delete).

    Without it, text a scrub replaces can linger in the file's free space until the page is
    reused; with it, SQLite zeroes the old bytes as it writes. Some builds switch it on by default
    (Debian's: SQLITE_SECURE_DELETE), others do not. Only this connection pays for it.
    """
    db.execute("PRAGMA secure_delete = ON")


def revised_example_ids(db: Database, dataset_id: int) -> set[int]:
    """Return the ids of a dataset's examples that have at least one earlier revision."""
    return {
        row[0]
        for row in db.execute(
            "SELECT DISTINCT r.example_id FROM example_revisions r JOIN examples e ON e.id = r.example_id "
            "WHERE e.dataset_id = ?",
            [dataset_id],
        )
    }


def _scrub_candidates(dataset_id: int, flt: ExampleFilter, select: str) -> tuple[str, list[Any]]:
    from workbench.store.examples import _matching  # the one place a filter becomes SQL

    sql, params = _matching(dataset_id, flt, select)
    # pii_count > 0 or at least one revision (UNIQUE (example_id, revision) indexes the lookup).
    return f"{sql} AND (e.pii_count > 0 OR EXISTS (SELECT 1 FROM example_revisions r WHERE r.example_id = e.id))", params


def count_scrub_candidates(db: Database, dataset_id: int, flt: ExampleFilter) -> int:
    """Count the examples matching `flt` that a scrub must look at: those with PII findings or revisions."""
    sql, params = _scrub_candidates(dataset_id, flt, "count(*)")
    return int(db.execute(sql, params).fetchone()[0])


def iter_scrub_candidates(db: Database, dataset_id: int, flt: ExampleFilter, *, batch: int = 500) -> Iterator[list[Example]]:
    """Yield, a batch at a time in id order, the examples matching `flt` with PII findings or revisions.

    Each batch is read whole before it is yielded, so the caller may rewrite its examples on the same
    connection before asking for the next (which starts after the last id it saw).
    """
    from workbench.store.examples import _COLUMNS, row_to_example

    sql, params = _scrub_candidates(dataset_id, flt, ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(",")))
    last = 0
    while True:
        rows = list(db.query(f"{sql} AND e.id > ? ORDER BY e.id LIMIT ?", [*params, last, batch]))
        if not rows:
            return
        yield [row_to_example(row) for row in rows]
        last = rows[-1]["id"]


def revision_examples(db: Database, example_id: int) -> list[tuple[int, Example]]:
    """Return (revision row id, content as an Example) for each earlier revision of an example, oldest first."""
    return [
        (
            row["id"],
            Example.model_validate(
                {
                    "system": row["system"],
                    "messages": [Message.model_validate(m) for m in orjson.loads(row["messages"])],
                    "content_hash": row["content_hash"],
                    **decode_tools(row["tools"]),
                }
            ),
        )
        for row in db.query(
            "SELECT id, system, messages, content_hash, tools FROM example_revisions WHERE example_id = ? ORDER BY revision",
            [example_id],
        )
    ]


def replace_revisions(db: Database, revised: list[tuple[int, Example]]) -> None:
    """Overwrite earlier revisions' content (system, turns, hash), each named by its revision row id.

    For a scrub, whose revisions must not keep what it removed; an ordinary edit never rewrites
    history, it adds a revision (see `examples.save_revision`).
    """
    with write_transaction(db):
        db.conn.executemany(
            "UPDATE example_revisions SET system = ?, messages = ?, content_hash = ? WHERE id = ?",
            [(new.system, encode_messages(new.messages), new.content_hash, row_id) for row_id, new in revised],
        )


SNAPSHOT_BATCH = 500
"""Snapshot rows a scrub reads and rewrites at a time."""


def rewrite_undo_snapshots(db: Database, dataset_id: int, rows: Mapping[int, Mapping[str, Any]]) -> int:
    """Give the examples in a dataset's pending undo snapshots the content they have now.

    `rows` maps example id to its row as stored now (see `examples.raw_rows`). Only the content
    columns are copied: an undo still puts back the labels, split and tags the action changed, but
    no longer the text a scrub removed. Returns how many snapshots changed.
    """
    if not rows:
        return 0
    # Only rows that hold content (a delete's, or any action's from earlier versions): others
    # keep just the column their action changed, and must not gain text.
    columns = [c for c in CONTENT_COLUMNS if c in next(iter(rows.values()))]
    sql = (
        f"UPDATE bulk_snapshot SET {', '.join(f'{c} = ?' for c in columns)} "
        "WHERE bulk_id = ? AND example_id = ? AND messages IS NOT NULL"
    )
    changed = 0
    with write_transaction(db):
        for bulk_id in bulk_rows.pending(db, dataset_id):
            cursor = db.conn.executemany(
                sql, [(*(now[c] for c in columns), bulk_id, example_id) for example_id, now in rows.items()]
            )
            changed += cursor.rowcount > 0
    return changed


def rewrite_deleted_in_undo_snapshots(
    db: Database, dataset_id: int, rewrite: Callable[[dict[str, Any]], Mapping[str, Any] | None]
) -> int:
    """Rewrite the content of examples a pending undo would insert again (deleted since), as `rewrite` says.

    `rewrite` gets such a row as the snapshot holds it and returns the content columns to replace,
    or None to keep it. A scrub runs on live examples, so without this a deleted example's PII
    would stay in the snapshot and come back with an undo. The snapshot is read and rewritten
    `SNAPSHOT_BATCH` rows at a time. Returns how many rows changed.
    """
    changed = 0
    with write_transaction(db):
        for bulk_id in bulk_rows.pending(db, dataset_id):
            for batch in bulk_rows.snapshot_batches(db, bulk_id, batch=SNAPSHOT_BATCH, deleted_only=True):
                for row in batch:
                    if (new := rewrite(row)) is None:
                        continue
                    columns = [c for c in CONTENT_COLUMNS if c in new]
                    db.execute(
                        f"UPDATE bulk_snapshot SET {', '.join(f'{c} = ?' for c in columns)} WHERE bulk_id = ? AND example_id = ?",
                        [*(new[c] for c in columns), bulk_id, row["id"]],
                    )
                    changed += 1
    return changed


def versions_with_pii(db: Database, dataset_id: int) -> dict[str, int]:
    """Return, per frozen version of a dataset, how many of its examples hold PII findings (none: left out)."""
    return {
        row[0]: row[1]
        for row in db.execute(
            "SELECT v.name, count(*) FROM version_examples ve JOIN dataset_versions v ON v.id = ve.version_id "
            "WHERE v.dataset_id = ? AND ve.pii != '[]' GROUP BY v.id ORDER BY v.id",
            [dataset_id],
        )
    }
