"""Objects the app keeps across reruns: only the store handle, never a connection (see STYLE.md rule 3)."""

from __future__ import annotations

import os

import streamlit as st

from workbench.store import Store


def get_store() -> Store:
    """Return the store for $WORKBENCH_DB (or the default file), opened once per path."""
    return _open_store(os.environ.get("WORKBENCH_DB") or "")


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Store:
    # Keyed by path so a test (or a user) pointing WORKBENCH_DB elsewhere gets that file, not a stale one.
    # The Store holds a path only and opens a connection per operation, so sharing it across threads is safe.
    return Store(path or None)
