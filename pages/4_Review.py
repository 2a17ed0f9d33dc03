"""Review: one model output at a time beside its input and reference; rate it, tag its issues, correct it or skip it.

Corrections become training examples; a share of items goes to two reviewers so their agreement can be measured.
"""

from __future__ import annotations

import streamlit as st

from workbench.ui import review_page
from workbench.ui.resources import get_store
from workbench.ui.widgets import page_setup

page_setup("Review · Fine-Tuning Workbench")

store = get_store()
st.title(":material/rate_review: Review")
st.caption("Outputs from comparisons, evaluations and production arrive here. Judge each against its input and "
           "reference; a correction becomes a training example, with a link back to the output it corrected.")

chosen = review_page.sidebar(store)
if chosen is not None:
    reviewer, flt = chosen
    review_page.item_area(store, reviewer, flt)
    review_page.recent(store, reviewer)
    review_page.agreement(store)
