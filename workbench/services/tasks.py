"""Run dataset-wide actions as tasks: each in a process of its own, watched and stopped through its row.

`start` records the task and spawns `python -m workbench --db PATH tasks run ID`, detached from the
caller (its own session), so the Streamlit server changes no process-wide state, keeps serving
other pages, and a browser that goes away leaves the work running; the app learns how it goes from
the row. `run` is what that process does: it claims the row, calls the action with a `Progress`
that writes the row (throttled) and reads `cancel_requested`, and records the result or error.

A task whose process is gone while its row still says running (killed, out of memory, a reboot)
reads as failed, "the process ended unexpectedly", the next time anyone looks at it.

The process that runs a task is started by the app's server, not by the person: `start` checks the
action's permission and keeps who asked in the params (`requested_by`), and `run` acts as them, so
the audit trail and the examples' `updated_by` name that person rather than the server's operator.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

import workbench
from workbench.domain.access import Actor, Permission
from workbench.domain.progress import Cancelled, Progress, ProgressState
from workbench.errors import Busy, InvalidInput, NotFound, WorkbenchError
from workbench.services import access
from workbench.services.task_actions import (
    action,
    action_holds_lock,
    action_label,
    action_writes,
    check_params,
)
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import tasks as task_rows
from workbench.store.tasks import Task, TaskState

REPORT_EVERY_S = 0.5
"""At most this often a task writes its progress row (and reads whether to stop)."""
PROGRESS_BUSY_TIMEOUT_S = 0.2
"""How long a progress write waits for the write lock: progress is worth skipping, never waiting for."""
SPAWN_GRACE_S = 60.0
"""A queued task with no process recorded yet is taken as starting for this long."""
KEPT_PER_KIND = 20
"""Ended tasks kept per dataset and kind (with their results); older ones are deleted as new ones start."""
DIED = "the process ended unexpectedly"
START_BUSY_TIMEOUT_S = 3.0
"""How long starting a task waits for the write lock before saying who holds it."""
LOCK_WAIT_POLL_S = 0.5
"""How often a task waiting to claim or finish its row tries the write lock again."""


def inline() -> bool:
    """Say whether tasks run in the caller's process (page tests only: AppTest cannot wait for a child)."""
    return os.environ.get("WORKBENCH_TASKS_INLINE") == "1"


def start(store: Store, kind: str, dataset: str | None, params: dict[str, Any] | None = None) -> Task:
    """Start a task, or return the identical one (same dataset, kind and params) already running.

    `dataset` is None only for an import, which names in its params the dataset it writes (perhaps
    creating it) and is tied to that dataset when it ends.

    While an action that holds the store's write lock for its whole run (a split, a freeze, a scrub,
    a resolve) is running, nothing else can write the store, not even the row of a new task: the
    start is refused at once, naming what runs, rather than after the busy timeout with a bare "busy".

    The current actor needs the action's permission; they are recorded as `requested_by` (a value
    given in `params` is replaced, never believed), and the task runs as them.
    """
    params = {k: v for k, v in (params or {}).items() if k != task_rows.REQUESTED_BY}
    chosen = action(kind)  # an unknown kind fails here, not in the child
    asked_on = f"dataset:{dataset}" if dataset is not None else f"dataset:{params.get('name') or ''}"
    actor = access.require(store, chosen.permission, action=f"task.{kind}", target=asked_on)
    params[task_rows.REQUESTED_BY] = requester_params(actor)
    if dataset is None and chosen.needs_dataset:
        raise InvalidInput(f"a {kind} task needs a dataset")
    check_params(kind, params)  # so does a missing field or a number that is not one
    with store.connect() as db:
        target = dataset if dataset is not None else str(params.get("name") or "")
        found = dataset_rows.find_dataset(db, target) if target else None
        if dataset is not None and found is None:
            dataset_rows.dataset_id(db, dataset)  # raises NotFound, listing the datasets there are
        holder = _lock_holder(db)
    if holder is not None:
        raise Busy(_busy_words(holder, "start this"))
    try:
        with Store(store.path, busy_timeout=START_BUSY_TIMEOUT_S).write() as db:
            dataset_id = found.id if found is not None else None
            running = task_rows.active_task(db, dataset_id, kind, params)
            if running is not None and _alive(store, running):
                return running
            if running is not None:
                task_rows.fail_if_active(db, running.id, DIED)
            refusal = _second_writer(store, db, dataset_id, target) if chosen.writes and dataset_id is not None else None
            if refusal is None:
                task_id = task_rows.create_task(db, kind, dataset_id, params)
                task_rows.prune_tasks(db, dataset_id, kind, keep=KEPT_PER_KIND)
                access.audit(db, f"task.{kind}", f"dataset:{dataset_id}" if dataset_id is not None else asked_on,
                             task=task_id)
    except Busy:
        with store.connect() as db:
            holder = _lock_holder(db)
        raise Busy(_busy_words(holder, "start this") if holder else
                   "the store is busy (another process is writing to it); try again in a moment") from None
    if refusal is not None:
        raise Busy(refusal)
    _forget_files(store, task_id)  # a task id can be reused after its dataset was deleted: nothing of the old one may stay
    if inline():
        run(store, task_id)
    else:
        _spawn(store, task_id)
    return get(store, task_id)


