"""Sign-in through an OpenID Connect provider, and the page gate, as a team member meets them.

The browser tests run the real thing: `streamlit run` with a secrets file pointing at a local provider
(tests/doubles/oidc_provider.py), headless Chromium clicking "Sign in", Streamlit and Authlib trading
the code for a signed ID token and setting the identity cookie. One deployment serves the whole module
(the last test restarts it twice: with the same cookie secret, then with another).

The AppTest cases drive the same gate in-process: Streamlit 1.67's AppTest takes the signed-in user
as `at.user` (what `st.user` returns) and the `[auth]` table as `at.secrets`.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.oidc_provider import OidcProvider
from tests.test_browser import ARGS, CHROMIUM
from workbench.domain.access import PAGES
from workbench.services import access, audit, users
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
ENGINEER, REVIEWER, PM, ADMIN = "eng@acme.com", "rev@acme.com", "pm@acme.com", "admin@acme.com"
STRANGER = "stranger@elsewhere.org"
EVERY_PAGE = {"Home", "Datasets", "Jobs", "Models", "Review", "Templates", "Monitoring", "Costs", "Experiments",
              "Settings", "Audit"}
EXPECTED_NAV = {
    ENGINEER: EVERY_PAGE - {"Audit"},
    REVIEWER: {"Home", "Datasets", "Review", "Settings"},
    PM: EVERY_PAGE - {"Audit"},
    ADMIN: EVERY_PAGE,
}
# Pages there are in this checkout (the Audit page may come later than the gate).
PRESENT = {("Home" if p == "Home.py" else Path(p).stem.split("_", 1)[1]) for p in PAGES if (ROOT / p).exists()}
SIDEBAR_LINKS = '[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'


def _assign_roles(store: Store) -> None:
    # The test process is the terminal operator (an admin), as `workbench users assign` would be.
    for email, role in ((ENGINEER, "engineer"), (REVIEWER, "reviewer"), (PM, "pm"), (ADMIN, "admin")):
        users.assign(store, email, role)


# ------------------------------------------------------------------------------------- browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    """One `streamlit run Home.py` signing people in through `provider`; restartable on the same port."""

    def __init__(self, workdir: Path, provider: OidcProvider) -> None:
        self.workdir = workdir
        self.provider = provider
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = Store(workdir / "team.db")
        self.proc: subprocess.Popen[bytes] | None = None
        self.cookie_secret = ""

    def start(self, cookie_secret: str) -> None:
        self.cookie_secret = cookie_secret
        section = self.provider.auth_section(f"{self.url}/oauth2callback", cookie_secret)
        secrets_file = self.workdir / "secrets.toml"
        secrets_file.write_text("[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in section.items()))
        env = {**os.environ, "WORKBENCH_DB": str(self.store.path)}
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "Home.py",
                "--server.headless", "true", "--server.port", str(self.port), "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                "--secrets.files", str(secrets_file),
            ],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"streamlit did not start:\n{self.output()}")
                time.sleep(0.5)

    def output(self) -> str:
        return self.proc.stdout.read().decode(errors="replace") if self.proc and self.proc.stdout else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with OidcProvider() as started:
        yield started


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider) -> Iterator[Deployment]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    app = Deployment(tmp_path_factory.mktemp("signin"), provider)
    _assign_roles(app.store)
    app.start(secrets.token_hex(32))
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def browser(deployment: Deployment) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _open(browser: Any, url: str, storage_state: Any = None) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, storage_state=storage_state)
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    return page


def _sign_in(browser: Any, deployment: Deployment, email: str, **options: Any) -> Any:
    """Open the app in a fresh browser, click Sign in as `email`; return the page once the app is back."""
    from playwright.sync_api import expect

    deployment.provider.sign_in_as(email, **options)
    page = _open(browser, deployment.url)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
    # Through the provider and back: wait for the app's callback, then for the page it redirects to.
    with page.expect_response(lambda r: r.url.startswith(f"{deployment.url}/oauth2callback"), timeout=60_000):
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{deployment.url}/", timeout=30_000)
    page.wait_for_load_state("domcontentloaded")
    return page


def _shown(text: str) -> re.Pattern[str]:
    """Match `text` as the app shows it: an email there carries an invisible word joiner, so it is not a link."""
    return re.compile(re.escape(text).replace("@", "@\u2060?"))


def _signed_in_as(page: Any, email: str, role: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(_shown(f"{email} · {role}"))).to_be_visible()


def _nav(page: Any) -> set[str]:
    links = page.locator(SIDEBAR_LINKS)
    links.first.wait_for(timeout=30_000)
    return {text.strip().splitlines()[-1] for text in links.all_inner_texts()}  # after the icon's name


def _refusals(store: Store, email: str) -> list[str]:
    # As the operator: a signed-in gate under AppTest has made "nobody" this process's default actor.
    with access.acting_as(access.operator()):
        return [f"{e.action} {e.target}" for e in audit.events(store, actor=email, outcome="refused")]


@pytest.mark.browser
@pytest.mark.parametrize("email,role,refused_page", [
    (ENGINEER, "engineer", "Audit"),
    (REVIEWER, "reviewer", "Jobs"),
    (PM, "pm", "Audit"),
    (ADMIN, "admin", None),
])
def test_each_role_sees_only_its_pages_and_a_refused_url_says_why(
        browser: Any, deployment: Deployment, email: str, role: str, refused_page: str | None) -> None:
    from playwright.sync_api import expect

    page = _sign_in(browser, deployment, email)
    _signed_in_as(page, email, role)
    assert _nav(page) == EXPECTED_NAV[email] & PRESENT
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    if refused_page is None or refused_page not in PRESENT:
        page.context.close()
        return
    # Typing the URL of a page the menu hides reaches the gate, not the page.
    page.goto(f"{deployment.url}/{refused_page}", wait_until="domcontentloaded")
    expect(page.get_by_text(f"Your role ({role}) may not open {refused_page}.")).to_be_visible(timeout=60_000)
    target = next(p for p in PAGES if p.endswith(f"_{refused_page}.py"))
    assert f"page.open page:{target}" in _refusals(deployment.store, email)
    page.context.close()


@pytest.mark.browser
def test_an_email_with_no_role_is_refused_and_told_how_to_get_one(browser: Any, deployment: Deployment) -> None:
    from playwright.sync_api import expect

    page = _sign_in(browser, deployment, STRANGER, name="Stranger")
    expect(page.get_by_text(_shown(f"Your account ({STRANGER}) has no role here."))).to_be_visible(timeout=60_000)
    expect(page.locator("code", has_text=f"workbench users assign {STRANGER} ROLE")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert page.locator(SIDEBAR_LINKS).count() == 0
    assert "page.open page:Home.py" in _refusals(deployment.store, STRANGER)

    # Signing out ends the session and goes back to the sign-in screen.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
    assert not [c for c in page.context.cookies() if c["name"] == "_streamlit_user"]
    page.context.close()


@pytest.mark.browser
def test_a_forged_role_claim_changes_nothing(browser: Any, deployment: Deployment) -> None:
    from playwright.sync_api import expect

    page = _sign_in(browser, deployment, REVIEWER, claims={"role": "admin", "roles": ["admin"], "groups": ["admins"]})
    assert deployment.provider.issued[-1]["role"] == "admin"  # the token did carry the claim
    _signed_in_as(page, REVIEWER, "reviewer")
    assert _nav(page) == EXPECTED_NAV[REVIEWER] & PRESENT
    page.goto(f"{deployment.url}/Costs", wait_until="domcontentloaded")
    expect(page.get_by_text("Your role (reviewer) may not open Costs.")).to_be_visible(timeout=60_000)
    page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("broken", [{"expired": True}, {"foreign_key": True}, {"audience": "another-app"}],
                         ids=["expired", "signed-by-another-key", "issued-to-another-client"])
def test_a_bad_id_token_does_not_sign_in(browser: Any, deployment: Deployment, broken: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    issued = len(deployment.provider.issued)
    page = _sign_in(browser, deployment, ADMIN, **broken)
    # The provider did issue a token: it was the app that refused it, and the sign-in screen is back.
    assert len(deployment.provider.issued) == issued + 1
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"] == "_streamlit_user"]
    page.context.close()


@pytest.mark.browser
def test_an_identity_cookie_from_another_deployment_is_not_accepted(browser: Any, deployment: Deployment) -> None:
    """Same provider, same address, another cookie secret: the cookie signed by the first is worthless."""
    from playwright.sync_api import expect

    page = _sign_in(browser, deployment, ADMIN)
    _signed_in_as(page, ADMIN, "admin")
    state = page.context.storage_state()
    assert any(c["name"] == "_streamlit_user" for c in state["cookies"])
    page.context.close()

    # The same deployment restarted still knows the cookie: only the secret differs below.
    deployment.stop()
    deployment.start(deployment.cookie_secret)
    same = _open(browser, deployment.url, storage_state=state)
    _signed_in_as(same, ADMIN, "admin")
    same.context.close()

    deployment.stop()
    deployment.start(secrets.token_hex(32))  # last test in the module: the fixture stops this one
    other = _open(browser, deployment.url, storage_state=state)
    expect(other.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
    expect(other.get_by_text("Signed in as")).to_have_count(0)
    other.context.close()


# --------------------------------------------------------------------------------------- AppTest


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_streamlit_caches: None) -> Store:
    store = Store(tmp_path / "team.db")
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    _assign_roles(store)
    return store


def _app(script: str, user: dict[str, Any] | None) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / script), default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    if user is not None:
        at.user = user
    return at


def _texts(at: Any) -> str:
    return " ".join(str(e.value) for kind in ("title", "error", "markdown", "caption") for e in getattr(at, kind))


def test_not_signed_in_shows_only_the_sign_in_screen(team: Store) -> None:
    at = _app("pages/1_Datasets.py", {"is_logged_in": False}).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Sign in to continue" in " ".join(s.value for s in at.subheader)
    assert not at.sidebar.get("page_link")
    assert "Datasets" not in " ".join(t.value for t in at.title)


def test_without_sign_in_configured_the_local_user_has_every_page(team: Store) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {link.proto.label for link in at.sidebar.get("page_link")}
    assert labels == PRESENT
    assert "Local mode" in " ".join(c.value for c in at.sidebar.caption)


def test_a_reviewer_is_refused_a_page_by_role_from_the_store_not_from_claims(team: Store) -> None:
    at = _app("Home.py", {"is_logged_in": True, "email": "Rev@Acme.com", "name": "Rev", "role": "admin"}).run()
    assert not at.exception, [e.value for e in at.exception]
    assert {link.proto.label for link in at.sidebar.get("page_link")} == EXPECTED_NAV[REVIEWER] & PRESENT
    at.switch_page("pages/2_Jobs.py").run()
    assert "Your role (reviewer) may not open Jobs." in _texts(at)
    assert _refusals(team, REVIEWER) == ["page.open page:pages/2_Jobs.py"]
    at.run()  # a rerun of the refused page does not write the refusal twice
    assert len(_refusals(team, REVIEWER)) == 1


@pytest.mark.parametrize("user,says", [
    ({"is_logged_in": True, "email": STRANGER}, "has no role here"),
    ({"is_logged_in": True, "name": "No Mail"}, "did not send an email address"),
    ({"is_logged_in": True, "email": ADMIN, "email_verified": False}, "not verified"),
    # Some providers (Cognito) send the claim as a string: "false" is truthy, and must not pass.
    ({"is_logged_in": True, "email": ADMIN, "email_verified": "false"}, "not verified"),
    ({"is_logged_in": True, "email": ADMIN, "email_verified": 0}, "not verified"),
    # The Kelvin sign lower-cases to "k": a look-alike address must not become the admin it imitates.
    ({"is_logged_in": True, "email": "\u212aen@acme.com"}, "has no role here"),
    ({"is_logged_in": True, "email": "x@" + ADMIN}, "has no role here"),
])
def test_an_identity_without_a_usable_role_is_refused(team: Store, user: dict[str, Any], says: str) -> None:
    users.assign(team, "ken@acme.com", "admin")
    at = _app("pages/7_Costs.py", user).run()
    assert not at.exception, [e.value for e in at.exception]
    assert says in _texts(at)
    assert "Costs" not in " ".join(t.value for t in at.title)
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    with access.acting_as(access.operator()):
        assert audit.count(team, outcome="refused", action="page.open") == 1


def test_callbacks_act_as_the_signed_in_person_and_unbound_code_as_nobody(team: Store, tmp_path: Path) -> None:
    """A widget callback runs before the page's gate; it must still act as the person who clicked."""
    from streamlit.testing.v1 import AppTest

    script = tmp_path / "probe.py"
    script.write_text(
        "import threading\n"
        "import streamlit as st\n"
        "from workbench.services import access\n"
        "from workbench.ui.widgets import page_setup\n"
        "def clicked():\n"
        "    st.session_state['in_callback'] = access.current().label\n"
        "page_setup('probe', page='pages/4_Review.py')\n"
        "st.button('Go', key='go', on_click=clicked)\n"
        "seen = []\n"
        "worker = threading.Thread(target=lambda: seen.append(access.current().label))\n"
        "worker.start(); worker.join()\n"
        "st.session_state['unbound_thread'] = seen[0]\n"
    )
    at = AppTest.from_file(str(script), default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    at.user = {"is_logged_in": True, "email": REVIEWER, "name": "Rev"}
    at.run()
    at.button(key="go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["in_callback"] == "rev@acme.com (reviewer)"
    assert at.session_state["unbound_thread"] == "anonymous (no role)"


class _Secrets:
    """Stands in for st.secrets: what Streamlit raises for a secrets file it cannot parse, or a plain table."""

    def __init__(self, error_id: str | None = None, tables: dict[str, Any] | None = None) -> None:
        self.error_id, self.tables = error_id, tables or {}

    def __contains__(self, key: str) -> bool:
        from streamlit.errors import StreamlitSecretNotFoundError

        if self.error_id:
            raise StreamlitSecretNotFoundError("broken {x}", x="secrets.toml", error_id=self.error_id)
        return key in self.tables


def test_unreadable_sign_in_settings_fail_closed_never_into_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secrets file that does not parse, or an [auth] table gone while the app runs, must not open the app to all."""
    import streamlit

    from workbench.ui import auth

    monkeypatch.setattr(auth, "_seen_configured", False)
    monkeypatch.setattr(streamlit, "secrets", _Secrets(error_id="no-secrets-found"))
    assert auth.configured() is False  # no secrets at all: a single local user, as documented
    monkeypatch.setattr(streamlit, "secrets", _Secrets(error_id="failed-parsing-secrets-file"))
    with pytest.raises(auth.SignInUnreadable, match="could not be read"):
        auth.configured()
    monkeypatch.setattr(streamlit, "secrets", _Secrets(tables={"auth": {}}))
    assert auth.configured() is True
    for gone in (_Secrets(tables={}), _Secrets(error_id="no-secrets-found")):
        monkeypatch.setattr(streamlit, "secrets", gone)
        with pytest.raises(auth.SignInUnreadable, match="gone"):
            auth.configured()
