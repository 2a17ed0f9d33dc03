"""Ninety days of generated production traffic for the demo workspace, so Monitoring, Costs and Home
have something true-to-life to show on first start.

The traffic is served by the demo's own models (the fine-tunes the demo job history registered, and
the base models beside them) on the demo datasets' tasks, with the weekly and daily rhythm of a
business tool, per-model latency and token distributions, costs priced from the catalogue as live
ingest prices them, labels on a share of the compliance calls, ratings and reviewer feedback. Two
stories are planted for the dashboards to find:

- a data change `DRIFT_DAYS` before the end: the geo-compliance inputs get longer (a new product
  line writes long feature specs), the label mix shifts, and the fine-tuned model's accuracy drops
  while its refusal and invalid-JSON rates rise. The Monitoring page compares the last 7 days with
  the 7 before by default, so the change falls between its two windows and the drift report, the
  accuracy chart and any alert rule on them flag it on first start;
- a cost spike on `SPIKE_DAYS`: a backfill sends four times the optimisation traffic, with longer
  answers, through Claude 3 Haiku: the daily spend chart should show it.

Everything is drawn from one numpy Generator, so a seed gives the same history (to the timestamps,
given the same `now`); every row says `source = 'demo'`. A million rows go in through the bulk path
of the prediction store (one streamed insert, then the rollups rebuilt), a day at a time, so memory
stays small and `make run` waits well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.predictions import (
    CACHE_HIT_ROW,
    LATENCY_BUCKETS,
    LATENCY_MAX_MS,
    LATENCY_MIN_MS,
    PriceBook,
    utc_text,
)
from workbench.domain.progress import Progress
from workbench.store import Store
from workbench.store import predictions as prediction_rows

DEMO_HISTORY_ROWS = 1_000_000
DEMO_HISTORY_DAYS = 90
DEMO_HISTORY_SEED = 11
DRIFT_TASK = "geo-compliance"
DRIFT_MODEL = "demo-geo-gpt4o-mini"
DRIFT_DAYS = 7
"""The geo-compliance data change lands this many days before the end of the history (today included)."""
DRIFT_DAY = DEMO_HISTORY_DAYS - DRIFT_DAYS
"""The day of the default 90-day history (0 = the first) the change lands on."""
SPIKE_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
SPIKE_DAYS = range(38, 42)
"""Days of the history the optimisation backfill runs: 4x the volume and 2.2x the output tokens."""
SPIKE_VOLUME = 4.0
SPIKE_TOKENS_OUT = 2.2


@dataclass(frozen=True)
class DemoModel:
    """One model version serving a demo task, and how its traffic behaves."""

    version: str
    task: str
    template: str
    share: float
    """Share of a day's traffic."""
    latency_ms: float
    """Median latency; lognormal around it with `latency_sigma`."""
    latency_sigma: float
    tokens_in: float
    """Median uncached input tokens."""
    tokens_out: float
    accuracy: float | None
    """Share correct where ground truth arrives (the compliance task only)."""
    rating: float
    """Mean reviewer rating, 1..5."""
    error_rate: float
    cache_hit_rate: float
    """Share answered from the application's cache: no provider call, not charged."""
    cached_share: float
    """Share of calls whose long prompt prefix hits the provider's prompt cache."""
    team: str
    priced_as: str | None = None
    """The catalogue model whose on-demand rates apply (a fine-tune on Bedrock is billed at its base's)."""
    own_price: tuple[float, float, float] | None = None
    """USD per 1K input, output and cached input tokens, for a model the catalogue does not price: sent
    with the call (`cost_source = 'ingested'`), as an application that prices its own calls does."""


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel("demo-geo-gpt4o-mini", "geo-compliance", "geo-compliance-triage@1", 0.30, 620, 0.45, 420, 70,
              0.93, 4.3, 0.003, 0.06, 0.0, "compliance", own_price=(0.0003, 0.0012, 0.00015)),
    DemoModel("gpt-4o-mini-2024-07-18", "geo-compliance", "geo-compliance-triage@1", 0.08, 560, 0.45, 420, 75,
              0.81, 3.8, 0.004, 0.06, 0.0, "compliance", own_price=(0.00015, 0.0006, 0.000075)),
    DemoModel("demo-stylist-nova-lr5e-5", "stylist-feedback", "stylist-feedback-summary@1", 0.27, 380, 0.40, 260, 110,
              None, 4.2, 0.002, 0.03, 0.0, "salon-ops", priced_as="amazon.nova-micro-v1:0"),
    DemoModel("amazon.nova-lite-v1:0", "stylist-feedback", "stylist-feedback-summary@1", 0.10, 520, 0.42, 260, 125,
              None, 3.7, 0.002, 0.03, 0.0, "salon-ops"),
    DemoModel(SPIKE_MODEL, "optimization-modeling", "optimization-modeling@1", 0.25, 1900, 0.50, 650, 480,
              None, 3.9, 0.005, 0.02, 0.45, "planning", own_price=(0.00025, 0.00125, 0.00003)),
)
DEMO_EXPERIMENT = {
    "control_model": "gpt-4o-mini-2024-07-18", "treatment_model": DRIFT_MODEL, "task_type": DRIFT_TASK,
    "template_version": "geo-compliance-triage@1",
}
"""The demo A/B test runs on the history's own models: does the compliance fine-tune beat its base model?"""
CACHED_PREFIX_TOKENS = 1200
"""Tokens of the optimisation prompt's worked examples, cached by the provider when the prefix hits."""
CHARS_PER_TOKEN = 4.0

