"""Settings: what the workbench reads from the environment, which of it is set, and what each setting is for."""

from __future__ import annotations

import streamlit as st

from workbench.ui import settings_page
from workbench.ui.widgets import page_setup

page_setup("Settings · Fine-Tuning Workbench")

st.title(":material/settings: Settings")
st.caption("Settings come from environment variables, read on every use; nothing here stores a secret.")
settings_page.render()
