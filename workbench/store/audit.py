"""Rows of `audit_events`: who did what, to what, when, and whether it was allowed.

Events are only ever inserted: the trail is evidence, so nothing in the workbench edits or deletes one.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from sqlite_utils import Database


class AuditEvent(BaseModel):
    id: int
    ts: str
    actor: str
    role: str | None
    via: str
    action: str
    target: str
    outcome: str
    detail: dict[str, Any]


def insert(db: Database, *, ts: str, actor: str, role: str | None, via: str, action: str, target: str,
           outcome: str, detail: dict[str, Any]) -> int:
    cursor = db.execute(
        "INSERT INTO audit_events (ts, actor, role, via, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [ts, actor, role, via, action, target, outcome, orjson.dumps(detail, default=str).decode()],
    )
    return int(cursor.lastrowid or 0)


def _where(actor: str | None, action: str | None, outcome: str | None, since: str | None, until: str | None,
           target: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if actor:
        clauses.append("actor = ?")
        params.append(actor)
    if action:
        # 'job' matches every job.* action; 'job.launch' only itself.
        if "." in action:
            clauses.append("action = ?")
            params.append(action)
        else:
            clauses.append("(action = ? OR action LIKE ? ESCAPE '\\')")
            params += [action, action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"]
    if outcome:
        clauses.append("outcome = ?")
        params.append(outcome)
    if since:
        clauses.append("ts >= ?")
        params.append(since)
    if until:
        clauses.append("ts < ?")
        params.append(until)
    if target:
        clauses.append("target = ?")
        params.append(target)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def select(db: Database, *, actor: str | None = None, action: str | None = None, outcome: str | None = None,
           since: str | None = None, until: str | None = None, target: str | None = None, limit: int = 200,
           offset: int = 0) -> list[AuditEvent]:
    where, params = _where(actor, action, outcome, since, until, target)
    rows = db.execute(
        f"SELECT id, ts, actor, role, via, action, target, outcome, detail FROM audit_events{where} "
        "ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [
        AuditEvent(id=r[0], ts=r[1], actor=r[2], role=r[3], via=r[4], action=r[5], target=r[6], outcome=r[7],
                   detail=orjson.loads(r[8]))
        for r in rows
    ]


def count(db: Database, *, actor: str | None = None, action: str | None = None, outcome: str | None = None,
          since: str | None = None, until: str | None = None, target: str | None = None) -> int:
    where, params = _where(actor, action, outcome, since, until, target)
    return int(db.execute(f"SELECT count(*) FROM audit_events{where}", params).fetchone()[0])


def distinct(db: Database, column: str) -> list[str]:
    """The actors or actions the trail holds, for a filter's choices."""
    if column not in ("actor", "action"):
        raise ValueError(column)
    return [r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM audit_events ORDER BY {column}")]
