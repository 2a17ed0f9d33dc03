"""Templates: the prompt library, rendering exactly what a model sees, diffs of versions, and comparisons.

The page picks the template and the tab; each tab lives in its own module under workbench/ui/.
The template, the tab and the comparison run shown are in the URL, so a link reopens what is on screen.
"""

from __future__ import annotations

import streamlit as st

from workbench.ui import templates_compare, templates_distill, templates_library, templates_render
from workbench.ui.resources import get_store
from workbench.ui.templates_common import TAB, pick_template
from workbench.ui.widgets import page_setup, url_tabs

page_setup("Templates · Fine-Tuning Workbench")

TABS = {
    "Library": templates_library.render,
    "Render": templates_render.render,
    "Diff": templates_render.render_diff,
    "Compare": templates_compare.render,
    "Generate data": templates_distill.render,
}


store = get_store()
st.title(":material/description: Templates")
st.caption("Prompt templates with numbered versions and movable labels: see exactly what a model is sent and what it "
           "costs, diff two versions, and compare variants side by side on a dataset.")
name = pick_template(store)

url_tabs(TAB, TABS, store, name)
