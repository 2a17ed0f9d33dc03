"""Settings tabs about people: who you are here and what your role allows, and (for admins) who has which role.

Roles are given to an address or to everyone at a domain; the service refuses what the actor may not do
and writes the change to the audit trail, so this module only draws and reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain.access import PAGES, ROLE_PERMISSIONS, ROLE_SUMMARY, Actor, Permission, Role, may_open
from workbench.services import access, users
from workbench.ui.widgets import escape_markdown, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

P = "settings.team."
WHO, ROLE, REMOVE = P + "who", P + "role", P + "remove"
SCOPE = "settings.team"
COVERS = {
    Permission.DATASETS_WRITE: "import, edit turns, clean, split, freeze, export, delete datasets; guardrail rules",
    Permission.LABELS_WRITE: "labels, tags, notes and corrections on single examples",
    Permission.REVIEW_WORK: "rate, correct and skip items in the review queue",
    Permission.REVIEW_MANAGE: "queue settings, queueing outputs, pushing corrections into a dataset in bulk",
    Permission.JOBS_WRITE: "launch, cancel and import jobs; sweeps",
    Permission.MODELS_WRITE: "register, activate, deploy and evaluate models",
    Permission.TEMPLATES_WRITE: "write templates; run comparisons and distillations (they spend money)",
    Permission.COSTS_WRITE: "the price table and budgets",
    Permission.EXPERIMENTS_WRITE: "define, start, stop and decide A/B tests",
    Permission.PREDICTIONS_WRITE: "send predictions and feedback, import prediction logs",
    Permission.USERS_MANAGE: "assign roles; create, list and revoke API tokens",
    Permission.AUDIT_READ: "read the audit trail",
}
"""What a permission covers, in the words of its definition (workbench.domain.access)."""
VIA_TEXT = {
    "local": "the local user of a workbench without sign-in",
    "oidc": "signed in through your team's identity provider",
    "token": "an API token",
    "cli": "the terminal operator",
}


def you(store: Store) -> None:
    """Say who the person is signed in as, their role, and what it lets them do."""
    actor = access.current()
    role = actor.role.value if actor.role else "no role"
    st.markdown(f"**{escape_markdown(actor.name or actor.email)}**  \n{escape_markdown(actor.email)} · "
                f"{role} · {VIA_TEXT.get(actor.via, escape_markdown(actor.via))}")
    if actor.role is None:
        st.warning("You have no role here, so you may not open or change anything. Ask an admin for one.",
                   icon=":material/person_off:")
        return
    if actor.via == "local":
        st.caption("Local mode: nobody signs in, and the one user of this machine may do everything. Configure "
                   "sign-in to share the workbench with a team.")
    st.markdown(f"As **{role}** you may use {escape_markdown(ROLE_SUMMARY[actor.role])}.")
    st.dataframe(permissions_frame(actor), hide_index=True, width="stretch", key=P + "mine")
    pages = ", ".join(_page_title(p) for p in PAGES if may_open(actor, p))
    st.caption(f"Pages open to you: {pages}.")


def permissions_frame(actor: Actor) -> pd.DataFrame:
    """Return every permission there is and whether the actor has it, so what is missing shows too."""
    return pd.DataFrame(
        [{"permission": p.value, "allowed": "✓" if actor.can(p) else "✗", "what it covers": _covers(p)}
         for p in Permission],
        columns=["permission", "allowed", "what it covers"],
    )


def _covers(permission: Permission) -> str:
    area, verb = permission.value.split(".")
    return COVERS.get(permission, f"{'see' if verb == 'read' else 'change'} {area}")


def _page_title(path: str) -> str:
    return "Home" if path == "Home.py" else path.rsplit("/", 1)[-1].split("_", 1)[-1].removesuffix(".py")


# ------------------------------------------------------------------------------------------- roles


def roles(store: Store) -> None:
    """List role assignments with a form to assign one and a way to remove one (admins only)."""
    if not access.can(Permission.USERS_MANAGE):
        st.caption(f"Your role ({_role_of(access.current())}) cannot manage roles: ask an admin.")
        return
    show_flash(SCOPE)
    assignments = users.list_assignments(store)
    st.dataframe(assignments_frame(assignments), hide_index=True, width="stretch", key=P + "assignments")
    if not assignments:
        st.caption("No roles assigned yet: everyone who signs in is refused until they have one.")
    st.caption("An exact address beats its domain: with `@acme.com` reviewer and `ana@acme.com` admin, Ana is "
               "an admin and everyone else at Acme a reviewer.")
    _assign_form(store)
    if assignments:
        _remove_form(store, [a.pattern for a in assignments])
    with st.expander("What each role may do", icon=":material/badge:"):
        st.dataframe(roles_frame(), hide_index=True, width="stretch", key=P + "summary")


def assignments_frame(assignments: list[users.Assignment]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"address or domain": a.pattern, "kind": "domain" if a.pattern.startswith("@") else "person",
          "role": a.role, "what it allows": _summary(a.role),
          "assigned by": a.created_by, "when": a.created_at.replace("T", " ")[:16]} for a in assignments],
        columns=["address or domain", "kind", "role", "what it allows", "assigned by", "when"],
    )


def _summary(role: str) -> str:
    try:
        return ROLE_SUMMARY[Role(role)]
    except ValueError:
        return "(a role this version does not know: refused everything)"


def roles_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [{"role": r.value, "may use": ROLE_SUMMARY[r], "permissions": ", ".join(sorted(p.value for p in ROLE_PERMISSIONS[r]))}
         for r in Role],
        columns=["role", "may use", "permissions"],
    )


def _assign_form(store: Store) -> None:
    with st.form(P + "assign_form", border=True):
        st.markdown("**Assign a role**")
        cols = st.columns([2, 2, 1], vertical_alignment="bottom")
        cols[0].text_input("Email or @domain", key=WHO, placeholder="ana@acme.com or @acme.com")
        cols[1].selectbox("Role", list(Role), key=ROLE, format_func=lambda r: f"{r.value}: {ROLE_SUMMARY[r]}")
        cols[2].form_submit_button("Assign", key=P + "assign", type="primary", icon=":material/person_add:",
                                   on_click=_assign, args=(store,))


def _assign(store: Store) -> None:
    who, role = str(st.session_state.get(WHO) or ""), st.session_state.get(ROLE) or Role.REVIEWER
    done = run_action(SCOPE, users.assign, store, who, role,
                      success=lambda a: f"{escape_markdown(a.pattern)} is now {a.role}.")
    if done is not None:
        st.session_state[WHO] = ""


def _remove_form(store: Store, patterns: list[str]) -> None:
    cols = st.columns([4, 1], vertical_alignment="bottom")
    cols[0].selectbox("Remove the role of", patterns, key=REMOVE)
    cols[1].button("Remove", key=P + "remove_go", icon=":material/person_remove:", on_click=_remove, args=(store,))


def _remove(store: Store) -> None:
    pattern = str(st.session_state.get(REMOVE) or "")
    run_action(SCOPE, users.remove, store, pattern,
               success=lambda a: escape_markdown(users.removal_words(store, a)) + ".")


def _role_of(actor: Actor) -> str:
    return actor.role.value if actor.role else "none"
