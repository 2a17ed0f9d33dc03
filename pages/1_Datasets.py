"""Datasets: import, browse and label, clean, validate, split and version, export.

The page picks the dataset and the tab; each tab lives in its own module under workbench/ui/.
The dataset, the tab and the Browse filters are in the URL, so a link reproduces what is on screen.
"""

from __future__ import annotations

import streamlit as st

from workbench.errors import WorkbenchError
from workbench.services import datasets
from workbench.ui import (
    datasets_browse,
    datasets_clean,
    datasets_export,
    datasets_import,
    datasets_manage,
    datasets_validate,
    datasets_versions,
)
from workbench.ui.datasets_access import can_change, read_only_caption
from workbench.ui.datasets_filters import PAGE_PARAM, TAB
from workbench.ui.datasets_filters import URL_PARAMS as FILTER_PARAMS
from workbench.ui.resources import get_store
from workbench.ui.widgets import escape_markdown, page_setup, url_tabs

page_setup("Datasets · Fine-Tuning Workbench")

DATASET = "datasets.dataset"
SWITCH_TO = "datasets.switch_to"
KEEP = {DATASET, TAB, SWITCH_TO, *datasets_import.KEPT_KEYS}
TABS = {
    "Browse": datasets_browse.render,
    "Import": datasets_import.render,
    "Clean": datasets_clean.render,
    "Validate": datasets_validate.render,
    "Split & versions": datasets_versions.render,
    "Export": datasets_export.render,
}
if not can_change():
    del TABS["Import"]  # nothing on it but writing; the other tabs disable their own writes, saying why


def dataset_changed() -> None:
    """Point the URL at the new dataset and forget the old one's filters, page, open example and form values."""
    for name in (*FILTER_PARAMS, PAGE_PARAM, "example"):
        st.query_params.pop(name, None)
    for key in [k for k in st.session_state if str(k).startswith("datasets.") and k not in KEEP]:
        del st.session_state[key]
    st.query_params["dataset"] = st.session_state[DATASET]


def switch(name: str | None) -> None:
    """Show dataset `name` (after a rename), or the first one there is (after a delete)."""
    st.session_state[DATASET] = name or next((d.name for d in datasets.list_datasets(get_store())), "")
    dataset_changed()
    if not st.session_state[DATASET]:
        st.query_params.pop("dataset", None)


store = get_store()
st.title(":material/dataset: Datasets")
datasets_manage.messages()
datasets_import.settle(store)  # an import this session started has ended: open its dataset on the Import tab

names = [d.name for d in datasets.list_datasets(store)]
if not names:
    st.info(
        "No datasets yet. Import a JSONL, JSON, CSV or .jsonl.gz file below, or load the demo workspace "
        "from a terminal with `workbench demo load` (`make run` does this on first start).",
        icon=":material/waving_hand:",
    )
    if can_change():
        datasets_import.render(store, None)
    else:
        read_only_caption("import them")
    st.stop()

# An import asks to show the dataset it wrote; the selectbox can only be changed before it is drawn.
if st.session_state.get(SWITCH_TO) in names:
    st.session_state[DATASET] = st.session_state.pop(SWITCH_TO)
    st.session_state[TAB] = "Import"
    dataset_changed()
    st.query_params["tab"] = "Import"
if st.session_state.get(DATASET) not in names:
    wanted = st.query_params.get("dataset")
    if wanted and wanted not in names:
        st.warning(f"There is no dataset called {escape_markdown(wanted)}; showing {escape_markdown(names[0])} instead.")
    st.session_state[DATASET] = wanted if wanted in names else names[0]

top = st.columns([2, 0.9, 3], vertical_alignment="bottom")
name = top[0].selectbox("Dataset", names, key=DATASET, on_change=dataset_changed)
if st.query_params.get("dataset") != name:
    st.query_params["dataset"] = name  # so the address bar always names what is shown
try:
    info = datasets.get_dataset(store, name)
except WorkbenchError as e:
    st.error(str(e))
    st.stop()
top[2].caption(
    " · ".join(
        part
        for part in (
            f"**{info.example_count:,}** examples",
            f"read as {info.source_format}" if info.source_format else "",
            f"updated {info.updated_at[:16].replace('T', ' ')} UTC",
        )
        if part
    )
)
if info.description:
    top[2].caption(escape_markdown(info.description))
with top[1]:
    datasets_manage.render(store, info, switch)

url_tabs(TAB, TABS, store, name)
