"""Rows of `role_assignments`: a role given to one email address or to everyone at a domain ('@acme.com')."""

from __future__ import annotations

from pydantic import BaseModel
from sqlite_utils import Database


class Assignment(BaseModel):
    id: int
    pattern: str
    role: str
    created_by: str
    created_at: str


def upsert(db: Database, *, pattern: str, role: str, created_by: str, created_at: str) -> Assignment | None:
    """Give `pattern` the role; return the assignment it replaced, if any."""
    before = get(db, pattern)
    db.execute(
        "INSERT INTO role_assignments (pattern, role, created_by, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(pattern) DO UPDATE SET role = excluded.role, created_by = excluded.created_by, "
        "created_at = excluded.created_at",
        [pattern, role, created_by, created_at],
    )
    return before


def get(db: Database, pattern: str) -> Assignment | None:
    row = db.execute("SELECT id, pattern, role, created_by, created_at FROM role_assignments WHERE pattern = ?",
                     [pattern]).fetchone()
    return Assignment(id=row[0], pattern=row[1], role=row[2], created_by=row[3], created_at=row[4]) if row else None


def delete(db: Database, pattern: str) -> bool:
    return db.execute("DELETE FROM role_assignments WHERE pattern = ?", [pattern]).rowcount > 0


def all_assignments(db: Database) -> list[Assignment]:
    rows = db.execute("SELECT id, pattern, role, created_by, created_at FROM role_assignments ORDER BY pattern")
    return [Assignment(id=r[0], pattern=r[1], role=r[2], created_by=r[3], created_at=r[4]) for r in rows]


def count_role(db: Database, role: str) -> int:
    return int(db.execute("SELECT count(*) FROM role_assignments WHERE role = ?", [role]).fetchone()[0])
