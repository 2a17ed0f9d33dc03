"""Who is using the app, and which pages they may open: the gate every page passes through first.

With no `[auth]` table in the app's secrets the workbench is what it always was: one local user with
every page, bound to 127.0.0.1. With one, people sign in through the team's OpenID Connect provider
(`st.login`; Streamlit checks the ID token's signature, issuer, audience, expiry and nonce, and signs
its identity cookie with `cookie_secret`). Only the email and name are read from that identity; the
role comes from the store alone, so a role claim in a token, forged or not, changes nothing.

The actor is set for the script run, and `access` asks `session_actor` when nothing set one: widget
callbacks run before the page (and so before this gate), and a fragment rerun runs only the fragment.
Code that runs with no session at all acts as an actor with no role once sign-in is configured, so
anything that forgot to say who it acts for is refused rather than let through.
"""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.scriptrunner import get_script_run_ctx

from workbench.domain.access import NOBODY, PAGES, ROLE_SUMMARY, Actor, may_open
from workbench.services import access, users
from workbench.store import Store
from workbench.ui.resources import get_store
from workbench.ui.widgets import escape_markdown

ROOT = Path(__file__).resolve().parents[2]
# The sidebar's page icons: the ones the Home page's grid and each page's title already use.
NAV_ICONS = {
    "Home.py": ":material/home:",
    "pages/1_Datasets.py": ":material/dataset:",
    "pages/2_Jobs.py": ":material/model_training:",
    "pages/3_Models.py": ":material/deployed_code:",
    "pages/4_Review.py": ":material/rate_review:",
    "pages/5_Templates.py": ":material/description:",
    "pages/6_Monitoring.py": ":material/monitoring:",
    "pages/7_Costs.py": ":material/payments:",
    "pages/8_Experiments.py": ":material/science:",
    "pages/9_Settings.py": ":material/settings:",
    "pages/10_Audit.py": ":material/policy:",
}
_REFUSALS_LOGGED = "auth.refusals_logged"

_seen_configured = False
"""Set once this process has seen sign-in configured: from then on it never falls back to local mode."""

_VERIFIED = (True, "true", "True", "TRUE")


class SignInUnreadable(Exception):
    """The deployment's sign-in settings exist but cannot be read, or vanished while the app ran."""


def configured() -> bool:
    """Say whether this deployment signs people in: an `[auth]` table in its secrets.

    Fails closed: a secrets file that exists but does not parse raises `SignInUnreadable` rather
    than reading as "no sign-in" (which would make every visitor the local admin), and so does an
    `[auth]` table that disappears (file deleted, moved or broken) while the app runs.
    """
    global _seen_configured
    try:
        present = "auth" in st.secrets
    except FileNotFoundError as exc:  # StreamlitSecretNotFoundError is one, for a parse error too
        if getattr(exc, "error_id", None) != "no-secrets-found":
            raise SignInUnreadable(f"the app's secrets could not be read: {exc}") from exc
        present = False
    if present:
        _seen_configured = True
    elif _seen_configured:
        raise SignInUnreadable("sign-in was configured and its [auth] settings are gone (the secrets file was "
                               "deleted or moved); restore them, or restart the app to run without sign-in")
    return present