LABELS = ("true", "false", "uncertain")
LABEL_MIX_BEFORE = (0.32, 0.58, 0.10)
LABEL_MIX_AFTER = (0.50, 0.34, 0.16)
"""After the data change: a new product line launching market by market, so more features need geo logic."""
LABELLED_SHARE = 0.35
RATED_SHARE = 0.06
FEEDBACK_OF_RATED = 0.4
CORRECTION_OF_WRONG = 0.25
REFUSAL = "I'm sorry, but I can't help with classifying this feature."
_REASONS = {
    "true": ("The feature restricts behaviour in {r} because of {g}.", "Age checks required by {g} apply in {r}."),
    "false": ("Business rollout only; no law drives the regional difference.", "Performance work; no legal basis named."),
    "uncertain": ("Geo-restricted in {r} without a stated reason.", "Regional behaviour named, legal basis unclear."),
}
_REGULATIONS = (("EU", "the DSA"), ("California", "SB 976"), ("Utah", "the Social Media Regulation Act"),
                ("Florida", "HB 3"), ("the US", "the reporting duty to NCMEC"))
_ERRORS = ("ThrottlingException: Rate exceeded", "ReadTimeout: no response in 30 s",
           "ModelErrorException: the model returned an error", "ServiceUnavailable: try again")
_CATEGORIES = {
    "geo-compliance": ("wrong_label", "missing_regulation", "wrong_region"),
    "stylist-feedback": ("missed_point", "tone", "too_long"),
    "optimization-modeling": ("missing_constraint", "wrong_objective", "not_linear"),
}
REVIEWERS = ("amira", "jonas", "li", "sofia")
_DAY_MS = 86_400_000
_LOG_STEP = np.log(LATENCY_MAX_MS / LATENCY_MIN_MS) / LATENCY_BUCKETS


class DemoHistory(BaseModel):
    skipped: bool = Field(False, description="True when the store already held the demo history (nothing added).")
    predictions: int = 0
    feedback: int = 0
    first_day: str | None = None
    last_day: str | None = None
    experiment: bool = Field(False, description="True when the demo A/B test was loaded with it.")


def history_loaded(store: Store) -> bool:
    """Say whether the demo history is in the store."""
    with store.connect() as db:
        return _has_history(db)


def _has_history(db: Database) -> bool:
    """The marker: any demo prediction outside an experiment (the history is written in one transaction)."""
    return db.execute("SELECT 1 FROM predictions WHERE source = 'demo' AND experiment_id IS NULL LIMIT 1"
                      ).fetchone() is not None


