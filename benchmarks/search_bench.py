"""Measure searching a dataset of 1,000,000 examples through the store's own query functions.

Builds (once, cached as benchmarks/out/search_1m.db unless --db names another file) one dataset of N
examples split 80/10/10, where the rare term appears in about 1% of examples and the common term in
about 30%; likewise a metadata field (`channel`: `fax` on 1%, `email` on 30%) and tags (`escalated`
on 1%, `billing` on 30%). Rows go straight into the store's schema (`Store(path)` creates it) with
executemany: the import path is measured by import_bench.py, this file measures reads. A file built
before the metadata index existed gets it from the migration when it is opened.

For each term (and for no search at all), alone and with a split filter, it times (median of --runs, each on a fresh connection
as every page view gets one):

- page: `page_examples`, the 50 newest matches (what the Datasets page shows);
- count: `count_examples`, the number of matches (the total above the page);
- browse: the service call the page makes, `datasets.browse` (count + page + dataset lookup);
- bare: the bare FTS5 query `SELECT rowid FROM examples_fts WHERE examples_fts MATCH ? ORDER BY rowid
  DESC LIMIT 50` (and its count), the floor no filtered page can beat.

Three sections: search and split; the metadata field and the tag, each value alone and with either
term (a query stopped by the store's time limit counts as a miss); word prefixes (`charg`, `onbo`).
`x base` divides a page by the bare FTS5 page of its term, or by the unfiltered page.

Targets: page under 100 ms, count under 200 ms (median). `filter_ratio=` is the worst `x base` of
the metadata and tag section. The last line is
`ratio=<page with the split filter / bare FTS page>`, the worse of the two terms: what the join to
`examples` and the filter cost over the full-text lookup alone. A last row, without a target, shows
the worst case for a page: a common term with a filter that passes none of its hits.

    .venv/bin/python benchmarks/search_bench.py [--n 1000000] [--db PATH] [--rebuild] [--runs 9]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_bench import TextMaker  # noqa: E402

from workbench.domain.example import ReviewState, Split  # noqa: E402
from workbench.domain.filters import ExampleFilter  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.services import datasets as dataset_service  # noqa: E402
from workbench.store import Store, utcnow  # noqa: E402
from workbench.store import datasets as dataset_rows  # noqa: E402
from workbench.store import examples as example_rows  # noqa: E402

DATASET = "bench"
RARE = "chargeback"
COMMON = "onboarding"
RARE_SHARE = 0.01
COMMON_SHARE = 0.30
META_KEY = "channel"
RARE_META = "fax"
COMMON_META = "email"
OTHER_META = ("chat", "phone", "web", "forum")
RARE_TAG = "escalated"
COMMON_TAG = "billing"
OTHER_TAG = "follow-up"
FILTER_SPLIT = Split.VALIDATION
CHUNK = 50_000
PAGE_TARGET_MS = 100
COUNT_TARGET_MS = 200

_INSERT = (
    "INSERT INTO examples (id, dataset_id, content_hash, source_line, system, messages, metadata, split, "
    "review_state, tags, pii, pii_count, validation_status, validation_messages, token_count, turn_count, "
    "revision, created_at, updated_at) VALUES (?,?,?,?,NULL,?,?,?,'pending',?,'[]',0,'ok','[]',?,2,1,?,?)"
)


def _with_word(maker: TextMaker, text: str, word: str) -> str:
    words = text.split(" ")
    words.insert(maker.rng.randrange(len(words) + 1), word)
    return " ".join(words)


def _labels(rng: random.Random) -> tuple[dict[str, object], list[str]]:
    """Return one example's metadata and tags: a rare and a common value of each, like real curation."""
    roll = rng.random()
    channel = RARE_META if roll < RARE_SHARE else COMMON_META if roll < RARE_SHARE + COMMON_SHARE else rng.choice(OTHER_META)
    metadata: dict[str, object] = {META_KEY: channel, "priority": rng.choice(("low", "normal", "high")), "turns": 2}
    tags = [tag for tag, share in ((RARE_TAG, RARE_SHARE), (COMMON_TAG, COMMON_SHARE), (OTHER_TAG, 0.1)) if rng.random() < share]
    return metadata, tags


