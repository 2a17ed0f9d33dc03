"""The job ledger: jobs, their events and metrics, and the watcher's leases. SQL only; no provider calls.

Every function that writes takes a `Database` opened by `store.write()` (or runs in its own
`write_transaction`), so the watcher, the pages and the CLI all go through the store's one write path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.jobs import ACTIVE_STATES, JobEvent, JobSnapshot, JobState, MetricPoint, PollCursor
from workbench.errors import Conflict, NotFound
from workbench.store import utcnow, write_transaction


class JobRow(BaseModel):
    """One job as the ledger holds it."""

    id: int
    name: str
    backend: str
    provider_job_id: str | None = None
    base_model: str
    target: str | None = None
    dataset_id: int | None = None
    dataset_name: str | None = None
    version: str | None = None
    state: JobState
    provider_status: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    request: dict[str, Any] | None = None
    files: dict[str, str] | None = None
    train_records: int | None = None
    validation_records: int | None = None
    train_tokens: int | None = None
    estimate_usd: float | None = None
    estimate: dict[str, Any] | None = None
    output_model: str | None = None
    failure_message: str | None = None
    trained_tokens: int | None = None
    progress: float | None = None
    estimated_finish: str | None = None
    cursor: PollCursor = PollCursor()
    created_at: str
    submitted_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str
    next_poll_at: str | None = None
    poll_failures: int = 0
    retry_of: int | None = None
    sweep_id: int | None = None
    note: str = ""


_JSON_COLUMNS = ("hyperparameters", "request", "files", "estimate", "cursor")


def _row(raw: dict[str, Any]) -> JobRow:
    data = dict(raw)
    for key in _JSON_COLUMNS:
        if data.get(key) is not None:
            data[key] = orjson.loads(data[key])
    if data.get("cursor") is None:
        data["cursor"] = PollCursor()
    data.pop("lease_owner", None)
    data.pop("lease_until", None)
    return JobRow.model_validate(data)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return orjson.dumps(value).decode()


def insert_job(db: Database, **fields: Any) -> JobRow:
    """Add a job (state queued until submitted); a name already used is a Conflict naming it."""
    now = utcnow()
    values = {"created_at": now, "updated_at": now, "state": JobState.QUEUED.value, **fields}
    for key in _JSON_COLUMNS:
        if key in values:
            values[key] = _json(values[key])
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    with write_transaction(db):
        if db.execute("SELECT 1 FROM jobs WHERE name = ?", [values["name"]]).fetchone():
            raise Conflict(f"a job named {values['name']!r} already exists; choose another name")
        cursor = db.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", list(values.values()))
    return get_job(db, int(cursor.lastrowid or 0))


def update_job(db: Database, job_id: int, **fields: Any) -> None:
    """Set columns of one job (JSON columns encoded here) and its updated_at."""
    values = {**fields, "updated_at": utcnow()}
    for key in _JSON_COLUMNS:
        if key in values:
            values[key] = _json(values[key])
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*values.values(), job_id])


def get_job(db: Database, job: int | str) -> JobRow:
    """Return a job by id, or by name when given a string that is not a number; NotFound otherwise."""
    text = str(job).strip()
    if isinstance(job, int) or (text.isascii() and text.isdigit()):
        number = int(job) if isinstance(job, int) else int(text)
        raw = db.execute("SELECT * FROM jobs WHERE id = ?", [number]).fetchone() if 0 < number < 2**63 else None
    else:
        raw = db.execute("SELECT * FROM jobs WHERE name = ?", [job]).fetchone()
    if raw is None:
        raise NotFound(f"no job {job!r}; `workbench jobs list` shows the jobs there are")
    columns = [d[0] for d in db.execute("SELECT * FROM jobs LIMIT 0").description]
    return _row(dict(zip(columns, raw, strict=True)))


def list_jobs(
    db: Database, *, states: Iterable[JobState] | None = None, backend: str | None = None, sweep_id: int | None = None,
    limit: int | None = None,
) -> list[JobRow]:
    """Return jobs newest first, optionally only some states, one backend or one sweep."""
    where, params = [], []  # type: ignore[var-annotated]
    if states is not None:
        wanted = [s.value for s in states]
        where.append(f"state IN ({', '.join('?' for _ in wanted)})")
        params += wanted
    if backend:
        where.append("backend = ?")
        params.append(backend)
    if sweep_id is not None:
        where.append("sweep_id = ?")
        params.append(sweep_id)
    sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY created_at DESC, id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    cursor = db.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [_row(dict(zip(columns, raw, strict=True))) for raw in cursor.fetchall()]


# --- the watcher's leases ------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def claim_due(db: Database, owner: str, *, lease_s: float, limit: int, now: datetime | None = None) -> list[JobRow]:
    """Lease up to `limit` active jobs whose next poll is due and that no live lease holds; return them.

    One write transaction reads and leases, so two watchers started together split the due jobs
    between them instead of both polling each one. A lease that has run out (its watcher was killed)
    is free again.
    """
    moment = now or datetime.now(UTC)
    stamp, until = _iso(moment), _iso(moment + timedelta(seconds=lease_s))
    active = [s.value for s in ACTIVE_STATES]
    with write_transaction(db):
        # An `unknown` job is polled again only while it has a next poll time: a status we did not know may
        # move on; a job gone on the provider's side has none.
        ids = [r[0] for r in db.execute(
            f"SELECT id FROM jobs WHERE (state IN ({', '.join('?' for _ in active)}) "
            "OR (state = 'unknown' AND next_poll_at IS NOT NULL)) "
            "AND provider_job_id IS NOT NULL "
            "AND (next_poll_at IS NULL OR next_poll_at <= ?) AND (lease_until IS NULL OR lease_until <= ?) "
            "ORDER BY next_poll_at IS NOT NULL, next_poll_at, id LIMIT ?",
            [*active, stamp, stamp, int(limit)],
        ).fetchall()]
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        db.execute(f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ({marks})", [owner, until, *ids])
    return [get_job(db, i) for i in ids]


def holds_lease(db: Database, job_id: int, owner: str) -> bool:
    """Say whether `owner` still holds the job's lease (it may have run out and been taken)."""
    row = db.execute("SELECT lease_owner FROM jobs WHERE id = ?", [job_id]).fetchone()
    return row is not None and row[0] == owner


