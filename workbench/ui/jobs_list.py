"""Jobs tab: every job in the ledger, filtered by state and backend, and which one is open (also `?job=ID`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go
import streamlit as st

from workbench.domain.jobs import BackendName, JobState
from workbench.services import compare, job_views, jobs
from workbench.store.jobs import JobRow
from workbench.ui.widgets import chart_text, escape_markdown

if TYPE_CHECKING:
    from workbench.store import Store

STATES, BACKEND, OPEN, COMPARE = "jobs.filter_states", "jobs.filter_backend", "jobs.open", "jobs.compare"
ALL = "all backends"


def job_changed() -> None:
    """Put the open job in the URL, so a link opens the same job."""
    chosen = st.session_state.get(OPEN)
    if chosen:
        st.query_params["job"] = str(chosen)
    else:
        st.query_params.pop("job", None)


def render(store: Store) -> JobRow | None:
    """Draw the filters and the table; return the job to open below it, if any."""
    everything = jobs.list_jobs(store)
    if not everything:
        st.info("No jobs yet. Launch one from the Launch tab, or from a terminal with `workbench jobs launch`.",
                icon=":material/rocket_launch:")
        return None
    cols = st.columns([3, 1.2])
    states = cols[0].multiselect("State", list(JobState), key=STATES, format_func=job_views.state_label,
                                 placeholder="every state")
    backend = cols[1].selectbox("Backend", [ALL, *BackendName], key=BACKEND)
    shown = jobs.list_jobs(store, states=states or None, backend=None if backend == ALL else backend)
    st.caption(f"{len(shown):,} of {len(everything):,} jobs")
    st.dataframe(job_views.jobs_frame(shown), hide_index=True, width="stretch", key="jobs.table",
                 column_config={"id": st.column_config.NumberColumn(width="small")})
    return _open(everything)


def _open(everything: list[JobRow]) -> JobRow | None:
    by_id = {j.id: j for j in everything}
    wanted = st.query_params.get("job")
    if wanted and st.session_state.get(OPEN) != _as_id(wanted):
        if _as_id(wanted) in by_id:
            st.session_state[OPEN] = _as_id(wanted)
        else:
            st.warning(f"There is no job {escape_markdown(wanted)}; pick one below.")
    chosen = st.selectbox("Open job", list(by_id), key=OPEN, index=None, placeholder="choose a job to see its detail",
                          format_func=lambda i: job_views.job_label(by_id[i]), on_change=job_changed)
    return by_id.get(chosen) if chosen is not None else None


def _as_id(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def render_compare(store: Store) -> None:
    """Pick two or more jobs: overlaid loss curves, and a table of what differs with the best run marked."""
    everything = {j.id: j for j in jobs.list_jobs(store)}
    if len(everything) < 2:
        st.info("Comparing needs at least two jobs.", icon=":material/compare_arrows:")
        return
    picked = st.multiselect("Jobs to compare", list(everything), key=COMPARE, placeholder="pick two or more jobs",
                            format_func=lambda i: job_views.job_label(everything[i]))
    if len(picked) < 2:
        st.caption("Pick at least two jobs.")
        return
    result = compare.compare_jobs(store, picked)
    figure = go.Figure()
    for row in result.rows:
        for label, (steps, losses) in job_views.loss_series(row.metrics).items():
            figure.add_trace(go.Scatter(x=steps, y=losses, mode="lines", name=chart_text(f"{row.name} · {label}"),
                                        line={"dash": "dot" if label == "validation" else "solid"}))
    figure.update_layout(height=360, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis_title="step", yaxis_title="loss")
    st.plotly_chart(figure, key="jobs.compare_chart")
    if result.best:
        st.markdown(f"**Best run:** ★ {escape_markdown(result.best)} (lowest validation loss, else final training loss)")
    if not result.differing:
        st.caption("These jobs set the same hyperparameters.")
    st.dataframe(job_views.comparison_frame(result), hide_index=True, width="stretch")