def load_demo_history(store: Store, *, days: int = DEMO_HISTORY_DAYS, total: int = DEMO_HISTORY_ROWS,
                      seed: int = DEMO_HISTORY_SEED, now: datetime | None = None,
                      progress: Progress | None = None) -> DemoHistory:
    """Add `total` demo predictions over the `days` up to `now`, with feedback; once (a second call adds nothing)."""
    if total <= 0 or days <= 0:
        return DemoHistory()
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    tracker = progress or Progress()
    generator = _Generator(np.random.default_rng(seed), days, total, moment)
    tracker.stage("generating demo predictions", total, unit="predictions")
    with store.write() as db:
        if _has_history(db):  # checked under the write lock, so two first starts cannot both load it
            return DemoHistory(skipped=True)
        ids = prediction_rows.insert_predictions_bulk(db, generator.rows(tracker))
        if len(ids) != total:  # only a concurrent writer could break the id arithmetic, and the lock stops it
            raise RuntimeError(f"expected {total} new demo predictions, found {len(ids)}")
        tracker.stage("demo feedback", len(generator.feedback), unit="rows")
        feedback = [{**row, "prediction_id": ids[index]} for index, row in generator.feedback]
        prediction_rows.insert_feedback(db, feedback)
        tracker.advance(len(feedback))
    tracker.finish()
    return DemoHistory(predictions=total, feedback=len(feedback), first_day=generator.day_text(0),
                       last_day=generator.day_text(days - 1),
                       experiment=_load_demo_experiment(store, moment, seed, max(2_000, total * 6 // 100)))


def _load_demo_experiment(store: Store, now: datetime, seed: int, predictions: int) -> bool:
    """Load the demo A/B test beside the history (6% as many calls), and the demo's prices and a budget for Costs."""
    from workbench.services.experiments import load_demo_experiment

    load_demo_experiment(store, now=now, seed=seed, predictions=predictions, **DEMO_EXPERIMENT)
    _load_demo_costs(store)
    _load_demo_alerts(store, now)
    return True


DEMO_BUDGET = {"name": "demo: monthly inference", "scope": "all", "monthly_usd": 150.0, "alert_pct": 80}
"""Set so the demo's month-end forecast passes its alert share: Home and the Costs page show a budget alert."""


def _load_demo_costs(store: Store) -> None:
    """Give the models the demo prices itself (the catalogue has no row for them) a row in the workspace's price
    table, so Costs can re-price and route their traffic, and add a budget; once."""
    from workbench.services import cost_prices, costs

    book = cost_prices.PriceBook(cost_prices.list_prices(store))
    for model in DEMO_MODELS:
        current = book.row_for(model.version, "2024-01-01")
        if model.own_price is None or (current is not None and current.input_per_1m is not None):
            continue
        rate_in, rate_out, rate_cached = model.own_price
        cost_prices.set_price(
            store, model.version, "2024-01-01", by="demo", input_per_1m=rate_in * 1000, output_per_1m=rate_out * 1000,
            cached_input_per_1m=rate_cached * 1000, note="demo: the price the demo's own calls were logged with",
            source_url="https://openai.com/api/pricing/" if "gpt" in model.version else "https://aws.amazon.com/bedrock/pricing/",
        )
    if all(b.name != DEMO_BUDGET["name"] for b in costs.list_budgets(store)):
        costs.save_budget(store, DEMO_BUDGET)


DEMO_ALERTS: list[dict[str, Any]] = [
    {"name": "demo: geo-compliance inputs drifted", "metric": "drift:input_length", "model_version": DRIFT_MODEL,
     "window_days": DRIFT_DAYS, "reference_days": DRIFT_DAYS},
    {"name": "demo: spend pace over $3.50 a day", "metric": "cost_usd", "comparison": ">", "window_days": 7,
     "threshold": 3.5},
]
"""Rules a team would set on this traffic: drift on the model the data change hits, over the windows the Monitoring
page compares; and a spend pace of about $105 a month, averaged over a week so a quiet weekend or the half-day
loaded so far does not decide it. The full demo's grown traffic of the last weeks (about $4 a day) and its cost
spike cross it. Both are evaluated once on load, so Home lists them firing before the watcher's first round."""


def _load_demo_alerts(store: Store, now: datetime) -> None:
    from workbench.services import alerts

    known = {rule.name for rule in alerts.list_rules(store)}
    for rule in DEMO_ALERTS:
        if rule["name"] not in known:
            alerts.create_rule(store, **rule)
    alerts.evaluate_rules(store, now)


class _Generator:
    """Draws the history a day at a time, in time order, and notes the feedback rows as it goes."""

    def __init__(self, rng: np.random.Generator, days: int, total: int, now: datetime) -> None:
        self.rng = rng
        self.days = days
        self.now = now
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = today - timedelta(days=days - 1)
        self.start_ms = int(self.start.timestamp() * 1000)
        self.now_ms = int(now.timestamp() * 1000)
        self.feedback: list[tuple[int, dict[str, Any]]] = []
        self.counts = self._daily_counts(total)
        self.hour_p = self._hour_profile()
        self.models = DEMO_MODELS
        self.prices = self._prices()
        self.tags = [orjson.dumps({"team": m.team}).decode() for m in self.models]

    def day_text(self, day: int) -> str:
        return (self.start + timedelta(days=day)).date().isoformat()

    def _daily_counts(self, total: int) -> np.ndarray:
        """Rows per (day, model): weekly rhythm, steady growth, day-to-day noise, the spike; exactly `total`."""
        day = np.arange(self.days)
        weekday = np.array([(self.start + timedelta(days=int(d))).weekday() for d in day])
        weekly = np.select([weekday == 5, weekday == 6], [0.55, 0.45], 1.0)
        growth = 1.0 + 0.35 * day / max(1, self.days - 1)
        noise = self.rng.lognormal(0.0, 0.06, self.days)
        elapsed = (self.now_ms - (self.start_ms + (self.days - 1) * _DAY_MS)) / _DAY_MS
        partial = np.ones(self.days)
        partial[-1] = max(elapsed, 1e-3)  # today so far
        shares = np.array([m.share for m in DEMO_MODELS])
        weights = (weekly * growth * noise * partial)[:, None] * shares[None, :]
        spike = [i for i, m in enumerate(DEMO_MODELS) if m.version == SPIKE_MODEL]
        for d in SPIKE_DAYS:  # a batch backfill runs weekends too
            if d < self.days - 1:
                weights[d, spike] = shares[spike] * growth[d] * noise[d] * SPIKE_VOLUME
        flat = weights.ravel() / weights.sum()
        return self.rng.multinomial(total, flat).reshape(weights.shape)

    @staticmethod
    def _hour_profile() -> np.ndarray:
        """Share of a day's calls per UTC hour: a floor overnight, a peak over European and US office hours."""
        hour = np.arange(24)
        weights = 0.15 + np.exp(-(((hour - 15.5) / 4.5) ** 2))
        return weights / weights.sum()

    def _prices(self) -> list[tuple[float, float, float, str, str]]:
        """Per model: USD per 1K input, output, cached input, the cost source and the price row."""
        book = PriceBook()
        prices = []
        for model in DEMO_MODELS:
            listed = book.lookup(model.priced_as or model.version)
            if listed is not None:
                prices.append((listed.input_per_1k, listed.output_per_1k, listed.input_per_1k, "inferred", listed.row))
            else:
                rate_in, rate_out, rate_cached = model.own_price or (0.0, 0.0, 0.0)
                prices.append((rate_in, rate_out, rate_cached, "ingested", ""))
        return prices

    def rows(self, progress: Progress) -> Iterator[tuple[Any, ...]]:
        index = 0
        for day in range(self.days):
            day_rows = self._day(day, index)
            yield from day_rows
            index += len(day_rows)
            progress.advance(len(day_rows))
        progress.stage("summing the daily rollups", 0, unit="rows")  # the bulk insert rebuilds them next

    def _times(self, day: int, n: int) -> np.ndarray:
        """Millisecond timestamps of a day's calls, sorted; today's stop at `now`."""
        day_ms = self.start_ms + day * _DAY_MS
        limit = min(_DAY_MS, self.now_ms - day_ms)
        hour_p = self.hour_p
        if limit < _DAY_MS:
            hours_open = max(1, -(-limit // 3_600_000))
            hour_p = hour_p[:hours_open] / hour_p[:hours_open].sum()
        hours = self.rng.choice(len(hour_p), size=n, p=hour_p)
        offsets = hours * 3_600_000 + self.rng.integers(0, 3_600_000, n)
        offsets = np.minimum(offsets, limit - 1)
        return np.sort(day_ms + offsets)

    def _day(self, day: int, first_index: int) -> list[tuple[Any, ...]]:
        """One day's rows, in time order, built column by column (a Python loop per row would take minutes)."""
        rng, models = self.rng, self.models
        n = int(self.counts[day].sum())
        if n == 0:
            return []
        ts_ms = self._times(day, n)
        model = rng.permutation(np.repeat(np.arange(len(models)), self.counts[day]))
        after, spike = day >= self.days - DRIFT_DAYS, day in SPIKE_DAYS
        geo = self._per_model(lambda m: m.task == DRIFT_TASK, model)
        drift_model = self._per_model(lambda m: m.version == DRIFT_MODEL, model)
        spike_model = self._per_model(lambda m: m.version == SPIKE_MODEL, model)

        tokens_in = self._per_model(lambda m: m.tokens_in, model) * rng.lognormal(0.0, 0.35, n)
        median_out = self._per_model(lambda m: m.tokens_out, model)
        tokens_out = median_out * rng.lognormal(0.0, 0.40, n)
        if after:  # the data change: long feature specs in, longer reasoning out
            tokens_in = np.where(geo, tokens_in * 1.8, tokens_in)
            tokens_out = np.where(geo, tokens_out * 1.3, tokens_out)
        if spike:
            tokens_out = np.where(spike_model, tokens_out * SPIKE_TOKENS_OUT, tokens_out)
        tokens_in = np.maximum(1, np.rint(tokens_in)).astype(np.int64)
        tokens_out = np.maximum(1, np.rint(tokens_out)).astype(np.int64)
        cached = rng.random(n) < self._per_model(lambda m: m.cached_share, model)
        tokens_cached = np.where(cached, CACHED_PREFIX_TOKENS, 0)
        input_chars = np.rint((tokens_in + tokens_cached) * CHARS_PER_TOKEN * rng.uniform(0.9, 1.1, n)).astype(np.int64)

        error = rng.random(n) < self._per_model(lambda m: m.error_rate, model)
        cache_hit = ~error & (rng.random(n) < self._per_model(lambda m: m.cache_hit_rate, model))
        latency = (self._per_model(lambda m: m.latency_ms, model)
                   * np.exp(rng.normal(0.0, 1.0, n) * self._per_model(lambda m: m.latency_sigma, model))
                   * np.sqrt(tokens_out / median_out))
        latency = np.where(cache_hit, rng.uniform(3.0, 25.0, n), latency)
        error_kind = rng.integers(0, len(_ERRORS), n)
        latency = np.round(np.where(error & (error_kind == 1), 30_000.0 + rng.uniform(0, 50, n), latency), 1)

        output, output_chars, label, correct, confidence = self._outcomes(
            n, model, geo, drift_model, error, after, tokens_out)
        rating = self._ratings(n, model, error, correct, drift_model & after)
        rate = np.array([p[:3] for p in self.prices])[model]
        cost = np.round((tokens_in * rate[:, 0] + tokens_out * rate[:, 1] + tokens_cached * rate[:, 2]) / 1000, 10)
        cost = np.where(cache_hit, 0.0, cost)
        source = np.where(cache_hit, "inferred", np.array([p[3] for p in self.prices], dtype=object)[model])
        price_row = np.where(cache_hit, CACHE_HIT_ROW, np.array([p[4] or None for p in self.prices], dtype=object)[model])
        ts_text = [t + "+00:00" for t in np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms").tolist()]
        self._note_feedback(first_index, model, ts_text, rating, label, correct, output)

        def unless_error(values: np.ndarray, failed: Any = None) -> list[Any]:
            return np.where(error, failed, values.astype(object)).tolist()

        nothing = [None] * n
        columns = (
            ts_text, self._per_model(lambda m: m.version, model, object).tolist(),
            self._per_model(lambda m: m.template, model, object).tolist(),
            self._per_model(lambda m: m.task, model, object).tolist(), nothing, unless_error(output),
            nothing, nothing, input_chars.tolist(), unless_error(output_chars),
            unless_error(tokens_in), unless_error(tokens_out), unless_error(np.where(cached, tokens_cached, None)),
            latency.tolist(), _latency_buckets(latency).tolist(), unless_error(cost), unless_error(source, "unpriced"),
            unless_error(price_row), cache_hit.astype(np.int64).tolist(), confidence.tolist(), label.tolist(),
            correct.tolist(), rating.tolist(), np.where(error, np.array(_ERRORS, dtype=object)[error_kind], None).tolist(),
            nothing, nothing, nothing, np.array(self.tags, dtype=object)[model].tolist(), ["demo"] * n, ts_text,
        )
        return list(zip(*columns, strict=True))

    def _per_model(self, field: Any, model: np.ndarray, dtype: Any = None) -> np.ndarray:
        """A model attribute for each row."""
        return np.array([field(m) for m in self.models], dtype=dtype)[model]

    def _outcomes(self, n: int, model: np.ndarray, geo: np.ndarray, drift_model: np.ndarray, error: np.ndarray,
                  after: bool, tokens_out: np.ndarray) -> tuple[np.ndarray, ...]:
        """What each call answered (the compliance JSON, a refusal or broken JSON), the label and whether it was right.

        Object arrays (None where nothing applies): output, output chars, ground truth, correct, confidence.
        """
        rng = self.rng
        label = rng.choice(len(LABELS), size=n, p=LABEL_MIX_AFTER if after else LABEL_MIX_BEFORE)
        accuracy = self._per_model(lambda m: m.accuracy or 0.0, model)
        if after:
            accuracy = np.where(drift_model, accuracy - 0.14, accuracy - 0.05 * geo)
        right = rng.random(n) < accuracy
        answered = np.where(right, label, (label + rng.integers(1, len(LABELS), n)) % len(LABELS))
        refusal_rate = np.where(drift_model, 0.025 if after else 0.002, 0.001)
        invalid_rate = np.where(drift_model, 0.05 if after else 0.004, 0.003)
        roll = rng.random(n)
        refused = roll < refusal_rate
        invalid = ~refused & (roll < refusal_rate + invalid_rate) & geo
        labelled = geo & ~error & (rng.random(n) < LABELLED_SHARE)
        reason = rng.integers(0, 2, n)
        regulation = rng.integers(0, len(_REGULATIONS), n)
        answer_code = ((answered * 2 + reason) * len(_REGULATIONS) + regulation) * 2 + invalid
        pool, pool_chars = self._answer_pool(after)
        output = np.where(geo, pool[answer_code], None)
        output = np.where(refused, REFUSAL, output)
        text_chars = np.rint(tokens_out * CHARS_PER_TOKEN).astype(np.int64)
        output_chars = np.where(geo, pool_chars[answer_code], text_chars)
        output_chars = np.where(refused, len(REFUSAL), output_chars).astype(object)
        truth = np.where(labelled, np.array(LABELS, dtype=object)[label], None)
        correct = np.where(labelled, (right & ~refused & ~invalid).astype(np.int64).astype(object), None)
        confident = np.round(np.clip(np.where(right, rng.beta(9, 1.5, n), rng.beta(3, 2.5, n)), 0.0, 1.0), 3)
        confidence = np.where(geo & ~refused & ~invalid, confident.astype(object), None)
        return output, output_chars, truth, correct, confidence

    def _answer_pool(self, long: bool) -> tuple[np.ndarray, np.ndarray]:
        """Every compliance answer the generator writes, indexed by (label, reason, regulation, cut off)."""
        texts = []
        for label in LABELS:
            for reason in range(2):
                for regulation in range(len(_REGULATIONS)):
                    whole = _compliance_json(label, reason, regulation, long=long)
                    texts += [whole, whole[: len(whole) // 2]]  # cut off mid-object, as a model out of tokens leaves it
        return np.array(texts, dtype=object), np.array([len(t) for t in texts])

    def _ratings(self, n: int, model: np.ndarray, error: np.ndarray, correct: np.ndarray,
                 drifted: np.ndarray) -> np.ndarray:
        """A reviewer's 1..5 on a share of calls: around the model's mean, low where the answer was wrong."""
        mean = self._per_model(lambda m: m.rating, model) - 0.6 * drifted
        stars = np.clip(np.rint(self.rng.normal(mean, 0.9)), 1, 5).astype(np.int64)
        stars = np.where(correct == 0, self.rng.integers(1, 3, n), stars)
        rated = (self.rng.random(n) < RATED_SHARE) & ~error
        return np.where(rated, stars.astype(object), None)

    def _note_feedback(self, first_index: int, model: np.ndarray, ts: list[str], rating: np.ndarray,
                       truth: np.ndarray, correct: np.ndarray, output: np.ndarray) -> None:
        """Keep a feedback row for a share of the rated calls and of the wrong labelled ones (with the correction)."""
        n = len(ts)
        corrected = (correct == 0) & (self.rng.random(n) < CORRECTION_OF_WRONG)
        chosen = corrected | ((rating != None) & (self.rng.random(n) < FEEDBACK_OF_RATED))  # noqa: E711 (elementwise)
        delay_h = self.rng.uniform(1, 72, n)
        pick = self.rng.integers(0, 3, n)
        reviewer = self.rng.integers(0, len(REVIEWERS), n)
        for i in np.flatnonzero(chosen).tolist():
            spec, stars, text = self.models[model[i]], rating[i], output[i]
            if text == REFUSAL:
                categories = ["refusal"]
            elif spec.task == DRIFT_TASK and text is not None and not text.endswith("}"):
                categories = ["invalid_json"]
            elif corrected[i] or (stars is not None and stars <= 2):
                categories = [_CATEGORIES[spec.task][pick[i]]]
            else:
                categories = []
            later = min(datetime.fromisoformat(ts[i]) + timedelta(hours=float(delay_h[i])), self.now)
            self.feedback.append((first_index + i, {
                "unit_id": None, "rating": stars,
                "correction": _compliance_json(truth[i], 0, 0, long=False) if corrected[i] else None,
                "categories": categories, "comment": "", "reviewer": REVIEWERS[reviewer[i]], "ts": utc_text(later),
                "source": "demo",
            }))


def _compliance_json(label: str, reason: int, regulation: int, *, long: bool) -> str:
    """The compliance task's answer, as the starter template asks for it."""
    region, law = _REGULATIONS[regulation]
    flagged = label == "true"
    reasoning = _REASONS[label][reason].format(r=region, g=law)
    if long:
        reasoning += " Spec covers several launch markets."
    return orjson.dumps({
        "needs_geo_compliance": {"true": True, "false": False}.get(label, "uncertain"),
        "regulations": [law] if flagged else [], "regions": [region] if label != "false" else [],
        "reasoning": reasoning,
    }).decode()


def _latency_buckets(latency_ms: np.ndarray) -> np.ndarray:
    """`domain.predictions.latency_bucket` over an array: 0 below 10 ms, 1..40 log-spaced, 41 from 10 min."""
    scaled = np.floor(np.log(np.maximum(latency_ms, LATENCY_MIN_MS) / LATENCY_MIN_MS) / _LOG_STEP).astype(np.int64) + 1
    buckets = np.minimum(LATENCY_BUCKETS, scaled)
    buckets = np.where(latency_ms < LATENCY_MIN_MS, 0, buckets)
    return np.where(latency_ms >= LATENCY_MAX_MS, LATENCY_BUCKETS + 1, buckets)
