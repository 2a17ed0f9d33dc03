"""Home page pieces: the pages there are, and what in each dataset needs a person's attention.

Home opens for every role, so each piece asks first whether the actor may read what it shows (a reviewer
sees no spend, alerts or experiments) and leaves it out when not: a refusal never reaches the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import streamlit as st
from pydantic import BaseModel

from workbench.domain.access import Permission, may_open
from workbench.domain.example import ReviewState, ValidationStatus
from workbench.domain.filters import ExampleFilter
from workbench.errors import Forbidden
from workbench.services import access, datasets
from workbench.services.demo import DEMO_DATASETS

if TYPE_CHECKING:
    from workbench.store import Store
    from workbench.store.jobs import JobRow

PAGE_ICONS = {
    "Datasets": ":material/dataset:",
    "Review": ":material/rate_review:",
    "Templates": ":material/description:",
    "Jobs": ":material/model_training:",
    "Models": ":material/deployed_code:",
    "Monitoring": ":material/monitoring:",
    "Costs": ":material/payments:",
    "Experiments": ":material/science:",
    "Settings": ":material/settings:",
}
DEMO_NAMES = {name for name, *_ in DEMO_DATASETS}
T = TypeVar("T")


def readable(permissions: tuple[Permission, ...], read: Callable[[], T], default: T) -> T:
    """Run `read` when the actor holds every one of `permissions`, else return `default`.

    Asked before reading, so a role that may not see something records no refusal each time Home opens; a
    Forbidden from further down (a service asking for more than expected) still leaves Home standing.
    """
    if not all(access.can(p) for p in permissions):
        return default
    try:
        return read()
    except Forbidden:
        return default


class Attention(BaseModel):
    """One thing to look at: how many examples of a dataset, and the Browse filter that shows them."""

    dataset: str
    count: int
    what: str
    params: dict[str, str]


# Each check is a Browse filter plus its URL form, so the link opens exactly those examples.
CHECKS: list[tuple[str, ExampleFilter, dict[str, str]]] = [
    ("with PII", ExampleFilter(has_pii=True), {"pii": "yes"}),
    ("failing format checks", ExampleFilter(validation_status=ValidationStatus.ERROR), {"checks": "error"}),
    ("with format warnings", ExampleFilter(validation_status=ValidationStatus.WARNING), {"checks": "warning"}),
    ("waiting for review", ExampleFilter(review_state=ReviewState.PENDING), {"review": "pending"}),
]


def pages(root: Path) -> list[tuple[str, str]]:
    """Return (path relative to the app, label) for every page under root/pages the actor may open, in menu order."""
    found = []
    actor = access.current()
    for path in sorted((root / "pages").glob("*.py")):
        if not may_open(actor, f"pages/{path.name}"):
            continue
        label = re.sub(r"^\d+_", "", path.stem).replace("_", " ")
        found.append((f"pages/{path.name}", label))
    return found


def is_demo(names: list[str]) -> bool:
    """Say whether the workspace holds the demo datasets."""
    return any(name in DEMO_NAMES for name in names)


@st.cache_data(ttl=30, max_entries=8, show_spinner=False)
def attention(_store: Store, path: str, names: tuple[str, ...]) -> list[Attention]:
    """Count, per dataset, the examples each check flags (cached briefly: Home is opened often)."""
    # `path` keys the cache by store file; `_store` (not hashed) is the handle to read with.
    counts = datasets.count_matching(_store, {name: [flt for _, flt, _ in CHECKS] for name in names})
    return [
        Attention(dataset=name, count=count, what=what, params={"dataset": name, "tab": "Browse", **params})
        for name, per_check in counts.items()
        for (what, _, params), count in zip(CHECKS, per_check, strict=True)
        if count
    ]


def job_attention(store: Store, *, days: int = 7, limit: int = 5) -> tuple[list[JobRow], list[JobRow]]:
    """Jobs a person should look at: every active one, and those that failed or vanished in the last `days`.

    None for a role that may not read jobs."""
    from datetime import UTC, datetime, timedelta

    from workbench.domain.jobs import ACTIVE_STATES, JobState
    from workbench.services import jobs

    def read() -> tuple[list[JobRow], list[JobRow]]:
        active = jobs.list_jobs(store, states=list(ACTIVE_STATES))[:limit]
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        failed = [j for j in jobs.list_jobs(store, states=[JobState.FAILED, JobState.UNKNOWN])
                  if (j.finished_at or j.updated_at) >= since][:limit]
        return active, failed

    return readable((Permission.JOBS_READ,), read, ([], []))


def retraining_notices(store: Store, jobs_page: str) -> None:
    """Say "retraining recommended" for each task whose latest reviews pass a threshold, with a link to the launch
    form: for the roles that read reviews and jobs (a reviewer cannot open the Jobs page it links to)."""
    from workbench.services.review import retraining_advice
    from workbench.ui.widgets import escape_markdown

    for advice in readable((Permission.REVIEW_READ, Permission.JOBS_READ), lambda: retraining_advice(store), []):
        task = escape_markdown(advice.task_type or "(no task type)")
        st.warning(f"**Retraining recommended** for task {task}: {escape_markdown(', '.join(advice.reasons))} "
                   f"in its last {advice.reviews} reviews.", icon=":material/model_training:")
        target = f" on {escape_markdown(advice.dataset)}" if advice.dataset else ""
        st.page_link(jobs_page, label=f"Launch a job{target}", icon=":material/rocket_launch:",
                     query_params=advice.launch_params())


def shorten(text: str | None, limit: int = 90) -> str:
    """A message cut at a word boundary with an ellipsis, for one line of a list."""
    text = " ".join((text or "no reason given").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def when_text(stamp: str | None) -> str:
    """An ISO time as `30 Nov 19:53 UTC`: short enough for one line, unambiguous about the zone."""
    from datetime import UTC, datetime

    if not stamp:
        return "an unknown time"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%d %b %H:%M UTC").lstrip("0")


class Notice(BaseModel):
    """One thing in production needing attention: a warning that says what, and the link that opens it."""

    text: str
    icon: str
    page: str
    label: str
    params: dict[str, str]


def production_attention(store: Store, monitoring_page: str, costs_page: str, experiments_page: str) -> list[Notice]:
    """Firing alerts, budgets past their alert share and experiments with a result to act on: those the
    actor's role may read (alerts with monitoring, budgets with costs, experiments with experiments).

    Read from alert tables, budgets and rollups only (the latter two cached), so Home stays quick.
    """
    from workbench.services import alerts
    from workbench.ui.widgets import escape_markdown

    found = []
    for event in readable((Permission.MONITORING_READ,), lambda: alerts.firing(store), []):
        name = escape_markdown(event.rule_name)
        found.append(Notice(
            text=f"**Alert {name}** firing since {when_text(event.fired_at)}: {escape_markdown(shorten(event.message))}",
            icon=":material/notifications_active:", page=monitoring_page, label=f"Alert {name}: open Monitoring",
            params={"tab": "Alerts"}))
    for name, reason in readable((Permission.COSTS_READ,), lambda: _budget_alerts(store, str(store.path)), []):
        found.append(Notice(text=f"**Budget {escape_markdown(name)}**: {escape_markdown(reason)}",
                            icon=":material/savings:", page=costs_page, label=f"Budget {escape_markdown(name)}: open Costs",
                            params={"tab": "Budgets"}))
    decided = readable((Permission.EXPERIMENTS_READ,), lambda: _decided_by_data(store, str(store.path)), [])
    for experiment_id, name, headline in decided:
        found.append(Notice(text=f"**Experiment {escape_markdown(name)}**: {escape_markdown(shorten(headline))}",
                            icon=":material/science:", page=experiments_page,
                            label=f"Experiment {escape_markdown(name)}: decide whether to ship",
                            params={"experiment": str(experiment_id)}))
    return found


def show_notices(notices: list[Notice]) -> None:
    for notice in notices:
        st.warning(notice.text, icon=notice.icon)
        st.page_link(notice.page, label=notice.label, icon=":material/arrow_forward:", query_params=notice.params)


def production_summary(store: Store, monitoring_page: str) -> None:
    """The last 7 days in four numbers, from the daily rollups; nothing while no prediction has been sent.

    Only for roles that read monitoring; the spend only for those that also read costs.
    """
    from workbench.services import monitoring

    week = readable((Permission.MONITORING_READ,), lambda: monitoring.summary(store, days=7), None)
    if week is None or not week.predictions:
        return
    st.subheader("Production, last 7 days", anchor=False)
    spend = access.can(Permission.COSTS_READ)
    cols = st.columns(4 if spend else 3)
    cols[0].metric("Predictions", f"{week.predictions:,}")
    cols[1].metric("Accuracy", "-" if week.accuracy is None else f"{week.accuracy:.1%}")
    cols[2].metric("p95 latency", "-" if week.p95_ms is None else f"{week.p95_ms:,.0f} ms")
    if spend:
        cols[3].metric("Spend", f"${week.cost_usd:,.2f}")
    st.page_link(monitoring_page, label="Open Monitoring", icon=":material/monitoring:")


def page_grid(found: list[tuple[str, str]], per_row: int = 5) -> None:
    """Links to every page, `per_row` to a row, so each name shows whole (nine in one row cut them off)."""
    for at in range(0, len(found), per_row):
        cols = st.columns(per_row)
        for col, (path, label) in zip(cols, found[at:at + per_row], strict=False):
            col.page_link(path, label=label, icon=PAGE_ICONS.get(label, ":material/article:"))


@st.cache_data(ttl=60, max_entries=4, show_spinner=False)
def _budget_alerts(_store: Store, path: str) -> list[tuple[str, str]]:
    from workbench.services import costs

    return [(s.budget.name, s.reason) for s in costs.budget_alerts(_store)]


@st.cache_data(ttl=60, max_entries=4, show_spinner=False)
def _decided_by_data(_store: Store, path: str) -> list[tuple[int, str, str]]:
    """Running experiments whose data has a winner or an SRM alarm: (id, name, headline)."""
    from workbench.services import experiments

    found = []
    for experiment in experiments.list_experiments(_store):
        if experiment.state != "running":
            continue
        results = experiments.analyze(_store, experiment.id)
        if results.winner or (results.srm_p_value is not None and results.srm.mismatch):
            found.append((experiment.id, experiment.name, results.headline))
    return found
