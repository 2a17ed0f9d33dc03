"""Settings: what the workbench reads from the environment, who you are here, and (admins) roles and API tokens."""

from __future__ import annotations

import streamlit as st

from workbench.ui import settings_page
from workbench.ui.resources import get_store
from workbench.ui.widgets import page_setup

page_setup("Settings · Fine-Tuning Workbench")

st.title(":material/settings: Settings")
st.caption("Environment settings come from environment variables, read on every use, and no secret is shown. "
           "Who you are here and what your role allows are under You; admins manage roles and API tokens.")
settings_page.render(get_store())
