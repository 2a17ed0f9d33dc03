"""Monitoring: accuracy, quality, latency, errors and volume of models in production, drift, and alerts."""

from __future__ import annotations

import streamlit as st

from workbench.ui import monitoring_page
from workbench.ui.resources import get_store
from workbench.ui.widgets import page_setup

page_setup("Monitoring · Fine-Tuning Workbench")

st.title(":material/monitoring: Monitoring")
st.caption("How each model version does in production, day by day, from the predictions and feedback sent in; "
           "whether its inputs and outputs have drifted; and alert rules the watcher checks every minute.")
monitoring_page.render(get_store())
