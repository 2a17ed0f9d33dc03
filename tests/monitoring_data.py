"""Predictions with a known drift episode, written through `insert_predictions` as every way in does.

One model version ("clf-v1", task "classify") answers `PER_DAY` requests a day for `DAYS` days from
`FIRST_DAY`. From `CHANGE_DAY` on, after a data change: outputs grow longer, the label mix moves
from billing to returns, accuracy falls from 90% to 70%, good ratings from 80% to 50%, and one
answer in ten is a refusal. Inputs and latency keep their distribution. Everything is drawn from a
seeded generator, and `Planted` keeps the exact per-day counts and latencies to check against.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import orjson

from workbench.domain.predictions import latency_bucket
from workbench.store import Store
from workbench.store.predictions import insert_predictions

MODEL = "clf-v1"
TASK = "classify"
FIRST_DAY = date(2026, 10, 1)
DAYS = 40
CHANGE_DAY = FIRST_DAY + timedelta(days=30)
PER_DAY = 300
LABELS = ["billing", "shipping", "returns"]
BEFORE_MIX, AFTER_MIX = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
REFUSAL = "I'm sorry, I can't help with that request."


@dataclass
class Planted:
    labelled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    correct: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    predictions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def fill(store: Store, *, days: int = DAYS, per_day: int = PER_DAY, seed: int = 7, source: str = "api",
         model: str = MODEL, first_day: date = FIRST_DAY, change_day: date = CHANGE_DAY,
         text: bool = True) -> Planted:
    """Write `days` x `per_day` predictions and return what was planted."""
    rng = np.random.default_rng(seed)
    planted = Planted()
    batch: list[tuple] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        after = day >= change_day
        n = per_day
        labels = rng.choice(3, size=n, p=AFTER_MIX if after else BEFORE_MIX)
        pads = np.clip(rng.normal(60 if after else 20, 10 if after else 5, size=n), 1, None).astype(int)
        input_lengths = np.clip(rng.normal(200, 40, size=n), 10, None).astype(int)
        correct = rng.random(n) < (0.7 if after else 0.9)
        labelled = rng.random(n) < 0.8
        rated = rng.random(n) < 0.3
        good = rng.random(n) < (0.5 if after else 0.8)
        refused = rng.random(n) < (0.1 if after else 0.0)
        errored = rng.random(n) < 0.02
        latencies = rng.lognormal(np.log(400), 0.5, size=n)
        seconds = np.sort(rng.integers(0, 86_400, size=n))
        day_text = day.isoformat()
        for i in range(n):
            label = LABELS[labels[i]]
            output = REFUSAL if refused[i] else f"{label} {'x' * int(pads[i])}"
            user_input = "q" * int(input_lengths[i])
            ts = f"{day_text}T{seconds[i] // 3600:02d}:{seconds[i] // 60 % 60:02d}:{seconds[i] % 60:02d}.000+00:00"
            is_labelled = bool(labelled[i])
            is_correct = bool(correct[i]) if is_labelled else None
            rating = (int(rng.integers(4, 6)) if good[i] else int(rng.integers(1, 4))) if rated[i] else None
            latency = float(latencies[i])
            batch.append((
                ts, model, None, TASK, user_input if text else None, output if text else None, None, None,
                len(user_input), len(output), 50, 5, 0, latency, latency_bucket(latency), 0.001, "ingested", None, 0,
                0.8, label if is_labelled else None, None if is_correct is None else int(is_correct), rating,
                "timeout" if errored[i] else None, f"u{offset}-{i}", None, None, orjson.dumps({"region": "eu"}).decode(),
                source, ts,
            ))
            planted.predictions[day_text] += 1
            planted.errors[day_text] += int(errored[i])
            planted.labelled[day_text] += int(is_labelled)
            planted.correct[day_text] += int(bool(is_correct))
            planted.latencies[day_text].append(latency)
        if len(batch) >= 20_000:
            _write(store, batch)
            batch = []
    _write(store, batch)
    return planted


def _write(store: Store, batch: list[tuple]) -> None:
    if batch:
        with store.write() as db:
            insert_predictions(db, batch)


def row(ts: str, *, model: str = MODEL, task: str | None = TASK, output: str | None = "ok", user_input: str = "hi",
        latency_ms: float | None = 100.0, correct: bool | None = None, ground_truth: str | None = None,
        rating: int | None = None, cost_usd: float | None = 0.001, error: str | None = None,
        tags: object = (), source: str = "api") -> tuple:
    """One prediction tuple in `PREDICTION_COLUMNS` order, for tests that need particular rows."""
    return (
        ts, model, None, task, user_input, output, None, None, len(user_input), None if output is None else len(output),
        10, 2, 0, latency_ms, latency_bucket(latency_ms), cost_usd, "ingested", None, 0, None, ground_truth,
        None if correct is None else int(correct), rating, error, None, None, None,
        orjson.dumps(dict(tags) if isinstance(tags, dict) else list(tags)).decode(), source, ts,
    )


def write_rows(store: Store, rows: list[tuple]) -> None:
    _write(store, rows)
