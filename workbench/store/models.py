"""The model registry: one row per fine-tuned model a job produced, and which one is active per task."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.errors import NotFound
from workbench.store import utcnow, write_transaction


class ModelRow(BaseModel):
    id: int
    job_id: int | None
    name: str
    backend: str
    model_id: str = Field(description="The provider's id or ARN of the fine-tuned model (a folder for local runs).")
    base_model: str
    dataset_name: str | None
    version: str | None
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    cost_usd: float | None
    task: str | None
    active: bool
    created_at: str


def _row(columns: list[str], raw: tuple[Any, ...]) -> ModelRow:
    data = dict(zip(columns, raw, strict=True))
    data["hyperparameters"] = orjson.loads(data["hyperparameters"] or "{}")
    data["metrics"] = orjson.loads(data["metrics"] or "{}")
    data["active"] = bool(data["active"])
    return ModelRow.model_validate(data)


def upsert_from_job(db: Database, *, job_id: int, **fields: Any) -> int:
    """Register (or refresh) the model a job produced; one row per job."""
    values = {**fields, "job_id": job_id}
    for key in ("hyperparameters", "metrics"):
        values[key] = orjson.dumps(values.get(key) or {}).decode()
    with write_transaction(db):
        found = db.execute("SELECT id FROM models WHERE job_id = ?", [job_id]).fetchone()
        if found:
            sets = ", ".join(f"{k} = ?" for k in values)
            db.execute(f"UPDATE models SET {sets} WHERE id = ?", [*values.values(), found[0]])
            return int(found[0])
        values["created_at"] = utcnow()
        cursor = db.execute(
            f"INSERT INTO models ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})", list(values.values())
        )
        return int(cursor.lastrowid or 0)


def list_models(db: Database) -> list[ModelRow]:
    cursor = db.execute("SELECT * FROM models ORDER BY created_at DESC, id DESC")
    columns = [d[0] for d in cursor.description]
    return [_row(columns, raw) for raw in cursor.fetchall()]


MAX_ROW_ID = 2**63
"""SQLite row ids are signed 64-bit: a larger number cannot be an id (and would overflow the binding)."""


def get_model(db: Database, model: int | str) -> ModelRow:
    """A model by row id, name or provider model id; NotFound for anything else.

    Only ASCII digits are an id: str.isdigit() is also true for '²' and '１', which int() refuses or reads.
    """
    text = str(model).strip()
    if isinstance(model, int) or (text.isascii() and text.isdigit()):
        number = int(text)
        if not 0 <= number < MAX_ROW_ID:
            raise NotFound(f"no model {model!r}; `workbench models list` shows the models there are")
        cursor = db.execute("SELECT * FROM models WHERE id = ?", [number])
    else:
        cursor = db.execute("SELECT * FROM models WHERE name = ? OR model_id = ?", [model, model])
    raw = cursor.fetchone()
    if raw is None:
        raise NotFound(f"no model {model!r}; `workbench models list` shows the models there are")
    return _row([d[0] for d in cursor.description], raw)


def activate(db: Database, model_id: int, task: str) -> None:
    """Make one model the active one for a task; the one active before is no longer."""
    with write_transaction(db):
        db.execute("UPDATE models SET active = 0 WHERE task = ? AND active = 1", [task])
        db.execute("UPDATE models SET active = 1, task = ? WHERE id = ?", [task, model_id])


def active_for(db: Database, task: str) -> ModelRow | None:
    """The model serving `task` now, if any: what an activation replaces."""
    cursor = db.execute("SELECT * FROM models WHERE task = ? AND active = 1 ORDER BY id LIMIT 1", [task])
    raw = cursor.fetchone()
    return _row([d[0] for d in cursor.description], raw) if raw is not None else None
