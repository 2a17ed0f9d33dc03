"""Measure every dataset-wide action at a million examples: wall time and peak memory, through the CLI.

Builds (once, cached as benchmarks/out/scale_<n>.db unless --db names another file) one dataset of N
examples of about 0.5 KB each, split 80/10/10, with planted work for every action:

- near-duplicates: 3% copy a recent example of the same split, one short phrase added;
- cross-split leaks: 1% copy a recent example the same way into another split (train <-> test);
- PII: 2% carry an email, a phone or a card number (stored findings, as an import records them);
- guardrail violations: 1% say a blocked phrase (a `block` rule), 0.5% a warned one (a `warn` rule);
- versions: `v1` frozen with 99% of the examples, `v2` after the last 1% arrived, 1% moved split and
  0.5% were edited, so `diff v1 v2` has added, moved and edited examples to find.

Rows go straight into the store's schema (`Store(path)` creates it), as search_bench.py builds its
store: the import path is measured by import_bench.py, this file measures what comes after.

Each action then runs through the CLI (`python -m workbench --db PATH datasets ...`) in its own
subprocess, reaped with `os.wait4` so its own peak RSS (`ru_maxrss`, any worker it waited for
included) comes back with its exit status. Actions that write (pii --scrub, split, freeze,
dedup --resolve) run on a copy made for this run, in that order, so the cached store stays as built.
An action past --timeout is killed and recorded as `timeout`.

The floor is a subprocess that reads and parses every example of the dataset through the store's own
iteration (`iter_examples`), timed the same way (interpreter start included, as for every action);
the faster of two runs counts, the first also warming the OS cache. `x floor` is an action's time
over it. Exit status 1 from validate, leakage or guardrails is their verdict, not a failure.

The issue's targets: every action at most 20x the floor, under 1 GB peak at a million examples.
The last line is `worst_ratio=<x> worst_rss_mb=<y>` (inf when an action timed out).

    .venv/bin/python benchmarks/scale_bench.py [--n 1000000] [--db PATH] [--rebuild]
        [--only ACTION[,ACTION]] [--timeout 900] [--seed 13]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_bench import TextMaker  # noqa: E402

from workbench.domain.filters import ExampleFilter  # noqa: E402
from workbench.domain.pii.scanning import find_pii_in_text  # noqa: E402
from workbench.services import cleaning  # noqa: E402
from workbench.services import versions as version_service  # noqa: E402
from workbench.store import Store, utcnow  # noqa: E402
from workbench.store import datasets as dataset_rows  # noqa: E402
from workbench.store import examples as example_rows  # noqa: E402

DATASET = "bench"
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
BLOCK_PHRASE = "project nightingale"
WARN_PHRASE = "internal use only"
RULES = (
    ("bench-codename", {"words": BLOCK_PHRASE, "scope": "assistant", "action": "block", "message": "Remove the code name."}),
    ("bench-internal", {"regex": r"\binternal use only\b", "scope": "any", "action": "warn", "message": "Internal text."}),
)
TIMEOUT_S = 900.0

_INSERT = (
    "INSERT INTO examples (id, dataset_id, content_hash, source_line, system, messages, metadata, split, "
    "review_state, tags, pii, pii_count, validation_status, validation_messages, token_count, turn_count, "
    "revision, created_at, updated_at) VALUES (?,?,?,?,NULL,?,?,?,'pending','[]',?,?,'ok','[]',?,2,1,?,?)"
)


@dataclass(frozen=True)
class Action:
    """One dataset-wide action as the CLI runs it; `writes` ones run on this run's copy of the store."""

    name: str
    args: tuple[str, ...]
    writes: bool = False


def actions(export_to: Path) -> list[Action]:
    """Return every timed action in running order (the writing ones last, on the copy)."""
    return [
        Action("dedup", ("dedup", DATASET)),
        Action("leakage", ("leakage", DATASET)),
        Action("validate", ("validate", DATASET, "--target", "openai")),
        Action("pii", ("pii", DATASET)),
        Action("guardrails", ("guardrails", DATASET)),
        Action("diff", ("diff", DATASET, "v1", "v2")),
        Action("export", ("export", DATASET, "--format", "openai", "--out", str(export_to))),
        Action("pii-scrub", ("pii", DATASET, "--scrub"), writes=True),
        Action("split", ("split", DATASET), writes=True),
        Action("freeze", ("freeze", DATASET, "bench-run"), writes=True),
        Action("dedup-resolve", ("dedup", DATASET, "--resolve"), writes=True),
    ]


