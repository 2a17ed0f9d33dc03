"""A planted store of N examples for the scale benchmark and the memory tests, and a memory probe.

`build` writes one dataset of N examples of about 0.5 KB each, split 80/10/10, with planted work
for every dataset-wide action:

- near-duplicates: 3% copy a recent example of the same split, one short phrase added;
- cross-split leaks: 1% copy a recent example the same way into another split (train <-> test);
- PII: 2% carry an email, a phone or a card number (stored findings, as an import records them);
- guardrail violations: 1% say a blocked phrase (a `block` rule), 0.5% a warned one (a `warn` rule);
- versions: `v1` frozen with 99% of the examples, `v2` after the last 1% arrived, 1% moved split and
  0.5% were edited, so `diff v1 v2` has added, moved and edited examples to find;
- the near-duplicate state: signatures written with the rows, as an import writes them
  (`near_state.insert_state`), then `duplicates.refresh_near_state`, which recomputes the edited
  ones and merges the band keys into their index, as the first dedup after an import does.

Rows go straight into the store's schema, as search_bench.py builds its store: importing is measured
on its own (import_bench.py, and the `import` action of an exported file). Text is drawn a chunk at a
time with numpy from import_bench's Zipf vocabulary: 200,000 examples build in about a minute.

`Prober` measures how much memory one CLI command needs beyond what its process already held. A
server process (`python -m tests.scale_store serve`) imports the CLI once; per command it first runs
a warm-up (the same command on a tiny store, so lazy imports and caches are in place), then forks a
child that runs the command. The child resets its peak resident size (`/proc/self/clear_refs`) and
reports its peak minus its size at the start: the growth the command caused, SQLite's page cache and
any C allocation included. Where Linux's counters are missing it falls back to tracemalloc's peak
(Python allocations only). Forking spares every measurement an interpreter start and the imports.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from import_bench import TextMaker  # noqa: E402

from workbench.domain.dedup import near_keys  # noqa: E402
from workbench.domain.filters import ExampleFilter  # noqa: E402
from workbench.domain.pii.scanning import find_pii_in_text  # noqa: E402
from workbench.services import cleaning, exporting  # noqa: E402
from workbench.services import duplicates as duplicate_service  # noqa: E402
from workbench.services import versions as version_service  # noqa: E402
from workbench.store import Database, Store, near_state, utcnow  # noqa: E402
from workbench.store import datasets as dataset_rows  # noqa: E402
from workbench.store import examples as example_rows  # noqa: E402

DATASET = "bench"
SEED = 13
CHUNK = 50_000
NEAR_DUP_SHARE = 0.03
LEAK_SHARE = 0.01
PII_SHARE = 0.02
BLOCK_SHARE = 0.01
WARN_SHARE = 0.005
LATE_SHARE = 0.01  # arrive after v1
MOVE_SHARE = 0.01  # change split between v1 and v2
EDIT_SHARE = 0.005  # edited between v1 and v2
RECENT = 2000  # copies are drawn from this many recent examples
USER_WORDS = 17  # about 100 characters
REPLY_WORDS = 52  # about 300 characters
SENTENCE_WORDS = 12
BUILD_CACHE_KIB = 256 * 1024
"""SQLite page cache of the building connection: the band keys land at random places in their index."""
BLOCK_PHRASE = "project nightingale"
WARN_PHRASE = "internal use only"
RULES = (
    ("bench-codename", {"words": BLOCK_PHRASE, "scope": "assistant", "action": "block", "message": "Remove the code name."}),
    ("bench-internal", {"regex": r"\binternal use only\b", "scope": "any", "action": "warn", "message": "Internal text."}),
)

_INSERT = (
    "INSERT INTO examples (id, dataset_id, content_hash, source_line, system, messages, metadata, split, "
    "review_state, tags, pii, pii_count, validation_status, validation_messages, token_count, turn_count, "
    "revision, created_at, updated_at) VALUES (?,?,?,?,NULL,?,?,?,'pending','[]',?,?,'ok','[]',?,2,1,?,?)"
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class Action:
    """One dataset-wide action as the CLI runs it, and the store it needs."""

    name: str
    args: tuple[str, ...]
    """What follows `datasets`; `{out}` is a file to write, `{jsonl}` the store's exported JSONL."""
    target: str = "store"
    """'store': reads the built store; 'copy': writes, so runs on a copy; 'fresh': a new, empty store."""

    def argv(self, db: Path, *, out: Path, jsonl: Path) -> list[str]:
        return ["--db", str(db), "datasets", *(a.format(out=out, jsonl=jsonl) for a in self.args)]


