"""Costs: what production traffic, training and serving cost; budgets, prices, re-pricing and a what-if router."""

from __future__ import annotations

import streamlit as st

from workbench.ui import costs_page
from workbench.ui.resources import get_store
from workbench.ui.widgets import page_setup

page_setup("Costs · Fine-Tuning Workbench")

st.title(":material/payments: Costs")
st.caption("Spend over time by model, provider, task and tag, from each prediction's price on arrival; training "
           "and Provisioned Throughput serving; cache savings, the month-end forecast and budgets; and what a "
           "price change or a cheaper-model routing policy would have cost.")
costs_page.render(get_store())
