"""Templates: the prompt library, rendering exactly what a model sees, diffs of versions, and comparisons.

The page picks the template and the tab; each tab lives in its own module under workbench/ui/.
The template, the tab and the comparison run shown are in the URL, so a link reopens what is on screen.
"""

from __future__ import annotations

import streamlit as st

from workbench.errors import WorkbenchError
from workbench.ui import templates_compare, templates_library, templates_render
from workbench.ui.resources import get_store
from workbench.ui.templates_common import TAB, pick_template
from workbench.ui.widgets import escape_markdown, page_setup

page_setup("Templates · Fine-Tuning Workbench")

TABS = {
    "Library": templates_library.render,
    "Render": templates_render.render,
    "Diff": templates_render.render_diff,
    "Compare": templates_compare.render,
}


def tab_changed() -> None:
    st.query_params["tab"] = st.session_state[TAB]


store = get_store()
st.title(":material/description: Templates")
st.caption("Prompt templates with numbered versions and movable labels: see exactly what a model is sent and what it "
           "costs, diff two versions, and compare variants side by side on a dataset.")
name = pick_template(store)

wanted_tab = st.query_params.get("tab")
tabs = st.tabs(list(TABS), key=TAB, default=wanted_tab if wanted_tab in TABS else None, on_change=tab_changed)
for tab, render in zip(tabs, TABS.values(), strict=True):
    with tab:
        if tab.open:
            try:
                render(store, name)
            except WorkbenchError as e:
                st.error(escape_markdown(str(e)), icon=":material/error:")
