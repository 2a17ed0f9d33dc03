"""Measure importing a JSONL file against the SQLite work no import can skip.

Generates N chat examples of about 1 KB each (OpenAI format, seeded, 2% carrying an email, a phone
or a card number), then times, in the same run and on the same file:

- FLOOR: read and orjson-parse every line, then insert each raw line and its plain text into a fresh
  table with an FTS5 index over the text, with one executemany per table in one transaction (WAL,
  synchronous=NORMAL, like the Store). Whatever an import does, it pays at least this.
- FULL: `import_path(Store(tmp), path, "bench")`: detect, canonicalise, validate, scan for PII, count
  tokens, hash for dedup, insert with the store's indexes, index for search. Run once per variant:
  - serial: a shared process (a server) that changes no process-wide state: no worker, no tuning;
  - parallel: the CLI, which owns its process: a worker process and every `ProcessTuning` trick;
  - parallel without each trick in turn, so each one shows what it buys (`--tricks` to run these).

The last line is `ratio=<parallel FULL / FLOOR>` (what a user of the CLI, or of the browser, whose
large imports run the CLI, waits for); the target is 2.00 or less.

    .venv/bin/python benchmarks/import_bench.py [--n 100000] [--seed 7] [--tricks] [--keep]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.services.importing import import_path  # noqa: E402
from workbench.services.preparing import ProcessTuning, own_process  # noqa: E402
from workbench.store import Store  # noqa: E402

COMMON_WORDS = ["the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with", "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now", "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where", "after", "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me", "give", "our", "under", "name", "very", "through", "just", "form", "sentence", "great", "think", "say", "help", "low", "line", "differ", "turn", "cause", "much", "mean", "before", "move", "right", "boy", "old", "too", "same", "tell", "does", "set", "three", "want", "air", "well", "also", "play", "small", "end", "put", "home", "read", "hand", "port", "large", "spell", "add", "even", "land", "here", "must", "big", "high", "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind", "off", "need", "house", "picture", "try", "us", "again", "animal", "point", "mother", "world", "near", "build", "self", "earth", "father", "head", "stand", "own", "page", "should", "country", "found", "answer", "school", "grow", "study", "still", "learn", "plant", "cover", "food", "sun", "four", "between", "state", "keep", "eye", "never", "last", "let", "thought", "city", "tree", "cross", "farm", "hard", "start", "might", "story", "saw", "far", "sea", "draw", "left", "late", "run", "while", "press", "close", "night", "real", "life", "few", "north", "open", "seem", "together", "next", "white", "children", "begin", "got", "walk", "example", "ease", "paper", "group", "always", "music", "those", "both", "mark", "often", "letter", "until", "mile", "river", "car", "feet", "care", "second", "book", "carry", "took", "science", "eat", "room", "friend", "began", "idea", "fish", "mountain", "stop", "once", "base", "hear", "horse", "cut", "sure", "watch", "color", "face", "wood", "main", "enough", "plain", "girl", "usual", "young", "ready", "above", "ever", "red", "list", "though", "feel", "talk", "bird", "soon", "body", "dog", "family", "direct", "pose", "leave", "song", "measure", "door", "product", "black", "short", "numeral", "class", "wind", "question", "happen", "complete", "ship", "area", "half", "rock", "order", "fire", "south", "problem", "piece", "told", "knew", "pass", "since", "top", "whole", "king", "space", "heard", "best", "hour", "better", "true", "during", "hundred", "five", "remember", "step", "early", "hold", "west", "ground", "interest", "reach", "fast", "verb", "sing", "listen", "six", "table", "travel", "less", "morning", "ten", "simple", "several", "vowel", "toward", "war", "lay", "against", "pattern", "slow", "center", "love", "person", "money", "serve", "appear", "road", "map", "rain", "rule", "govern", "pull", "cold", "notice", "voice", "unit", "power", "town", "fine", "certain", "fly", "fall", "lead", "cry", "dark", "machine", "note", "wait", "plan", "figure", "star", "box", "noun", "field", "rest", "correct", "able", "pound", "done", "beauty", "drive", "stood", "contain", "front", "teach", "week", "final", "gave", "green", "oh", "quick", "develop", "ocean", "warm", "free", "minute", "strong", "special", "mind", "behind", "clear", "tail", "produce", "fact", "street", "inch", "multiply", "nothing", "course", "stay", "wheel", "full", "force", "blue", "object", "decide", "surface", "deep", "moon", "island", "foot", "system", "busy", "test", "record", "boat", "common", "gold", "possible", "plane", "stead", "dry", "wonder", "laugh", "thousand", "ago", "ran", "check", "game", "shape", "equate", "hot", "miss", "brought", "heat", "snow", "tire", "bring", "yes", "distant", "fill", "east", "paint", "language", "among", "customer", "invoice", "refund", "account", "shipping", "delivery", "password", "subscription", "model", "dataset", "training", "prompt", "summary", "translate", "explain", "database", "query", "server", "deploy", "latency", "error"]

SYLLABLES = ["ka", "to", "ri", "mon", "sel", "ver", "an", "tel", "or", "qui", "lo", "pra", "den", "fi", "ux", "zo", "bel", "cas", "tri", "nom", "lu", "gar", "hex", "pin", "sto"]

USER_OPENERS = [
    "Can you help me with",
    "I need a short explanation of",
    "Please summarise",
    "What is the best way to handle",
    "Write a reply about",
    "Translate this note about",
    "Why does my team keep asking about",
    "Give me three tips on",
]

SYSTEM_PROMPTS = [
    "You are a helpful support assistant for an online store. Answer briefly and politely.",
    "You are a senior engineer reviewing questions from colleagues. Be precise.",
    "You write friendly, plain-English summaries for busy managers.",
    None,
    None,
]


def _vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    """Return common words plus invented rare ones, with Zipf-like cumulative weights."""
    invented = {"".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))) for _ in range(30_000)}
    # Common words take the top ranks (the list is roughly in frequency order); invented ones, like
    # names and jargon, form the long tail that gives the index a realistic vocabulary.
    tail = sorted(invented)
    rng.shuffle(tail)
    words = COMMON_WORDS + tail
    cum: list[float] = []
    total = 0.0
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cum.append(total)
    return words, cum


class TextMaker:
    """Seeded prose: Zipf-distributed words in sentences, with the odd number, price or year."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words, self.cum = _vocabulary(self.rng)

    def sentence(self) -> str:
        rng = self.rng
        words = rng.choices(self.words, cum_weights=self.cum, k=rng.randint(6, 18))
        roll = rng.random()
        if roll < 0.08:
            words.insert(rng.randrange(len(words)), f"${rng.randint(1, 999)}.{rng.randint(0, 99):02d}")
        elif roll < 0.14:
            words.insert(rng.randrange(len(words)), str(rng.randint(1990, 2030)))
        elif roll < 0.18:
            words.insert(rng.randrange(len(words)), f"section {rng.randint(1, 40)}.{rng.randint(1, 9)}")
        text = " ".join(words)
        return text[0].upper() + text[1:] + rng.choice(".....?!")

    def paragraph(self, chars: int) -> str:
        out: list[str] = []
        size = 0
        while size < chars:
            s = self.sentence()
            out.append(s)
            size += len(s) + 1
        return " ".join(out)

    def pii(self) -> str:
        rng = self.rng
        kind = rng.randrange(3)
        if kind == 0:
            name = rng.choice(["john.smith", "maria", "a.kowalski", "lee_wong", "sam+news"])
            return f"please email {name}{rng.randint(1, 99)}@{rng.choice(['example.com', 'mail.org', 'corp.io'])}"
        if kind == 1:
            return f"call me on +1 415-555-{rng.randint(1000, 9999)}"
        return f"my card is {_luhn_card(rng)}"


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i : i + 4] for i in range(0, 16, 4))


