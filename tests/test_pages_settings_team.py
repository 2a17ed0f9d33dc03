"""The Settings page's team tabs through AppTest: who you are, roles by address or domain, API tokens.

People sign in as in tests/test_signin.py: AppTest takes the `[auth]` table as `at.secrets` and the
signed-in identity as `at.user`, and the page's gate looks their role up in the store. (Setting the
process default actor is not enough here: in local mode the gate makes every run the local user.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.services import access, api_tokens, audit, users
from workbench.store import Store
from workbench.ui import settings_page, settings_team, settings_tokens

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = str(ROOT / "pages" / "9_Settings.py")
ADMIN, REVIEWER = "admin@acme.com", "rev@acme.com"
HOSTILE = "<img src=x onerror=alert(1)>**bold**@acme.com"


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_streamlit_caches: None) -> Iterator[Store]:
    store = Store(tmp_path / "team.db")
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    users.assign(store, ADMIN, "admin")  # as the terminal operator, as `workbench users assign` would
    users.assign(store, REVIEWER, "reviewer")
    yield store
    access.set_process_default(access.operator())
    access.set_resolver(None)


def page(email: str | None, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(SETTINGS, default_timeout=60)
    if email is not None:
        at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
        at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    if tab is not None:
        at.query_params["tab"] = tab
    return ran(at)


def ran(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tab_labels(at: AppTest) -> list[str]:
    return [t.label for t in at.tabs]


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "error", "warning", "success") for e in getattr(at, kind))


def test_the_local_user_sees_every_tab_and_is_told_they_are_local(team: Store) -> None:
    at = page(None, settings_page.YOU)
    assert tab_labels(at) == [settings_page.ENVIRONMENT, settings_page.YOU, settings_page.ROLES, settings_page.TOKENS]
    assert "Local mode: nobody signs in" in texts(at)
    assert "As **admin** you may use" in texts(at)


def test_a_reviewer_sees_who_they_are_and_no_admin_tabs(team: Store) -> None:
    at = page(REVIEWER, settings_page.ROLES)  # a link to a tab they lack opens the first one instead
    assert tab_labels(at) == [settings_page.ENVIRONMENT, settings_page.YOU]
    assert not at.text_input  # no assign form anywhere

    at = page(REVIEWER, settings_page.YOU)
    assert "rev\\@\u2060acme\\.com · reviewer · signed in through your team's identity provider" in texts(at)
    allowed = at.dataframe[0].value.set_index("permission")["allowed"]
    assert allowed["review.work"] == "✓" and allowed["datasets.write"] == "✗" and allowed["users.manage"] == "✗"
    assert "Pages open to you: Home, Datasets, Review, Settings." in texts(at)


def test_an_admin_assigns_a_domain_a_role_and_the_trail_names_them(team: Store) -> None:
    at = page(ADMIN, settings_page.ROLES)
    at.text_input(key=settings_team.WHO).set_value(" @Acme.com ")
    at.selectbox(key=settings_team.ROLE).set_value(settings_team.Role.PM)
    at.button(key=settings_team.P + "assign").click()
    ran(at)

    assert "\\@\u2060acme\\.com is now pm." in texts(at)
    shown = at.dataframe[0].value.set_index("address or domain")
    assert shown.loc["@acme.com", "kind"] == "domain" and shown.loc["@acme.com", "role"] == "pm"
    assert shown.loc["@acme.com", "assigned by"] == ADMIN
    assert "dashboards, costs and experiments" in shown.loc["@acme.com", "what it allows"]
    assert at.text_input(key=settings_team.WHO).value == ""
    access.set_process_default(access.operator())
    event = audit.events(team, action="role.assign", limit=1)[0]
    assert (event.actor, event.target, event.detail["role"]) == (ADMIN, "user:@acme.com", "pm")


def test_a_bad_address_is_refused_with_the_input_escaped(team: Store) -> None:
    at = page(ADMIN, settings_page.ROLES)
    at.text_input(key=settings_team.WHO).set_value(HOSTILE)
    at.button(key=settings_team.P + "assign").click()
    ran(at)

    [error] = at.error
    assert "is neither an email address" in error.value
    assert "\\<img" in error.value and "\\*\\*bold" in error.value
    assert not re.search(r"(?<!\\)[<*]", error.value), "every < and * is escaped"


def test_an_admin_removes_a_role_but_not_the_last_admin(team: Store) -> None:
    at = page(ADMIN, settings_page.ROLES)
    at.selectbox(key=settings_team.REMOVE).set_value(REVIEWER)
    at.button(key=settings_team.P + "remove_go").click()
    ran(at)
    assert "no longer has a role" in texts(at) and "was reviewer" in texts(at)
    assert REVIEWER not in set(at.dataframe[0].value["address or domain"])

    at.selectbox(key=settings_team.REMOVE).set_value(ADMIN)
    at.button(key=settings_team.P + "remove_go").click()
    ran(at)
    assert "is the only admin" in " ".join(e.value for e in at.error)
    assert ADMIN in set(at.dataframe[0].value["address or domain"])


def test_an_admin_creates_a_token_sees_it_once_and_revokes_it(team: Store) -> None:
    at = page(ADMIN, settings_page.TOKENS)
    at.text_input(key=settings_tokens.NAME).set_value("checkout")
    at.text_input(key=settings_tokens.OWNER).set_value("service:checkout")
    at.selectbox(key=settings_tokens.ROLE).set_value(settings_tokens.Role.PM)
    at.number_input(key=settings_tokens.EXPIRES).set_value(30)
    at.button(key=settings_tokens.P + "create").click()
    ran(at)

    [token] = [c.value.strip() for c in at.code if c.value.strip().startswith(api_tokens.TOKEN_PREFIX)]
    assert "shown this once" in texts(at)
    shown = at.dataframe[0].value.set_index("name").loc["checkout"]
    assert (shown["owner"], shown["role"], shown["state"], shown["created by"]) == (
        "service:checkout", "pm", "✓ active", ADMIN)
    assert shown["expires"] != "never" and shown["last used"] == "never"
    access.set_process_default(access.operator())
    assert api_tokens.verify(team, token) is not None

    ran(at)  # any rerun: the token text is gone for good
    assert not [c for c in at.code if api_tokens.TOKEN_PREFIX in c.value]

    at.selectbox(key=settings_tokens.REVOKE).set_value("checkout")
    at.button(key=settings_tokens.P + "revoke_go").click()
    ran(at)
    assert at.dataframe[0].value.set_index("name").loc["checkout", "state"] == "✗ revoked"
    access.set_process_default(access.operator())
    assert api_tokens.verify(team, token) is None
    assert [e.actor for e in audit.events(team, action="token")] == [ADMIN, ADMIN]


def test_a_token_name_already_in_use_is_refused_on_the_page(team: Store) -> None:
    api_tokens.create(team, "ci")
    at = page(ADMIN, settings_page.TOKENS)
    at.text_input(key=settings_tokens.NAME).set_value("ci")
    at.button(key=settings_tokens.P + "create").click()
    ran(at)
    assert "already exists" in " ".join(e.value for e in at.error)
    assert not [c for c in at.code if api_tokens.TOKEN_PREFIX in c.value]