def current_page() -> str:
    """Return the running page as PAGES names it ('pages/7_Costs.py'), from Streamlit's page registry."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        return "Home.py"
    info = ctx.pages_manager.get_pages().get(ctx.page_script_hash)
    script = Path(info["script_path"] if info else ctx.main_script_path).resolve()
    try:
        return script.relative_to(ROOT).as_posix()
    except ValueError:
        return script.name


def gate(page: str) -> Actor:
    """Let the person through to `page` and return who they are, or draw why not and stop the run.

    Also draws the sidebar: the pages they may open, who is signed in, and the sign-out button.
    """
    access.set_resolver(session_actor)
    try:
        signs_in = configured()
    except SignInUnreadable as exc:
        access.set_process_default(NOBODY)
        access.set_current(NOBODY)
        _unreadable_screen(exc)
        st.stop()
    if not signs_in:
        local = access.local_user()
        access.set_current(local)
        _sidebar(local, signed_in=False)
        return local
    access.set_process_default(NOBODY)
    store = get_store()
    if not st.user.get("is_logged_in"):
        access.set_current(NOBODY)
        _sign_in_screen()
        st.stop()
    actor, problem = _signed_in(store)
    access.set_current(actor)
    if actor.role is None:
        _sidebar(actor, signed_in=True, nav=False)
        _no_role_screen(store, actor, page, problem)
        st.stop()
    _sidebar(actor, signed_in=True)
    if not may_open(actor, page):
        _refused_screen(store, actor, page)
        st.stop()
    return actor


def session_actor() -> Actor | None:
    """Return who this Streamlit session acts as, looked up afresh; None outside a session.

    `access.current` asks this when no actor was set in the running context: a callback runs before
    the gate, a fragment rerun without it. Looking the role up again means a role taken away stops
    the next write, not the one after.
    """
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    try:
        if not configured():
            return access.local_user()
    except SignInUnreadable:
        return NOBODY
    if not st.user.get("is_logged_in"):
        return NOBODY
    return _signed_in(get_store())[0]


def _signed_in(store: Store) -> tuple[Actor, str]:
    """Return the signed-in person as an actor, and why they have no role when the identity itself is unusable."""
    email = str(st.user.get("email") or "").strip()
    name = str(st.user.get("name") or "").strip()
    if not email:
        return Actor(email="unknown", name=name, role=None, via="oidc"), (
            "Your identity provider did not send an email address, and roles here are given by email. "
            "Ask whoever set up sign-in to request the `email` scope.")
    verified = st.user.get("email_verified")
    if verified is not None and verified not in _VERIFIED:
        # Absent: the provider does not say (Entra), and the address is its own. Present: only a true
        # value counts; some providers send the string "false", which is truthy.
        return Actor(email=email.lower(), name=name, role=None, via="oidc"), (
            "Your identity provider says this email address is not verified, so it cannot stand for you here. "
            "Verify it with the provider and sign in again.")
    return users.actor_for(store, email, name, "oidc"), ""


def nav_pages(actor: Actor) -> list[tuple[str, str, str]]:
    """Return (path, title, icon) of each page `actor` may open, in menu order, as Streamlit registered them.

    A page that is not registered in this run (a single page under AppTest) is left out: a link to
    it could not be drawn.
    """
    ctx = get_script_run_ctx(suppress_warning=True)
    registered = {}
    if ctx is not None:
        for info in ctx.pages_manager.get_pages().values():
            registered[Path(info["script_path"]).resolve()] = info.get("page_name") or ""
    found = []
    for path in PAGES:
        title = registered.get((ROOT / path).resolve())
        if title is None or not may_open(actor, path):
            continue
        found.append((path, title or _title(path), NAV_ICONS.get(path, ":material/article:")))
    return found


def _title(path: str) -> str:
    return "Home" if path == "Home.py" else re.sub(r"^\d+_", "", Path(path).stem).replace("_", " ")


# ------------------------------------------------------------------------------------------ screens


def _sidebar(actor: Actor, *, signed_in: bool, nav: bool = True) -> None:
    with st.sidebar:
        links = nav_pages(actor) if nav else []
        if len(links) > 1:
            for path, title, icon in links:
                st.page_link(path, label=title, icon=icon)
            st.divider()
        if not signed_in:
            st.caption("Local mode: no sign-in, one user with every page.")
            return
        role = actor.role.value if actor.role else "no role"
        st.caption(f"Signed in as **{escape_markdown(actor.name or actor.email)}**  \n"
                   f"{escape_markdown(actor.email)} · {role}")
        if st.button("Sign out", key="auth.sign_out", icon=":material/logout:"):
            st.logout()


def _sign_in_screen() -> None:
    st.title(":material/model_training: Fine-Tuning Workbench")
    with st.container(border=True):
        st.subheader("Sign in to continue", anchor=False)
        st.markdown("This workbench is shared by a team. Sign in with your team account; "
                    "what you can open depends on the role an admin gave you.")
        if st.button("Sign in", key="auth.sign_in", type="primary", icon=":material/login:"):
            try:
                st.login()
            except StreamlitAPIException as exc:  # a broken [auth] table: say what is wrong, not a traceback
                st.error(f"Sign-in is not set up correctly: {exc}", icon=":material/error:")


def _no_role_screen(store: Store, actor: Actor, page: str, problem: str) -> None:
    _log_refusal(store, actor, page, problem or "no role assigned")
    st.title(":material/person_off: No access yet")
    if problem:
        st.error(problem, icon=":material/error:")
        return
    st.error(f"Your account ({escape_markdown(actor.email)}) has no role here.", icon=":material/person_off:")
    if users.usable_address(actor.email) is None:
        # Only plain ASCII addresses hold roles; never print a shell command around anything else.
        st.markdown("This address cannot be given a role here (only plain ASCII email addresses can). "
                    "Sign in with your usual work address.")
        return
    st.markdown("Ask an admin to give you one (engineer, reviewer, pm or admin), on the Settings page or from a terminal:")
    st.code(f"workbench users assign {actor.email} ROLE", language="bash")
    if not users.any_assigned(store):
        st.info("Nobody has a role on this workbench yet. The first admin is assigned from a terminal on the "
                "machine that holds its data:", icon=":material/info:")
        st.code(f"workbench users assign {actor.email} admin", language="bash")


def _unreadable_screen(exc: SignInUnreadable) -> None:
    st.title(":material/lock: Sign-in is not available")
    st.error(f"{escape_markdown(str(exc))}. Nobody can use the workbench until this is fixed: it never falls back "
             "to running without sign-in.", icon=":material/error:")
    st.caption("An administrator can check the file with `python -c \"import tomllib; tomllib.load(open('.streamlit/"
               "secrets.toml', 'rb'))\"` and see docs/team.md.")


def _refused_screen(store: Store, actor: Actor, page: str) -> None:
    needed = PAGES.get(page)
    _log_refusal(store, actor, page, f"needs {needed.value}" if needed else "no role assigned")
    assert actor.role is not None
    title = _title(page)
    st.title(f":material/block: {title}")
    st.error(f"Your role ({actor.role.value}) may not open {title}.", icon=":material/block:")
    allowed = ", ".join(title for _, title, _ in nav_pages(actor)) or ", ".join(
        _title(p) for p in PAGES if may_open(actor, p))
    st.markdown(f"As **{actor.role.value}** you may use {ROLE_SUMMARY[actor.role]}. Pages open to you: {allowed}. "
                "If you need this page, ask an admin for another role.")


def _log_refusal(store: Store, actor: Actor, page: str, reason: str) -> None:
    """Write the refusal to the audit trail once per session and page, not again on every rerun of it."""
    logged = st.session_state.setdefault(_REFUSALS_LOGGED, set())
    key = (actor.email, actor.role, page)
    if key in logged:
        return
    access.refuse(store, "page.open", f"page:{page}", reason=reason, actor=actor)
    logged.add(key)
