"""What past traffic would have cost: at changed prices (re-price), or under a cheaper-model routing policy (what-if).

Re-pricing reads the daily rollups' token sums. The router needs each request's size, which the rollups do not
keep, so it reads the window's rows when they are few and a uniform sample by id when they are not.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.services.cost_prices import PriceBook, PriceRow, comparable_model, price_book, validate_price
from workbench.services.costs import NO_TASK, rollup_rows, today_utc, window_bounds
from workbench.store import Store
from workbench.store import costs as rows

SAMPLE_ROWS = 20_000
"""Raw rows the what-if router reads at most: a uniform sample by id inside the window."""


# ------------------------------------------------------------------------------------------ re-price


class RepriceDay(BaseModel):
    day: str
    requests: int
    stored_usd: float = Field(description="What the traffic was priced at when it arrived.")
    old_usd: float | None = Field(description="The traffic at the price row in force that day.")
    new_usd: float


class Reprice(BaseModel):
    model: str
    days: int
    models_matched: list[str]
    new_price: dict[str, float | None]
    by_day: list[RepriceDay]
    stored_usd: float
    old_usd: float | None
    new_usd: float
    difference_usd: float | None = Field(description="new - old: what the change would have added (negative: saved).")
    method: str = (
        "token sums per day and model from the daily rollups, scaled by the share of requests that were not "
        "application cache hits (the rollups do not split tokens by cache hit), priced at input, output and "
        "cached-input prices per 1M tokens"
    )


def reprice(store: Store, model: str, *, days: int = 30, today: date | None = None, **new_prices: float | None) -> Reprice:
    """What the last `days` days of a model's traffic would have cost at changed prices, against what they did."""
    access.require(store, Permission.COSTS_READ, action="costs.reprice", target=f"model:{model}")
    if days < 1 or days > 3660:
        raise InvalidInput(f"days must be between 1 and 3660, got {days}")
    unknown = set(new_prices) - {"input_per_1m", "output_per_1m", "cached_input_per_1m"}
    if unknown:
        raise InvalidInput(f"re-price: unknown price {sorted(unknown)[0]!r}; use input_per_1m, output_per_1m, cached_input_per_1m")
    today = today or today_utc()
    since = today - timedelta(days=days - 1)
    book = price_book(store)
    current = book.row_for(model, today.isoformat())
    checked = validate_price({**(current.model_dump() if current else {"model": model}), "effective_to": None,
                              **{k: v for k, v in new_prices.items() if v is not None}}, "the new price")
    if checked["input_per_1m"] is None or checked["output_per_1m"] is None:
        raise InvalidInput(f"the new price ({model}): input_per_1m and output_per_1m are needed; the price table has "
                           "none for this model, so give both")
    proposed = PriceRow(id=0, created_by="re-price", created_at="", **checked)
    key = comparable_model(model)
    matched: set[str] = set()
    per_day: dict[str, list[Any]] = {}
    for r in rollup_rows(store, since, today):
        row = book.row_for(r["model_version"], r["day"])
        if comparable_model(r["model_version"]) != key and (row is None or comparable_model(row.model) != key):
            continue
        matched.add(r["model_version"])
        paid = (r["n"] - r["n_cache_hit"]) / r["n"] if r["n"] else 0.0
        tokens = (r["tokens_in"] * paid, r["tokens_out"] * paid, r["tokens_cached"] * paid)
        old = row.inference_usd(*tokens) if row else None
        cell = per_day.setdefault(r["day"], [0, 0.0, 0.0, 0.0])
        cell[0] += r["n"]
        cell[1] += r["cost"]
        cell[2] = None if old is None or cell[2] is None else cell[2] + old
        cell[3] += proposed.inference_usd(*tokens) or 0.0
    by_day = [RepriceDay(day=d, requests=int(c[0]), stored_usd=c[1], old_usd=c[2], new_usd=c[3]) for d, c in sorted(per_day.items())]
    old_total = None if any(d.old_usd is None for d in by_day) else sum(d.old_usd or 0.0 for d in by_day)
    new_total = sum(d.new_usd for d in by_day)
    return Reprice(
        model=model, days=days, models_matched=sorted(matched), by_day=by_day,
        new_price={k: checked[k] for k in ("input_per_1m", "output_per_1m", "cached_input_per_1m")},
        stored_usd=sum(d.stored_usd for d in by_day), old_usd=old_total, new_usd=new_total,
        difference_usd=None if old_total is None else new_total - old_total,
    )


