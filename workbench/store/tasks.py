"""Rows of the `tasks` table: dataset-wide actions that run in their own process.

The row is the only channel between the app and the process doing the work: the process writes
its progress there (throttled by the caller, one short UPDATE each), the app reads it to draw a
bar and writes `cancel_requested` to ask it to stop, and the finished result stays there as JSON
so a reopened tab shows it without recomputing. `data_version` is the dataset's counter (bumped by
the m009 triggers on every change to its examples) that the result describes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.store import utcnow


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (TaskState.QUEUED, TaskState.RUNNING)


class Task(BaseModel):
    """One run of a dataset-wide action, as the app and the CLI see it."""

    id: int
    kind: str = Field(description="What runs: a name in `services.task_actions.ACTIONS`.")
    dataset_id: int | None
    dataset: str | None = Field(None, description="The dataset's current name (None once it is deleted).")
    params: dict[str, Any] = Field(default_factory=dict)
    state: TaskState
    stage: str = ""
    done: int = 0
    total: int = 0
    unit: str = "examples"
    eta_s: float | None = None
    pid: int | None = None
    cancel_requested: bool = False
    data_version: int | None = Field(None, description="The dataset's data_version the result describes.")
    current_version: int | None = Field(None, description="The dataset's data_version now.")
    examples: int | None = Field(None, description="Examples in the dataset when the task started.")
    result: Any = None
    error: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str

    @property
    def stale(self) -> bool:
        """Say whether the dataset changed after the result was computed."""
        return (
            self.state is TaskState.DONE
            and self.data_version is not None
            and self.current_version is not None
            and self.current_version != self.data_version
        )


def params_text(params: dict[str, Any]) -> str:
    """Return params as canonical JSON (sorted keys), so equal params compare equal in SQL."""
    return orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode()


REQUESTED_BY = "requested_by"
"""The params key naming who started a task: kept with it, but not part of what the task does."""

_SAME_WORK = f"json_remove(t.params, '$.{REQUESTED_BY}') = ?"
# Two people asking for the same work get the same task (and one's kept result serves the other):
# params compare without who asked. json_remove keeps the canonical text's order and numbers as written.


def _work_text(params: dict[str, Any]) -> str:
    return params_text({k: v for k, v in params.items() if k != REQUESTED_BY})


_SELECT = """
    SELECT t.*, d.name AS dataset, d.data_version AS current_version
    FROM tasks t LEFT JOIN datasets d ON d.id = t.dataset_id
"""


def _task(row: dict[str, Any]) -> Task:
    row = dict(row)
    row["params"] = orjson.loads(row["params"] or "{}")
    row["result"] = orjson.loads(row["result"]) if row["result"] is not None else None
    row["cancel_requested"] = bool(row["cancel_requested"])
    return Task.model_validate(row)


def create_task(db: Database, kind: str, dataset_id: int | None, params: dict[str, Any]) -> int:
    """Insert a queued task and return its id."""
    now = utcnow()
    cursor = db.execute(
        "INSERT INTO tasks (kind, dataset_id, params, state, created_at, updated_at) VALUES (?, ?, ?, 'queued', ?, ?)",
        [kind, dataset_id, params_text(params), now, now],
    )
    return int(cursor.lastrowid or 0)


def get_task(db: Database, task_id: int) -> Task | None:
    """Return a task, or None when there is no such row (its dataset was deleted, say)."""
    rows = list(db.query(_SELECT + " WHERE t.id = ?", [task_id]))
    return _task(rows[0]) if rows else None


def set_pid(db: Database, task_id: int, pid: int) -> None:
    """Record the process that will run a task (before it has claimed the row)."""
    db.execute("UPDATE tasks SET pid = ?, updated_at = ? WHERE id = ? AND pid IS NULL", [pid, utcnow(), task_id])


def claim_task(db: Database, task_id: int, pid: int) -> bool:
    """Mark a queued task running in process `pid` and record the data version it starts on; False if not queued."""
    now = utcnow()
    cursor = db.execute(
        """
        UPDATE tasks SET state = 'running', pid = ?, started_at = ?, updated_at = ?,
            data_version = (SELECT data_version FROM datasets WHERE id = tasks.dataset_id),
            examples = (SELECT COUNT(*) FROM examples WHERE dataset_id = tasks.dataset_id)
        WHERE id = ? AND state = 'queued'
        """,
        [pid, now, now, task_id],
    )
    return cursor.rowcount == 1


def update_progress(
    db: Database, task_id: int, *, stage: str, done: int, total: int, unit: str, eta_s: float | None
) -> bool | None:
    """Write a running task's progress; return whether a cancel was asked for (None: the row is gone)."""
    rows = db.execute(
        """
        UPDATE tasks SET stage = ?, done = ?, total = ?, unit = ?, eta_s = ?, updated_at = ?
        WHERE id = ? RETURNING cancel_requested
        """,
        [stage, done, total, unit, eta_s, utcnow(), task_id],
    ).fetchall()
    return bool(rows[0][0]) if rows else None


