"""Team use on jobs, models, deployments and the model-calling runs: who may, who may not, and who the trail names.

Each role that may not is refused in the service layer (not only hidden on a page): Forbidden, nothing
written, and a refused event naming them. A role that may gets the change and an ok event naming them,
also when the work runs on another thread or is carried on later by the watcher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import boto3
import botocore.config
import pytest

from tests.doubles.bedrock_serving import BedrockServingDouble
from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double
from tests.doubles.openai_server import backends
from tests.helpers import WriteJsonl, chat
from workbench.domain.access import NOBODY, Actor, Role
from workbench.domain.jobs import BackendName, JobState
from workbench.errors import Forbidden
from workbench.providers.bedrock_serving import BedrockServing
from workbench.providers.inference import client_for
from workbench.services import (
    access,
    comparisons,
    deployments,
    distill,
    evaluations,
    importing,
    job_import,
    jobs,
    models,
    sweeps,
    templates,
)
from workbench.services.compare import compare_jobs
from workbench.services.models import register_from_job
from workbench.store import Store
from workbench.store import audit as audit_rows
from workbench.store import jobs as job_rows

TODAY = date(2026, 11, 30)
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"
ENGINEER = Actor(email="eve@acme.com", name="Eve", role=Role.ENGINEER, via="oidc")
PM = Actor(email="pat@acme.com", name="Pat", role=Role.PM, via="oidc")
REVIEWER = Actor(email="rae@acme.com", name="Rae", role=Role.REVIEWER, via="oidc")
ROLES = {"pm": PM, "reviewer": REVIEWER, "engineer": ENGINEER}
WATCHED = ("jobs", "job_events", "models", "deployments", "comparison_runs", "comparison_cells", "distill_runs",
           "prompt_templates", "prompt_versions", "prompt_label_moves", "sweeps", "review_items", "dataset_versions")
"""The tables a refused call must leave as they were."""


def form(**kw: Any) -> jobs.LaunchForm:
    base = {"backend": BackendName.OPENAI, "dataset": "support", "base_model": "gpt-4o-mini-2024-07-18",
            "name": "parcels-1", "params": {"n_epochs": "2"}}
    return jobs.LaunchForm(**{**base, **kw})


@pytest.fixture
def world(support: Store) -> Store:
    """The support dataset, a template, a queued job, a Bedrock model and its deployment, a comparison run."""
    templates.create_version(support, "ask", user_template="{{ input }}", settings={"model": "good", "max_tokens": 50})
    with support.write() as db:
        job_rows.insert_job(db, name="queued-1", backend="openai", base_model="gpt-4o-mini-2024-07-18",
                            state="running", provider_job_id="ftjob-queued-1")
        done = job_rows.insert_job(db, name="haiku-1", backend="bedrock", base_model=HAIKU, state="succeeded",
                                   provider_job_id="haiku-1", output_model="arn:aws:bedrock:us-east-1:1:custom-model/x/y",
                                   finished_at="2025-09-01T10:00:00+00:00")
    model = register_from_job(support, done.id)
    assert model is not None
    with support.write() as db:
        db.execute("INSERT INTO deployments (model_id, kind, name, status, units, hourly_usd, created_at, updated_at) "
                   "VALUES (?, 'provisioned', 'pt-1', 'active', 1, 20.5, '2026-11-30T10:00:00+00:00', "
                   "'2026-11-30T10:00:00+00:00')", [model.id])
        db.execute("INSERT INTO comparison_runs (kind, name, dataset_name, variants, assertions, concurrency, "
                   "cells_total, state, created_at) VALUES ('compare', 'old', 'support', '[]', '[]', 1, 0, 'done', "
                   "'2026-11-30T10:00:00+00:00')")
    return support


def trail(store: Store, **filters: Any) -> list[audit_rows.AuditEvent]:
    """The trail, newest first, read straight from the store (reading it through the service is for admins)."""
    with store.connect() as db:
        return audit_rows.select(db, **filters)


def counts(store: Store) -> dict[str, Any]:
    with store.connect() as db:
        found: dict[str, Any] = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in WATCHED}
        found["active models"] = db.execute("SELECT count(*) FROM models WHERE active = 1").fetchone()[0]
        found["deleted deployments"] = db.execute(
            "SELECT count(*) FROM deployments WHERE deleted_at IS NOT NULL").fetchone()[0]
    return found


def _plan(store: Store) -> deployments.DeploymentPlan:
    return deployments.plan_deployment(store, "haiku-1", kind="provisioned", units=1)


CHANGES: dict[str, tuple[str, Callable[[Store], Any]]] = {
    "launch": ("job.launch", lambda s: jobs.launch(s, form(), today=TODAY)),
    "cancel": ("job.cancel", lambda s: jobs.cancel_job(s, "queued-1")),
    "retry": ("job.retry", lambda s: jobs.retry_job(s, "queued-1")),
    "sweep": ("sweep.launch", lambda s: sweeps.launch_sweep(s, form(params={}), {"n_epochs": ["1", "2"]}, 1, "sw")),
    "import": ("job.import", lambda s: job_import.import_jobs(s, "openai", limit=5)),
    "activate": ("model.activate", lambda s: models.activate_model(s, "haiku-1", "triage")),
    "deploy": ("model.deploy", lambda s: deployments.deploy(s, _plan(s))),
    "undeploy": ("model.undeploy", lambda s: deployments.undeploy(s, "pt-1")),
    "evaluate": ("evaluation.start", lambda s: evaluations.evaluate(s, "openai:good", template="ask", dataset="support")),
    "compare": ("comparison.start", lambda s: comparisons.run_comparison(
        s, ["ask=openai:good", "ask=openai:other"], dataset="support", limit=2)),
    "resume": ("comparison.resume", lambda s: comparisons.resume_run(s, 1)),
    "to review": ("review.enqueue", lambda s: comparisons.send_to_review(s, 1)),
    "distill": ("distill.start", lambda s: distill.distill(s, "openai:good", "ask", dataset="support", into="answers")),
    "template": ("template.version", lambda s: templates.create_version(s, "ask", user_template="Q: {{ input }}")),
    "label": ("template.label", lambda s: templates.set_label(s, "ask", 1, "production")),
    "starters": ("template.install_starters", lambda s: templates.install_starters(s)),
}


@pytest.mark.parametrize("role", ["pm", "reviewer"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_role_without_the_permission_is_refused_writes_nothing_and_is_on_the_trail(
    world: Store, role: str, change: str,
) -> None:
    action, call = CHANGES[change]
    plan = _plan(world) if change == "deploy" else None  # planned by whoever may read; deploying is what is refused
    before = counts(world)
    with access.acting_as(ROLES[role]), pytest.raises(Forbidden, match=f"{ROLES[role].email} \\({role}\\) may not"):
        call(world) if plan is None else deployments.deploy(world, plan)
    assert counts(world) == before
    [refused] = trail(world, outcome="refused", action=action)
    assert (refused.actor, refused.role, refused.via) == (ROLES[role].email, role, "oidc")


READS: dict[str, Callable[[Store], Any]] = {
    "jobs": lambda s: jobs.list_jobs(s),
    "job": lambda s: jobs.show_job(s, "queued-1"),
    "compare jobs": lambda s: compare_jobs(s, ["queued-1", "haiku-1"]),
    "sweeps": lambda s: sweeps.list_sweeps(s),
    "models": lambda s: models.list_models(s),
    "deployments": lambda s: deployments.list_deployments(s),
    "evaluations": lambda s: evaluations.list_evaluations(s),
    "templates": lambda s: templates.list_templates(s),
    "template": lambda s: templates.template_detail(s, "ask"),
    "comparisons": lambda s: comparisons.list_runs(s),
    "comparison": lambda s: comparisons.report(s, 1),
    "distillations": lambda s: distill.list_runs(s),
}


@pytest.mark.parametrize(("role", "allowed"), [("pm", True), ("engineer", True), ("reviewer", False)])
@pytest.mark.parametrize("read", list(READS))
def test_reading_jobs_models_and_templates_is_for_pms_and_engineers_not_reviewers(
    world: Store, read: str, role: str, allowed: bool,
) -> None:
    with access.acting_as(ROLES[role]):
        if allowed:
            READS[read](world)
        else:
            with pytest.raises(Forbidden):
                READS[read](world)
    refused = trail(world, outcome="refused")
    assert [e.actor for e in refused] == ([] if allowed else [REVIEWER.email])


def test_an_engineer_launches_and_cancels_and_the_trail_names_them(support: Store, double: Any) -> None:
    with access.acting_as(ENGINEER):
        job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
        jobs.cancel_job(support, job.id, backends=backends(double))
    launch, = trail(support, action="job.launch")
    assert (launch.actor, launch.role, launch.outcome, launch.target) == (ENGINEER.email, "engineer", "ok", f"job:{job.id}")
    assert launch.detail["base_model"] == "gpt-4o-mini-2024-07-18" and launch.detail["catalogue_target"] == "openai"
    assert launch.detail["dataset"] == "support@parcels-1" and launch.detail["estimate_usd"] == job.estimate_usd > 0
    cancel, = trail(support, action="job.cancel")
    assert (cancel.actor, cancel.target, cancel.detail["submitted"]) == (ENGINEER.email, f"job:{job.id}", True)
    assert any("cancel requested by eve@acme.com" in e.message for e in jobs.show_job(support, job.id).events)


def test_cells_the_watcher_submits_later_are_launched_in_the_name_of_whoever_started_the_sweep(
    support: Store, double: Any,
) -> None:
    with access.acting_as(ENGINEER):
        started = sweeps.launch_sweep(support, form(params={}), {"n_epochs": ["1", "2"]}, 1, "sw",
                                      backends=backends(double), today=TODAY)
    assert started.pending == 1
    first = job_rows_named(support, "sw-1")
    with support.write() as db:
        job_rows.update_job(db, first.id, state=JobState.SUCCEEDED.value)
    # The watcher runs as the operator; the cell it submits is still the engineer's.
    assert access.current().role is Role.ADMIN and access.current().via == "cli"
    advanced = sweeps.advance_sweeps(support, backends=backends(double), today=TODAY)
    assert advanced.submitted and not advanced.errors
    sweep_event, = trail(support, action="sweep.launch")
    assert (sweep_event.actor, sweep_event.detail["cells"], sweep_event.detail["max_concurrent"]) == (ENGINEER.email, 2, 1)
    launches = trail(support, action="job.launch")
    assert sorted(e.detail["name"] for e in launches) == ["sw-1", "sw-2"]
    assert {e.actor for e in launches} == {ENGINEER.email}


def job_rows_named(store: Store, name: str) -> job_rows.JobRow:
    with store.connect() as db:
        return job_rows.get_job(db, name)


def test_activating_records_the_task_and_the_model_it_replaced(world: Store) -> None:
    with world.write() as db:
        other = job_rows.insert_job(db, name="haiku-2", backend="bedrock", base_model=HAIKU, state="succeeded",
                                    provider_job_id="haiku-2", output_model="arn:aws:bedrock:us-east-1:1:custom-model/x/z")
    second = register_from_job(world, other.id)
    assert second is not None
    with access.acting_as(ENGINEER):
        first = models.activate_model(world, "haiku-1", "triage")
        models.activate_model(world, "haiku-2", "triage")
    latest, earliest = trail(world, action="model.activate")
    assert (earliest.actor, earliest.target, earliest.detail["task"], earliest.detail["replaced"]) == (
        ENGINEER.email, f"model:{first.id}", "triage", None)
    assert (latest.target, latest.detail["replaced"], latest.detail["replaced_name"]) == (
        f"model:{second.id}", f"model:{first.id}", "haiku-1")


@pytest.fixture
def serving() -> Iterator[deployments.ServingFactory]:
    server = BedrockServingDouble().serve()
    client = boto3.client(
        "bedrock", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )
    yield lambda: BedrockServing(bedrock=client)
    server.close()


def test_deploying_and_deleting_provisioned_throughput_records_units_rate_and_hours(
    world: Store, serving: deployments.ServingFactory,
) -> None:
    with access.acting_as(ENGINEER):
        made = deployments.deploy(world, deployments.plan_deployment(world, "haiku-1", kind="provisioned", units=2),
                                  serving=serving)
        deployments.undeploy(world, made.id, serving=serving)
        deployments.undeploy(world, "pt-1", serving=serving)  # up since 10:00 UTC on the fixture's day
    deployed, = trail(world, action="model.deploy")
    assert (deployed.actor, deployed.detail["units"], deployed.detail["kind"]) == (ENGINEER.email, 2, "provisioned")
    assert deployed.detail["hourly_usd"] == made.hourly_usd and deployed.detail["deployment"] == f"deployment:{made.id}"
    old, new = trail(world, action="model.undeploy")
    assert new.target == f"deployment:{made.id}" and new.detail["hours"] < 0.1
    assert old.detail["units"] == 1 and old.detail["hours"] > 0
    assert old.detail["cost_usd"] == pytest.approx(old.detail["hours"] * 20.5, abs=0.01)


def test_template_versions_and_label_moves_name_the_engineer(store: Store) -> None:
    with access.acting_as(ENGINEER):
        # As the page and the CLI call them: the author is whoever is signed in, not the server's OS user.
        made = templates.create_version(store, "ask", user_template="{{ input }}", commit_message="first",
                                        created_by=templates.current_user())
        templates.create_version(store, "ask", user_template="Q: {{ input }}")
        templates.set_label(store, "ask", 1, "production", moved_by=templates.current_user())
        templates.set_label(store, "ask", 2, "production", moved_by=templates.current_user())
    assert made.version.created_by == ENGINEER.email
    created, version = trail(store, action="template.create")[0], trail(store, action="template.version")[0]
    assert (created.actor, created.target, created.detail["version"], created.detail["message"]) == (
        ENGINEER.email, "template:ask", 1, "first")
    assert version.detail["version"] == 2
    second, first = trail(store, action="template.label")
    assert (first.detail["was"], first.detail["version"]) == (None, 1)
    assert (second.detail["was"], second.detail["version"], second.actor) == (1, 2, ENGINEER.email)
    assert templates.template_detail(store, "ask").moves[0].moved_by == ENGINEER.email


@pytest.fixture(scope="module")
def chat_server() -> Iterator[ChatDouble]:
    with chat_double() as served:
        yield served


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl) -> Store:
    importing.import_path(store, write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(6)]), "support")
    templates.create_version(store, "ask", user_template="{{ input }}",
                             settings={"model": "amazon.nova-lite-v1:0", "max_tokens": 50})
    return store


def test_a_comparison_started_as_an_engineer_on_a_thread_runs_as_them_in_a_signed_in_app(
    loaded: Store, chat_server: ChatDouble,
) -> None:
    chat_server.reset()
    chat_server.script("amazon.nova-lite-v1:0", answer(lambda request: "Answer"))
    chat_server.script("good", answer(lambda request: "Answer"))
    clients = {"openai": client_for("openai", base_url=chat_server.openai_base_url, api_key=OPENAI_KEY)}
    access.set_process_default(NOBODY)  # signed-in app: unbound code is refused everything
    found: list[Any] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            found.append(comparisons.run_comparison(
                loaded, ["ask=openai:amazon.nova-lite-v1:0", "ask=openai:good"], dataset="support", concurrency=3,
                clients=clients))
        except BaseException as exc:  # noqa: BLE001 - reported below, on the test's thread
            failed.append(exc)

    with access.acting_as(ENGINEER):
        thread = threading.Thread(target=access.bind(work))
    thread.start()
    thread.join(30)
    assert not failed and found and found[0].state == "done" and found[0].inputs == 6
    started, = trail(loaded, action="comparison.start")
    assert (started.actor, started.role, started.target) == (ENGINEER.email, "engineer", f"run:{found[0].run_id}")
    assert started.detail["inputs"] == 6 and started.detail["cells"] == 12
    assert started.detail["variants"] == ["ask@1=openai:amazon.nova-lite-v1:0", "ask@1=openai:good"]
    assert started.detail["estimated_usd_max"] > 0, "nova-lite is priced; the unpriced variant adds nothing"
    with access.acting_as(ENGINEER):
        assert comparisons.get_run(loaded, found[0].run_id).created_by == ENGINEER.email

    unbound = threading.Thread(target=work)  # the same work, forgetting to bind: refused, and on the trail
    unbound.start()
    unbound.join(30)
    assert failed and isinstance(failed[0], Forbidden)
    assert trail(loaded, outcome="refused", action="comparison.start")[0].actor == NOBODY.email


def test_a_distillation_names_the_engineer_with_its_teacher_inputs_and_bound_and_its_stages_as_stages(
    loaded: Store, chat_server: ChatDouble,
) -> None:
    chat_server.reset()
    chat_server.script("amazon.nova-lite-v1:0", answer(lambda request: "A teacher's answer"))
    clients = {"openai": client_for("openai", base_url=chat_server.openai_base_url, api_key=OPENAI_KEY)}
    with access.acting_as(ENGINEER):
        done = distill.distill(loaded, "openai:amazon.nova-lite-v1:0", "ask", dataset="support", into="answers",
                               clients=clients)
        run = distill.get_run(loaded, done.id)
    assert run.created_by == ENGINEER.email
    started, = trail(loaded, action="distill.start")
    assert (started.actor, started.target, started.detail["teacher"]) == (
        ENGINEER.email, f"distill:{done.id}", "openai:amazon.nova-lite-v1:0")
    assert started.detail["inputs"] == 6 and started.detail["estimated_usd_max"] > 0
    stage, = trail(loaded, action="distill.stage")
    assert (stage.actor, stage.target) == (ENGINEER.email, f"run:{done.answers_run_id}")
    assert trail(loaded, action="comparison.start") == []


def test_an_evaluation_is_filed_under_the_engineer_who_ran_it(loaded: Store, chat_server: ChatDouble) -> None:
    chat_server.reset()
    chat_server.script("good", answer(lambda request: "Answer"))
    clients = {"openai": client_for("openai", base_url=chat_server.openai_base_url, api_key=OPENAI_KEY)}
    with access.acting_as(ENGINEER):
        found = evaluations.evaluate(loaded, "openai:good", template="ask", dataset="support", split=None, clients=clients)
    started, = trail(loaded, action="evaluation.start")
    assert (started.actor, started.target, started.detail["kind"]) == (ENGINEER.email, f"run:{found.run_id}", "evaluate")
    assert started.detail["variants"] == ["ask@1=openai:good"] and started.detail["estimated_usd_max"] is None
