"""Precision and recall of PII detection over a labelled corpus of real-looking text and look-alikes.

tests/data/pii_corpus.jsonl holds one text per line with every piece of PII in it (kind, start,
end, text) and a note saying what the line tests. Positives cover every kind and several national
and international phone formats; the rest are strings that look like PII and are not (versions,
ZIP+4 codes, timestamps and order numbers that pass Luhn, hashes, UUIDs, dates, prices, code).
A finding counts as a true positive only with the right kind and exactly the right span.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from workbench.domain.pii import PiiKind, find_pii_in_text
from workbench.settings import PHONE_REGIONS

CORPUS = Path(__file__).parent / "data" / "pii_corpus.jsonl"
FLOOR = 0.95

Span = tuple[str, int, int]


def load_corpus() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in CORPUS.read_bytes().splitlines() if line.strip()]


def test_corpus_is_well_formed_and_covers_every_kind() -> None:
    rows = load_corpus()
    assert len(rows) >= 80
    for row in rows:
        for span in row["pii"]:
            # A label whose offsets drift from its text would score the detector against nothing.
            assert row["text"][span["start"] : span["end"]] == span["text"], row["note"]
    kinds = Counter(span["kind"] for row in rows for span in row["pii"])
    assert set(kinds) == {k.value for k in PiiKind}
    assert kinds["phone"] >= 15
    assert sum(1 for row in rows if not row["pii"]) >= 40


def score(rows: list[dict[str, Any]]) -> tuple[float, float, list[str]]:
    """Return precision, recall, and one line per miss or false alarm (to print when a run fails)."""
    true_positives = false_positives = false_negatives = 0
    problems: list[str] = []
    for row in rows:
        expected: set[Span] = {(s["kind"], s["start"], s["end"]) for s in row["pii"]}
        found: set[Span] = {(f.kind, f.start, f.end) for f in find_pii_in_text(row["text"])}
        true_positives += len(expected & found)
        false_positives += len(found - expected)
        false_negatives += len(expected - found)
        for kind, start, end in sorted(found - expected):
            problems.append(f"false alarm {kind} {row['text'][start:end]!r} in {row['text']!r} ({row['note']})")
        for kind, start, end in sorted(expected - found):
            problems.append(f"missed {kind} {row['text'][start:end]!r} in {row['text']!r} ({row['note']})")
    precision = true_positives / ((true_positives + false_positives) or 1)
    recall = true_positives / ((true_positives + false_negatives) or 1)
    return precision, recall, problems


def test_precision_and_recall_over_the_corpus(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(PHONE_REGIONS, raising=False)
    precision, recall, problems = score(load_corpus())
    with capsys.disabled():
        print(f"\nPII corpus: precision={precision:.3f} recall={recall:.3f} ({len(problems)} errors)")
        for line in problems:
            print("  " + line)
    assert precision >= FLOOR, problems
    assert recall >= FLOOR, problems


def test_the_score_counts_misses_and_false_alarms() -> None:
    # The scorer itself must be able to fail: a wrong span is both a miss and a false alarm.
    rows = [
        {"text": "mail a@b.io", "pii": [{"kind": "email", "start": 0, "end": 4, "text": "mail"}], "note": "wrong span"},
        {"text": "plain text", "pii": [], "note": "clean"},
    ]
    precision, recall, problems = score(rows)
    assert (precision, recall) == (0.0, 0.0)
    assert len(problems) == 2
