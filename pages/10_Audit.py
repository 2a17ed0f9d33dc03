"""Audit: who did what, to what, and when, including what they tried and were refused; filter it and download it."""

from __future__ import annotations

import streamlit as st

from workbench.ui import audit_page
from workbench.ui.resources import get_store
from workbench.ui.widgets import page_setup

page_setup("Audit · Fine-Tuning Workbench")

st.title(":material/policy: Audit")
st.caption("Every change (labels, corrections, bulk actions, rules, launches, cancellations, model activations, "
           "experiment decisions, roles and tokens) and every refused attempt, newest first. Events are never edited.")
audit_page.safe_render(get_store())
