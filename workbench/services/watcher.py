"""The job watcher: poll every active job with backoff, and write what it finds through the store's write path.

`workbench jobs watch` runs `watch` in its own process (started by `make run` beside the app), so jobs
progress with no browser open and an app restart loses nothing. Each round claims the due jobs with a lease
in one write (`store.jobs.claim_due`), so two watchers at once split the work instead of both polling a job;
a watcher killed mid-round leaves leases that run out, and the next round picks those jobs up where the
stored cursor says. Events and metrics are upserts keyed by job and event key or step: a poll written twice
leaves the ledger as if written once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from workbench.domain.jobs import BackendName, JobEvent, JobSnapshot, JobState
from workbench.providers.base import (
    BackendError,
    FineTuningBackend,
    JobNotFound,
    Throttled,
)
from workbench.services.jobs import BackendFactory, default_backend
from workbench.services.sweeps import advance_sweeps
from workbench.store import Store
from workbench.store import jobs as job_rows

POLL_EVERY_S: dict[BackendName, float] = {
    BackendName.LOCAL: 2.0,
    BackendName.OPENAI: 15.0,
    BackendName.BEDROCK: 30.0,
    BackendName.SAGEMAKER: 30.0,
}
"""How often an active job is polled when all is well: local runs write a line a second, cloud jobs move in minutes."""
MAX_BACKOFF_S = 600.0
UNKNOWN_POLL_S = 300.0
"""How often a job in a status we do not know is asked about again."""
STALE_LAUNCH_S = 1800.0
"""A job still `queued` with no provider id this long after it was written never reached the provider."""
LEASE_S = 120.0


class RoundResult(BaseModel):
    """What one polling round did."""

    polled: int = 0
    changed: list[str] = Field(default_factory=list, description="'name: old -> new' per job whose state moved.")
    errors: list[str] = Field(default_factory=list, description="'name: message' per job whose poll failed.")
    seconds: float = 0.0


def owner_id() -> str:
    """Name this watcher in leases: host, process and thread, so a lease names who holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _backoff(base: float, failures: int) -> float:
    return min(MAX_BACKOFF_S, base * (2 ** max(0, failures)))


class _Backends:
    """Build each backend once per round, and remember one that cannot be built (missing credentials)."""

    def __init__(self, factory: BackendFactory) -> None:
        self.factory = factory
        self.built: dict[BackendName, FineTuningBackend | BackendError] = {}
        self.lock = threading.Lock()

    def get(self, name: BackendName) -> FineTuningBackend:
        with self.lock:
            if name not in self.built:
                try:
                    self.built[name] = self.factory(name)
                except BackendError as exc:
                    self.built[name] = exc
        found = self.built[name]
        if isinstance(found, BackendError):
            raise found
        return found