def build(path: Path, n: int, seed: int) -> None:
    """Fill a fresh store with n examples of one dataset, printing progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(path)
    maker = TextMaker(seed)
    rng = maker.rng
    now = utcnow()
    start = time.perf_counter()
    with store.connect() as db:
        dataset_id = dataset_rows.create_dataset(db, DATASET).id
        for base in range(0, n, CHUNK):
            rows: list[tuple] = []
            texts: list[tuple[int, str]] = []
            tag_rows: list[tuple[int, str]] = []
            for i in range(base + 1, min(base + CHUNK, n) + 1):
                user = maker.paragraph(80)
                reply = maker.paragraph(240)
                if rng.random() < RARE_SHARE:
                    reply = _with_word(maker, reply, RARE)
                if rng.random() < COMMON_SHARE:
                    user = _with_word(maker, user, COMMON)
                roll = rng.random()
                split = "train" if roll < 0.8 else "validation" if roll < 0.9 else "test"
                metadata, tags = _labels(rng)
                messages = orjson.dumps([{"role": "user", "content": user}, {"role": "assistant", "content": reply}])
                text = f"{user}\n{reply}"
                digest = hashlib.blake2b(messages, digest_size=16).hexdigest()
                rows.append(
                    (i, dataset_id, digest, i, messages.decode(), orjson.dumps(metadata).decode(), split,
                     orjson.dumps(tags).decode(), len(text) // 4, now, now)
                )
                texts.append((i, text))
                tag_rows.extend((i, tag) for tag in tags)
            with db.atomic():
                db.conn.executemany(_INSERT, rows)
                db.conn.executemany("INSERT INTO examples_fts (rowid, text) VALUES (?, ?)", texts)
                db.conn.executemany("INSERT INTO example_tags (example_id, tag) VALUES (?, ?)", tag_rows)
                example_rows.index_metadata(db, base + 1, min(base + CHUNK, n))
            done = min(base + CHUNK, n)
            elapsed = time.perf_counter() - start
            print(f"  built {done:>9,} / {n:,}  {elapsed:6.0f} s  eta {elapsed / done * (n - done):5.0f} s", flush=True)


def _ready(path: Path, n: int) -> bool:
    if not path.exists():
        return False
    store = Store(path)
    with store.connect() as db:
        dataset = dataset_rows.find_dataset(db, DATASET)
        return dataset is not None and example_rows.count_examples(db, dataset.id, ExampleFilter()) == n


def _median_ms(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    fn()  # warm the OS cache and the statement paths; not counted
    times = []
    value: object = None
    for _ in range(runs):
        t = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), value


def _cases() -> list[tuple[str, list[tuple[str, ExampleFilter]]]]:
    """Return the timed filters in sections: (section title, [(label, filter)])."""
    search = [
        ((repr(term) if term else "(no search)") + (f" + split={split.value}" if split else ""), ExampleFilter(search=term, split=split))
        for term in ("", RARE, COMMON)
        for split in (None, FILTER_SPLIT)
    ]
    labelled = [
        (f"{META_KEY}={RARE_META} (1%)", {"metadata_field": META_KEY, "metadata_value": RARE_META}),
        (f"{META_KEY}={COMMON_META} (30%)", {"metadata_field": META_KEY, "metadata_value": COMMON_META}),
        (f"tag {RARE_TAG} (1%)", {"tags": [RARE_TAG]}),
        (f"tag {COMMON_TAG} (30%)", {"tags": [COMMON_TAG]}),
    ]
    filters = [
        (label + (f" + {term!r}" if term else ""), ExampleFilter(search=term, **fields))  # type: ignore[arg-type]
        for label, fields in labelled
        for term in ("", RARE, COMMON)
    ]
    filters.append(
        (f"{META_KEY}={RARE_META} + tag {RARE_TAG} + split", ExampleFilter(metadata_field=META_KEY, metadata_value=RARE_META, tags=[RARE_TAG], split=FILTER_SPLIT))
    )
    prefixes = [
        (f"prefix {prefix!r}" + (f" + split={split.value}" if split else ""), ExampleFilter(search=prefix, split=split))
        for prefix in (RARE[:5], COMMON[:4])
        for split in (None, FILTER_SPLIT)
    ]
    return [("search and split", search), ("metadata field and tag", filters), ("word prefixes", prefixes)]


def measure(store: Store, runs: int) -> tuple[float, float]:
    """Print the timings table; return the worst ratios (search + split, metadata/tag filters).

    `x base` is a row's page time over its baseline: the bare FTS5 page of its search term, or the
    unfiltered page when it has none.
    """
    with store.connect() as db:
        dataset_id = dataset_rows.get_dataset(db, DATASET).id

    def page(flt: ExampleFilter) -> Callable[[], int]:
        def run() -> int:
            with store.connect() as db:
                return len(example_rows.page_examples(db, dataset_id, flt, limit=50))

        return run

    def count(flt: ExampleFilter) -> Callable[[], int]:
        def run() -> int:
            with store.connect() as db:
                return example_rows.count_examples(db, dataset_id, flt)

        return run

    def browse(flt: ExampleFilter) -> Callable[[], int]:
        return lambda: dataset_service.browse(store, DATASET, flt).total

    def bare(term: str, sql: str) -> Callable[[], object]:
        def run() -> object:
            with store.connect() as db:
                return db.execute(sql, [f'"{term}"']).fetchall()

        return run

    bare_page = "SELECT rowid FROM examples_fts WHERE examples_fts MATCH ? ORDER BY rowid DESC LIMIT 50"
    bare_count = "SELECT count(*) FROM examples_fts WHERE examples_fts MATCH ?"
    print(f"\n{'query':<46}{'page ms':>9}{'count ms':>10}{'browse ms':>11}{'matches':>10}{'x base':>8}")
    base: dict[str, float] = {}
    for term in (RARE, COMMON):
        base[term], _ = _median_ms(bare(term, bare_page), runs)
        bare_count_ms, hits = _median_ms(bare(term, bare_count), runs)
        label = f"bare FTS5 {term!r}"
        print(f"{label:<46}{base[term]:9.1f}{bare_count_ms:10.1f}{'':>11}{hits[0][0]:>10,}")  # type: ignore[index]
    worst = {"search": 0.0, "filters": 0.0}
    failures: list[str] = []
    for title, cases in _cases():
        print(f"-- {title}")
        for label, flt in cases:
            try:
                page_ms, shown = _median_ms(page(flt), runs)
                count_ms, total = _median_ms(count(flt), runs)
                browse_ms, _ = _median_ms(browse(flt), runs)
            except WorkbenchError as exc:
                print(f"{label:<46}  stopped: {exc}")
                failures.append(f"{label}: stopped by the time limit")
                continue
            if not flt.search and not flt.tags and not flt.metadata_field and flt.split is None:
                base[""] = page_ms
            ratio = page_ms / base.get(flt.search, base.get("", page_ms))
            print(f"{label:<46}{page_ms:9.1f}{count_ms:10.1f}{browse_ms:11.1f}{total:>10,}{ratio:8.1f}")
            if shown != min(50, int(total)):  # type: ignore[call-overload]
                failures.append(f"{label}: page held {shown} rows for {total} matches")
            if page_ms >= PAGE_TARGET_MS:
                failures.append(f"{label}: page {page_ms:.1f} ms, target < {PAGE_TARGET_MS} ms")
            if count_ms >= COUNT_TARGET_MS:
                failures.append(f"{label}: count {count_ms:.1f} ms, target < {COUNT_TARGET_MS} ms")
            if title == "search and split" and flt.search and flt.split is not None:
                worst["search"] = max(worst["search"], ratio)
            if title == "metadata field and tag":
                worst["filters"] = max(worst["filters"], ratio)
    # Informational, no target: a filter that passes no hit makes the page walk every hit of the term.
    flt = ExampleFilter(search=COMMON, review_state=ReviewState.ACCEPTED)
    page_ms, _ = _median_ms(page(flt), runs)
    count_ms, total = _median_ms(count(flt), runs)
    label = f"{COMMON!r} + review=accepted (worst)"
    print(f"{label:<46}{page_ms:9.1f}{count_ms:10.1f}{'':>11}{total:>10,}")
    print()
    for failure in failures:
        print(f"MISSED {failure}")
    if not failures:
        print(f"all targets met (page < {PAGE_TARGET_MS} ms, count < {COUNT_TARGET_MS} ms, median of {runs})")
    return worst["search"], worst["filters"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples in the dataset (default 1,000,000)")
    parser.add_argument("--db", type=Path, help="store file to build or reuse (default benchmarks/out/search_<n>.db)")
    parser.add_argument("--rebuild", action="store_true", help="build the store even if the file has the examples")
    parser.add_argument("--runs", type=int, default=9, help="timed runs per query; the median is reported")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    suffix = "1m" if args.n == 1_000_000 else str(args.n)
    path = args.db or ROOT / "benchmarks" / "out" / f"search_{suffix}.db"
    if args.rebuild or not _ready(path, args.n):
        print(f"building {path} with {args.n:,} examples (several minutes for 1M)", flush=True)
        t = time.perf_counter()
        build(path, args.n, args.seed)
        print(f"built in {time.perf_counter() - t:.0f} s, {path.stat().st_size / 1e9:.2f} GB")
    else:
        print(f"reusing {path} ({args.n:,} examples)")
    store = Store(path)  # applies any migration added since the file was built
    ratio, filter_ratio = measure(store, args.runs)
    print(f"filter_ratio={filter_ratio:.2f}  (worst metadata/tag filter page / its baseline page)")
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