def _lock_holder(db: Any) -> Task | None:
    """The running task, if any, that holds the store's write lock for its whole run."""
    for task in task_rows.list_tasks(db, active_only=True):
        if action_holds_lock(task.kind) and task.state is TaskState.RUNNING:
            return task
    return None


def _busy_words(holder: Task, then: str) -> str:
    where = f" on {holder.dataset}" if holder.dataset else ""
    return (f"{action_label(holder.kind)} (task {holder.id}){where} holds the store's write lock until it ends; {then} once it ends, "
            f"or cancel it (`workbench tasks cancel {holder.id}`)")


def _second_writer(store: Store, db: Any, dataset_id: int, dataset: str) -> str | None:
    """Say why a writing action must wait, when another one runs on the same dataset; None when none does.

    Two writers on one dataset would interleave their changes (a split while an import adds
    examples, a scrub while duplicates are resolved); saying so now, with what runs, lets the person
    wait for it or cancel it.
    """
    for other in task_rows.list_tasks(db, dataset_id=dataset_id, active_only=True):
        if not action_writes(other.kind):
            continue
        if not _alive(store, other):
            task_rows.fail_if_active(db, other.id, DIED)
            continue
        return (f"{action_label(other.kind)} (task {other.id}) is still running on {dataset}; start this once it ends, "
                f"or cancel it (`workbench tasks cancel {other.id}`)")
    return None


def get(store: Store, task_id: int) -> Task:
    """Return a task as it stands; one whose process is gone reads as failed."""
    with store.connect() as db:
        task = task_rows.get_task(db, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}; `workbench tasks list` shows the recent ones")
    return _checked(store, task)


def latest(store: Store, dataset: str, kind: str, params: dict[str, Any] | None = None) -> Task | None:
    """Return the newest task of a kind on a dataset (with exactly these params, when given)."""
    with store.connect() as db:
        task = task_rows.latest_task(db, dataset_rows.dataset_id(db, dataset), kind, params)
    return _checked(store, task) if task is not None else None


def list_tasks(store: Store, dataset: str | None = None, *, active_only: bool = False, limit: int = 50) -> list[Task]:
    """Return recent tasks, newest first (of one dataset, or only those still running, when asked)."""
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset) if dataset else None
        found = task_rows.list_tasks(db, dataset_id=dataset_id, active_only=active_only, limit=limit)
    return [_checked(store, t) for t in found]