# ------------------------------------------------------------------------------------------ what-if router


class RouterPolicy(BaseModel):
    """Send some requests to a cheaper model: those under a length, of a task, or both (every condition given must hold)."""

    to_model: str = Field(description="The model the matching requests would go to.")
    max_input_chars: int | None = Field(None, ge=1, description="Route requests whose input is shorter than this.")
    task_type: str | None = Field(None, description="Route requests of this task type.")
    from_models: list[str] = Field(default_factory=list, description="Only requests now served by these (empty: any).")


class TaskAccuracy(BaseModel):
    task: str
    routed_labelled: int
    current_accuracy: float | None = Field(description="Accuracy of the routed requests as they were answered.")
    to_model_accuracy: float | None = Field(description="The target model's accuracy on this task from its own traffic.")
    to_model_labelled: int


class WhatIf(BaseModel):
    policy: RouterPolicy
    days: int
    window_rows: int = Field(description="Predictions in the window.")
    sample_rows: int = Field(description="Rows read: all of them, or a uniform sample by id when the window is bigger.")
    routed_rows: int = Field(description="Rows of the sample the policy routed.")
    routed_window_rows: int = Field(0, description="routed_rows scaled to the whole window, as the saving is.")
    unpriced_rows: int = Field(description="Routed rows without token counts: left out of both sides.")
    current_usd: float = Field(description="What the sample cost as served.")
    routed_old_usd: float
    routed_new_usd: float
    saving_usd: float = Field(description="Saving on the sample.")
    saving_pct: float | None
    saving_window_usd: float = Field(description="The sample's saving scaled to the whole window.")
    accuracy_before: float | None
    accuracy_after: float | None
    tasks: list[TaskAccuracy]
    assumptions: list[str]


