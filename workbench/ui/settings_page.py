"""Settings: which environment settings are set, which are missing, and what each is for; never a secret's value."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.services import job_views
from workbench.services.job_views import SettingStatus
from workbench.ui.widgets import escape_markdown

STATUS_MARKS = {"set": "✓ set", "default": "– default", "missing": "⚠ missing", "invalid": "✗ invalid"}


def render() -> None:
    """Draw the workbench's settings, then AWS's as boto3 resolves them."""
    st.subheader("Workbench and OpenAI", anchor=False)
    _table(job_views.workbench_settings(), "settings.workbench")
    st.subheader("AWS (through boto3)", anchor=False)
    _table(_aws(), "settings.aws")
    st.caption("Set these as environment variables in the shell you start `make run` from, then restart it: the "
               "app and the job watcher read them from their own environment. Secrets are never shown: an access "
               "key shows its last four characters only.")


@st.cache_data(ttl=30, max_entries=2, show_spinner=False)
def _aws() -> list[SettingStatus]:
    # Resolving credentials reads files (and SSO caches): briefly cached so reruns stay fast.
    return job_views.aws_settings()


def _table(items: list[SettingStatus], key: str) -> None:
    for item in items:
        if item.error:
            st.error(escape_markdown(item.error), icon=":material/error:")
    frame = pd.DataFrame([
        {"setting": i.name, "status": STATUS_MARKS.get(i.status, i.status), "value": i.shown, "what it is for": i.purpose}
        for i in items
    ])
    st.dataframe(frame, hide_index=True, width="stretch", key=key)