# ------------------------------------------------------------------------------------------- build


class Maker:
    """Seeded examples with the planted near-duplicates, leaks, PII and rule violations."""

    def __init__(self, seed: int) -> None:
        self.text = TextMaker(seed)
        self.rng = self.text.rng
        self.recent: deque[tuple[str, str, str]] = deque(maxlen=RECENT)

    def example(self, i: int) -> tuple[str, str, str]:
        """Return (user, reply, split) of example i."""
        rng = self.rng
        roll = rng.random()
        if self.recent and roll < NEAR_DUP_SHARE + LEAK_SHARE:
            user, reply, split = rng.choice(self.recent)
            reply = f"{reply} (ref {i})"  # a new hash, nearly the same text
            if roll >= NEAR_DUP_SHARE:
                split = "test" if split == "train" else "train"
        else:
            user = self.text.paragraph(100)
            reply = self.text.paragraph(300)
            split_roll = rng.random()
            split = "train" if split_roll < 0.8 else "validation" if split_roll < 0.9 else "test"
            self.recent.append((user, reply, split))
        if rng.random() < PII_SHARE:
            user = f"{user} {self.text.pii()}"
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


def _insert(db: object, maker: Maker, dataset_id: int, first: int, last: int, started: float, n: int) -> None:
    """Insert examples first..last (inclusive) in chunks, with their search index, printing progress."""
    now = utcnow()
    for base in range(first, last + 1, CHUNK):
        top = min(base + CHUNK - 1, last)
        rows: list[tuple] = []
        texts: list[tuple[int, str]] = []
        for i in range(base, top + 1):
            user, reply, split = maker.example(i)
            rows.append(_row(i, dataset_id, user, reply, split, now))
            texts.append((i, f"{user}\n{reply}"))
        with db.atomic():  # type: ignore[attr-defined]
            db.conn.executemany(_INSERT, rows)  # type: ignore[attr-defined]
            db.conn.executemany("INSERT INTO examples_fts (rowid, text) VALUES (?, ?)", texts)  # type: ignore[attr-defined]
            example_rows.index_metadata(db, base, top)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        print(f"  built {top:>9,} / {n:,}  {elapsed:6.0f} s  eta {elapsed / top * (n - top):5.0f} s", flush=True)


def _change_for_v2(db: object, maker: Maker, early: int) -> None:
    """Move some early examples to another split and edit others, as curation between two versions does."""
    rng = maker.rng
    moved = rng.sample(range(1, early + 1), max(1, int(early * MOVE_SHARE)))
    edited = rng.sample(range(1, early + 1), max(1, int(early * EDIT_SHARE)))
    conn = db.conn  # type: ignore[attr-defined]
    with db.atomic():  # type: ignore[attr-defined]
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


def build(path: Path, n: int, seed: int) -> None:
    """Fill a fresh store with the planted dataset, its guardrail rules and versions v1 and v2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(path)
    for name, fields in RULES:
        cleaning.add_rule(store, name=name, **fields)  # type: ignore[arg-type]
    maker = Maker(seed)
    early = n - max(1, int(n * LATE_SHARE))
    started = time.perf_counter()
    with store.connect() as db:
        dataset_id = dataset_rows.create_dataset(db, DATASET).id
        _insert(db, maker, dataset_id, 1, early, started, n)
    version_service.freeze(store, DATASET, "v1", note="before the late arrivals")
    with store.connect() as db:
        _insert(db, maker, dataset_id, early + 1, n, started, n)
        _change_for_v2(db, maker, early)
    version_service.freeze(store, DATASET, "v2", note="late arrivals, moves and edits")


def _ready(path: Path, n: int) -> bool:
    if not path.exists():
        return False
    store = Store(path)
    with store.connect() as db:
        dataset = dataset_rows.find_dataset(db, DATASET)
        if dataset is None or example_rows.count_examples(db, dataset.id, ExampleFilter()) != n:
            return False
    return {"v1", "v2"} <= {v.name for v in version_service.list_versions(store, DATASET)}


def _copy(path: Path, to: Path) -> None:
    """Copy a store file whole: fold its write-ahead log in first so the one file holds everything."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{to}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, to)


# ------------------------------------------------------------------------------------------- measure


@dataclass
class Outcome:
    """What one child process did: wall seconds, peak RSS in MB, exit code, last line of output."""

    seconds: float
    rss_mb: float
    code: int
    timed_out: bool
    said: str


