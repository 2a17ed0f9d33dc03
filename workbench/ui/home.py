"""Home page pieces: the pages there are, and what in each dataset needs a person's attention."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st
from pydantic import BaseModel

from workbench.domain.example import ReviewState, ValidationStatus
from workbench.domain.filters import ExampleFilter
from workbench.services import datasets
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
    """Return (path relative to the app, label) for every page under root/pages, in menu order."""
    found = []
    for path in sorted((root / "pages").glob("*.py")):
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
    """Jobs a person should look at: every active one, and those that failed or vanished in the last `days`."""
    from datetime import UTC, datetime, timedelta

    from workbench.domain.jobs import ACTIVE_STATES, JobState
    from workbench.services import jobs

    active = jobs.list_jobs(store, states=list(ACTIVE_STATES))[:limit]
    since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
    failed = [j for j in jobs.list_jobs(store, states=[JobState.FAILED, JobState.UNKNOWN])
              if (j.finished_at or j.updated_at) >= since][:limit]
    return active, failed


def retraining_notices(store: Store, jobs_page: str) -> None:
    """Say "retraining recommended" for each task whose latest reviews pass a threshold, with a link to the launch form."""
    from workbench.services.review import retraining_advice
    from workbench.ui.widgets import escape_markdown

    for advice in retraining_advice(store):
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


def monitoring_notices(store: Store, monitoring_page: str) -> None:
    """Firing alerts, each a "needs attention" link to the Monitoring page, and the last 7 days in four numbers.

    Read from the alert tables and the daily rollups only, so Home stays quick at any traffic volume;
    nothing is shown while no prediction has been sent.
    """
    from workbench.services import alerts, monitoring
    from workbench.ui.widgets import escape_markdown

    for event in alerts.firing(store):
        st.page_link(monitoring_page, icon=":material/notifications_active:", query_params={"tab": "Alerts"},
                     label=f"Alert {escape_markdown(event.rule_name)} firing since {event.fired_at[:16]}: "
                           f"{escape_markdown(shorten(event.message))}")
    week = monitoring.summary(store, days=7)
    if not week.predictions:
        return
    st.subheader("Production, last 7 days", anchor=False)
    cols = st.columns(4)
    cols[0].metric("Predictions", f"{week.predictions:,}")
    cols[1].metric("Accuracy", "-" if week.accuracy is None else f"{week.accuracy:.1%}")
    cols[2].metric("p95 latency", "-" if week.p95_ms is None else f"{week.p95_ms:,.0f} ms")
    cols[3].metric("Spend", f"${week.cost_usd:,.2f}")
    st.page_link(monitoring_page, label="Open Monitoring", icon=":material/monitoring:")


@st.cache_data(ttl=60, max_entries=4, show_spinner=False)
def _budget_alerts(_store: Store, path: str) -> list[tuple[str, str]]:
    from workbench.services import costs

    return [(s.budget.name, s.reason) for s in costs.budget_alerts(_store)]


def costs_attention(store: Store, costs_page: str) -> None:
    """Budgets whose spend or month-end forecast passed their alert %, each a link to the Costs page's Budgets tab."""
    from workbench.ui.widgets import escape_markdown

    for name, reason in _budget_alerts(store, str(store.path)):
        st.page_link(costs_page, icon=":material/savings:", query_params={"tab": "Budgets"},
                     label=f"Budget {escape_markdown(name)}: {escape_markdown(reason)}")


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


def experiment_notices(store: Store, experiments_page: str) -> None:
    """Running experiments that have a result to act on (a winner to ship, or a broken split), each a link to it."""
    from workbench.ui.widgets import escape_markdown

    for experiment_id, name, headline in _decided_by_data(store, str(store.path)):
        st.page_link(experiments_page, icon=":material/science:", query_params={"experiment": str(experiment_id)},
                     label=f"Experiment {escape_markdown(name)}: {escape_markdown(shorten(headline))}; decide whether to ship")
