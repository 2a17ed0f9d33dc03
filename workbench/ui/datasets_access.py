"""What the Datasets page offers a role that may read datasets but not change them.

The service layer refuses such changes whatever the page shows; the page hides or disables the
controls so a reviewer or PM is not offered a button that only ever says no, and says why.
"""

from __future__ import annotations

import streamlit as st

from workbench.domain.access import Permission
from workbench.services import access


def can_change() -> bool:
    """Say whether the person may change datasets (import, edit, clean, split, freeze, bulk actions, rules)."""
    return access.can(Permission.DATASETS_WRITE)


def why_not(what: str, permission: Permission = Permission.DATASETS_WRITE) -> str:
    """Say why a control is missing: 'Your role (pm) can read datasets but not split them (needs datasets.write).'."""
    actor = access.current()
    role = actor.role.value if actor.role else "none"
    return f"Your role ({role}) can read datasets but not {what} (needs {permission.value})."


def read_only_caption(what: str, permission: Permission = Permission.DATASETS_WRITE) -> None:
    """Show `why_not` as a caption where the controls would be."""
    st.caption(why_not(what, permission), help="An admin assigns roles on the Settings page or with `workbench users assign`.")
