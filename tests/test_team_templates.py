"""The Jobs, Models and Templates pages for a signed-in team: a PM reads them, and the buttons that launch, cancel,
activate, deploy, compare, generate or write templates are not offered to them, with a caption saying why; an
engineer gets them. Opening a page as a PM records no refusal: the page asks before it offers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from workbench.services import access, importing, templates, users
from workbench.services.models import register_from_job
from workbench.store import Store
from workbench.store import audit as audit_rows
from workbench.store import jobs as job_rows

ROOT = Path(__file__).resolve().parents[1]
PM, ENGINEER = "pat@acme.com", "eve@acme.com"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"


@pytest.fixture
def team(store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch,
         fresh_streamlit_caches: None) -> Iterator[Store]:
    """A dataset, a template, a running job and a Bedrock model; Pat is a PM, Eve an engineer."""
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    monkeypatch.setenv("WORKBENCH_TASKS_INLINE", "1")
    importing.import_path(store, write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(4)]), "support")
    templates.create_version(store, "ask", user_template="{{ input }}", settings={"model": "good", "max_tokens": 50})
    with store.write() as db:
        running = job_rows.insert_job(db, name="running-1", backend="openai", base_model="gpt-4o-mini-2024-07-18",
                                      state="running", provider_job_id="ftjob-1")
        done = job_rows.insert_job(db, name="haiku-1", backend="bedrock", base_model=HAIKU, state="succeeded",
                                   provider_job_id="haiku-1", output_model="arn:aws:bedrock:us-east-1:1:custom-model/x/y",
                                   finished_at="2025-09-01T10:00:00+00:00")
    assert running.id and register_from_job(store, done.id) is not None
    users.assign(store, PM, "pm")
    users.assign(store, ENGINEER, "engineer")
    yield store
    access.set_process_default(access.operator())


def signed_in(script: str, email: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / script), default_timeout=60)
    at.query_params.update(query)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> str:
    return re.sub(r"\\(.)", r"\1", "\n".join(c.value for c in at.caption))


def buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


def refusals(store: Store, email: str) -> list[str]:
    with store.connect() as db:
        return [e.action for e in audit_rows.select(db, actor=email, outcome="refused")]


@pytest.mark.parametrize(("email", "offered"), [(PM, False), (ENGINEER, True)])
def test_a_job_offers_cancel_retry_and_clone_only_to_a_role_that_may_launch(team: Store, email: str, offered: bool) -> None:
    at = signed_in("pages/2_Jobs.py", email, job="1")
    assert ({"Cancel", "Retry", "Clone"} <= buttons(at)) is offered
    assert ("Your role (pm) can read jobs but not cancel, retry or clone jobs" in captions(at)) is not offered
    assert refusals(team, email) == []


def test_the_launch_form_checks_and_estimates_for_a_pm_but_does_not_offer_launch(team: Store) -> None:
    at = signed_in("pages/2_Jobs.py", PM, tab="launch")
    assert "Check & estimate" in buttons(at) and "Launch" not in buttons(at)
    assert "Your role (pm) can read jobs but not launch jobs" in captions(at)
    assert refusals(team, PM) == []


@pytest.mark.parametrize(("email", "offered"), [(PM, False), (ENGINEER, True)])
def test_models_offer_activate_and_deploy_only_to_a_role_that_may_change_models(
    team: Store, email: str, offered: bool,
) -> None:
    at = signed_in("pages/3_Models.py", email)
    assert ("models.task" in {t.key for t in at.text_input}) is offered
    assert ("models.deploy_units" in {n.key for n in at.number_input}) is offered
    assert ("Your role (pm) can read models but not activate them" in captions(at)) is not offered
    assert ("can read models but not deploy models" in captions(at)) is not offered
    assert refusals(team, email) == []


def test_a_pm_sees_the_evaluations_but_is_not_offered_a_run(team: Store) -> None:
    at = signed_in("pages/3_Models.py", PM, tab="Evaluate")
    assert "Evaluate" not in buttons(at)
    assert "can read models but not run evaluations" in captions(at)
    assert refusals(team, PM) == []


@pytest.mark.parametrize(("tab", "button", "why"), [
    ("Library", "Move label", "can read templates but not move labels or write versions"),
    ("Compare", "Run comparison", "can read templates but not run comparisons"),
    ("Generate data", "Generate", "can read templates but not generate data"),
])
@pytest.mark.parametrize(("email", "offered"), [(PM, False), (ENGINEER, True)])
def test_templates_offer_writing_comparing_and_generating_only_to_a_role_that_may(
    team: Store, tab: str, button: str, why: str, email: str, offered: bool,
) -> None:
    at = signed_in("pages/5_Templates.py", email, tab=tab)
    assert (button in buttons(at)) is offered
    assert (why in captions(at)) is not offered
    assert refusals(team, email) == []
