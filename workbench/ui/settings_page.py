"""Settings: which environment settings are set, which are missing, and what each is for (never a secret's value);
who you are here; and, for admins, roles and API tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain.access import Permission
from workbench.services import access, job_views
from workbench.services.job_views import SettingStatus
from workbench.ui import settings_team, settings_tokens
from workbench.ui.widgets import escape_markdown, url_tabs

if TYPE_CHECKING:
    from workbench.store import Store

STATUS_MARKS = {"set": "✓ set", "default": "– default", "missing": "⚠ missing", "invalid": "✗ invalid"}
TABS = "settings.tab"
ENVIRONMENT, YOU, ROLES, TOKENS = "Environment", "You", "Users & roles", "API tokens"


def render(store: Store) -> None:
    """Draw the tabs this person may use: roles and tokens only for those who manage users."""
    tabs = {ENVIRONMENT: environment, YOU: settings_team.you}
    if access.can(Permission.USERS_MANAGE):
        tabs |= {ROLES: settings_team.roles, TOKENS: settings_tokens.render}
    url_tabs(TABS, tabs, store)


def environment(store: Store | None = None) -> None:
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