ACTIONS = (
    Action("dedup", ("dedup", DATASET)),
    Action("leakage", ("leakage", DATASET)),
    Action("validate", ("validate", DATASET, "--target", "openai")),
    Action("pii", ("pii", DATASET)),
    Action("guardrails", ("guardrails", DATASET)),
    Action("diff", ("diff", DATASET, "v1", "v2")),
    Action("export", ("export", DATASET, "--format", "openai", "--out", "{out}")),
    Action("pii-scrub", ("pii", DATASET, "--scrub"), "copy"),
    Action("split", ("split", DATASET), "copy"),
    Action("freeze", ("freeze", DATASET, "bench-run"), "copy"),
    Action("dedup-resolve", ("dedup", DATASET, "--resolve"), "copy"),
    Action("import", ("import", "{jsonl}", "--name", "imported"), "fresh"),
)
"""Every dataset-wide action, in running order: the writing ones after the reading ones, import last."""


# ------------------------------------------------------------------------------------------- build


class Prose:
    """Zipf-distributed words (import_bench's vocabulary), drawn many paragraphs at a time."""

    def __init__(self, seed: int) -> None:
        self.text = TextMaker(seed)
        self.words = np.array(self.text.words, dtype=object)
        cum = np.asarray(self.text.cum)
        self.cum = cum / cum[-1]
        self.draw = np.random.default_rng(seed)

    def paragraphs(self, count: int, words: int) -> list[str]:
        """Return `count` paragraphs of `words` words, a full stop after every SENTENCE_WORDS."""
        drawn = self.words[np.searchsorted(self.cum, self.draw.random((count, words)), side="right")]
        drawn[:, SENTENCE_WORDS - 1 :: SENTENCE_WORDS] += "."
        return [" ".join(row) for row in drawn.tolist()]


class Maker:
    """Seeded examples with the planted near-duplicates, leaks, PII and rule violations."""

    def __init__(self, seed: int) -> None:
        self.prose = Prose(seed)
        self.rng = self.prose.text.rng
        self.recent: deque[tuple[str, str, str]] = deque(maxlen=RECENT)

    def examples(self, count: int, first: int) -> list[tuple[str, str, str]]:
        """Return (user, reply, split) of examples first..first+count-1."""
        users = self.prose.paragraphs(count, USER_WORDS)
        replies = self.prose.paragraphs(count, REPLY_WORDS)
        return [self._example(first + k, users[k], replies[k]) for k in range(count)]

    def _example(self, i: int, user: str, reply: str) -> tuple[str, str, str]:
        rng = self.rng
        roll = rng.random()
        if self.recent and roll < NEAR_DUP_SHARE + LEAK_SHARE:
            user, reply, split = rng.choice(self.recent)
            reply = f"{reply} (ref {i})"  # a new hash, nearly the same text
            if roll >= NEAR_DUP_SHARE:
                split = "test" if split == "train" else "train"
        else:
            split_roll = rng.random()
            split = "train" if split_roll < 0.8 else "validation" if split_roll < 0.9 else "test"
            self.recent.append((user, reply, split))
        if rng.random() < PII_SHARE:
            user = f"{user} {self.prose.text.pii()}"
        if rng.random() < BLOCK_SHARE:
            reply = f"{reply} This is about {BLOCK_PHRASE}."
        if rng.random() < WARN_SHARE:
            reply = f"{reply} Marked {WARN_PHRASE}."
        return user, reply, split