def cancel(store: Store, task_id: int) -> Task:
    """Ask a task to stop; it stops at its next progress report and records `cancelled`.

    The request is first left as a file beside the store, which needs no lock: an action that
    holds the write lock for its whole run (a split, a freeze, a scrub: one transaction each, so
    a stop rolls it back) would otherwise keep the request waiting until it had finished. The row
    is then marked too when the lock is free within a moment, for readers of the table.

    Who may stop it: whoever started it, with the permission starting needs; anyone else needs to
    be able to change what the task works on (`datasets.write` for a dataset action: a PM may read
    and export, but not stop an engineer's export). The stop is on the audit trail.
    """
    task = get(store, task_id)
    with contextlib.suppress(InvalidInput):  # a kind this version does not know (a test kind): anyone may stop it
        needed = action(task.kind).permission
        started_by = (task.params.get("requested_by") or {}).get("email")
        if started_by != access.current().email and needed.value.startswith("datasets."):
            needed = Permission.DATASETS_WRITE
        access.require(store, needed, action="task.cancel", target=f"task:{task_id}")
    if not task.state.active:
        return task
    with contextlib.suppress(OSError):
        _cancel_path(store, task_id).touch()
    try:
        with Store(store.path, busy_timeout=PROGRESS_BUSY_TIMEOUT_S).write() as db:
            task_rows.request_cancel(db, task_id)
            access.audit(db, "task.cancel", f"task:{task_id}", kind=task.kind)
    except Busy:
        pass  # the file carries the request; the task records `cancelled` when it stops
    fresh = get(store, task_id)
    asked = fresh.state.active or fresh.state is TaskState.CANCELLED  # it may have stopped already, by the file
    return fresh.model_copy(update={"cancel_requested": True}) if asked else fresh


