"""Rename, describe and delete a dataset, from a popover beside the dataset picker.

Deleting says what goes with the dataset (its examples, their revisions, versions and import
history) and needs a tick first; nothing else on the page can remove a whole dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

from workbench.services import datasets
from workbench.store.datasets import Dataset
from workbench.ui.datasets_access import can_change, read_only_caption
from workbench.ui.widgets import escape_markdown, flash, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

NEW_NAME, DESCRIPTION, CONFIRM = "datasets.manage_name", "datasets.manage_description", "datasets.manage_confirm"
SCOPE = "datasets.manage"
Switch = Callable[[str | None], None]


def messages() -> None:
    """Show what the last rename, description or delete did (the popover is closed by then)."""
    show_flash(SCOPE)


def render(store: Store, info: Dataset, switch: Switch) -> None:
    """Draw the Manage popover for dataset `info`; `switch(name)` shows another dataset (None: the first)."""
    # Seeded per dataset, so the fields show this dataset's values after a switch or a save.
    if st.session_state.get(f"{NEW_NAME}_for") != (info.id, info.name, info.description):
        st.session_state[f"{NEW_NAME}_for"] = (info.id, info.name, info.description)
        st.session_state[NEW_NAME] = info.name
        st.session_state[DESCRIPTION] = info.description
        st.session_state[CONFIRM] = False
    with st.popover("Manage", icon=":material/settings:", width="stretch"):
        if not can_change():
            read_only_caption("rename, describe or delete it")
            return
        st.text_input("Name", key=NEW_NAME, max_chars=100)
        # Never disabled while typing: text reaches the server as the button is clicked.
        st.button("Rename", key="datasets.manage_rename", on_click=_rename, args=(store, info.name, switch))
        st.text_area("Description", key=DESCRIPTION, height=90, placeholder="What this dataset is for, where it came from")
        st.button("Save description", key="datasets.manage_describe", on_click=_describe, args=(store, info.name))
        st.divider()
        contents = datasets.dataset_contents(store, info.name)
        st.markdown(f"**Delete {escape_markdown(info.name)}**")
        st.caption(f"Removes {contents.summary()}. Exports already written stay on disk. This cannot be undone.")
        sure = st.checkbox(f"Yes, delete {contents.examples:,} examples and everything listed", key=CONFIRM)
        st.button("Delete dataset", icon=":material/delete_forever:", key="datasets.manage_delete", type="primary",
                  disabled=not sure, on_click=_delete, args=(store, info.name, switch))


def _rename(store: Store, name: str, switch: Switch) -> None:
    if st.session_state[NEW_NAME].strip() == name:
        flash(SCOPE, f"The dataset is already called {escape_markdown(name)}.", "warning")
        return
    renamed = run_action(
        SCOPE, datasets.rename_dataset, store, name, st.session_state[NEW_NAME],
        success=lambda d: f"Renamed {escape_markdown(name)} to {escape_markdown(d.name)}.",
    )
    if renamed is not None:
        switch(renamed.name)


def _describe(store: Store, name: str) -> None:
    run_action(SCOPE, datasets.describe_dataset, store, name, st.session_state[DESCRIPTION], success="Description saved.")


def _delete(store: Store, name: str, switch: Switch) -> None:
    removed = run_action(
        SCOPE, datasets.delete_dataset, store, name,
        success=lambda c: f"Deleted {escape_markdown(name)}: {c.summary()}.",
    )
    if removed is not None:
        switch(None)