def _row(i: int, dataset_id: int, user: str, reply: str, split: str, now: str) -> tuple:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    findings = [
        f.model_dump(mode="json")
        for at, text in enumerate((user, reply))
        for f in find_pii_in_text(text, f"messages[{at}]")
    ] if ("@" in user or "+1" in user or "card" in user) else []
    encoded = orjson.dumps(messages)
    digest = hashlib.blake2b(encoded, digest_size=16).hexdigest()
    return (i, dataset_id, digest, i, encoded.decode(), '{"source":"bench"}', split, orjson.dumps(findings).decode(),
            len(findings), (len(user) + len(reply)) // 4, now, now)


def _insert(db: Database, maker: Maker, dataset_id: int, first: int, last: int, n: int, log: Log, started: float) -> None:
    """Insert examples first..last (inclusive) in chunks, with their search index."""
    now = utcnow()
    for base in range(first, last + 1, CHUNK):
        top = min(base + CHUNK - 1, last)
        made = maker.examples(top - base + 1, base)
        rows = [_row(base + k, dataset_id, user, reply, split, now) for k, (user, reply, split) in enumerate(made)]
        texts = [(base + k, f"{user}\n{reply}") for k, (user, reply, _) in enumerate(made)]
        # Band keys as an import computes them, from the text search indexes (`Example.plain_text()`).
        near = [(i, row[2], *keys) for (i, _), row, keys in zip(texts, rows, near_keys([t for _, t in texts]), strict=True)]
        with db.atomic():
            db.conn.executemany(_INSERT, rows)
            db.conn.executemany("INSERT INTO examples_fts (rowid, text) VALUES (?, ?)", texts)
            example_rows.index_metadata(db, base, top)
            near_state.insert_state(db, dataset_id, near)
        elapsed = time.perf_counter() - started
        log(f"  built {top:>9,} / {n:,}  {elapsed:6.0f} s  eta {elapsed / top * (n - top):5.0f} s")


def _change_for_v2(db: Database, maker: Maker, early: int) -> None:
    """Move some early examples to another split and edit others, as curation between two versions does."""
    rng = maker.rng
    moved = rng.sample(range(1, early + 1), max(1, int(early * MOVE_SHARE)))
    edited = rng.sample(range(1, early + 1), max(1, int(early * EDIT_SHARE)))
    conn = db.conn
    with db.atomic():
        conn.executemany(
            "UPDATE examples SET split = CASE split WHEN 'train' THEN 'validation' ELSE 'train' END WHERE id = ?",
            [(i,) for i in moved],
        )
        for i in edited:
            (raw,) = conn.execute("SELECT messages FROM examples WHERE id = ?", (i,)).fetchone()
            messages = orjson.loads(raw)
            messages[1]["content"] += " Edited for clarity."
            encoded = orjson.dumps(messages)
            digest = hashlib.blake2b(encoded, digest_size=16).hexdigest()
            conn.execute("UPDATE examples SET messages = ?, content_hash = ?, revision = 2 WHERE id = ?", (encoded.decode(), digest, i))
            conn.execute("DELETE FROM examples_fts WHERE rowid = ?", (i,))
            conn.execute("INSERT INTO examples_fts (rowid, text) VALUES (?, ?)", (i, f"{messages[0]['content']}\n{messages[1]['content']}"))


def refresh_near_state(store: Store, log: Log = print) -> None:
    """Recompute the state of examples changed since they were written and merge pending band keys, as a dedup does."""
    started = time.perf_counter()
    count = duplicate_service.refresh_near_state(store, DATASET)
    log(f"  near-duplicate state of {count:,} examples refreshed in {time.perf_counter() - started:.0f} s")


def build(path: Path, n: int, seed: int = SEED, log: Log = print) -> None:
    """Fill a fresh store with the planted dataset, its guardrail rules, versions v1 and v2 and near state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_store(path)
    store = Store(path)
    for name, fields in RULES:
        cleaning.add_rule(store, name=name, **fields)  # type: ignore[arg-type]
    maker = Maker(seed)
    early = n - max(1, int(n * LATE_SHARE))
    started = time.perf_counter()
    with store.connect() as db:
        db.conn.execute(f"PRAGMA cache_size = -{BUILD_CACHE_KIB}")
        dataset_id = dataset_rows.create_dataset(db, DATASET).id
        _insert(db, maker, dataset_id, 1, early, n, log, started)
    version_service.freeze(store, DATASET, "v1", note="before the late arrivals")
    with store.connect() as db:
        db.conn.execute(f"PRAGMA cache_size = -{BUILD_CACHE_KIB}")
        _insert(db, maker, dataset_id, early + 1, n, n, log, started)
        _change_for_v2(db, maker, early)
    version_service.freeze(store, DATASET, "v2", note="late arrivals, moves and edits")
    refresh_near_state(store, log)


def export_jsonl(path: Path, out: Path) -> int:
    """Write the dataset as OpenAI JSONL, PII kept, for the `import` action to read; return the count."""
    return exporting.export_path(Store(path), DATASET, "openai", out, scrub_pii=False).written


def _schema(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return set(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
    finally:
        conn.close()


def is_current(path: Path) -> bool:
    """Say whether a store has the schema a new one gets (a migration not yet shipped may change in place)."""
    with tempfile.TemporaryDirectory() as tmp:
        Store(Path(tmp) / "new.db")
        return _schema(path) == _schema(Path(tmp) / "new.db")


def is_built(path: Path, n: int) -> bool:
    """Say whether `path` holds the planted dataset of n examples with both of its versions, in today's schema."""
    if not path.exists() or not is_current(path):
        return False
    store = Store(path)
    with store.connect() as db:
        dataset = dataset_rows.find_dataset(db, DATASET)
        if dataset is None or example_rows.count_examples(db, dataset.id, ExampleFilter()) != n:
            return False
    return {"v1", "v2"} <= {v.name for v in version_service.list_versions(store, DATASET)}


def ensure_built(path: Path, n: int, *, jsonl: Path | None = None, rebuild: bool = False, seed: int = SEED, log: Log = print) -> None:
    """Build the store at `path` unless it is there; complete its near-duplicate state and its JSONL export."""
    started = time.perf_counter()
    if rebuild or not is_built(path, n):
        log(f"building {path} with {n:,} examples")
        build(path, n, seed, log)
        if jsonl is not None:
            jsonl.unlink(missing_ok=True)
    else:
        log(f"reusing {path} ({n:,} examples)")
    store = Store(path)
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, DATASET)
        behind = near_state.count_stale(db, dataset_id) + near_state.count_pending(db, dataset_id)[0]
    if behind:  # band keys not merged yet, or a store changed since it was built
        refresh_near_state(store, log)
    if jsonl is not None and not jsonl.exists():
        export_jsonl(path, jsonl)
    log(f"ready in {time.perf_counter() - started:.0f} s, {path.stat().st_size / 1e9:.2f} GB")


