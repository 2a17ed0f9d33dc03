"""Measure a comparison matrix: 6 variants x 500 inputs against a local double answering in 50 ms.

The double (tests/doubles/chat_server.py) serves the OpenAI chat completions endpoint and waits
`--delay-ms` before each answer; the real `openai` SDK client calls it. The baseline is the ideal
wall time of the matrix, cells x delay / concurrency: what a runner with no overhead of its own
would take. The first run is timed against it (target: within 1.5x); then the same matrix runs
again, answered from the completion cache (target: under 2 s), and the ratio of the two is printed.

    .venv/bin/python benchmarks/compare_bench.py [--variants 6] [--inputs 500] [--delay-ms 50] [--concurrency 8]

The last line is `first_ratio=<x> cached_s=<y>`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer  # noqa: E402
from workbench.providers.inference import client_for  # noqa: E402
from workbench.services import comparisons, importing, templates  # noqa: E402
from workbench.store import Store  # noqa: E402


def build(folder: Path, inputs: int, variants: int) -> tuple[Store, list[str]]:
    store = Store(folder / "bench.db")
    lines = b"".join(
        orjson.dumps({"messages": [{"role": "user", "content": f"Question {i}: where is order {i * 13}?"},
                                   {"role": "assistant", "content": f"Answer {i}"}]}) + b"\n"
        for i in range(inputs)
    )
    path = folder / "inputs.jsonl"
    path.write_bytes(lines)
    importing.import_path(store, path, "bench")
    names = []
    for v in range(variants):
        templates.create_version(store, f"variant-{v}", system_template=f"Variant {v}: answer briefly.",
                                 user_template="{{ input }}", settings={"model": "bench-model", "max_tokens": 20})
        names.append(f"variant-{v}=openai:bench-model")
    return store, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=6)
    parser.add_argument("--inputs", type=int, default=500)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="compare-bench-") as tmp, ChatDouble(record=False).serve() as double:
        double.script("bench-model", answer(lambda request: "Answer", delay_s=args.delay_ms / 1000))
        store, variants = build(Path(tmp), args.inputs, args.variants)
        client = client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)
        cells = args.inputs * args.variants
        ideal = cells * args.delay_ms / 1000 / args.concurrency

        started = time.perf_counter()
        first = comparisons.run_comparison(store, variants, dataset="bench", limit=args.inputs, concurrency=args.concurrency,
                                           clients={"openai": client})
        first_s = time.perf_counter() - started
        assert all(v.cells == args.inputs and v.errors == 0 for v in first.variants), first

        started = time.perf_counter()
        cached = comparisons.run_comparison(store, variants, dataset="bench", limit=args.inputs, concurrency=args.concurrency,
                                            clients={"openai": client})
        cached_s = time.perf_counter() - started
        assert all(v.cache_hits == args.inputs for v in cached.variants), cached

    print(f"matrix {args.variants} x {args.inputs} = {cells} cells, {args.delay_ms:g} ms per answer, concurrency {args.concurrency}")
    print(f"ideal (cells x delay / concurrency): {ideal:.2f} s")
    print(f"first run: {first_s:.2f} s ({first_s / ideal:.2f}x ideal; target 1.5x)")
    print(f"cached re-run: {cached_s:.2f} s ({cached_s / first_s:.3f}x the first run; target under 2 s)")
    print(f"first_ratio={first_s / ideal:.2f} cached_s={cached_s:.2f}")


if __name__ == "__main__":
    main()
