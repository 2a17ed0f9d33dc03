"""Dataset rows and the import log."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.errors import Conflict, NotFound
from workbench.store import utcnow, write_transaction


class Dataset(BaseModel):
    id: int
    name: str
    description: str = ""
    source_format: str | None = None
    split_config: dict[str, Any] | None = Field(default=None, description="Ratios, seed and stratify field of the last split.")
    created_at: str
    updated_at: str
    example_count: int = 0


class ImportRecord(BaseModel):
    id: int
    dataset_id: int
    filename: str
    format: str | None
    imported: int
    duplicates: int
    error_count: int
    errors: list[dict[str, Any]]
    created_at: str


def _dataset(row: dict[str, Any]) -> Dataset:
    config = row.pop("split_config", None)
    return Dataset(**row, split_config=orjson.loads(config) if config else None)


_SELECT = """
    SELECT d.*, (SELECT count(*) FROM examples e WHERE e.dataset_id = d.id) AS example_count
    FROM datasets d
"""


def list_datasets(db: Database) -> list[Dataset]:
    """Return every dataset, newest first, with its example count."""
    return [_dataset(row) for row in db.query(_SELECT + " ORDER BY d.id DESC")]


def get_dataset(db: Database, name_or_id: str | int) -> Dataset:
    """Return one dataset by name or id, or raise NotFound."""
    column = "id" if isinstance(name_or_id, int) else "name"
    rows = list(db.query(_SELECT + f" WHERE d.{column} = ?", [name_or_id]))
    if not rows:
        raise NotFound(f"no dataset named {name_or_id!r}" if column == "name" else f"no dataset with id {name_or_id}")
    return _dataset(rows[0])


def dataset_id(db: Database, name: str) -> int:
    """Return a dataset's id by name without counting its examples (cheap on a million rows)."""
    row = db.execute("SELECT id FROM datasets WHERE name = ?", [name]).fetchone()
    if row is None:
        raise NotFound(f"no dataset named {name!r}")
    return int(row[0])


def dataset_exists(db: Database, dataset_id: int) -> bool:
    return db.execute("SELECT 1 FROM datasets WHERE id = ?", [dataset_id]).fetchone() is not None


def find_dataset(db: Database, name: str) -> Dataset | None:
    """Return the dataset with this name, or None."""
    try:
        return get_dataset(db, name)
    except NotFound:
        return None


def create_dataset(db: Database, name: str, *, description: str = "", source_format: str | None = None) -> Dataset:
    """Insert a dataset; the name must be new."""
    now = utcnow()
    try:
        cursor = db.execute(
            "INSERT INTO datasets (name, description, source_format, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            [name, description, source_format, now, now],
        )
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise Conflict(f"a dataset named {name!r} already exists") from exc
        raise
    return get_dataset(db, int(cursor.lastrowid or 0))


def touch_dataset(db: Database, dataset_id: int, **fields: Any) -> None:
    """Update a dataset's columns (source_format, split_config, description) and its updated_at."""
    allowed = {"source_format", "split_config", "description"}
    sets = {k: (orjson.dumps(v).decode() if k == "split_config" and v is not None else v) for k, v in fields.items() if k in allowed}
    sets["updated_at"] = utcnow()
    assignments = ", ".join(f"{column} = ?" for column in sets)
    db.execute(f"UPDATE datasets SET {assignments} WHERE id = ?", [*sets.values(), dataset_id])


def rename_dataset(db: Database, dataset_id: int, new_name: str) -> None:
    """Rename a dataset; the new name must be free."""
    try:
        db.execute("UPDATE datasets SET name = ?, updated_at = ? WHERE id = ?", [new_name, utcnow(), dataset_id])
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise Conflict(f"a dataset named {new_name!r} already exists") from exc
        raise


def dataset_contents(db: Database, dataset_id: int) -> dict[str, int]:
    """Count what deleting a dataset would remove: examples, their earlier revisions, versions, imports."""
    queries = {
        "examples": "SELECT count(*) FROM examples WHERE dataset_id = ?",
        "revisions": "SELECT count(*) FROM example_revisions r JOIN examples e ON e.id = r.example_id WHERE e.dataset_id = ?",
        "versions": "SELECT count(*) FROM dataset_versions WHERE dataset_id = ?",
        "imports": "SELECT count(*) FROM imports WHERE dataset_id = ?",
    }
    return {what: int(db.execute(sql, [dataset_id]).fetchone()[0]) for what, sql in queries.items()}


def delete_dataset(db: Database, dataset_id: int) -> None:
    """Delete a dataset with its examples, versions and history."""
    with write_transaction(db):
        db.execute("DELETE FROM examples_fts WHERE rowid IN (SELECT id FROM examples WHERE dataset_id = ?)", [dataset_id])
        db.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])


def record_import(
    db: Database, dataset_id: int, filename: str, fmt: str | None, imported: int, duplicates: int, errors: list[dict[str, Any]],
    error_count: int | None = None,
) -> None:
    """Log an import; the first 1,000 errors are kept, the count (`error_count`, when the list is cut) is always exact."""
    db.execute(
        "INSERT INTO imports (dataset_id, filename, format, imported, duplicates, error_count, errors, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            dataset_id, filename, fmt, imported, duplicates, len(errors) if error_count is None else error_count,
            orjson.dumps(errors[:1000]).decode(), utcnow(),
        ],
    )


def list_imports(db: Database, dataset_id: int) -> list[ImportRecord]:
    """Return a dataset's import log, newest first."""
    return [
        ImportRecord(**{**row, "errors": orjson.loads(row["errors"])})
        for row in db.query("SELECT * FROM imports WHERE dataset_id = ? ORDER BY id DESC", [dataset_id])
    ]
