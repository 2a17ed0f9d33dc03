"""What production, training and serving cost: spend over time, the month-end forecast and budgets.

Where the numbers come from (docs/costs.md says the same for users):
- Inference spend is the `cost_usd` each prediction was priced at when it arrived (the caller's, or tokens x
  the catalogue's rates), summed from the `prediction_daily` rollups. Prices are never applied backwards to
  spend; a re-price shows what a different price would have cost, beside it.
- Spend by tag reads the window's raw rows (tags are JSON), so the page asks for it only when chosen.
- A *document* is a prediction whose task type starts with `doc_` or which carries the tag `document`.
- Training spend: jobs that ran (succeeded, or failed or cancelled after training tokens were billed), at
  trained tokens x the price table's training price, else the launch estimate; dated by when they finished.
- Serving spend: Provisioned Throughput deployments, hours they existed x hourly price x model units.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import access
from workbench.services.cost_prices import TOKENS_PER_PRICE, PriceBook, clean_text, price_book, usd_number
from workbench.store import Store
from workbench.store import costs as rows
from workbench.store import deployments as deployment_rows
from workbench.store import jobs as job_rows
from workbench.store import models as model_rows

NO_TASK = "(no task)"


class Dimension(StrEnum):
    MODEL = "model"
    PROVIDER = "provider"
    TASK = "task"
    TAG = "tag"


class BudgetScope(StrEnum):
    ALL = "all"
    MODEL = "model"
    PROVIDER = "provider"
    TASK = "task"
    TAG = "tag"


# ------------------------------------------------------------------------------------------ spend


class SpendPoint(BaseModel):
    day: str
    key: str = Field(description="The model, provider, task or tag the spend belongs to.")
    usd: float
    requests: int = 0


class RequestCost(BaseModel):
    """Cost per request (and per document) on one day."""

    day: str
    requests: int
    usd: float
    per_request: float | None
    documents: int = 0
    document_usd: float = 0.0
    per_document: float | None = None


class TrainingCost(BaseModel):
    job_id: int
    name: str
    day: str
    backend: str
    base_model: str
    usd: float
    how: str = Field(description="How the cost was found: trained tokens x price, or the launch estimate.")


class ServingCost(BaseModel):
    deployment_id: int
    name: str | None
    units: int
    hourly_usd: float
    hours: float = Field(description="Hours inside the window the deployment existed.")
    usd: float
    by_day: dict[str, float] = Field(default_factory=dict)


def _days(since: date, until: date) -> list[str]:
    return [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)]


def window_bounds(since: date, until: date) -> tuple[str, str]:
    """The raw rows' ts bounds of the days since..until inclusive."""
    return f"{since.isoformat()}T00:00:00", f"{(until + timedelta(days=1)).isoformat()}T00:00:00"


def today_utc() -> date:
    return datetime.now(UTC).date()


def _may_read(store: Store, target: str = "") -> None:
    """Refuse (and record) a reader whose role may not see spend: a reviewer sees no costs."""
    access.require(store, Permission.COSTS_READ, action="costs.view", target=target)


def rollup_rows(store: Store, since: date, until: date) -> list[dict[str, Any]]:
    with store.connect() as db:
        return rows.daily_spend(db, since.isoformat(), until.isoformat())


def _key_of(dimension: Dimension, book: PriceBook) -> Callable[[dict[str, Any]], str]:
    if dimension is Dimension.MODEL:
        return lambda r: r["model_version"]
    if dimension is Dimension.PROVIDER:
        return lambda r: book.provider(r["model_version"])
    return lambda r: r["task_type"] or NO_TASK