def run(store: Store, task_id: int) -> Task:
    """Run a queued task in this process to its end: done, failed or cancelled (what `tasks run` does).

    Claiming the row and recording the end need the write lock, which an action holding it for its
    whole run may keep for minutes: both wait for it as long as it takes, showing why in the task's
    progress, instead of giving up after the busy timeout and leaving a row that reads as died.
    """
    _write_aside(store, task_id, None, pid=os.getpid())  # so readers see this process alive before the row can say so
    reporter = _Reporter(store, task_id)
    claimed = _patiently(store, task_id, reporter, lambda db: task_rows.claim_task(db, task_id, os.getpid()))
    with store.connect() as db:
        task = task_rows.get_task(db, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    if not claimed:
        raise InvalidInput(f"task {task_id} is {task.state.value}, not queued; each task runs once")
    progress = Progress(reporter.report, reporter.cancelled, every=REPORT_EVERY_S)
    state, result, error, writes = TaskState.DONE, None, None, False
    try:
        chosen = action(task.kind)
        writes = chosen.writes
        if reporter.cancelled():
            raise Cancelled()
        if task.dataset is None and (chosen.needs_dataset or task.dataset_id is not None):
            raise NotFound("its dataset was deleted")
        work = {k: v for k, v in task.params.items() if k != task_rows.REQUESTED_BY}
        with access.acting_as(requester(task)):
            result = chosen.run(store, task.dataset or "", work, progress)
        progress.finish()  # the last stage's count is throttled: a finished task shows it complete
    except Cancelled:
        state = TaskState.CANCELLED
    except WorkbenchError as exc:
        state, error = TaskState.FAILED, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug still ends the task with a message, never a row stuck running
        state, error = TaskState.FAILED, _unexpected(store, task, exc)

    def finish(db: Any) -> None:
        wrote_to = result.get("dataset_id") if task.dataset_id is None and isinstance(result, dict) else None
        if isinstance(wrote_to, int):
            task_rows.attach_dataset(db, task_id, wrote_to)
            task_rows.prune_tasks(db, wrote_to, task.kind, keep=KEPT_PER_KIND)
        task_rows.finish_task(db, task_id, state, result=result, error=error, data_version_now=writes)

    _patiently(store, task_id, None, finish)
    _forget_files(store, task_id)
    return get(store, task_id)


def requester_params(actor: Actor) -> dict[str, Any]:
    """What a task keeps of who started it (plain JSON, in its params)."""
    return {"email": actor.email, "name": actor.name, "role": actor.role.value if actor.role else None, "via": actor.via}


def requester(task: Task) -> Actor:
    """Who a task acts as: the person who started it, else (a task from before m021) this process's default.

    The role is the one they had when they started it, which `start` checked: the work was allowed
    then, and a task is one request, not a session that goes on after a role is taken away.
    """
    asked = task.params.get(task_rows.REQUESTED_BY)
    if not isinstance(asked, dict) or not asked.get("email"):
        return access.current()
    try:
        return Actor.model_validate(asked)
    except ValueError:
        return access.current()


def _unexpected(store: Store, task: Task, exc: Exception) -> str:
    """Say why an action failed with something no service turned into a message."""
    if task.dataset_id is not None:
        with store.connect() as db:
            gone = not dataset_rows.dataset_exists(db, task.dataset_id)
        if gone:
            return "its dataset was deleted while it ran; what it had written went with it"
    return f"internal error: {type(exc).__name__}: {exc}"


def _patiently(store: Store, task_id: int, reporter: _Reporter | None, work: Any) -> Any:
    """Do `work(db)` under the write lock, waiting as long as another action holds it."""
    waiting = Store(store.path, busy_timeout=PROGRESS_BUSY_TIMEOUT_S * 5)
    while True:
        try:
            with waiting.write() as db:
                return work(db)
        except Busy:
            if reporter is not None:
                _write_aside(store, task_id, ProgressState(stage="waiting for the store's write lock", done=0, total=0,
                                                            unit="examples", elapsed_s=0.0), pid=os.getpid())
            time.sleep(LOCK_WAIT_POLL_S)


# ------------------------------------------------------------------------------------------ process


def _spawn(store: Store, task_id: int) -> None:
    """Start `workbench tasks run ID` in a new session, detached from the caller's terminal and signals."""
    root = str(Path(workbench.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    env.pop("WORKBENCH_TASKS_INLINE", None)
    command = [sys.executable, "-m", "workbench", "--db", str(store.path.resolve()), "tasks", "run", str(task_id)]
    try:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True, close_fds=True,
        )
    except OSError as exc:
        with store.write() as db:
            task_rows.fail_if_active(db, task_id, f"could not start a process for it ({exc.strerror or exc})")
        return
    try:
        with Store(store.path, busy_timeout=START_BUSY_TIMEOUT_S).write() as db:
            task_rows.set_pid(db, task_id, child.pid)
    except Busy:
        pass  # the child records its pid beside the store at once, and in the row when it claims it


def _checked(store: Store, task: Task) -> Task:
    if not task.state.active:
        _forget_files(store, task.id)
        return task
    task = _with_aside(store, task)
    if _alive(store, task):
        return task
    try:
        with Store(store.path, busy_timeout=PROGRESS_BUSY_TIMEOUT_S).write() as db:
            task_rows.fail_if_active(db, task.id, DIED)
            fresh = task_rows.get_task(db, task.id)
    except Busy:  # a reader never waits on the lock for this: the row is corrected by the next one who can
        return task.model_copy(update={"state": TaskState.FAILED, "error": DIED})
    return fresh or task


def _alive(store: Store, task: Task) -> bool:
    """Say whether the process of an active task still runs (a task not yet given one: while it starts)."""
    pid = task.pid if task.pid is not None else _aside_pid(store, task.id)
    if pid is None:
        created = datetime.fromisoformat(task.created_at)
        return (datetime.now(UTC) - created).total_seconds() < SPAWN_GRACE_S
    if pid == os.getpid():
        return True  # run inline, in this very process
    return pid_runs(pid, task.id)


def pid_runs(pid: int, task_id: int) -> bool:
    """Say whether `pid` is alive and, where /proc tells, is still the process running task `task_id`."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our own child that ended is a zombie until reaped
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child: another server or the CLI started it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            return False
        # After a reboot the number may belong to anything: only `tasks run <id>` is this task's.
        args = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): the signal check is all there is
    return b"tasks" in args and str(task_id).encode() in args


class _Reporter:
    """Writes a task's progress to its row and reads whether to stop, each at most every REPORT_EVERY_S."""

    def __init__(self, store: Store, task_id: int) -> None:
        self.store = Store(store.path, busy_timeout=PROGRESS_BUSY_TIMEOUT_S)
        self.task_id = task_id
        self._stop = False
        self._read_at = 0.0
        self._skip_until = 0.0
        self._delay = float(os.environ.get("WORKBENCH_TASKS_TEST_DELAY") or 0)

    def report(self, state: ProgressState) -> None:
        if self._delay:
            time.sleep(self._delay)  # tests only: keeps a small task running long enough to cancel or kill
        now = time.monotonic()
        if now < self._skip_until:
            _write_aside(self.store, self.task_id, state)
            return
        try:
            with self.store.write() as db:
                flag = task_rows.update_progress(
                    db, self.task_id, stage=state.stage, done=state.done, total=state.total, unit=state.unit, eta_s=state.eta_s,
                )
        except Busy:
            # Someone holds the write lock, most likely this very action inside one transaction it cannot
            # split (a freeze, a resolve): the row cannot be written until it ends, so reports go to a
            # file beside the store for a while, and the row is tried again later.
            self._skip_until = now + 5.0
            _write_aside(self.store, self.task_id, state)
            return
        _aside_path(self.store, self.task_id).unlink(missing_ok=True)
        self._stop = flag is None or flag
        self._read_at = now

    def cancelled(self) -> bool:
        if not self._stop and _cancel_path(self.store, self.task_id).exists():  # a stat per report: cheap
            self._stop = True
        now = time.monotonic()
        if not self._stop and now - self._read_at >= REPORT_EVERY_S:
            with self.store.connect() as db:
                flag = task_rows.cancel_requested(db, self.task_id)
            self._stop = flag is None or flag
            self._read_at = now
        return self._stop


def _cancel_path(store: Store, task_id: int) -> Path:
    return store.path.resolve().parent / f".{store.path.name}.task-{task_id}.cancel"


def _aside_path(store: Store, task_id: int) -> Path:
    return store.path.resolve().parent / f".{store.path.name}.task-{task_id}.progress"


def _write_aside(store: Store, task_id: int, state: ProgressState | None, *, pid: int | None = None) -> None:
    """Leave the latest progress (and the task's pid) in a small file when the row cannot be written.

    The file is replaced whole, never half-written. The pid is kept across reports, so a reader can
    tell the process is alive before the process could record itself in the row.
    """
    path = _aside_path(store, task_id)
    payload: dict[str, Any] = {}
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        payload = orjson.loads(path.read_bytes())
    if state is not None:
        payload.update({"stage": state.stage, "done": state.done, "total": state.total, "unit": state.unit, "eta_s": state.eta_s})
    if pid is not None:
        payload["pid"] = pid
    with contextlib.suppress(OSError):
        temp = path.with_suffix(".partial")
        temp.write_bytes(orjson.dumps(payload))
        os.replace(temp, path)


def _aside_pid(store: Store, task_id: int) -> int | None:
    try:
        pid = orjson.loads(_aside_path(store, task_id).read_bytes()).get("pid")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def _forget_files(store: Store, task_id: int) -> None:
    """Remove a task's cancel and progress files (an ended task's, or a reused id's leftovers)."""
    _aside_path(store, task_id).unlink(missing_ok=True)
    _cancel_path(store, task_id).unlink(missing_ok=True)


def _with_aside(store: Store, task: Task) -> Task:
    """Return a running task with the progress its process left beside the store, when that is the latest."""
    if not task.cancel_requested and _cancel_path(store, task.id).exists():
        task = task.model_copy(update={"cancel_requested": True})
    try:
        payload = orjson.loads(_aside_path(store, task.id).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return task
    return task.model_copy(update={k: payload[k] for k in ("stage", "done", "total", "unit", "eta_s", "pid") if k in payload
                                   and (k != "pid" or task.pid is None)})