def cancel_requested(db: Database, task_id: int) -> bool | None:
    """Say whether someone asked a task to stop (None: the row is gone, which means stop too)."""
    row = db.execute("SELECT cancel_requested FROM tasks WHERE id = ?", [task_id]).fetchone()
    return bool(row[0]) if row else None


def request_cancel(db: Database, task_id: int) -> bool:
    """Ask a queued or running task to stop; False when it had already ended."""
    cursor = db.execute(
        "UPDATE tasks SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state IN ('queued', 'running')",
        [utcnow(), task_id],
    )
    return cursor.rowcount == 1


def finish_task(
    db: Database,
    task_id: int,
    state: TaskState,
    *,
    result: Any = None,
    error: str | None = None,
    data_version_now: bool = False,
) -> None:
    """End a task as done, failed or cancelled, with its result or error.

    `data_version_now`: record the dataset's version as it is now (an action that writes describes
    the data after its own writes, not before them).
    """
    now = utcnow()
    payload = orjson.dumps(result).decode() if result is not None else None
    version = "(SELECT data_version FROM datasets WHERE id = tasks.dataset_id)" if data_version_now else "data_version"
    counted = "(SELECT COUNT(*) FROM examples WHERE dataset_id = tasks.dataset_id)" if data_version_now else "examples"
    db.execute(
        f"""
        UPDATE tasks SET state = ?, result = ?, error = ?, finished_at = ?, updated_at = ?, eta_s = NULL,
            data_version = {version}, examples = {counted}
        WHERE id = ?
        """,
        [state.value, payload, error, now, now, task_id],
    )


def attach_dataset(db: Database, task_id: int, dataset_id: int) -> None:
    """Tie a task started without a dataset (an import creating one) to the dataset it wrote."""
    db.execute(
        "UPDATE tasks SET dataset_id = ? WHERE id = ? AND dataset_id IS NULL AND EXISTS (SELECT 1 FROM datasets WHERE id = ?)",
        [dataset_id, task_id, dataset_id],
    )


def fail_if_active(db: Database, task_id: int, error: str) -> bool:
    """Mark a task failed if it is still queued or running (its process is gone); say whether it was."""
    now = utcnow()
    cursor = db.execute(
        """
        UPDATE tasks SET state = 'failed', error = ?, finished_at = ?, updated_at = ?, eta_s = NULL
        WHERE id = ? AND state IN ('queued', 'running')
        """,
        [error, now, now, task_id],
    )
    return cursor.rowcount == 1


def latest_task(db: Database, dataset_id: int, kind: str, params: dict[str, Any] | None = None) -> Task | None:
    """Return the newest task of a kind on a dataset (with exactly these params, when given)."""
    sql = _SELECT + " WHERE t.dataset_id = ? AND t.kind = ?"
    args: list[Any] = [dataset_id, kind]
    if params is not None:
        sql += f" AND {_SAME_WORK}"
        args.append(_work_text(params))
    rows = list(db.query(sql + " ORDER BY t.id DESC LIMIT 1", args))
    return _task(rows[0]) if rows else None


def active_task(db: Database, dataset_id: int | None, kind: str, params: dict[str, Any]) -> Task | None:
    """Return a queued or running task with this dataset, kind and params, if there is one."""
    rows = list(
        db.query(
            _SELECT + f" WHERE t.dataset_id IS ? AND t.kind = ? AND {_SAME_WORK} AND t.state IN ('queued', 'running')"
            " ORDER BY t.id DESC LIMIT 1",
            [dataset_id, kind, _work_text(params)],
        )
    )
    return _task(rows[0]) if rows else None


def list_tasks(db: Database, *, dataset_id: int | None = None, active_only: bool = False, limit: int = 50) -> list[Task]:
    """Return tasks newest first, optionally of one dataset or only those queued or running."""
    where, args = [], []
    if dataset_id is not None:
        where.append("t.dataset_id = ?")
        args.append(dataset_id)
    if active_only:
        where.append("t.state IN ('queued', 'running')")
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY t.id DESC LIMIT ?"
    return [_task(row) for row in db.query(sql, [*args, limit])]


def prune_tasks(db: Database, dataset_id: int | None, kind: str, *, keep: int) -> int:
    """Delete ended tasks of a kind on a dataset (or on none: imports that created nothing) but the newest `keep`.

    Results can be large, so only the recent ones are kept; returns how many went.
    """
    cursor = db.execute(
        """
        DELETE FROM tasks WHERE dataset_id IS ? AND kind = ? AND state NOT IN ('queued', 'running')
            AND id NOT IN (SELECT id FROM tasks WHERE dataset_id IS ? AND kind = ? ORDER BY id DESC LIMIT ?)
        """,
        [dataset_id, kind, dataset_id, kind, keep],
    )
    return cursor.rowcount
