"""Sweeps and their cells in the ledger. SQL only; no provider calls.

A sweep is a row of `sweeps` (its grid and concurrency limit) plus one job per cell (`jobs.sweep_id`).
A cell not yet submitted is a *pending* job: state queued, no `provider_job_id`, and its launch form kept
under `request["sweep_cell"]`, so whichever process submits it later (the CLI, or the watcher) launches
exactly what was planned. The watcher never polls a pending cell (`claim_due` wants a provider job id).

Submitting a pending cell is claimed with the jobs table's lease columns, in one write, so two watchers
advancing the same sweep never submit a cell twice; a claimed cell counts as active until it is replaced
by the launched job, so neither can run past the sweep's limit either.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.jobs import ACTIVE_STATES, JobState
from workbench.errors import Conflict, NotFound
from workbench.store import jobs as job_rows
from workbench.store import utcnow, write_transaction

PENDING_KEY = "sweep_cell"
"""Where a pending cell keeps its launch form, inside the job's `request` column."""
SUBMITTING = "~submitting"
"""Appended to a claimed cell's name while its launch runs, so the launched job can take the real name."""


class SweepRow(BaseModel):
    """One sweep as the ledger holds it."""

    id: int
    name: str
    grid: dict[str, list[str]] = Field(description="Hyperparameter name -> the values tried, as typed.")
    max_concurrent: int
    created_at: str


def _sweep(raw: tuple[Any, ...]) -> SweepRow:
    return SweepRow(id=raw[0], name=raw[1], grid=orjson.loads(raw[2]), max_concurrent=raw[3], created_at=raw[4])


_COLUMNS = "id, name, grid, max_concurrent, created_at"


def insert_sweep(db: Database, *, name: str, grid: dict[str, list[str]], max_concurrent: int) -> SweepRow:
    """Add a sweep; a name already used is a Conflict naming it."""
    with write_transaction(db):
        if db.execute("SELECT 1 FROM sweeps WHERE name = ?", [name]).fetchone():
            raise Conflict(f"a sweep named {name!r} already exists; choose another --name")
        cursor = db.execute(
            "INSERT INTO sweeps (name, grid, max_concurrent, created_at) VALUES (?, ?, ?, ?)",
            [name, orjson.dumps(grid).decode(), int(max_concurrent), utcnow()],
        )
    return get_sweep(db, int(cursor.lastrowid or 0))


def get_sweep(db: Database, sweep: int | str) -> SweepRow:
    """Return a sweep by id, or by name when given a string that is not a number; NotFound otherwise."""
    if isinstance(sweep, int) or sweep.isdigit():
        raw = db.execute(f"SELECT {_COLUMNS} FROM sweeps WHERE id = ?", [int(sweep)]).fetchone()
    else:
        raw = db.execute(f"SELECT {_COLUMNS} FROM sweeps WHERE name = ?", [sweep]).fetchone()
    if raw is None:
        raise NotFound(f"no sweep {sweep!r}; `workbench jobs sweep` starts one")
    return _sweep(raw)


def sweep_exists(db: Database, name: str) -> bool:
    return db.execute("SELECT 1 FROM sweeps WHERE name = ?", [name]).fetchone() is not None


def list_sweeps(db: Database) -> list[SweepRow]:
    return [_sweep(r) for r in db.execute(f"SELECT {_COLUMNS} FROM sweeps ORDER BY id DESC").fetchall()]


_CELL_INDEX = re.compile(r"-(\d+)(?:" + re.escape(SUBMITTING) + r")?$")


def _cell_order(job: job_rows.JobRow) -> tuple[int, int]:
    """Cells are named SWEEP-INDEX; a launched cell is a newer row than the pending one it replaced, so ids lie."""
    found = _CELL_INDEX.search(job.name)
    return (int(found.group(1)) if found else 1 << 30, job.id)


def cells(db: Database, sweep_id: int) -> list[job_rows.JobRow]:
    """The sweep's jobs in cell order."""
    return sorted(job_rows.list_jobs(db, sweep_id=sweep_id), key=_cell_order)


def names_taken(db: Database, names: list[str]) -> list[str]:
    """Which of `names` are already job names."""
    if not names:
        return []
    marks = ", ".join("?" for _ in names)
    return [r[0] for r in db.execute(f"SELECT name FROM jobs WHERE name IN ({marks})", names).fetchall()]


