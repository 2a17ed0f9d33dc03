"""Experiments: A/B tests of model and template versions, their results, and the decision to ship or stop."""

from __future__ import annotations

import streamlit as st

from workbench.ui import experiments_page
from workbench.ui.resources import get_store
from workbench.ui.widgets import page_setup

page_setup("Experiments · Fine-Tuning Workbench")

st.title(":material/science: Experiments")
st.caption("A/B tests on live traffic: units are split by a sticky hash, results show the sample-ratio check, "
           "frequentist and Bayesian comparisons with control, and shipping activates the winner.")
experiments_page.render(get_store())
