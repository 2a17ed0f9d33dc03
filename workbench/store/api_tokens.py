"""Rows of `api_tokens`: the ingest API's bearer tokens, stored as SHA-256 hashes, never as text.

A token's first characters (`prefix`) are kept in clear so a person can tell tokens apart and the
API can find the candidate rows without comparing against every hash. A name is unique among
tokens not revoked; a revoked token keeps its row (and its name is free again) for the audit trail.
A token carries a role and belongs to an owner (a person's email or `service:NAME`); the API acts
as that owner with that role. An expired token keeps its row too; only the clock refuses it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlite_utils import Database


class TokenRow(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, shown so tokens can be told apart.")
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    role: str = "engineer"
    owner: str | None = Field(None, description="A person's email or 'service:NAME'; None on tokens made before owners.")
    created_by: str | None = None
    expires_at: str | None = Field(None, description="UTC ISO-8601; None: it does not expire.")


class StoredToken(TokenRow):
    token_hash: str


def insert(db: Database, *, name: str, token_hash: str, prefix: str, created_at: str, role: str = "engineer",
           owner: str | None = None, created_by: str | None = None, expires_at: str | None = None) -> int:
    cursor = db.execute(
        "INSERT INTO api_tokens (name, token_hash, prefix, created_at, role, owner, created_by, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [name, token_hash, prefix, created_at, role, owner, created_by, expires_at],
    )
    return int(cursor.lastrowid or 0)


def active_named(db: Database, name: str) -> TokenRow | None:
    rows = list(db.query("SELECT * FROM api_tokens WHERE name = ? AND revoked_at IS NULL", [name]))
    return _token(rows[0]) if rows else None


def all_tokens(db: Database, *, include_revoked: bool = True) -> list[TokenRow]:
    sql = "SELECT * FROM api_tokens" + ("" if include_revoked else " WHERE revoked_at IS NULL") + " ORDER BY id"
    return [_token(r) for r in db.query(sql)]


def candidates(db: Database, prefix: str) -> list[StoredToken]:
    """Tokens, revoked or not, whose clear prefix matches."""
    return [StoredToken(**r) for r in db.query("SELECT * FROM api_tokens WHERE prefix = ?", [prefix])]


def revoke(db: Database, token_id: int, when: str) -> None:
    db.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [when, token_id])


def touch(db: Database, token_id: int, when: str, older_than: str) -> None:
    """Record a use, unless one was recorded after `older_than` (at most one write a minute per token)."""
    db.execute(
        "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        [when, token_id, older_than],
    )


def _token(row: dict[str, Any]) -> TokenRow:
    return TokenRow(**{k: v for k, v in row.items() if k != "token_hash"})
