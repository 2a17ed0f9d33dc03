"""Turn lines read from a file into rows ready to insert, in this process or in a worker process.

Parsing, PII scanning and exact token counting cost about twice what SQLite needs to store an
example, so a large import runs them in one worker process while this process reads the file,
writes, and prepares batches itself whenever the worker falls behind: on two cores the halves
overlap instead of adding up. Small files stay in-process, where starting a worker would cost more
than it saves.

A worker, and the interpreter settings that make it pay (see `ProcessTuning`), are used only in a
process that has declared it runs imports and nothing else: the CLI calls `own_process()`. A
long-lived server (Streamlit, the ingest API) never changes process-wide state; it runs a large
import as a CLI child process instead (`workbench.services.import_process`), and anything it
imports in-process is prepared serially. A worker dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from workbench.domain import tokens
from workbench.domain.checks import derived_fields
from workbench.domain.dedup import near_keys
from workbench.domain.formats import Format, FormatError, detect, is_definite, parse
from workbench.domain.records import decode_line
from workbench.domain.rows import EncodedExample, encode_example

PARALLEL_MIN_BYTES = 32 * 1024 * 1024
"""Files at least this large are prepared in a worker process."""

WORKERS = 1
"""Worker processes. One, with this process preparing whenever the worker lags, beat two on two
cores: a second worker costs more in start-up and pickling than it adds (15.4 s vs 17-19 s for
100,000 examples)."""


@dataclass(frozen=True, slots=True)
class ProcessTuning:
    """What a process that runs only an import may do to itself; each measured by benchmarks/import_bench.py."""

    parallel: bool = True
    """Prepare large files in a worker process while this one reads and writes."""
    pause_gc: bool = True
    """Hold off the cycle collector while a batch is prepared (see `_gc_paused`)."""
    prompt_switches: bool = True
    """Shorten the GIL switch interval while a worker runs (see `SWITCH_INTERVAL_S`)."""


_tuning: ProcessTuning | None = None


def own_process(tuning: ProcessTuning | None = ProcessTuning()) -> None:  # noqa: B008 - frozen, shared safely
    """Declare that this process runs imports and nothing else, so imports may tune it; None takes that back.

    Only a short-lived, single-purpose process (the CLI, a worker, a benchmark) may call this: the
    settings it allows are process-wide, and in a server they would reach every other session.
    """
    global _tuning
    _tuning = tuning


def process_tuning() -> ProcessTuning | None:
    """Return what this process allows imports to change, or None when it is shared (a server)."""
    return _tuning


MAX_STORED_DEPTH = 254
"""orjson writes at most this many levels of nesting (https://github.com/ijl/orjson#serialize)."""

Line = tuple[int, Any, str | None]
"""(line number, decoded record - or a JSONL line's raw bytes, decoded by the worker - or None, read error or None)."""


class Prepared(NamedTuple):
    """One line's outcome: an error, or an encoded example with how it was recognised."""

    line: int
    error: str | None
    format: Format | None = None
    definite: bool = False
    warnings: tuple[str, ...] = ()
    encoded: EncodedExample | None = None


def prepare_lines(lines: list[Line], forced: Format | None) -> list[Prepared]:
    """Parse, enrich and encode a batch of lines; module-level so a worker process can run it."""
    if _tuning is None or not _tuning.pause_gc:
        return _prepare(lines, forced)
    with _gc_paused():
        return _prepare(lines, forced)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold off the cycle collector for one batch.

    A batch allocates tens of thousands of small containers that all stay alive until it is done,
    so the collector would run dozens of times and find nothing: 7-10% of the batch's time. Nothing
    here makes reference cycles, and anything another thread makes meanwhile is collected once the
    collector is back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _prepare(lines: list[Line], forced: Format | None) -> list[Prepared]:
    out: list[Prepared] = []
    for line, record, error in lines:
        if isinstance(record, bytes):
            record, error = _decoded(record, line)
        if error is not None:
            out.append(Prepared(line, error))
            continue
        try:
            parsed = parse(record, forced)
        except FormatError as exc:
            detected = detect(record)
            hint = f" (it looks like {detected.value})" if forced and detected and detected != forced else ""
            out.append(Prepared(line, f"{exc}{hint}"))
            continue
        except ValueError as exc:  # hashing a tool schema nested past what pydantic or orjson writes
            out.append(Prepared(line, f"cannot be stored: {_encode_reason(exc)}"))
            continue
        # parse() has hashed the example already; the source line is not part of the hash.
        text = parsed.example.plain_text()
        example = parsed.example.model_copy(update={"source_line": line, **derived_fields(parsed.example, text)})
        try:
            encoded = encode_example(example, text)
        except (orjson.JSONEncodeError, ValueError) as exc:
            # orjson reads 1,024 levels of nesting but writes only 254: a deep metadata value parses
            # and then cannot be stored. It costs this line, never the whole import.
            out.append(Prepared(line, f"cannot be stored: {_encode_reason(exc)}"))
            continue
        out.append(Prepared(line, None, parsed.format, is_definite(record, parsed.format), tuple(parsed.warnings), encoded))
    return _with_near_keys(out)


def _with_near_keys(out: list[Prepared]) -> list[Prepared]:
    """Add each example's near-duplicate band keys, computed for the whole batch at once (see `dedup.near_keys`).

    Here, in the worker, so the import stores them with the examples and no dedup has to index the
    dataset again.
    """
    at = [i for i, p in enumerate(out) if p.encoded is not None]
    keys = near_keys([out[i].encoded[1] for i in at])  # type: ignore[index]
    for i, near in zip(at, keys, strict=True):
        values, text, tags, _ = out[i].encoded  # type: ignore[misc]
        out[i] = out[i]._replace(encoded=(values, text, tags, near))
    return out


def _encode_reason(exc: ValueError | TypeError) -> str:
    if "Recursion limit" in str(exc) or "serialization depth" in str(exc):
        return f"nested too deeply: more than {MAX_STORED_DEPTH} levels of arrays and objects in one field"
    return str(exc)


def _decoded(raw: bytes, line: int) -> tuple[Any, str | None]:
    decoded = decode_line(raw, line)
    return decoded.record, decoded.error


def should_parallelise(size_hint: int | None) -> bool:
    """Say whether a file of this many bytes is worth a worker process on this machine."""
    if _tuning is None or not _tuning.parallel:
        return False
    return size_hint is not None and size_hint >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1


def prepared_batches(
    batches: Iterable[tuple[list[Line], int]], forced: Format | None, *, parallel: bool
) -> Iterator[tuple[list[Prepared], int]]:
    """Yield each batch prepared, in order, with the byte count that came with it.

    In parallel, every batch read is queued for the worker, up to `MAX_PENDING`: the worker takes
    batches from the front of the queue and this process, whenever the batch it needs next is not
    ready, takes one from the back and prepares it itself (work stealing). Neither core idles, and
    neither side has to guess the other's speed: on a slow disk, a busy machine or a worker still
    starting up, the split adjusts itself.

    If a worker dies, the batches it held are prepared here, so a crash costs speed, not data.
    """
    if not parallel:
        for lines, size in batches:
            yield prepare_lines(lines, forced), size
        return
    source = iter(batches)
    pending: deque[_Pending] = deque()
    tuning = _tuning or ProcessTuning(pause_gc=False, prompt_switches=False)
    switches = _prompt_thread_switches() if tuning.prompt_switches else contextlib.nullcontext()
    tokens.preload()
    pool = ProcessPoolExecutor(
        max_workers=WORKERS, mp_context=_start_method(), initializer=_start_worker, initargs=(os.getpid(), tuning)
    )
    with switches, _shut_down(pool):
        exhausted = broken = started = False
        while True:
            while not exhausted and len(pending) < MAX_PENDING and _queued(pending) < WORKER_QUEUE:
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                    break
                with _bare_main() if not started else contextlib.nullcontext():
                    future = None if broken else _submit(pool, batch[0], forced)
                started = True
                broken = broken or future is None
                pending.append(_Pending(future, *batch, None if future else prepare_lines(batch[0], forced)))
            if not pending:
                return
            head = pending[0]
            if head.future is not None and not head.future.done() and _steal_from_back(pending, forced):
                continue
            pending.popleft()
            yield _result(head, forced)


WORKER_QUEUE = 8
"""Batches queued for the worker: more than it prepares while this process writes one transaction."""

MAX_PENDING = 24
"""Most batches held at once, queued or prepared and waiting their turn; bounds memory, with the
importer capping each batch in bytes as well as lines."""

SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval while a worker runs (Python's default is 0.005 s). The pool's manager thread
reads each result from the worker in many small reads, and needs the GIL back after each; while this
process's main thread prepares a batch it holds the GIL for the full interval each time, so at the
default a 3 MB result took about 0.1 s to arrive and the worker sat idle meanwhile."""


def _queued(pending: deque[_Pending]) -> int:
    return sum(1 for p in pending if p.future is not None and not p.future.done())


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextlib.contextmanager
def _prompt_thread_switches() -> Iterator[None]:
    """Shorten the GIL switch interval while any import in this process runs a worker (see above)."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, SWITCH_INTERVAL_S))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def _steal_from_back(pending: deque[_Pending], forced: Format | None) -> bool:
    """Prepare here the newest batch the worker has not started, rather than wait; say if there was one."""
    for i in range(len(pending) - 1, 0, -1):
        entry = pending[i]
        if entry.future is not None and entry.future.cancel():
            pending[i] = _Pending(None, entry.lines, entry.size, prepare_lines(entry.lines, forced))
            return True
    return False


class _Pending(NamedTuple):
    future: Future[list[Prepared]] | None
    lines: list[Line]
    size: int
    ready: list[Prepared] | None


def _start_method() -> multiprocessing.context.BaseContext:
    """Fork the worker from a process with one thread (the CLI), spawn it from one with more.

    A forked worker starts at once with everything imported (spawning costs 1.2 s of CPU, half of
    it bpe-openai building every encoding it ships). But a fork copies only the calling thread, so
    in a threaded process a lock another thread held stays held in the child forever; there the
    worker is spawned. The pool forks its worker before starting its own thread. (A server never
    gets here: it has not called `own_process`, so its imports are serial or run in a CLI child.)
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Start the worker as if the program had no main script.

    'spawn' re-runs the parent's main script in the child unless guarded by `__name__`, and under
    Streamlit that script is a page (Home.py) that would render in the worker. The worker needs
    nothing from it, so the first submit, which starts the process, sees a bare `__main__`.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextlib.contextmanager
def _shut_down(pool: ProcessPoolExecutor) -> Iterator[ProcessPoolExecutor]:
    """Stop the worker when the import ends, however it ends: queued batches are dropped, not prepared."""
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


PARENT_CHECK_S = 0.5
"""How often a worker checks that the process that started it is still there (where the kernel
cannot be asked to kill it with its parent)."""
_PR_SET_PDEATHSIG = 1  # prctl(2): https://man7.org/linux/man-pages/man2/prctl.2.html


def _start_worker(parent: int, tuning: ProcessTuning) -> None:
    """Set a worker up: same tuning as its parent, lower priority, Ctrl-C left to the parent, and die with it."""
    own_process(tuning)
    # Let the writer win ties for a core: it is the one stage that cannot run in parallel.
    with contextlib.suppress(OSError):
        os.nice(5)
    # Ctrl-C reaches the whole process group; the parent stops the pool, the worker must not print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """Make sure a `kill -9` of the importing process does not leave this worker running.

    On Linux the kernel sends SIGKILL when the parent exits (prctl PR_SET_PDEATHSIG); the check
    after it covers a parent that died before the call. A watchdog thread that polls the parent id
    covers every platform and a parent that started the worker from a thread that later ended.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="workbench-parent-watch", daemon=True).start()


def _submit(pool: ProcessPoolExecutor, lines: list[Line], forced: Format | None) -> Future[list[Prepared]] | None:
    try:
        return pool.submit(prepare_lines, lines, forced)
    except BrokenProcessPool:
        return None


def _result(pending: _Pending, forced: Format | None) -> tuple[list[Prepared], int]:
    if pending.ready is not None:
        return pending.ready, pending.size
    if pending.future is not None:
        try:
            return pending.future.result(), pending.size
        except BrokenProcessPool:
            pass
    return prepare_lines(pending.lines, forced), pending.size
