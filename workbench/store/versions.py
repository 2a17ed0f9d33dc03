"""Frozen dataset versions: immutable copies of examples that jobs train on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
from pydantic import BaseModel
from sqlite_utils import Database

from workbench.domain.example import Example, Split
from workbench.domain.rows import decode_tools
from workbench.errors import Conflict, NotFound, WorkbenchError
from workbench.store import utcnow, write_transaction


class Version(BaseModel):
    id: int
    dataset_id: int
    name: str
    split: str | None
    note: str
    example_count: int
    created_at: str


FREEZE_BATCH = 5000
"""Examples copied per statement while freezing (all in the freeze's one transaction)."""


def create_version(
    db: Database,
    dataset_id: int,
    name: str,
    split: Split | None,
    note: str,
    *,
    on_copied: Callable[[int], None] | None = None,
) -> Version | None:
    """Copy a dataset's examples (or one split's) into a new named version, in one transaction.

    The copy goes a batch at a time in example id order, so a version's positions follow its
    example ids (`iter_version_keys` and the diff rely on it). `on_copied(n)` is told after each
    batch; whatever it raises (a `Cancelled`) rolls the whole version back. Returns None, and
    leaves nothing behind, when there is nothing to copy.
    """
    with write_transaction(db):
        try:
            cursor = db.execute(
                "INSERT INTO dataset_versions (dataset_id, name, split, note, example_count, created_at) VALUES (?, ?, ?, ?, 0, ?)",
                [dataset_id, name, split.value if split else None, note, utcnow()],
            )
        except Exception as exc:
            if "UNIQUE" in str(exc):
                raise Conflict(f"this dataset already has a version named {name!r}") from exc
            raise
        version_id = int(cursor.lastrowid or 0)
        split_clause = "AND split = ?" if split else ""
        copied = last_id = 0
        while True:
            batch = db.execute(
                "INSERT INTO version_examples (version_id, position, example_id, content_hash, system, messages, metadata, split, pii, tools) "
                "SELECT ?, ? + row_number() OVER (ORDER BY id), id, content_hash, system, messages, metadata, split, pii, tools "
                f"FROM (SELECT * FROM examples WHERE dataset_id = ? {split_clause} AND id > ? ORDER BY id LIMIT ?)",
                [version_id, copied, dataset_id, *([split.value] if split else []), last_id, FREEZE_BATCH],
            ).rowcount
            if batch <= 0:
                break
            copied += batch
            last_id = db.execute(
                "SELECT example_id FROM version_examples WHERE version_id = ? AND position = ?", [version_id, copied]
            ).fetchone()[0]
            if on_copied is not None:
                on_copied(batch)
        if copied == 0:
            db.execute("DELETE FROM dataset_versions WHERE id = ?", [version_id])
            return None
        db.execute("UPDATE dataset_versions SET example_count = ? WHERE id = ?", [copied, version_id])
    return get_version(db, dataset_id, name)


def get_version(db: Database, dataset_id: int, name: str) -> Version:
    """Return a version by name, or raise NotFound."""
    row = next(db.query("SELECT * FROM dataset_versions WHERE dataset_id = ? AND name = ?", [dataset_id, name]), None)
    if row is None:
        found = db.execute("SELECT name FROM datasets WHERE id = ?", [dataset_id]).fetchone()
        dataset = found[0] if found else "?"
        raise NotFound(f"dataset {dataset!r} has no version named {name!r}; "
                       f"`workbench datasets versions {dataset}` lists its versions")
    return Version(**row)


def list_versions(db: Database, dataset_id: int) -> list[Version]:
    """Return a dataset's versions, newest first."""
    return [Version(**row) for row in db.query("SELECT * FROM dataset_versions WHERE dataset_id = ? ORDER BY id DESC", [dataset_id])]


def iter_version_examples(db: Database, version_id: int, split: Split | None = None) -> Iterator[Example]:
    """Yield a version's frozen examples in their original order."""
    clause, params = ("AND split = ?", [split.value]) if split else ("", [])
    for row in db.query(
        f"SELECT * FROM version_examples WHERE version_id = ? {clause} ORDER BY position", [version_id, *params]
    ):
        yield Example.model_validate(
            {
                "id": row["example_id"],
                "content_hash": row["content_hash"],
                "system": row["system"],
                "messages": orjson.loads(row["messages"]),
                "metadata": orjson.loads(row["metadata"]),
                "split": row["split"],
                "pii": orjson.loads(row["pii"]),
                **decode_tools(row["tools"]),
            }
        )


def iter_version_keys(db: Database, version_id: int) -> Iterator[tuple[int, str, str]]:
    """Yield (example id, content hash, split) for every example of a version, in example id order.

    Read in position order, which `create_version` makes the example id order; a version that
    broke that (none can) is refused rather than compared wrongly.
    """
    previous = None
    for example_id, content_hash, split in db.execute(
        "SELECT example_id, content_hash, split FROM version_examples WHERE version_id = ? ORDER BY position", [version_id]
    ):
        if previous is not None and example_id <= previous:
            raise WorkbenchError(
                f"version {version_id} does not hold its examples in id order (example {example_id} after {previous}); "
                "it cannot be compared"
            )
        previous = example_id
        yield example_id, content_hash, split


def split_counts(db: Database, dataset_id: int, version_id: int | None = None) -> dict[str, int]:
    """Count examples per split, of a frozen version or (version_id None) of the live dataset."""
    if version_id is not None:
        rows = db.execute("SELECT split, count(*) FROM version_examples WHERE version_id = ? GROUP BY split", [version_id])
    else:
        rows = db.execute("SELECT split, count(*) FROM examples WHERE dataset_id = ? GROUP BY split", [dataset_id])
    return {str(split or "unassigned"): int(n) for split, n in rows.fetchall()}