def release(db: Database, job_id: int, owner: str, *, next_poll_at: datetime | None, failures: int | None = None) -> None:
    """Give a lease back and say when the job is due again."""
    fields: dict[str, Any] = {"next_poll_at": _iso(next_poll_at) if next_poll_at else None}
    if failures is not None:
        fields["poll_failures"] = failures
    sets = ", ".join(f"{k} = ?" for k in fields)
    db.execute(
        f"UPDATE jobs SET lease_owner = NULL, lease_until = NULL, {sets} WHERE id = ? AND lease_owner = ?",
        [*fields.values(), job_id, owner],
    )


# --- what a poll found -----------------------------------------------------------------------------------


def record_snapshot(db: Database, job: JobRow, snapshot: JobSnapshot) -> JobState:
    """Write a poll's state, events and metrics for one job; return the state before it.

    Events and metrics are upserts keyed by (job, key) and (job, step), so writing the same
    snapshot twice leaves the ledger as writing it once.
    """
    now = utcnow()
    fields: dict[str, Any] = {
        "state": snapshot.state.value, "provider_status": snapshot.provider_status, "cursor": snapshot.cursor,
        "poll_failures": 0,
    }
    for key in ("output_model", "failure_message", "trained_tokens", "progress"):
        if (value := getattr(snapshot, key)) is not None:
            fields[key] = value
    if snapshot.estimated_finish is not None:
        fields["estimated_finish"] = _iso(snapshot.estimated_finish)
    if snapshot.state is JobState.RUNNING and not job.started_at:
        fields["started_at"] = now
    if snapshot.state.final and not job.finished_at:
        fields["finished_at"] = now
        if not job.started_at and "started_at" not in fields:
            fields["started_at"] = job.submitted_at or now  # finished between two polls: it ran, we never saw it
    with write_transaction(db):
        update_job(db, job.id, **fields)
        add_events(db, job.id, snapshot.events)
        add_metrics(db, job.id, snapshot.metrics)
    return job.state


def add_events(db: Database, job_id: int, events: Iterable[JobEvent]) -> None:
    db.conn.executemany(
        "INSERT INTO job_events (job_id, key, at, level, message) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(job_id, key) DO NOTHING",
        [(job_id, e.key, _iso(e.at), e.level, e.message) for e in events],
    )


def add_metrics(db: Database, job_id: int, points: Iterable[MetricPoint]) -> None:
    points = [p for p in points if MetricPoint.read(p.step, p.epoch, p.train_loss, p.val_loss) == p]
    db.conn.executemany(
        "INSERT INTO job_metrics (job_id, step, epoch, train_loss, val_loss) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(job_id, step) DO UPDATE SET epoch = coalesce(excluded.epoch, epoch), "
        "train_loss = coalesce(excluded.train_loss, train_loss), val_loss = coalesce(excluded.val_loss, val_loss)",
        [(job_id, p.step, p.epoch, p.train_loss, p.val_loss) for p in points],
    )


def job_metrics(db: Database, job_id: int) -> list[MetricPoint]:
    rows = db.execute(
        "SELECT step, epoch, train_loss, val_loss FROM job_metrics WHERE job_id = ? ORDER BY step", [job_id]
    ).fetchall()
    return [MetricPoint(step=r[0], epoch=r[1], train_loss=r[2], val_loss=r[3]) for r in rows]


def job_events(db: Database, job_id: int, *, limit: int | None = None) -> list[JobEvent]:
    sql = "SELECT key, at, level, message FROM job_events WHERE job_id = ? ORDER BY at, rowid"
    if limit:
        sql = f"SELECT * FROM ({sql.replace('ORDER BY at, rowid', 'ORDER BY at DESC, rowid DESC')} LIMIT {int(limit)}) ORDER BY at"
    rows = db.execute(sql, [job_id]).fetchall()
    return [JobEvent(key=r[0], at=datetime.fromisoformat(r[1]), level=r[2], message=r[3]) for r in rows]


def fail_unsubmitted(db: Database, *, older_than: datetime, message: str) -> list[str]:
    """Mark jobs whose launch never reached the provider (the launching process died mid-upload) as failed.

    A launch writes its row, then uploads and submits; killed in between, the row would stay `queued` with no
    provider job id for ever, polled by no one. Sweep cells waiting for their turn are left alone.
    """
    stamp = _iso(older_than)
    with write_transaction(db):
        rows = db.execute(
            "SELECT id, name FROM jobs WHERE state = 'queued' AND provider_job_id IS NULL AND sweep_id IS NULL "
            "AND created_at <= ?", [stamp],
        ).fetchall()
        for job_id, _ in rows:
            update_job(db, job_id, state=JobState.FAILED.value, failure_message=message, finished_at=utcnow())
    return [str(name) for _, name in rows]
