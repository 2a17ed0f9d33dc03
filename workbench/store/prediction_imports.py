"""Rows of `prediction_imports` (m020): which log files were imported, keyed by their content.

A log import adds rows, and a log file has no ids of its own, so importing the same file twice
would count its traffic twice; the key (a hash of a local file's bytes, or an S3 object's key and
ETag) lets the import refuse or skip a file it has already read.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlite_utils import Database

from workbench.store import utcnow


class ImportedFile(BaseModel):
    content_key: str
    source: str
    imported_at: str
    stored: int
    complete: bool


def find(db: Database, content_key: str) -> ImportedFile | None:
    row = db.execute("SELECT content_key, source, imported_at, stored, complete FROM prediction_imports "
                     "WHERE content_key = ?", [content_key]).fetchone()
    if row is None:
        return None
    return ImportedFile(content_key=row[0], source=row[1], imported_at=row[2], stored=row[3], complete=bool(row[4]))


def record(db: Database, content_key: str, source: str, *, stored: int, complete: bool) -> None:
    """Remember a file read (again, under --force: the latest import wins)."""
    db.execute("INSERT OR REPLACE INTO prediction_imports (content_key, source, imported_at, stored, complete) "
               "VALUES (?, ?, ?, ?, ?)", [content_key, source, utcnow(), stored, int(complete)])