def what_if(store: Store, policy: RouterPolicy, *, days: int = 30, today: date | None = None,
            sample: int = SAMPLE_ROWS, seed: int = 0) -> WhatIf:
    """Re-price logged traffic as if a policy had routed some of it to another model; and the accuracy that costs."""
    access.require(store, Permission.COSTS_READ, action="costs.what_if", target=f"model:{policy.to_model}")
    if policy.max_input_chars is None and not policy.task_type:
        raise InvalidInput("the policy routes nothing: give max_input_chars, task_type or both")
    today = today or today_utc()
    since = today - timedelta(days=days - 1)
    since_ts, until_ts = window_bounds(since, today)
    book = price_book(store)
    if not any(row.input_per_1m is not None and row.output_per_1m is not None for row in book.candidates(policy.to_model)):
        raise InvalidInput(f"to_model {policy.to_model!r} has no input and output price in the price table; "
                           "add one on the Prices tab (or `workbench costs prices set`)")
    with store.connect() as db:
        lo, hi, total = rows.window_id_range(db, since_ts, until_ts)
        if total <= sample:
            read = rows.window_rows(db, since_ts, until_ts)
        else:
            ids = sorted(random.Random(seed).sample(range(lo, hi + 1), min(sample, hi - lo + 1)))
            read = rows.rows_by_id(db, ids, since_ts, until_ts)
    targets = {comparable_model(m) for m in policy.from_models}
    to_key = comparable_model(policy.to_model)
    current = routed_old = routed_new = 0.0
    routed = unpriced = 0
    labelled: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    all_labelled = all_correct = 0
    for r in read:
        day = r["ts"][:10]
        cost = r["cost_usd"] if r["cost_usd"] is not None else _priced(book, r["model_version"], day, r)
        current += cost or 0.0
        if r["correct"] is not None:
            all_labelled += 1
            all_correct += r["correct"]
        if not _routes(policy, r, targets, to_key):
            continue
        new_row = book.row_for(policy.to_model, day)
        new = new_row.inference_usd(r["tokens_in"] or 0, r["tokens_out"] or 0, r["tokens_cached"] or 0) if new_row else None
        if new is None or cost is None or (r["tokens_in"] is None and r["tokens_out"] is None):
            unpriced += 1
            continue
        routed += 1
        routed_old += cost
        routed_new += new
        if r["correct"] is not None:
            cell = labelled[r["task_type"] or NO_TASK]
            cell[0] += 1
            cell[1] += r["correct"]
    tasks, after = _accuracy_after(store, policy.to_model, since, today, labelled, all_labelled, all_correct)
    saving = routed_old - routed_new
    scale = total / len(read) if read else 0.0
    return WhatIf(
        policy=policy, days=days, window_rows=total, sample_rows=len(read), routed_rows=routed,
        routed_window_rows=round(routed * scale), unpriced_rows=unpriced,
        current_usd=current, routed_old_usd=routed_old, routed_new_usd=routed_new, saving_usd=saving,
        saving_pct=100 * saving / current if current else None, saving_window_usd=saving * scale,
        accuracy_before=all_correct / all_labelled if all_labelled else None, accuracy_after=after, tasks=tasks,
        assumptions=[
            "a routed request uses the same input, output and cached tokens on the new model as it did",
            f"per-request tokens come from {'every row' if total <= sample else f'a uniform sample of {len(read):,} rows by id'} "
            f"of the last {days} days; the saving is scaled to the window by rows",
            "application cache hits stay free and are not routed",
            f"a routed request is right as often as {policy.to_model} is on the same task in its own logged traffic "
            "with ground truth; tasks where it has none are left at their current accuracy",
        ],
    )


def _priced(book: PriceBook, model: str, day: str, r: dict[str, Any]) -> float | None:
    if r["cache_hit"]:
        return 0.0
    row = book.row_for(model, day)
    if row is None or (r["tokens_in"] is None and r["tokens_out"] is None):
        return None
    return row.inference_usd(r["tokens_in"] or 0, r["tokens_out"] or 0, r["tokens_cached"] or 0)


def _routes(policy: RouterPolicy, r: dict[str, Any], targets: set[str], to_key: str) -> bool:
    if r["cache_hit"] or comparable_model(r["model_version"]) == to_key:
        return False
    if targets and comparable_model(r["model_version"]) not in targets:
        return False
    if policy.max_input_chars is not None and (r["input_chars"] is None or r["input_chars"] >= policy.max_input_chars):
        return False
    return not (policy.task_type and (r["task_type"] or "") != policy.task_type)


def _accuracy_after(store: Store, to_model: str, since: date, until: date, labelled: dict[str, list[int]],
                    all_labelled: int, all_correct: int) -> tuple[list[TaskAccuracy], float | None]:
    """Per routed task: its current accuracy and the target model's own; and the sample's accuracy after routing."""
    own: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    key = comparable_model(to_model)
    for r in rollup_rows(store, since, until):
        if comparable_model(r["model_version"]) == key:
            cell = own[r["task_type"] or NO_TASK]
            cell[0] += r["n_labelled"]
            cell[1] += r["n_correct"]
    tasks = []
    correct_after = float(all_correct)
    for task, (n, right) in sorted(labelled.items()):
        theirs_n, theirs_right = own.get(task, [0, 0])
        rate = theirs_right / theirs_n if theirs_n else None
        if rate is not None:
            correct_after += n * rate - right
        tasks.append(TaskAccuracy(task=task, routed_labelled=n, current_accuracy=right / n if n else None,
                                  to_model_accuracy=rate, to_model_labelled=theirs_n))
    return tasks, (correct_after / all_labelled if all_labelled else None)