def inference_spend(store: Store, since: date, until: date, by: Dimension | str = Dimension.MODEL, *,
                    book: PriceBook | None = None) -> list[SpendPoint]:
    """Spend per day and model, provider, task or tag (tags from raw rows; the rest from the rollups)."""
    _may_read(store, "spend")
    dimension = Dimension(by)
    if dimension is Dimension.TAG:
        since_ts, until_ts = window_bounds(since, until)
        with store.connect() as db:
            return [SpendPoint(day=r["day"], key=str(r["tag"]), usd=r["cost"], requests=r["n"])
                    for r in rows.tag_spend(db, since_ts, until_ts)]
    key = _key_of(dimension, book or price_book(store))
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for r in rollup_rows(store, since, until):
        cell = sums[(r["day"], key(r))]
        cell[0] += r["cost"]
        cell[1] += r["n"]
    return [SpendPoint(day=d, key=k, usd=v[0], requests=int(v[1])) for (d, k), v in sorted(sums.items())]


SPIKE_LOOKBACK_DAYS = 7
SPIKE_RATIO = 1.5
"""A day is a spike when its spend is at least this many times the median of the 7 days before it."""


class SpendSpike(BaseModel):
    """The largest run of days whose spend stood well above the usual, and who caused it."""

    first_day: str
    last_day: str
    peak_day: str
    peak_usd: float
    usual_usd: float = Field(description="The median daily spend of the 7 days before the peak day.")
    extra_usd: float = Field(description="Spend above the usual over the whole run.")
    top_key: str = Field(description="The model (or other key) that added most of the extra spend.")
    top_extra_usd: float


