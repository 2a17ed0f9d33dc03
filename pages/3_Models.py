"""Models: the fine-tuned models jobs produced, the active one per task, and two compared side by side."""

from __future__ import annotations

import streamlit as st

from workbench.ui import models_page
from workbench.ui.resources import get_store
from workbench.ui.widgets import page_setup

page_setup("Models · Fine-Tuning Workbench")

st.title(":material/deployed_code: Models")
st.caption("Every job that succeeds registers its output model here, with its base model, dataset version, "
           "hyperparameters, final metrics and cost.")
models_page.render(get_store())
