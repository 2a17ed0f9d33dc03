"""Whether the person may use an action on the Jobs, Models and Templates pages, and why not when they may not.

A page hides what a role may not use rather than offering a button that fails; the service layer
refuses it all the same (`services.access.require`), so this is for the reader, not the guard.
"""

from __future__ import annotations

import streamlit as st

from workbench.domain.access import Permission
from workbench.services import access
from workbench.ui.widgets import escape_markdown


def role_name() -> str:
    role = access.current().role
    return role.value if role else "none"


def why_not(permission: Permission, doing: str) -> str:
    """One sentence: what the role can here, what it cannot, and who can."""
    area = permission.value.split(".")[0]
    return (f"Your role ({role_name()}) can read {area} but not {doing}; an engineer or an admin can.")


def may(permission: Permission, doing: str, *, container: object | None = None) -> bool:
    """Say whether the actor may; when not, caption why (in `container` when given) instead of the control."""
    if access.can(permission):
        return True
    (container or st).caption(escape_markdown(why_not(permission, doing)))  # type: ignore[attr-defined]
    return False