def run_child(argv: list[str], timeout: float) -> Outcome:
    """Run argv in its own session and reap it with wait4, which returns that child's own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, start_new_session=True)
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = [line for line in (out.read() + err.read()).decode(errors="replace").splitlines() if line.strip()]
    said = lines[-1].strip() if lines else ""
    if proc.returncode not in (0, 1) and not fired.is_set():
        said = " | ".join(line.strip() for line in lines[-3:])
    return Outcome(seconds, usage.ru_maxrss / 1024, proc.returncode, fired.is_set(), said)


_FLOOR = """
import sys
from workbench.store import Store
from workbench.store import datasets as dataset_rows, examples as example_rows
store = Store(sys.argv[1])
with store.connect() as db:
    n = sum(1 for _ in example_rows.iter_examples(db, dataset_rows.dataset_id(db, sys.argv[2])))
print(f"read {n} examples")
"""


def measure(path: Path, chosen: set[str] | None, timeout: float) -> int:
    """Run the floor and each chosen action; print the table and the worst figures; return an exit status."""
    floor_runs = [run_child([sys.executable, "-c", _FLOOR, str(path), DATASET], timeout) for _ in range(2)]
    floor = min(floor_runs, key=lambda o: o.seconds)
    if floor.code != 0:
        print(f"the floor failed: {'timed out' if floor.timed_out else floor.said or f'exit {floor.code}'}")
        return 1
    print(f"\n{'action':<15}{'seconds':>10}{'x floor':>9}{'peak MB':>9}{'exit':>6}  output")
    print(f"{'floor (read)':<15}{floor.seconds:10.2f}{1:9.2f}{floor.rss_mb:9.0f}{floor.code:>6}  {floor.said}")
    work = path.with_name(f"{path.stem}.work.db")
    worst_ratio, worst_rss, failed = 0.0, 0.0, False
    with tempfile.TemporaryDirectory(prefix="scale_bench_") as tmp:
        copied = False
        for action in actions(Path(tmp) / "export.jsonl"):
            if chosen and action.name not in chosen:
                continue
            if action.writes and not copied:
                _copy(path, work)
                copied = True
            db = work if action.writes else path
            got = run_child([sys.executable, "-m", "workbench", "--db", str(db), "datasets", *action.args], timeout)
            worst_rss = max(worst_rss, got.rss_mb)
            if got.timed_out:
                worst_ratio = math.inf
                print(f"{action.name:<15}{'timeout':>10}{'':>9}{got.rss_mb:9.0f}{'':>6}  killed after {timeout:.0f} s")
                continue
            ratio = got.seconds / floor.seconds
            if got.code in (0, 1):
                worst_ratio = max(worst_ratio, ratio)
            else:
                failed = True
            print(f"{action.name:<15}{got.seconds:10.2f}{ratio:9.2f}{got.rss_mb:9.0f}{got.code:>6}  {got.said[:90]}")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}{suffix}").unlink(missing_ok=True)
    print("\ntargets (issue 9): x floor <= 20, peak < 1024 MB at 1,000,000 examples")
    print(f"worst_ratio={worst_ratio:.2f} worst_rss_mb={worst_rss:.0f}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples in the dataset (default 1,000,000)")
    parser.add_argument("--db", type=Path, help="store file to build or reuse (default benchmarks/out/scale_<n>.db)")
    parser.add_argument("--rebuild", action="store_true", help="build the store even if the file has the examples")
    names = [a.name for a in actions(Path("x"))]
    parser.add_argument("--only", help=f"comma-separated actions to run, of: {','.join(names)}")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before an action is killed (default 900)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)

    chosen = {a.strip() for a in args.only.split(",") if a.strip()} if args.only else None
    if chosen and chosen - set(names):
        parser.error(f"unknown action(s) {', '.join(sorted(chosen - set(names)))}; choose from {', '.join(names)}")
    suffix = "1m" if args.n == 1_000_000 else str(args.n)
    path: Path = args.db or ROOT / "benchmarks" / "out" / f"scale_{suffix}.db"
    if args.rebuild or not _ready(path, args.n):
        print(f"building {path} with {args.n:,} examples (several minutes for 1M)", flush=True)
        t = time.perf_counter()
        build(path, args.n, args.seed)
        print(f"built in {time.perf_counter() - t:.0f} s, {path.stat().st_size / 1e9:.2f} GB", flush=True)
    else:
        print(f"reusing {path} ({args.n:,} examples)", flush=True)
    return measure(path, chosen, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
