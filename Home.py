"""Home: what is in the workspace, what needs attention, and where to go next."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from workbench.domain.access import Permission
from workbench.services import access, datasets
from workbench.ui import home
from workbench.ui.resources import get_store
from workbench.ui.widgets import escape_markdown, page_setup, plural

page_setup("Fine-Tuning Workbench")

DATASETS_PAGE = "pages/1_Datasets.py"
JOBS_PAGE = "pages/2_Jobs.py"
MONITORING_PAGE = "pages/6_Monitoring.py"
store = get_store()
found = home.readable((Permission.DATASETS_READ,), lambda: datasets.list_datasets(store), [])
# Production notices show even with no datasets: a workspace that only receives predictions still sees them.
notices = home.production_attention(store, MONITORING_PAGE, "pages/7_Costs.py", "pages/8_Experiments.py")

st.title(":material/model_training: Fine-Tuning Workbench")
st.caption("Curate and label training data, check it against a fine-tuning target, split, version and export it, "
           "launch and watch fine-tuning jobs, compare templates and models, and watch accuracy, drift, cost and "
           "A/B tests in production.")

if not found:
    if notices:
        st.subheader("Needs attention", anchor=False)
        home.show_notices(notices)
    with st.container(border=True):
        st.subheader("Nothing here yet", anchor=False)
        st.markdown(
            "Import a training file (JSONL, JSON, CSV or .jsonl.gz in OpenAI, Bedrock, prompt/completion, "
            "Alpaca or ShareGPT format) on the Datasets page, or load the demo workspace from a terminal:"
        )
        st.code("make run            # first start loads the demo\nworkbench demo load  # or load it into the current store", language="bash")
        if access.can(Permission.DATASETS_WRITE):
            st.page_link(DATASETS_PAGE, label="Import a file", icon=":material/upload:", query_params={"tab": "Import"})
    home.production_summary(store, MONITORING_PAGE)
    st.stop()

names = [d.name for d in found]
if home.is_demo(names):
    # Once the user has data of their own, telling them to import some reads as if it were lost.
    own = any(name not in home.DEMO_NAMES for name in names)
    st.info(
        "**This is the demo workspace.** The datasets named `demo-…` are generated samples with deliberate "
        "defects (PII, duplicates, guardrail bait) for the cleaning tools to find, and the jobs and models named "
        "`demo-…` are a generated history; nothing in them is real. "
        + ("Delete them from Manage on the Datasets page when you no longer need them." if own
           else "Import your own file on the Datasets page when you are ready."),
        icon=":material/science:",
    )

st.subheader("Needs attention", anchor=False)
home.show_notices(notices)
home.retraining_notices(store, JOBS_PAGE)
items = home.readable((Permission.DATASETS_READ,), lambda: home.attention(store, str(store.path), tuple(names)), [])
if not items and not notices:
    st.success("Nothing flagged: no PII, no failing checks, nothing waiting for review.", icon=":material/check_circle:")
for item in items:
    st.page_link(
        DATASETS_PAGE, icon=":material/flag:", query_params=item.params,
        label=f"{escape_markdown(item.dataset)}: {plural(item.count, 'example')} {item.what}",
    )

home.production_summary(store, MONITORING_PAGE)

st.subheader("What is here", anchor=False)
cols = st.columns(3)
for i, dataset in enumerate(found):
    with cols[i % 3].container(border=True):
        st.markdown(f"**{escape_markdown(dataset.name)}**")
        if dataset.description:
            st.caption(escape_markdown(dataset.description))
        st.metric("Examples", f"{dataset.example_count:,}")
        st.caption(" · ".join(filter(None, (dataset.source_format, f"updated {dataset.updated_at[:10]}"))))
        st.page_link(DATASETS_PAGE, label="Open", icon=":material/arrow_forward:", query_params={"dataset": dataset.name})

if access.can(Permission.JOBS_READ):
    st.subheader("Jobs", anchor=False)
    active, failed = home.job_attention(store)
    if not active and not failed:
        st.caption("No job running and none failed recently. Launch one from the Jobs page.")
    for job in active:
        st.page_link(JOBS_PAGE, icon=":material/autorenew:", query_params={"job": str(job.id)},
                     label=f"{escape_markdown(job.name)}: {job.state.value} on {job.backend}")
    for job in failed:
        st.page_link(JOBS_PAGE, icon=":material/error:", query_params={"job": str(job.id)},
                     label=f"{escape_markdown(job.name)}: {job.state.value} "
                           f"({escape_markdown(home.shorten(job.failure_message))})")

st.subheader("Pages", anchor=False)
home.page_grid(home.pages(Path(__file__).parent))