def poll_round(
    store: Store, *, backends: BackendFactory = default_backend, owner: str | None = None, limit: int = 500,
    workers: int = 16, now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RoundResult:
    """Claim every due active job, poll each (several at once), and write the results; return what happened."""
    started = time.monotonic()
    me = owner or owner_id()
    advanced = advance_sweeps(store, backends=backends, owner=me, now=now())  # sweeps' next cells, if slots freed
    with store.connect() as db:
        stale = job_rows.fail_unsubmitted(
            db, older_than=now() - timedelta(seconds=STALE_LAUNCH_S),
            message="the launch never reached the provider (the launching process stopped part-way); retry it",
        )
        due = job_rows.claim_due(db, me, lease_s=LEASE_S, limit=limit, now=now())
    changed = [*advanced.submitted, *(f"{name}: queued -> failed (launch never finished)" for name in stale)]
    result = RoundResult(polled=len(due), changed=changed, errors=advanced.errors)
    built = _Backends(backends)

    def one(job: job_rows.JobRow) -> None:
        backend_name = BackendName(job.backend)
        base = POLL_EVERY_S[backend_name]
        gone = False
        try:
            snapshot = built.get(backend_name).poll(str(job.provider_job_id), job.cursor)
        except JobNotFound as exc:
            gone = True
            snapshot = JobSnapshot(
                state=JobState.UNKNOWN, provider_status="not found", cursor=job.cursor,
                failure_message=f"the job is gone on {job.backend}'s side: {exc}",
                events=(JobEvent(key=f"wb-gone-{job.provider_job_id}", at=now(), level="error",
                                 message=f"{job.backend} no longer knows this job (deleted?): {exc}"),),
            )
        except Exception as exc:  # noqa: BLE001 - one job's bad answer must never stop the round or the watcher
            failures = job.poll_failures + 1
            wait = _backoff(base, failures)
            with store.write() as db:
                if job_rows.holds_lease(db, job.id, me):
                    level = "warning" if isinstance(exc, Throttled) else "error"
                    known = isinstance(exc, BackendError | OSError)
                    what = str(exc) if known else f"unexpected answer ({type(exc).__name__}: {exc})"
                    job_rows.add_events(db, job.id, [JobEvent(
                        key=f"wb-pollfail-{now().isoformat()}-{failures}", at=now(), level=level,
                        message=f"poll failed: {what}; retrying in {wait:.0f} s",
                    )])
                    job_rows.release(db, job.id, me, next_poll_at=now() + timedelta(seconds=wait), failures=failures)
            result.errors.append(f"{job.name}: {exc}")
            return
        with store.write() as db:
            if not job_rows.holds_lease(db, job.id, me):
                return  # the lease ran out and another watcher took the job: its write wins
            before = job_rows.record_snapshot(db, job, snapshot)
            if before is not snapshot.state:
                job_rows.add_events(db, job.id, [JobEvent(
                    key=f"wb-state-{snapshot.state.value}-{now().isoformat()}", at=now(), level="info",
                    message=f"{before.value} -> {snapshot.state.value} ({snapshot.provider_status})",
                )])
                result.changed.append(f"{job.name}: {before.value} -> {snapshot.state.value}")
            # A status we do not know is asked about again, slowly; a job gone on the provider's side is not.
            if snapshot.state.active:
                next_at: datetime | None = now() + timedelta(seconds=base)
            elif snapshot.state is JobState.UNKNOWN and not gone:
                next_at = now() + timedelta(seconds=UNKNOWN_POLL_S)
            else:
                next_at = None
            job_rows.release(db, job.id, me, next_poll_at=next_at, failures=0)
        if snapshot.state is JobState.SUCCEEDED:
            from workbench.services.models import register_from_job

            register_from_job(store, job.id)

    if due:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(due)))) as pool:
            list(pool.map(one, due))
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _refresh_deployments(store: Store, result: RoundResult) -> None:
    """Follow Bedrock deployments being created or deleted; free when none is (no AWS call)."""
    from workbench.services.deployments import refresh_deployments

    refreshed = refresh_deployments(store)
    result.errors += [f"deployment: {e}" for e in getattr(refreshed, "errors", [])]


ALERTS_EVERY_S = 60.0
"""How often the watcher evaluates the monitoring alert rules."""


def _evaluate_alerts(store: Store, result: RoundResult) -> None:
    """Fire and resolve alert rules; a failure is reported in the round and never stops the watcher."""
    from workbench.store import alerts as alert_rows

    try:
        with store.connect() as db:
            if not alert_rows.list_rules(db, enabled_only=True):
                return  # nothing to evaluate: spare the round the statistics imports (scipy)
        from workbench.services.alerts import evaluate_rules

        evaluated = evaluate_rules(store)
    except Exception as exc:  # noqa: BLE001 - alerting must not take job polling down with it
        result.errors.append(f"alerts: {type(exc).__name__}: {exc}")
        return
    result.changed += [f"alert {name}: fired" for name in evaluated.fired]
    result.changed += [f"alert {name}: resolved" for name in evaluated.resolved]
    result.errors += [f"alert {line}" for line in evaluated.errors]


def watch(
    store: Store, *, once: bool = False, interval_s: float = 2.0, backends: BackendFactory = default_backend,
    on_round: Callable[[RoundResult], None] | None = None, stop: threading.Event | None = None,
) -> None:
    """Poll rounds until stopped (Ctrl-C, SIGTERM, or `stop`); `once` runs a single round."""
    halt = stop or threading.Event()
    me = owner_id()
    alerts_due = 0.0
    while True:
        result = poll_round(store, backends=backends, owner=me)
        _refresh_deployments(store, result)
        if time.monotonic() >= alerts_due:
            _evaluate_alerts(store, result)
            alerts_due = time.monotonic() + ALERTS_EVERY_S
        if on_round is not None:
            on_round(result)
        if once or halt.wait(interval_s):
            return