def largest_spike(points: list[SpendPoint], *, ratio: float = SPIKE_RATIO) -> SpendSpike | None:
    """Find the spike a PM should hear about: the run of days whose spend is `ratio` x the median of the 7 days
    before each, with the most extra spend. A median of the week before, not the day before, so a Monday after a
    quiet weekend is not a spike and a spike's second day is still measured against normal days. None when no
    day qualifies (or there are not 7 earlier days to compare with)."""
    totals: dict[str, float] = defaultdict(float)
    by_key: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for point in points:
        totals[point.day] += point.usd
        by_key[point.day][point.key] += point.usd
    if not totals:
        return None
    first, last = date.fromisoformat(min(totals)), date.fromisoformat(max(totals))
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    series = [totals.get(d, 0.0) for d in days]
    usual: dict[int, float] = {}
    for i in range(SPIKE_LOOKBACK_DAYS, len(days)):
        median = sorted(series[i - SPIKE_LOOKBACK_DAYS:i])[SPIKE_LOOKBACK_DAYS // 2]
        if median > 0 and series[i] >= ratio * median:
            usual[i] = median
    runs: list[list[int]] = []
    for i in sorted(usual):
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    if not runs:
        return None
    run = max(runs, key=lambda r: sum(series[i] - usual[i] for i in r))
    peak = max(run, key=lambda i: series[i])
    extra_by_key: dict[str, float] = defaultdict(float)
    for i in run:
        before = days[i - SPIKE_LOOKBACK_DAYS:i]
        for key, usd in by_key[days[i]].items():
            typical = sorted(by_key[d].get(key, 0.0) for d in before)[SPIKE_LOOKBACK_DAYS // 2]
            extra_by_key[key] += usd - typical
    top = max(extra_by_key, key=lambda k: extra_by_key[k])
    return SpendSpike(first_day=days[run[0]], last_day=days[run[-1]], peak_day=days[peak], peak_usd=series[peak],
                      usual_usd=usual[peak], extra_usd=sum(series[i] - usual[i] for i in run), top_key=top,
                      top_extra_usd=extra_by_key[top])


def cost_per_request(store: Store, since: date, until: date, *, documents: bool = True) -> list[RequestCost]:
    """Per day: requests, spend and their ratio; documents (raw rows of the window) when asked."""
    _may_read(store, "spend")
    per_day: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in rollup_rows(store, since, until):
        per_day[r["day"]][0] += r["n"]
        per_day[r["day"]][1] += r["cost"]
    docs: dict[str, dict[str, Any]] = {}
    if documents:
        since_ts, until_ts = window_bounds(since, until)
        with store.connect() as db:
            docs = {r["day"]: r for r in rows.document_spend(db, since_ts, until_ts)}
    found = []
    for day in sorted(per_day):
        n, usd = per_day[day]
        doc = docs.get(day, {"n": 0, "cost": 0.0})
        found.append(RequestCost(day=day, requests=int(n), usd=usd, per_request=usd / n if n else None,
                                 documents=doc["n"], document_usd=doc["cost"],
                                 per_document=doc["cost"] / doc["n"] if doc["n"] else None))
    return found


_BILLED_STATES = ("succeeded", "failed", "cancelled")


def training_spend(store: Store, since: date, until: date, *, book: PriceBook | None = None) -> list[TrainingCost]:
    """Jobs that finished in the window and were billed: trained tokens x training price, else their estimate."""
    _may_read(store, "training")
    book = book or price_book(store)
    with store.connect() as db:
        jobs = job_rows.list_jobs(db)
    found = []
    for job in jobs:
        day = (job.finished_at or job.submitted_at or "")[:10]
        if job.state.value not in _BILLED_STATES or not job.submitted_at or not since.isoformat() <= day <= until.isoformat():
            continue
        row = book.row_for(job.base_model, day)
        if job.trained_tokens and row is not None and row.training_per_1m is not None:
            usd = job.trained_tokens * row.training_per_1m / TOKENS_PER_PRICE
            how = f"{job.trained_tokens:,} trained tokens x ${row.training_per_1m:g} per 1M (price row {row.id})"
        elif job.state.value == "succeeded" and job.estimate_usd is not None:
            usd, how = job.estimate_usd, "the launch estimate (no trained-token count or training price)"
        else:
            continue  # a failed job with nothing billed
        found.append(TrainingCost(job_id=job.id, name=job.name, day=day, backend=job.backend, base_model=job.base_model,
                                  usd=round(usd, 6), how=how))
    return found


def serving_spend(store: Store, since: date, until: date, *, now: datetime | None = None,
                  book: PriceBook | None = None) -> list[ServingCost]:
    """Provisioned Throughput: hours each deployment existed inside the window x its hourly price x units."""
    _may_read(store, "serving")
    now = now or datetime.now(UTC)
    start = datetime.combine(since, datetime.min.time(), UTC)
    end = min(datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC), now)
    with store.connect() as db:
        deployments = [d for d in deployment_rows.list_all(db, include_deleted=True)
                       if d.kind == "provisioned" and d.status not in ("failed", "requested")]
        models = {m.id: m for m in model_rows.list_models(db)}
    book = book or price_book(store)
    found = []
    for d in deployments:
        units = d.units or 1
        hourly = d.hourly_usd
        if hourly is None and (model := models.get(d.model_id)) is not None:
            row = book.row_for(model.base_model, d.created_at[:10])
            hourly = row.pt_hourly * units if row is not None and row.pt_hourly is not None else None
        if not hourly:
            continue
        lo = max(start, _moment(d.created_at))
        hi = min(end, _moment(d.deleted_at) if d.deleted_at else end)
        if hi <= lo:
            continue
        by_day: dict[str, float] = defaultdict(float)
        cursor = lo
        while cursor < hi:
            midnight = datetime.combine(cursor.date() + timedelta(days=1), datetime.min.time(), UTC)
            step = min(midnight, hi)
            by_day[cursor.date().isoformat()] += (step - cursor).total_seconds() / 3600 * hourly
            cursor = step
        hours = (hi - lo).total_seconds() / 3600
        found.append(ServingCost(deployment_id=d.id, name=d.name, units=units, hourly_usd=hourly, hours=round(hours, 4),
                                 usd=round(hours * hourly, 6), by_day=dict(by_day)))
    return found


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------ the month


class Savings(BaseModel):
    app_cache_hits: int = 0
    app_cache_usd: float = Field(0.0, description="Cache hits x the average paid request of the same model, task and day.")
    prompt_cache_tokens: int = 0
    prompt_cache_usd: float = Field(0.0, description="Cached input tokens x (input price - cached-input price).")
    prompt_cache_unpriced_tokens: int = Field(0, description="Cached input tokens of models with no cached-input "
                                                             "price: charged at the input price, so no saving counted.")

    @property
    def total(self) -> float:
        return self.app_cache_usd + self.prompt_cache_usd


class Forecast(BaseModel):
    month: str
    spent: float = Field(description="Spend from the 1st of the month to today, today's part included.")
    days_left: float = Field(description="Days until the month ends: the rest of today (a fraction) and the whole "
                                         "days after it.")
    rate_7: float = Field(description="Mean daily spend over the 7 whole days before today.")
    rate_14: float = Field(description="Mean daily spend over the 14 whole days before today.")
    point: float
    low: float
    high: float
    method: str = (
        "spent so far this month + the 7-day daily run-rate x days left (the rest of today, as a fraction of a "
        "day, plus the whole days after it); the band runs from the lower to the higher "
        "of the 7- and 14-day run-rates x days left, widened by 1.64 x the daily standard deviation of the last 14 "
        "days x sqrt(days left) (a 90% band if days were independent), and never below what is already spent"
    )


def forecast_from(daily: dict[str, float], today: date, *, now: datetime | None = None) -> Forecast:
    """Project the month's total from daily spend (day -> USD); pure, so tests feed it fixed series.

    Today's spend so far is in `spent`, so the rest of today still counts as time left: at 19:50 on the last day of
    the month, 0.17 of a day. `now` on another day than `today` (or none) reads as the end of today."""
    month_start = today.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    spent = sum(usd for day, usd in daily.items() if month_start.isoformat() <= day <= today.isoformat())
    days_left = (next_month - today).days - 1 + rest_of_day(today, now)
    last_14 = [daily.get((today - timedelta(days=i)).isoformat(), 0.0) for i in range(1, 15)]
    rate_7, rate_14 = sum(last_14[:7]) / 7, sum(last_14) / 14
    mean = rate_14
    sd = math.sqrt(sum((x - mean) ** 2 for x in last_14) / 13)
    spread = 1.64 * sd * math.sqrt(days_left)
    return Forecast(
        month=month_start.isoformat()[:7], spent=spent, days_left=days_left, rate_7=rate_7, rate_14=rate_14,
        point=spent + rate_7 * days_left,
        low=max(spent, spent + min(rate_7, rate_14) * days_left - spread),
        high=spent + max(rate_7, rate_14) * days_left + spread,
    )


def rest_of_day(today: date, now: datetime | None) -> float:
    """The share of `today` still to come at `now` (UTC); 0 when `now` is not on `today`."""
    if now is None:
        return 0.0
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    if now.date() != today:
        return 0.0
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    return max(0.0, 1.0 - (now - midnight).total_seconds() / 86_400)


class Ledger:
    """Everything spent in a window, read once: the rollups, jobs and deployments, and tags when a question needs them."""

    def __init__(self, store: Store, since: date, until: date, *, now: datetime | None = None) -> None:
        self.store, self.since, self.until = store, since, until
        self.book = price_book(store)
        self.inference = rollup_rows(store, since, until)
        self.training = training_spend(store, since, until, book=self.book)
        self.serving = serving_spend(store, since, until, now=now, book=self.book)
        self._tags: list[dict[str, Any]] | None = None

    def tags(self) -> list[dict[str, Any]]:
        if self._tags is None:
            since_ts, until_ts = window_bounds(self.since, self.until)
            with self.store.connect() as db:
                self._tags = rows.tag_spend(db, since_ts, until_ts)
        return self._tags

    def daily(self, scope: BudgetScope | str = BudgetScope.ALL, value: str | None = None) -> dict[str, float]:
        """Spend per day inside a budget's scope: inference, plus training and serving where the scope takes them."""
        scope = BudgetScope(scope)
        totals: dict[str, float] = defaultdict(float)
        if scope is BudgetScope.TAG:
            for r in self.tags():
                if r["tag"] == value:
                    totals[r["day"]] += r["cost"]
            return dict(totals)
        wanted = _scope_filter(scope, value, self.book)
        for r in self.inference:
            if wanted(r):
                totals[r["day"]] += r["cost"]
        if scope in (BudgetScope.ALL, BudgetScope.PROVIDER):
            for job in self.training:
                if scope is BudgetScope.ALL or self.book.provider(job.base_model) == value or job.backend == value:
                    totals[job.day] += job.usd
            if scope is BudgetScope.ALL or value == "bedrock":
                for deployment in self.serving:
                    for day, usd in deployment.by_day.items():
                        totals[day] += usd
        return dict(totals)

    def savings(self, since: date | None = None) -> Savings:
        first = (since or self.since).isoformat()
        found = Savings()
        for r in self.inference:
            if r["day"] < first:
                continue
            paid = r["n_costed"] - r["n_cache_hit"]
            if r["n_cache_hit"]:
                found.app_cache_hits += r["n_cache_hit"]
                if paid > 0:
                    found.app_cache_usd += r["n_cache_hit"] * r["cost"] / paid
            if r["tokens_cached"]:
                row = self.book.row_for(r["model_version"], r["day"])
                found.prompt_cache_tokens += r["tokens_cached"]
                if row is None or row.input_per_1m is None or row.cached_input_per_1m is None:
                    found.prompt_cache_unpriced_tokens += r["tokens_cached"]
                else:
                    found.prompt_cache_usd += r["tokens_cached"] * (row.input_per_1m - row.cached_input_per_1m) / TOKENS_PER_PRICE
        return found


def _scope_filter(scope: BudgetScope, value: str | None, book: PriceBook) -> Callable[[dict[str, Any]], bool]:
    if scope is BudgetScope.ALL:
        return lambda r: True
    if scope is BudgetScope.MODEL:
        return lambda r: r["model_version"] == value
    if scope is BudgetScope.PROVIDER:
        return lambda r: book.provider(r["model_version"]) == value
    task = "" if value == NO_TASK else value
    return lambda r: r["task_type"] == task


def _ledgerwindow_bounds(today: date) -> tuple[date, date]:
    """From the earlier of the 1st of the month and 14 days back (the run-rates) to today."""
    return min(today.replace(day=1), today - timedelta(days=14)), today


class CostSummary(BaseModel):
    today: str
    month: str
    inference_usd: float
    training_usd: float
    serving_usd: float
    total_usd: float
    requests: int
    per_request: float | None
    savings: Savings
    forecast: Forecast


def summary(store: Store, *, today: date | None = None, now: datetime | None = None) -> CostSummary:
    """This month so far: spend by kind, requests, cache savings and the month-end forecast."""
    _may_read(store, "summary")
    clock = now or datetime.now(UTC)
    today = today or clock.date()
    ledger = Ledger(store, *_ledgerwindow_bounds(today), now=now)
    first = today.replace(day=1).isoformat()
    month_rows = [r for r in ledger.inference if r["day"] >= first]
    inference = sum(r["cost"] for r in month_rows)
    requests = int(sum(r["n"] for r in month_rows))
    training = sum(j.usd for j in ledger.training if j.day >= first)
    serving = sum(usd for d in ledger.serving for day, usd in d.by_day.items() if day >= first)
    return CostSummary(
        today=today.isoformat(), month=first[:7], inference_usd=inference, training_usd=training, serving_usd=serving,
        total_usd=inference + training + serving, requests=requests, per_request=inference / requests if requests else None,
        savings=ledger.savings(today.replace(day=1)), forecast=forecast_from(ledger.daily(), today, now=clock),
    )


# ------------------------------------------------------------------------------------------ budgets


class Budget(BaseModel):
    id: int
    name: str
    scope: BudgetScope
    scope_value: str | None = Field(None, description="The model, provider, task or tag; empty for 'all'.")
    monthly_usd: float = Field(description="What the scope may spend in a calendar month, in USD.")
    alert_pct: float = Field(80.0, description="Alert when spend or the month-end forecast passes this % of the budget.")
    created_at: str


class BudgetStatus(BaseModel):
    budget: Budget
    spent: float
    forecast: float
    pct_used: float
    pct_forecast: float
    alert: bool
    reason: str = ""


def validate_budget(raw: dict[str, Any]) -> dict[str, Any]:
    """Check a budget a person typed; InvalidInput names the field."""
    name = clean_text(raw.get("name"))
    if not name or len(name) > 80:
        raise InvalidInput("budget name: give 1 to 80 characters")
    where = f"budget {name!r}"
    try:
        scope = BudgetScope(clean_text(raw.get("scope")) or "all")
    except ValueError:
        raise InvalidInput(f"{where}: scope must be one of {', '.join(s.value for s in BudgetScope)}, "
                           f"got {raw.get('scope')!r}") from None
    value = clean_text(raw.get("scope_value")) or None
    if scope is not BudgetScope.ALL and not value:
        raise InvalidInput(f"{where}: scope_value is empty; name the {scope.value} the budget covers")
    amount = usd_number(raw.get("monthly_usd"), "monthly_usd", where)
    if not amount:
        raise InvalidInput(f"{where}: monthly_usd must be more than 0 USD, got {raw.get('monthly_usd')!r}")
    pct = usd_number(raw.get("alert_pct", 80), "alert_pct", where)
    if not pct or pct > 1000:
        raise InvalidInput(f"{where}: alert_pct must be above 0 and at most 1000 (percent of the budget), "
                           f"got {raw.get('alert_pct')!r}")
    return {"name": name, "scope": scope.value, "scope_value": None if scope is BudgetScope.ALL else value,
            "monthly_usd": amount, "alert_pct": pct}


def list_budgets(store: Store) -> list[Budget]:
    _may_read(store, "budgets")
    with store.connect() as db:
        return [Budget.model_validate(r) for r in rows.budget_rows(db)]


def save_budget(store: Store, raw: dict[str, Any], *, replace: str | None = None) -> Budget:
    """Create a budget, or change the one named `replace`; a name already taken is a Conflict."""
    action = "budget.create" if replace is None else "budget.update"
    access.require(store, Permission.COSTS_WRITE, action=action,
                   target=f"budget:{replace if replace is not None else clean_text(raw.get('name'))}")
    values = validate_budget(raw)
    with store.write() as db:
        clash = rows.budget_named(db, values["name"])
        if replace is None:
            if clash:
                raise Conflict(f"a budget named {values['name']!r} already exists; choose another name or edit it")
            rows.insert_budget(db, values)
            access.audit(db, action, f"budget:{values['name']}", **_budget_detail(values))
        else:
            current = rows.budget_named(db, replace)
            if current is None:
                raise NotFound(f"no budget named {replace!r}; `workbench costs budgets list` lists them")
            if clash and clash["id"] != current["id"]:
                raise Conflict(f"a budget named {values['name']!r} already exists; choose another name")
            rows.update_budget(db, current["id"], values)
            access.audit(db, action, f"budget:{values['name']}", old=_budget_detail(current), **_budget_detail(values))
        return Budget.model_validate(rows.budget_named(db, values["name"]))


def _budget_detail(values: dict[str, Any]) -> dict[str, Any]:
    return {k: values.get(k) for k in rows.BUDGET_FIELDS}


def delete_budget(store: Store, name: str) -> None:
    access.require(store, Permission.COSTS_WRITE, action="budget.delete", target=f"budget:{name}")
    with store.write() as db:
        current = rows.budget_named(db, name)
        if current is None or not rows.delete_budget(db, name):
            raise NotFound(f"no budget named {name!r}; `workbench costs budgets list` lists them")
        access.audit(db, "budget.delete", f"budget:{name}", **_budget_detail(current))


def budget_statuses(store: Store, *, today: date | None = None, now: datetime | None = None) -> list[BudgetStatus]:
    """Each budget's spend this month and month-end forecast in its scope, and whether either passed its alert %."""
    budgets = list_budgets(store)
    if not budgets:
        return []
    clock = now or datetime.now(UTC)
    today = today or clock.date()
    ledger = Ledger(store, *_ledgerwindow_bounds(today), now=now)
    found = []
    for budget in budgets:
        projection = forecast_from(ledger.daily(budget.scope, budget.scope_value), today, now=clock)
        used = 100 * projection.spent / budget.monthly_usd
        projected = 100 * projection.point / budget.monthly_usd
        reasons = []
        if used >= budget.alert_pct:
            reasons.append(f"spent {used:.0f}% of ${budget.monthly_usd:,.2f}")
        if projected >= budget.alert_pct:
            reasons.append(f"forecast to reach {projected:.0f}% by month end")
        found.append(BudgetStatus(budget=budget, spent=projection.spent, forecast=projection.point, pct_used=used,
                                  pct_forecast=projected, alert=bool(reasons),
                                  reason=" and ".join(reasons) + (f" (alert at {budget.alert_pct:g}%)" if reasons else "")))
    return found


SCOPE_DAYS = 90
"""How far back `scope_values` looks for the models, providers and tasks a budget can name (tags: 30 days, read raw)."""


def scope_values(store: Store, scope: BudgetScope | str, *, today: date | None = None) -> list[str]:
    """The values a budget of this scope can name that recent traffic used: models, providers and tasks from the
    rollups over the last 90 days, tags from the last 30 days' raw rows."""
    _may_read(store, "budgets")
    scope = BudgetScope(scope)
    today = today or today_utc()
    if scope is BudgetScope.ALL:
        return []
    if scope is BudgetScope.TAG:
        since_ts, until_ts = window_bounds(today - timedelta(days=29), today)
        with store.connect() as db:
            return sorted({r["tag"] for r in rows.tag_spend(db, since_ts, until_ts) if r["tag"]})
    found = rollup_rows(store, today - timedelta(days=SCOPE_DAYS - 1), today)
    if scope is BudgetScope.MODEL:
        return sorted({r["model_version"] for r in found})
    if scope is BudgetScope.PROVIDER:
        book = price_book(store)
        return sorted({book.provider(r["model_version"]) for r in found})
    return sorted({r["task_type"] or NO_TASK for r in found})


def scope_warning(store: Store, scope: BudgetScope | str, value: str | None, *, today: date | None = None) -> str | None:
    """Why a budget's scope value may never see spend: it matches no recent traffic (a typo, or a model not yet
    used). None when it matches, or for 'all'."""
    scope = BudgetScope(scope)
    if scope is BudgetScope.ALL or not value:
        return None
    known = scope_values(store, scope, today=today)
    if value in known:
        return None
    days = 30 if scope is BudgetScope.TAG else SCOPE_DAYS
    listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    return (f"no traffic in the last {days} days has {scope.value} {value!r}, so this budget will show $0.00 until "
            f"some does; " + (f"{scope.value}s seen: {listed}" if known else f"no {scope.value} was seen at all"))


def budget_alerts(store: Store, *, today: date | None = None) -> list[BudgetStatus]:
    """The budgets past their alert %, for Home's "needs attention"."""
    return [s for s in budget_statuses(store, today=today) if s.alert]


# ------------------------------------------------------------------------------------------ for the page


def is_demo(store: Store) -> bool:
    """Whether the newest predictions come from the demo generator (the page marks them)."""
    _may_read(store)
    with store.connect() as db:
        return rows.newest_source(db) == "demo"


def traffic_keys(store: Store, since: date, until: date) -> tuple[list[str], list[str]]:
    """The models and task types with traffic in a window, from the rollups (never DISTINCT over raw rows)."""
    _may_read(store, "spend")
    found = rollup_rows(store, since, until)
    return sorted({r["model_version"] for r in found}), sorted({r["task_type"] for r in found if r["task_type"]})