def examples(n: int, seed: int, size: int = 800) -> Iterator[dict]:
    """Yield n OpenAI chat records of about `size` bytes each; 2% carry PII."""
    maker = TextMaker(seed)
    rng = maker.rng
    for i in range(n):
        messages = []
        system = rng.choice(SYSTEM_PROMPTS)
        if system:
            messages.append({"role": "system", "content": system})
        turns = rng.choice([1, 1, 1, 2, 2, 3])
        budget = size - len(system or "") - 60 * turns
        for t in range(turns):
            ask = f"{rng.choice(USER_OPENERS)} {maker.paragraph(budget // turns // 4)}"
            if t == 0 and i % 50 == 7:
                ask += f" Also, {maker.pii()}."
            messages.append({"role": "user", "content": ask})
            messages.append({"role": "assistant", "content": maker.paragraph(budget // turns * 3 // 4)})
        yield {"messages": messages}


def write_jsonl(path: Path, n: int, seed: int) -> int:
    """Write n examples to path; return the file size in bytes."""
    with path.open("wb") as out:
        for record in examples(n, seed):
            out.write(orjson.dumps(record) + b"\n")
    return path.stat().st_size


def floor(path: Path, db_path: Path) -> tuple[float, float]:
    """Time the unavoidable work: parse every line, bulk-insert it and its text with an FTS5 index.

    Returns wall-clock and CPU seconds.
    """
    start, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, raw TEXT NOT NULL)")
    conn.execute("CREATE VIRTUAL TABLE rows_fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
    raws: list[tuple[int, str]] = []
    texts: list[tuple[int, str]] = []
    with path.open("rb") as f:
        for i, line in enumerate(f, 1):
            record = orjson.loads(line)
            raws.append((i, line.decode()))
            texts.append((i, "\n".join(m["content"] for m in record["messages"])))
    with conn:
        conn.executemany("INSERT INTO rows (id, raw) VALUES (?, ?)", raws)
        conn.executemany("INSERT INTO rows_fts (rowid, text) VALUES (?, ?)", texts)
    conn.close()
    return time.perf_counter() - start, time.process_time() - cpu


VARIANTS: dict[str, ProcessTuning | None] = {
    "serial": None,
    "parallel": ProcessTuning(),
}
TRICKS: dict[str, ProcessTuning] = {
    "parallel, gc not paused": ProcessTuning(pause_gc=False),
    "parallel, default switch interval": ProcessTuning(prompt_switches=False),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def full(path: Path, db_path: Path, tuning: ProcessTuning | None) -> tuple[float, float, float, int]:
    """Time the real import into a fresh store; return wall-clock, main and worker CPU seconds, and examples imported.

    CPU time is steadier than wall time on a busy machine: a trick that saves work shows there even
    when other load hides it in the wall time. (A worker's CPU is counted once the pool has reaped it.)
    """
    own_process(tuning)
    try:
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        result = import_path(Store(db_path), path, "bench")
        elapsed, cpu, children = time.perf_counter() - start, time.process_time() - cpu, _children_cpu() - children
    finally:
        own_process(None)
    if result.error_count:
        raise SystemExit(f"import reported {result.error_count} errors, first: {result.errors[0]}")
    return elapsed, cpu, children, result.imported


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="examples to generate (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tricks", action="store_true", help="also time the parallel import without each process-wide trick")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory and print its path")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="import_bench_"))
    try:
        path = tmp / "examples.jsonl"
        t = time.perf_counter()
        size = write_jsonl(path, args.n, args.seed)
        print(f"generated {args.n:,} examples, {size / 1e6:.1f} MB ({size / args.n:.0f} B each) in {time.perf_counter() - t:.1f} s")

        floor_s, floor_cpu = floor(path, tmp / "floor.db")
        print(f"floor: {floor_s:7.2f} s  {args.n / floor_s:9,.0f} examples/s  cpu {floor_cpu:6.2f} s  (parse + bulk insert + FTS5)")
        variants = {**VARIANTS, **(TRICKS if args.tricks else {})}
        times: dict[str, float] = {}
        for i, (label, tuning) in enumerate(variants.items()):
            full_s, full_cpu, worker_cpu, imported = full(path, tmp / f"full{i}.db", tuning)
            times[label] = full_s
            print(
                f"{label + ':':36} {full_s:7.2f} s  {imported / full_s:9,.0f} examples/s  cpu {full_cpu:6.2f} s "
                f"+ worker {worker_cpu:6.2f} s  x{full_s / floor_s:.2f} floor"
            )
        for label in TRICKS if args.tricks else ():
            print(f"  {label[len('parallel, '):]} costs {times[label] - times['parallel']:+.2f} s")
        print(f"parallel saves {times['serial'] - times['parallel']:.2f} s over serial")
        if args.keep:
            print(f"kept: {tmp}")
        print(f"ratio={times['parallel'] / floor_s:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
