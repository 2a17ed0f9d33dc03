"""Measure every dataset-wide action at a million examples: wall time and peak memory, through the CLI.

Builds (once, cached as benchmarks/out/scale_<n>.db unless --db names another file) the planted
store of tests/scale_store.py: one dataset of N examples of about 0.5 KB each, split 80/10/10, with
near-duplicates, cross-split leaks, PII, guardrail violations and versions v1/v2 to find, and the
near-duplicate state an import keeps. The build also exports the dataset once (scale_<n>.jsonl, PII
kept) for the `import` action to read. --rebuild after the builder changes.

Each action then runs through the CLI (`python -m workbench --db PATH datasets ...`) in its own
subprocess, reaped with `os.wait4` so its own peak RSS (`ru_maxrss`, any worker it waited for
included) comes back with its exit status. Actions that write (pii --scrub, split, freeze,
dedup --resolve) run on a copy made for this run, in that order, so the cached store stays as built;
`import` reads the exported file into a new store. An action past --timeout is killed and recorded
as `timeout`.

The floor is a subprocess that reads and parses every example of the dataset through the store's own
iteration (`iter_examples`), timed the same way (interpreter start included, as for every action);
the faster of two runs counts, the first also warming the OS cache. `x floor` is an action's time
over it. Exit status 1 from validate, leakage or guardrails is their verdict, not a failure.

The issue's targets: every action at most 20x the floor, under 1 GB peak at a million examples, and
within 1.5x of its peak at 100,000 (compare this run's results file with scale_100000.json).
Figures go to benchmarks/out/scale_<n>.json as well as the table; the last line is
`worst_ratio=<x> worst_rss_mb=<y>` (inf when an action timed out).

    .venv/bin/python benchmarks/scale_bench.py [--n 1000000] [--db PATH] [--rebuild]
        [--only ACTION[,ACTION]] [--timeout 900] [--seed 13]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scale_store import ACTIONS, DATASET, SEED, Action, copy_store, ensure_built, remove_store  # noqa: E402

TIMEOUT_S = 900.0


# ------------------------------------------------------------------------------------------- measure


@dataclass
class Outcome:
    """What one child process did: wall seconds, peak RSS in MB, exit code, last line of output."""

    seconds: float
    rss_mb: float
    code: int
    timed_out: bool
    said: str


# A child's `ru_maxrss` as wait4 reports it is at least this process's own peak: Linux carries a
# process's peak across exec, and subprocess starts children with vfork. So each child reports its
# own peak as it exits: VmHWM (its memory since exec) or, where larger, a worker's (`RUSAGE_CHILDREN`).
_PEAK = """
import atexit, os, re, resource
def _peak():
    with open("/proc/self/status") as status:
        own = int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))
    with open(os.environ["SCALE_BENCH_PEAK"], "w") as out:
        out.write(str(max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)))
if os.path.exists("/proc/self/status"):
    atexit.register(_peak)
"""

_CLI = _PEAK + """
import runpy, sys
sys.argv[0] = "workbench"
runpy.run_module("workbench", run_name="__main__", alter_sys=True)
"""


def run_child(argv: list[str], timeout: float) -> Outcome:
    """Run argv in its own session; its peak RSS is what it reports, or wait4's where it cannot."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as peak:
        started = time.perf_counter()
        env = {**os.environ, "SCALE_BENCH_PEAK": peak.name}
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, start_new_session=True, env=env)
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
        reported = Path(peak.name).read_text().strip()
    said = lines[-1].strip() if lines else ""
    if proc.returncode not in (0, 1) and not fired.is_set():
        said = " | ".join(line.strip() for line in lines[-3:])
    rss_kb = int(reported) if reported else usage.ru_maxrss
    return Outcome(seconds, rss_kb / 1024, proc.returncode, fired.is_set(), said)


_FLOOR = _PEAK + """
import sys
from workbench.store import Store
from workbench.store import datasets as dataset_rows, examples as example_rows
store = Store(sys.argv[1])
with store.connect() as db:
    n = sum(1 for _ in example_rows.iter_examples(db, dataset_rows.dataset_id(db, sys.argv[2])))
print(f"read {n} examples")
"""


def _fill(action: Action, path: Path, work: Path, tmp: Path) -> list[str]:
    """Return the CLI's argv for an action: the store it reads or the copy it writes, and its files."""
    db = {"store": path, "copy": work, "fresh": tmp / "imported.db"}[action.target]
    return [sys.executable, "-c", _CLI, *action.argv(db, out=tmp / "export.jsonl", jsonl=path.with_suffix(".jsonl"))]


