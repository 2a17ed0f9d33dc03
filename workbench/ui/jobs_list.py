"""Jobs tab: every job in the ledger, filtered by state and backend, and which one is open (also `?job=ID`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from workbench.domain.jobs import BackendName, JobState
from workbench.services import job_views, jobs
from workbench.store.jobs import JobRow
from workbench.ui.widgets import escape_markdown

if TYPE_CHECKING:
    from workbench.store import Store

STATES, BACKEND, OPEN = "jobs.filter_states", "jobs.filter_backend", "jobs.open"
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
    shown = [j for j in everything if (not states or j.state in states) and (backend == ALL or j.backend == backend)]
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
