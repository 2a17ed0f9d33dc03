"""Measure prediction ingest over HTTP in batches of 500, against direct service ingest in this process.

Starts `workbench api` (uvicorn, one process) on a free loopback port over a fresh store, then:

- direct (the baseline): `PredictionIn.model_validate` + `services.predictions.ingest` on the same
  predictions, in this process, batches of 500: the floor for validating, pricing and writing
  (rollup triggers included) without HTTP;
- http: the same predictions POSTed as JSON bodies of 500 from `--clients` threads with keep-alive
  connections (bodies serialised before the clock starts, so the client's own JSON work is not timed).

The predictions are realistic in size (~500 bytes of text, tokens, latency, unit, tags) and, like live
traffic, in time order (one every 20 ms), so the time indexes grow at their end.

Both stores are checked to hold every prediction afterwards. Target (issue 11): at least 5,000
predictions/s over HTTP on 2 cores. The last line is `ratio=<http rate / direct rate>`.

    .venv/bin/python benchmarks/ingest_bench.py [--predictions 50000] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.domain.predictions import PredictionIn  # noqa: E402
from workbench.services import api_tokens  # noqa: E402
from workbench.services.predictions import ingest  # noqa: E402
from workbench.store import Store  # noqa: E402

BATCH = 500
START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
"""Live traffic arrives in time order: one call every 20 ms from here."""
MODELS = ["amazon.nova-lite-v1:0", "amazon.nova-micro-v1:0", "ft:gpt-4o-mini:acme::support-v3"]
TASKS = ["classify", "extract", "summarise"]


def predictions(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    words = ["the", "order", "arrived", "late", "and", "the", "box", "was", "damaged", "please", "refund", "my", "card", "thanks"]
    made = []
    for i in range(n):
        made.append({
            "ts": (START + timedelta(milliseconds=20 * i)).isoformat(),
            "model_version": rng.choice(MODELS), "task_type": rng.choice(TASKS),
            "input": " ".join(rng.choices(words, k=40)), "output": " ".join(rng.choices(words, k=15)),
            "tokens_in": rng.randint(50, 800), "tokens_out": rng.randint(5, 200), "latency_ms": rng.lognormvariate(6, 0.5),
            "correct": rng.random() < 0.9, "unit_id": f"user-{rng.randint(1, 5000)}", "tags": ["bench"],
        })
    return made


def direct(store: Store, items: list[dict]) -> float:
    started = time.perf_counter()
    for start in range(0, len(items), BATCH):
        ingest(store, [PredictionIn.model_validate(p) for p in items[start:start + BATCH]])
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(db: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "--db", str(db), "api", "--port", str(port)], cwd=ROOT,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the API did not start")


def over_http(port: int, token: str, bodies: list[bytes], clients: int) -> float:
    queue = list(reversed(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            conn.request("POST", "/v1/predictions", body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status != 201:
                failures.append(f"{response.status}: {answer[:200]!r}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    items = predictions(args.predictions)
    bodies = [orjson.dumps(items[s:s + BATCH]) for s in range(0, len(items), BATCH)]
    print(f"{len(items):,} predictions, {len(bodies)} bodies of {BATCH} (~{len(bodies[0]) // 1024} KiB each), "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        base_store = Store(Path(tmp) / "direct.db")
        direct_s = direct(base_store, items)
        direct_rate = len(items) / direct_s
        print(f"direct: {direct_s:.2f} s, {direct_rate:,.0f} predictions/s")

        http_db = Path(tmp) / "http.db"
        token = api_tokens.create(Store(http_db), "bench").token
        port = free_port()
        proc = serve(http_db, port)
        try:
            http_s = over_http(port, token, bodies, args.clients)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        http_rate = len(items) / http_s
        print(f"http:   {http_s:.2f} s, {http_rate:,.0f} predictions/s ({args.clients} clients, keep-alive)")
        for name, db in (("direct", base_store.path), ("http", http_db)):
            with Store(db).connect() as conn:
                (n,) = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()
                (rolled,) = conn.execute("SELECT SUM(n) FROM prediction_daily").fetchone()
            assert n == rolled == len(items), (name, n, rolled)
        print(f"target 5,000/s over HTTP: {'met' if http_rate >= 5000 else 'NOT met'}")
        print(f"ratio={http_rate / direct_rate:.2f}")


if __name__ == "__main__":
    main()
