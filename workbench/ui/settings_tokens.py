"""Settings tab for the ingest API's tokens (admins only): list them, make one (shown once), revoke one.

A token acts as its owner with its own role, so the table says both, and whether it can still be used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain.access import ROLE_SUMMARY, Permission, Role
from workbench.services import access, api_tokens
from workbench.services.api_tokens import NewToken
from workbench.ui.widgets import escape_markdown, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store
    from workbench.store.api_tokens import TokenRow

P = "settings.tokens."
NAME, OWNER, ROLE, EXPIRES, REVOKE = P + "name", P + "owner", P + "role", P + "expires", P + "revoke"
SHOW_ONCE = P + "new"
SCOPE = "settings.tokens"
STATE_MARKS = {"active": "✓ active", "expired": "⌛ expired", "revoked": "✗ revoked"}
COLUMNS = ["name", "prefix", "owner", "role", "state", "created by", "created", "last used", "expires", "revoked"]


def render(store: Store) -> None:
    """Draw the tokens table, the new token (once) and the create and revoke forms."""
    if not access.can(Permission.USERS_MANAGE):
        role = access.current().role
        st.caption(f"Your role ({role.value if role else 'none'}) cannot manage API tokens: ask an admin.")
        return
    show_flash(SCOPE)
    _new_token_once()
    tokens = api_tokens.list_tokens(store)
    st.dataframe(tokens_frame(tokens), hide_index=True, width="stretch", key=P + "table")
    if not tokens:
        st.caption("No tokens yet. Clients of the ingest API (`workbench api`) send one as `Authorization: Bearer ...`.")
    _create_form(store)
    active = [t.name for t in tokens if api_tokens.state(t) == "active"]
    if active:
        cols = st.columns([4, 1], vertical_alignment="bottom")
        cols[0].selectbox("Revoke token", active, key=REVOKE)
        cols[1].button("Revoke", key=P + "revoke_go", icon=":material/key_off:", on_click=_revoke, args=(store,))


def tokens_frame(tokens: list[TokenRow]) -> pd.DataFrame:
    """Return tokens for display: who each acts as, with which role, and whether it still works."""
    return pd.DataFrame(
        [{"name": t.name, "prefix": t.prefix + "…", "owner": t.owner or "(none: made before owners)", "role": t.role,
          "state": STATE_MARKS[api_tokens.state(t)], "created by": t.created_by or "", "created": _when(t.created_at),
          "last used": _when(t.last_used_at) or "never", "expires": _when(t.expires_at) or "never",
          "revoked": _when(t.revoked_at)} for t in tokens],
        columns=COLUMNS,
    )


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:16] if value else ""


def _new_token_once() -> None:
    """Show a token just made, once: the store keeps only its hash, so this is the only chance to copy it."""
    made: NewToken | None = st.session_state.pop(SHOW_ONCE, None)
    if made is None:
        return
    with st.container(border=True):
        st.warning(f"Copy token {escape_markdown(made.name)} now: it is shown this once and cannot be shown again.",
                   icon=":material/key:")
        st.code(made.token, language=None)
        st.caption(f"Acts as {escape_markdown(made.owner)} with role {made.role}; "
                   + (f"expires {escape_markdown(_when(made.expires_at))}." if made.expires_at else "does not expire."))


def _create_form(store: Store) -> None:
    with st.form(P + "create_form", border=True):
        st.markdown("**New token**")
        cols = st.columns([2, 2, 2, 1])
        cols[0].text_input("Name", key=NAME, placeholder="checkout-service")
        cols[1].text_input("Owner", key=OWNER, placeholder="you, ana@acme.com or service:checkout",
                           help="Whom requests with it act as: a person's email or a service account (service:NAME). "
                                "Left empty, you.")
        cols[2].selectbox("Role", list(Role), index=list(Role).index(Role.ENGINEER), key=ROLE,
                          format_func=lambda r: f"{r.value}: {ROLE_SUMMARY[r]}")
        cols[3].number_input("Expires in days", 0, api_tokens.MAX_EXPIRES_DAYS, 90, key=EXPIRES,
                             help="0: never. A token past its expiry is refused like a revoked one.")
        st.form_submit_button("Create token", key=P + "create", type="primary", icon=":material/key:",
                              on_click=_create, args=(store,))


def _create(store: Store) -> None:
    state = st.session_state
    days = int(state.get(EXPIRES) or 0)
    made = run_action(
        SCOPE, api_tokens.create, store, str(state.get(NAME) or ""), role=state.get(ROLE) or Role.ENGINEER,
        owner=str(state.get(OWNER) or "").strip() or None, expires_days=days or None,
        success=lambda t: f"Created token {escape_markdown(t.name)}.",
    )
    if made is not None:
        state[SHOW_ONCE] = made
        state[NAME] = ""


def _revoke(store: Store) -> None:
    name = str(st.session_state.get(REVOKE) or "")
    run_action(SCOPE, api_tokens.revoke, store, name,
               success=lambda t: f"Revoked token {escape_markdown(t.name)}: requests carrying it are refused from now on.")