def _row(name: str, got: Outcome, floor: Outcome) -> dict[str, object]:
    ratio = math.inf if got.timed_out else got.seconds / floor.seconds
    return {"action": name, **asdict(got), "ratio": ratio, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _print_row(row: dict) -> None:
    if row["timed_out"]:
        print(f"{row['action']:<15}{'timeout':>10}{'':>9}{row['rss_mb']:9.0f}{'':>6}  killed after {row['seconds']:.0f} s")
        return
    print(f"{row['action']:<15}{row['seconds']:10.2f}{row['ratio']:9.2f}{row['rss_mb']:9.0f}{row['code']:>6}  {row['said'][:90]}")


def measure(path: Path, chosen: set[str] | None, timeout: float) -> tuple[Outcome, list[dict]] | None:
    """Run the floor and each chosen action, printing a row as each ends; None when the floor failed."""
    floor_runs = [run_child([sys.executable, "-c", _FLOOR, str(path), DATASET], timeout) for _ in range(2)]
    floor = min(floor_runs, key=lambda o: o.seconds)
    if floor.code != 0:
        print(f"the floor failed: {'timed out' if floor.timed_out else floor.said or f'exit {floor.code}'}")
        return None
    print(f"\n{'action':<15}{'seconds':>10}{'x floor':>9}{'peak MB':>9}{'exit':>6}  output")
    print(f"{'floor (read)':<15}{floor.seconds:10.2f}{1:9.2f}{floor.rss_mb:9.0f}{floor.code:>6}  {floor.said}")
    work = path.with_name(f"{path.stem}.work.db")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="scale_bench_") as tmp:
        for action in ACTIONS:
            if chosen and action.name not in chosen:
                continue
            if action.target == "copy" and not work.exists():
                copy_store(path, work)
            rows.append(_row(action.name, run_child(_fill(action, path, work, Path(tmp)), timeout), floor))
            _print_row(rows[-1])
            remove_store(Path(tmp) / "imported.db")
    remove_store(work)
    return floor, rows


def save(results: Path, n: int, floor: Outcome, rows: list[dict]) -> None:
    """Write the figures to the results file, keeping the actions this run did not measure (--only)."""
    kept: dict = orjson.loads(results.read_bytes()) if results.exists() else {}
    actions = {row["action"]: row for row in kept.get("actions", []) if kept.get("n") == n}
    actions.update({row["action"]: row for row in rows})
    ordered = [actions[a.name] for a in ACTIONS if a.name in actions]
    figures = {
        "n": n,
        "floor": asdict(floor),
        "actions": ordered,
        **worst(ordered),
        "targets": {"ratio": 20, "rss_mb_at_1m": 1024, "growth_per_decade": 1.5},
    }
    results.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))


def worst(rows: list[dict]) -> dict[str, float]:
    """The slowest ratio (inf for a timeout; failed actions left out) and the largest peak of some rows."""
    ratios = [row["ratio"] for row in rows if row["code"] in (0, 1) or row["timed_out"]]
    return {"worst_ratio": max(ratios, default=0.0), "worst_rss_mb": max((row["rss_mb"] for row in rows), default=0.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples in the dataset (default 1,000,000)")
    parser.add_argument("--db", type=Path, help="store file to build or reuse (default benchmarks/out/scale_<n>.db)")
    parser.add_argument("--rebuild", action="store_true", help="build the store even if the file has the examples")
    names = [a.name for a in ACTIONS]
    parser.add_argument("--only", help=f"comma-separated actions to run, of: {','.join(names)}")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before an action is killed (default 900)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    chosen = {a.strip() for a in args.only.split(",") if a.strip()} if args.only else None
    if chosen and chosen - set(names):
        parser.error(f"unknown action(s) {', '.join(sorted(chosen - set(names)))}; choose from {', '.join(names)}")
    suffix = "1m" if args.n == 1_000_000 else str(args.n)
    path: Path = args.db or ROOT / "benchmarks" / "out" / f"scale_{suffix}.db"
    ensure_built(path, args.n, jsonl=path.with_suffix(".jsonl"), rebuild=args.rebuild, seed=args.seed, log=_say)
    measured = measure(path, chosen, args.timeout)
    if measured is None:
        return 1
    floor, rows = measured
    save(path.with_suffix(".json"), args.n, floor, rows)
    print(f"\ntargets (issue 9): x floor <= 20, peak < 1024 MB at 1,000,000 examples; figures in {path.with_suffix('.json')}")
    print("worst_ratio={worst_ratio:.2f} worst_rss_mb={worst_rss_mb:.0f}".format(**worst(rows)))
    return 1 if any(row["code"] not in (0, 1) and not row["timed_out"] for row in rows) else 0


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
