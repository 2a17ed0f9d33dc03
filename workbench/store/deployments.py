"""Deployments of registered models (Bedrock Provisioned Throughput, on-demand deployments). SQL only.

A row is written before the provider is asked (status 'requested'), so a create that succeeds on AWS but whose
answer is lost still leaves a row to find and delete; deleting one sets `deleted_at` and keeps the row, so the
cost history stays readable.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.errors import NotFound
from workbench.store import utcnow, write_transaction


class DeploymentRow(BaseModel):
    """One deployment as the store holds it."""

    id: int
    model_id: int = Field(description="The registry row (models.id) this serves.")
    kind: str = Field(description="'provisioned' or 'on-demand'.")
    name: str | None = None
    provider_id: str | None = Field(default=None, description="The Provisioned Throughput or deployment ARN.")
    status: str = Field(description="requested, creating, active, updating, failed, deleted or unknown.")
    provider_status: str | None = None
    failure_message: str | None = None
    units: int | None = None
    commitment: str | None = None
    hourly_usd: float | None = Field(default=None, description="Estimated hourly charge (0 for on-demand: per token).")
    created_at: str
    updated_at: str | None = None
    deleted_at: str | None = None


def _rows(cursor: Any) -> list[DeploymentRow]:
    columns = [d[0] for d in cursor.description]
    return [DeploymentRow.model_validate(dict(zip(columns, raw, strict=True))) for raw in cursor.fetchall()]


def insert(db: Database, **fields: Any) -> DeploymentRow:
    """Add a deployment row; `status` defaults to 'requested' until the provider has answered."""
    now = utcnow()
    values = {"status": "requested", "created_at": now, "updated_at": now, **fields}
    with write_transaction(db):
        cursor = db.execute(
            f"INSERT INTO deployments ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
            list(values.values()),
        )
    return get(db, int(cursor.lastrowid or 0))


def update(db: Database, deployment_id: int, **fields: Any) -> None:
    """Set columns of one deployment and its updated_at."""
    values = {**fields, "updated_at": utcnow()}
    sets = ", ".join(f"{k} = ?" for k in values)
    with write_transaction(db):
        db.execute(f"UPDATE deployments SET {sets} WHERE id = ?", [*values.values(), deployment_id])


def mark_deleted(db: Database, deployment_id: int, *, status: str = "deleted") -> None:
    """Record that a deployment no longer exists (deleted by us, or found gone on the provider side)."""
    now = utcnow()
    with write_transaction(db):
        db.execute(
            "UPDATE deployments SET status = ?, deleted_at = COALESCE(deleted_at, ?), updated_at = ? WHERE id = ?",
            [status, now, now, deployment_id],
        )


def get(db: Database, deployment: int | str) -> DeploymentRow:
    """Return a deployment by id, or by name or provider ARN; NotFound names how to list them."""
    if isinstance(deployment, int) or str(deployment).isdigit():
        cursor = db.execute("SELECT * FROM deployments WHERE id = ?", [int(deployment)])
    else:
        cursor = db.execute(
            "SELECT * FROM deployments WHERE name = ? OR provider_id = ? ORDER BY deleted_at IS NOT NULL, id DESC LIMIT 1",
            [deployment, deployment],
        )
    rows = _rows(cursor)
    if not rows:
        raise NotFound(f"no deployment {deployment!r}; `workbench models deployments` lists them")
    return rows[0]


def list_all(db: Database, *, include_deleted: bool = False, model_id: int | None = None) -> list[DeploymentRow]:
    """Return deployments newest first; deleted ones only when asked."""
    where, params = [], []  # type: ignore[var-annotated]
    if not include_deleted:
        where.append("deleted_at IS NULL")
    if model_id is not None:
        where.append("model_id = ?")
        params.append(model_id)
    sql = "SELECT * FROM deployments" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC"
    return _rows(db.execute(sql, params))


def pending(db: Database, states: tuple[str, ...]) -> list[DeploymentRow]:
    """Return live deployments in one of `states` that the provider knows (they have a provider id)."""
    marks = ", ".join("?" for _ in states)
    return _rows(db.execute(
        f"SELECT * FROM deployments WHERE deleted_at IS NULL AND provider_id IS NOT NULL AND status IN ({marks}) "
        "ORDER BY id", list(states),
    ))