def remove_store(path: Path) -> None:
    """Delete a store file with its write-ahead log and shared-memory file."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_store(path: Path, to: Path) -> None:
    """Copy a store file whole: fold its write-ahead log in first so the one file holds everything."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    remove_store(to)
    shutil.copyfile(path, to)


# ------------------------------------------------------------------------------------------- probe

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class Measurement:
    """What one command needed: its peak memory beyond what its process held before it, and more."""

    growth_mb: float
    """Peak resident size minus the size at the start (or tracemalloc's peak where Linux's counters are missing)."""
    worker_mb: float
    """Growth of the worker processes the command waited for (an import's parser), 0 when it had none."""
    base_mb: float
    """Resident size of the warmed-up process before the command: interpreter, imports, caches."""
    seconds: float
    code: int
    error: str
    mode: str
    """'rss' (Linux's peak resident size) or 'tracemalloc' (Python allocations only)."""

    @property
    def total_mb(self) -> float:
        """Growth of the command and of its workers together: the most the command added at once, or more."""
        return self.growth_mb + self.worker_mb

    @property
    def peak_mb(self) -> float:
        """The process's whole peak: the warmed-up size plus the growth (plus the workers')."""
        return self.base_mb + self.total_mb

    @property
    def ok(self) -> bool:
        """Exit 1 is a verdict for validate, leakage and guardrails, not a failure."""
        return self.code in (0, 1) and not self.error


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+)", _STATUS.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _rss_mode() -> bool:
    """Linux lets a process reset its own peak resident size (`echo 5 > /proc/self/clear_refs`)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _STATUS.exists()


def run_cli(argv: Sequence[str]) -> tuple[int, str]:
    """Run one CLI command in this process; return its exit status and what failed, if anything."""
    from workbench.cli import main

    try:
        main.main(list(argv), standalone_mode=False)
    except SystemExit as exc:
        return (exc.code if isinstance(exc.code, int) else 1), ""
    except Exception as exc:  # noqa: BLE001 - reported to the test, which names the action
        return 1, f"{type(exc).__name__}: {exc}"
    return 0, ""


def _measure(argv: Sequence[str]) -> Measurement:
    """Run argv and measure it; called in a freshly forked child."""
    gc.collect()
    rss = _rss_mode()
    base_kb = _status_kb("VmRSS") if rss else 0
    if not rss:
        tracemalloc.start()
    started = time.perf_counter()
    code, error = run_cli(argv)
    seconds = time.perf_counter() - started
    growth_kb = _status_kb("VmHWM") - base_kb if rss else tracemalloc.get_traced_memory()[1] // 1024
    # A worker forked from here starts at this process's size: what it held beyond that is its own.
    workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rss else 0
    worker_kb = max(0, workers_kb - base_kb) if workers_kb else 0
    return Measurement(growth_kb / 1024, worker_kb / 1024, base_kb / 1024, seconds, code, error, "rss" if rss else "tracemalloc")


def _forked(argv: Sequence[str]) -> Measurement:
    """Measure argv in a forked child, so each command starts from the same warmed-up process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report through the pipe, leave without running any cleanup
        os.close(read)
        try:
            payload = orjson.dumps(asdict(_measure(argv)))
        except BaseException as exc:  # noqa: BLE001 - anything at all must reach the parent
            payload = orjson.dumps(asdict(Measurement(0, 0, 0, 0, 1, f"probe failed: {exc!r}", "")))
        with os.fdopen(write, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    if not payload:
        return Measurement(0, 0, 0, 0, 1, "the measuring child died without a report", "")
    return Measurement(**orjson.loads(payload))


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer each request line {"warm": argv or null, "run": argv} with one Measurement line."""
    for line in requests:
        request = orjson.loads(line)
        if request.get("warm"):
            run_cli(request["warm"])
        replies.write(orjson.dumps(asdict(_forked(request["run"]))) + b"\n")
        replies.flush()


def _serve_main() -> None:
    """Keep the protocol on the real stdout; point fd 1 (what commands print) at /dev/null."""
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    # Faults and crashes of the probe itself go to stderr, which the client keeps in a file.
    serve(sys.stdin.buffer, replies)


class Prober:
    """A client for one probe server; `submit` then `result`, so two servers can measure at once."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.scale_store", "serve"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env={**os.environ, "WORKBENCH_PROGRESS": "0"},
        )
        self._pending = 0

    def submit(self, run: Sequence[str], warm: Sequence[str] | None = None) -> None:
        """Ask for argv `run` to be measured, after a warm-up run of `warm`."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(orjson.dumps({"warm": list(warm or []), "run": list(run)}) + b"\n")
        self._proc.stdin.flush()
        self._pending += 1

    def result(self) -> Measurement:
        """Wait for the oldest submitted measurement."""
        assert self._proc.stdout is not None and self._pending > 0
        line = self._proc.stdout.readline()
        self._pending -= 1
        if not line:
            return Measurement(0, 0, 0, 0, 1, f"the probe server stopped (exit {self._proc.poll()})", "")
        return Measurement(**orjson.loads(line))

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


def chunks(path: Path, parts: int) -> Iterator[bytes]:
    """Yield a JSONL file's lines in `parts` consecutive runs (the last takes the remainder)."""
    lines = path.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    for at in range(0, len(lines), size):
        yield b"".join(lines[at : at + size])


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        raise SystemExit("usage: python -m tests.scale_store serve")
    _serve_main()
