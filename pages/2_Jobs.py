"""Jobs: every fine-tuning job across providers, one job's live view, launching, and comparing runs.

The open job is in the URL (`?job=ID`) and so is the tab (`?tab=launch`), so a link reproduces the screen.
"""

from __future__ import annotations

import streamlit as st

from workbench.errors import WorkbenchError
from workbench.services import jobs
from workbench.ui import jobs_detail, jobs_launch, jobs_list
from workbench.ui.resources import get_store
from workbench.ui.widgets import escape_markdown, flash, page_setup

page_setup("Jobs · Fine-Tuning Workbench")

TAB = "jobs.tab"
TABS = ["Jobs", "Launch", "Compare"]


def tab_changed() -> None:
    st.query_params["tab"] = st.session_state[TAB].lower()


def show_job(job_id: int) -> None:
    """Open a job (after a launch or a retry): its tab, its detail, its URL."""
    st.session_state[TAB] = "Jobs"
    st.session_state[jobs_list.OPEN] = job_id
    st.query_params["job"] = str(job_id)
    st.query_params["tab"] = "jobs"


def clone(job_id: int) -> None:
    """Fill the launch form from a job and switch to it."""
    try:
        jobs_launch.fill(jobs.clone_form(store, job_id))
    except WorkbenchError as exc:
        flash(jobs_detail.SCOPE, escape_markdown(str(exc)), "error")
        return
    st.session_state[TAB] = "Launch"
    st.query_params["tab"] = "launch"


store = get_store()
st.title(":material/model_training: Jobs")
st.caption("Jobs progress with no browser open: `workbench jobs watch` (started by `make run`) polls the providers "
           "and this page reads what it wrote.")

wanted = str(st.query_params.get("tab", "")).capitalize()
tabs = st.tabs(TABS, key=TAB, default=wanted if wanted in TABS else None, on_change=tab_changed)
with tabs[0]:
    if tabs[0].open:
        try:
            job = jobs_list.render(store)
            if job is not None:
                st.divider()
                jobs_detail.render(store, job, on_clone=clone, on_retried=show_job)
        except WorkbenchError as e:
            st.error(escape_markdown(str(e)))
with tabs[1]:
    if tabs[1].open:
        jobs_launch.render(store, on_launched=show_job)
with tabs[2]:
    if tabs[2].open:
        try:
            jobs_list.render_compare(store)
        except WorkbenchError as e:
            st.error(escape_markdown(str(e)))