def job_by_provider_id(db: Database, backend: str, provider_job_id: str) -> job_rows.JobRow | None:
    """The ledger's job for a provider's job id, if the workbench launched or imported it."""
    raw = db.execute(
        "SELECT id FROM jobs WHERE backend = ? AND provider_job_id = ? ORDER BY id LIMIT 1", [backend, provider_job_id]
    ).fetchone()
    return job_rows.get_job(db, int(raw[0])) if raw else None


# --- pending cells ------------------------------------------------------------------------------------


def insert_pending_cell(db: Database, *, sweep_id: int, form: dict[str, Any], **fields: Any) -> job_rows.JobRow:
    """Record a cell to submit later: queued, no provider job id, its launch form kept with it."""
    return job_rows.insert_job(
        db, **fields, sweep_id=sweep_id, state=JobState.QUEUED.value, provider_job_id=None,
        request={PENDING_KEY: form},
    )


def pending_form(job: job_rows.JobRow) -> dict[str, Any] | None:
    """The launch form a pending cell was planned with; None for a job that is not a pending cell."""
    if job.provider_job_id is not None or job.state is not JobState.QUEUED or not job.request:
        return None
    form = job.request.get(PENDING_KEY)
    return form if isinstance(form, dict) else None


def sweeps_with_pending(db: Database) -> list[int]:
    """Sweeps that still have cells to submit: one indexed query, so a round without sweeps costs nearly nothing."""
    rows = db.execute(
        "SELECT DISTINCT sweep_id FROM jobs WHERE state = ? AND provider_job_id IS NULL AND sweep_id IS NOT NULL",
        [JobState.QUEUED.value],
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def occupancy(db: Database, sweep_id: int, now: datetime) -> tuple[int, list[int]]:
    """Return (active cells, pending cells free to claim, in order) for one sweep.

    Active: submitted and still queued, validating or running, or claimed by a launch in progress.
    """
    stamp = _iso(now)
    active = [s.value for s in ACTIVE_STATES]
    marks = ", ".join("?" for _ in active)
    running = db.execute(
        f"SELECT count(*) FROM jobs WHERE sweep_id = ? AND ((provider_job_id IS NOT NULL AND state IN ({marks})) "
        "OR (provider_job_id IS NULL AND state = ? AND lease_until > ?))",
        [sweep_id, *active, JobState.QUEUED.value, stamp],
    ).fetchone()[0]
    free = [r[0] for r in db.execute(
        "SELECT id FROM jobs WHERE sweep_id = ? AND provider_job_id IS NULL AND state = ? "
        "AND (lease_until IS NULL OR lease_until <= ?) ORDER BY created_at, id",
        [sweep_id, JobState.QUEUED.value, stamp],
    ).fetchall()]
    return int(running), free


def claim_pending(db: Database, job_id: int, owner: str, *, lease_s: float, now: datetime) -> job_rows.JobRow | None:
    """Take a pending cell for submission (lease it, and free its name for the launched job); None if taken."""
    stamp, until = _iso(now), _iso(now + timedelta(seconds=lease_s))
    with write_transaction(db):
        row = db.execute(
            "SELECT name FROM jobs WHERE id = ? AND provider_job_id IS NULL AND state = ? "
            "AND (lease_until IS NULL OR lease_until <= ?)",
            [job_id, JobState.QUEUED.value, stamp],
        ).fetchone()
        if row is None:
            return None
        name = row[0] if str(row[0]).endswith(SUBMITTING) else f"{row[0]}{SUBMITTING}"
        db.execute("UPDATE jobs SET lease_owner = ?, lease_until = ?, name = ? WHERE id = ?", [owner, until, name, job_id])
    return job_rows.get_job(db, job_id)


def unclaim(db: Database, job_id: int, name: str) -> None:
    """Put a claimed cell back as pending, under its own name (its launch did not get as far as a job)."""
    db.execute("UPDATE jobs SET lease_owner = NULL, lease_until = NULL, name = ? WHERE id = ?", [name, job_id])


def fail_pending(db: Database, job_id: int, name: str, message: str) -> None:
    """Mark a claimed cell failed before it reached the provider (its launch was refused), keeping why."""
    job_rows.update_job(db, job_id, name=name, state=JobState.FAILED.value, failure_message=message,
                        finished_at=utcnow(), lease_owner=None, lease_until=None)


def replace_pending(db: Database, pending_id: int, launched_id: int, sweep_id: int) -> None:
    """The launched job takes the pending cell's place in the sweep."""
    with write_transaction(db):
        db.execute("DELETE FROM jobs WHERE id = ?", [pending_id])
        db.execute("UPDATE jobs SET sweep_id = ? WHERE id = ?", [sweep_id, launched_id])
