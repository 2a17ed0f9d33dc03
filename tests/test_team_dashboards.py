"""Team use on the dashboards: who may read monitoring, costs and experiments, who may change alert rules,
prices, budgets and experiments, and that every change (and every refusal) names its actor in the trail."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from tests.test_evaluations import add_model
from tests.test_experiments import log, prediction, two_variants
from workbench.domain.access import ROLE_PERMISSIONS, Actor, Permission, Role
from workbench.errors import Forbidden, InvalidInput
from workbench.services import (
    access,
    alerts,
    cost_prices,
    cost_whatif,
    costs,
    importing,
    monitoring,
    templates,
    users,
)
from workbench.services import experiments as experiment_svc
from workbench.store import Store
from workbench.store import alerts as alert_rows
from workbench.store import audit as audit_rows
from workbench.store import costs as cost_rows
from workbench.store import experiments as experiment_rows
from workbench.store import models as model_rows
from workbench.store import predictions as prediction_rows
from workbench.store import templates as template_rows
from workbench.store.audit import AuditEvent

ACTORS = {
    Role.ENGINEER: Actor(email="eve@acme.com", name="Eve", role=Role.ENGINEER, via="oidc"),
    Role.REVIEWER: Actor(email="rita@acme.com", name="Rita", role=Role.REVIEWER, via="oidc"),
    Role.PM: Actor(email="pat@acme.com", name="Pat", role=Role.PM, via="oidc"),
    Role.ADMIN: Actor(email="ada@acme.com", name="Ada", role=Role.ADMIN, via="oidc"),
}
MAY_READ_AND_CHANGE = {Role.ENGINEER: True, Role.REVIEWER: False, Role.PM: True, Role.ADMIN: True}
"""The issue's table for these pages: PMs read and run dashboards, costs and experiments; reviewers see none of it."""
PRICED_MODEL = "amazon.nova-micro-v1:0"
TODAY = datetime.now(UTC).date()


def events(store: Store, **filters: Any) -> list[AuditEvent]:
    with store.connect() as db:
        return audit_rows.select(db, **filters)


@pytest.fixture
def workspace(store: Store) -> Store:
    """Set up by the operator: traffic for model 'm', a rule, a budget, the price table, a running experiment."""
    log(store, [prediction(0, "", f"u{i}", correct=i % 3 > 0, latency_ms=100.0 + i,
                           ts=datetime.combine(TODAY - timedelta(days=i % 10), datetime.min.time(), UTC)
                           + timedelta(hours=1))
                for i in range(60)])
    alerts.create_rule(store, name="accuracy-low", metric="accuracy", threshold=0.9)
    costs.save_budget(store, {"name": "all-spend", "scope": "all", "monthly_usd": 100})
    cost_prices.list_prices(store)
    made = experiment_svc.create(store, "checkout", two_variants())
    experiment_svc.start(store, made.id)
    return store


# ------------------------------------------------------------------------------------------ reads

READS: dict[str, Callable[[Store], Any]] = {
    "monitoring.series": lambda s: monitoring.series(s),
    "monitoring.summary": lambda s: monitoring.summary(s, days=7),
    "monitoring.choices": lambda s: monitoring.choices(s),
    "monitoring.drift": lambda s: monitoring.drift(s, model_version="m"),
    "alerts.list_rules": lambda s: alerts.list_rules(s),
    "alerts.firing": lambda s: alerts.firing(s),
    "alerts.recent_events": lambda s: alerts.recent_events(s),
    "costs.summary": lambda s: costs.summary(s),
    "costs.inference_spend": lambda s: costs.inference_spend(s, TODAY - timedelta(days=7), TODAY),
    "costs.cost_per_request": lambda s: costs.cost_per_request(s, TODAY - timedelta(days=7), TODAY),
    "costs.training_spend": lambda s: costs.training_spend(s, TODAY - timedelta(days=7), TODAY),
    "costs.serving_spend": lambda s: costs.serving_spend(s, TODAY - timedelta(days=7), TODAY),
    "costs.list_budgets": lambda s: costs.list_budgets(s),
    "costs.budget_statuses": lambda s: costs.budget_statuses(s),
    "costs.budget_alerts": lambda s: costs.budget_alerts(s),
    "costs.scope_values": lambda s: costs.scope_values(s, "model"),
    "costs.traffic_keys": lambda s: costs.traffic_keys(s, TODAY - timedelta(days=7), TODAY),
    "cost_prices.list_prices": lambda s: cost_prices.list_prices(s),
    "cost_whatif.reprice": lambda s: cost_whatif.reprice(s, PRICED_MODEL, input_per_1m=1.0),
    "cost_whatif.what_if": lambda s: cost_whatif.what_if(
        s, cost_whatif.RouterPolicy(to_model=PRICED_MODEL, max_input_chars=100)),
    "experiments.list": lambda s: experiment_svc.list_experiments(s),
    "experiments.get": lambda s: experiment_svc.get(s, 1),
    "experiments.analyze": lambda s: experiment_svc.analyze(s, 1),
}


@pytest.mark.parametrize("role", list(ACTORS))
@pytest.mark.parametrize("read", list(READS))
def test_dashboard_reads_are_refused_to_a_reviewer_and_recorded(workspace: Store, role: Role, read: str) -> None:
    actor = ACTORS[role]
    with access.acting_as(actor):
        if MAY_READ_AND_CHANGE[role]:
            READS[read](workspace)
        else:
            with pytest.raises(Forbidden, match=f"{actor.email} \\(reviewer\\) may not"):
                READS[read](workspace)
    refused = events(workspace, actor=actor.email, outcome="refused")
    if MAY_READ_AND_CHANGE[role]:
        assert refused == []
    else:
        assert len(refused) == 1 and refused[0].role == "reviewer" and refused[0].detail["reason"].startswith("needs ")


def test_the_watcher_evaluates_rules_whoever_the_process_acts_as(workspace: Store) -> None:
    """Rules are measured for everyone: a process whose default actor has no role still fires them."""
    access.set_process_default(Actor(email="anonymous", role=None, via="oidc"))
    result = alerts.evaluate_rules(workspace)
    assert result.checked == 1 and result.errors == []


# ------------------------------------------------------------------------------------------ writes


def _rule_state(store: Store) -> Any:
    with store.connect() as db:
        return [(r.name, r.enabled) for r in alert_rows.list_rules(db)]


def _price_state(store: Store) -> Any:
    with store.connect() as db:
        return [(r["id"], r["input_per_1m"], r["effective_to"]) for r in cost_rows.price_rows(db)]


def _budget_state(store: Store) -> Any:
    with store.connect() as db:
        return [(b["name"], b["monthly_usd"]) for b in cost_rows.budget_rows(db)]


def _experiment_state(store: Store) -> Any:
    with store.connect() as db:
        return [(e.name, e.state, e.decision) for e in experiment_rows.list_all(db)]


def _first_price_id(store: Store) -> int:
    with store.connect() as db:
        return int(cost_rows.price_rows(db)[0]["id"])


WRITES: dict[str, tuple[Callable[[Store], Any], Callable[[Store], Any]]] = {
    "alert.create": (lambda s: alerts.create_rule(s, name="errors-high", metric="error_rate", threshold=0.1),
                     _rule_state),
    "alert.disable": (lambda s: alerts.set_enabled(s, "accuracy-low", False), _rule_state),
    "alert.delete": (lambda s: alerts.delete_rule(s, "accuracy-low"), _rule_state),
    "price.set": (lambda s: cost_prices.set_price(s, PRICED_MODEL, TODAY + timedelta(days=1), input_per_1m=0.05),
                  _price_state),
    "price.delete": (lambda s: cost_prices.delete_price(s, _first_price_id(s)), _price_state),
    "budget.create": (lambda s: costs.save_budget(s, {"name": "nova", "scope": "model", "scope_value": "m",
                                                      "monthly_usd": 10}), _budget_state),
    "budget.update": (lambda s: costs.save_budget(s, {"name": "all-spend", "scope": "all", "monthly_usd": 250},
                                                  replace="all-spend"), _budget_state),
    "budget.delete": (lambda s: costs.delete_budget(s, "all-spend"), _budget_state),
    "experiment.create": (lambda s: experiment_svc.create(s, "pricing-page", two_variants()), _experiment_state),
    "experiment.stop": (lambda s: experiment_svc.stop(s, 1), _experiment_state),
    "experiment.decide": (lambda s: experiment_svc.decide(s, 1, stop_test=True), _experiment_state),
}


@pytest.mark.parametrize("role", list(ACTORS))
@pytest.mark.parametrize("action", list(WRITES))
def test_changes_land_for_the_roles_that_may_and_are_refused_with_nothing_written(
        workspace: Store, role: Role, action: str) -> None:
    call, state = WRITES[action]
    actor = ACTORS[role]
    before = state(workspace)
    with access.acting_as(actor):
        if MAY_READ_AND_CHANGE[role]:
            call(workspace)
        else:
            with pytest.raises(Forbidden, match=f"{actor.email} \\(reviewer\\) may not"):
                call(workspace)
    recorded = events(workspace, actor=actor.email, action=action)
    if MAY_READ_AND_CHANGE[role]:
        assert state(workspace) != before
        assert [e.outcome for e in recorded] == ["ok"] and recorded[0].role == role.value
    else:
        assert state(workspace) == before, "a refused change writes nothing"
        assert [e.outcome for e in recorded] == ["refused"]


def test_a_reviewer_starting_an_experiment_is_refused(workspace: Store) -> None:
    draft = experiment_svc.create(workspace, "draft-one", two_variants())
    with access.acting_as(ACTORS[Role.REVIEWER]), pytest.raises(Forbidden):
        experiment_svc.start(workspace, draft.id)
    assert experiment_svc.get(workspace, draft.id).state == "draft"
    with access.acting_as(ACTORS[Role.PM]):
        assert experiment_svc.start(workspace, draft.id).state == "running"
    assert [e.outcome for e in events(workspace, action="experiment.start", target=f"experiment:{draft.id}")] == [
        "ok", "refused"]


def test_a_price_change_records_the_model_the_old_and_new_prices_and_the_day(workspace: Store) -> None:
    before = cost_prices.price_book(workspace).row_for(PRICED_MODEL, TODAY.isoformat())
    assert before is not None and before.input_per_1m is not None
    start = TODAY + timedelta(days=3)
    with access.acting_as(ACTORS[Role.PM]):
        row = cost_prices.set_price(workspace, PRICED_MODEL, start, input_per_1m=before.input_per_1m * 2)
    [event] = events(workspace, action="price.set")
    assert (event.actor, event.target) == ("pat@acme.com", f"price:{row.id}")
    assert event.detail["model"] == before.model and event.detail["effective_from"] == start.isoformat()
    assert event.detail["old"]["input_per_1m"] == before.input_per_1m
    assert event.detail["new"]["input_per_1m"] == before.input_per_1m * 2
    assert row.created_by == "pat@acme.com", "a signed-in editor's rows are theirs, not 'user'"


def test_a_budget_change_records_old_and_new_amounts(workspace: Store) -> None:
    with access.acting_as(ACTORS[Role.ENGINEER]):
        costs.save_budget(workspace, {"name": "all-spend", "scope": "all", "monthly_usd": 250}, replace="all-spend")
    [event] = events(workspace, action="budget.update")
    assert (event.actor, event.target) == ("eve@acme.com", "budget:all-spend")
    assert (event.detail["old"]["monthly_usd"], event.detail["monthly_usd"]) == (100, 250)


# ------------------------------------------------------------------------------------------ shipping


def test_a_pm_ships_a_model_without_models_write_and_both_steps_name_them(store: Store) -> None:
    pm = ACTORS[Role.PM]
    assert not pm.can(Permission.MODELS_WRITE)
    first, second = add_model(store, "ft-a", output="out-a"), add_model(store, "ft-b", output="out-b")
    made = experiment_svc.create(store, "models", two_variants(f"model:{first}", f"model:{second}"), task="triage")
    experiment_svc.start(store, made.id)
    with store.write() as db:
        model_rows.activate(db, first, "triage")
    with access.acting_as(pm):
        with pytest.raises(InvalidInput, match="recorded under their own name"):
            experiment_svc.decide(store, made.id, ship="treatment", decided_by="ceo@acme.com")
        decided = experiment_svc.decide(store, made.id, ship="treatment")
    assert decided.decided_by == pm.email
    with store.connect() as db:
        assert model_rows.get_model(db, second).active
    decide, = events(store, action="experiment.decide")
    activate, = events(store, action="model.activate")
    assert (decide.actor, decide.outcome, decide.detail["decision"], decide.detail["winner"]) == (
        pm.email, "ok", "ship", "treatment")
    assert (activate.actor, activate.target, activate.detail["task"], activate.detail["experiment"]) == (
        pm.email, f"model:{second}", "triage", f"experiment:{made.id}")
    assert activate.detail["replaced"] == f"model:{first}"


def test_shipping_a_template_version_records_its_activation(store: Store) -> None:
    templates.create_version(store, "ask", user_template="{{ input }}")
    templates.create_version(store, "ask", user_template="Answer: {{ input }}")
    made = experiment_svc.create(store, "prompts", [experiment_svc.VariantIn(name="v1", target="ask@1"),
                                                    experiment_svc.VariantIn(name="v2", target="ask@2")])
    experiment_svc.start(store, made.id)
    with access.acting_as(ACTORS[Role.PM]):
        experiment_svc.decide(store, made.id, ship="v2")
    [event] = events(store, action="template.activate")
    assert (event.actor, event.detail["version"], event.detail["label"], event.detail["experiment"]) == (
        "pat@acme.com", 2, "production", f"experiment:{made.id}")
    with store.connect() as db:
        template = template_rows.find_template(db, "ask")
        assert template is not None and template_rows.labels(db, template.id)["production"] == 2


def test_a_reviewer_cannot_ship_and_nothing_is_activated(store: Store) -> None:
    first, second = add_model(store, "ft-a", output="out-a"), add_model(store, "ft-b", output="out-b")
    made = experiment_svc.create(store, "models", two_variants(f"model:{first}", f"model:{second}"), task="triage")
    experiment_svc.start(store, made.id)
    with access.acting_as(ACTORS[Role.REVIEWER]), pytest.raises(Forbidden, match="experiments.write"):
        experiment_svc.decide(store, made.id, ship="treatment")
    with store.connect() as db:
        assert not model_rows.get_model(db, second).active
    assert events(store, action="model.activate") == []
    assert [e.outcome for e in events(store, action="experiment.decide")] == ["refused"]


def test_the_operator_without_sign_in_still_does_everything(workspace: Store) -> None:
    """No actor set (the CLI, a local app): the operator, an admin; existing behaviour unchanged."""
    assert access.current().role is Role.ADMIN
    costs.delete_budget(workspace, "all-spend")
    assert events(workspace, action="budget.delete")[0].via in ("cli", "local")
    assert costs.summary(workspace, today=date.today()).month


# ------------------------------------------------------------------------------------------ Home

ROOT = Path(__file__).resolve().parents[1]


def priced(row: tuple[Any, ...], usd: float) -> tuple[Any, ...]:
    """A prediction row from `prediction`, with a cost a caller sent."""
    values = dict(zip(prediction_rows.PREDICTION_COLUMNS, row, strict=True))
    values.update(cost_usd=usd, cost_source="ingested")
    return tuple(values[c] for c in prediction_rows.PREDICTION_COLUMNS)


@pytest.fixture
def attention(store: Store, monkeypatch: pytest.MonkeyPatch, fresh_streamlit_caches: None) -> Iterator[Store]:
    """A workspace with something for Home to flag on each dashboard: a firing alert and a budget past its alert."""
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    now = datetime.now(UTC).replace(microsecond=0)
    log(store, [priced(prediction(0, "", f"u{i}", correct=i % 2 == 0, latency_ms=200.0, ts=now), 5.0)
                for i in range(6)])
    alerts.create_rule(store, name="accuracy-low", metric="accuracy", threshold=0.9)
    alerts.evaluate_rules(store)
    costs.save_budget(store, {"name": "tight", "scope": "all", "monthly_usd": 10})
    for who, role in (("rita@acme.com", "reviewer"), ("pat@acme.com", "pm")):
        users.assign(store, who, role)
    yield store
    access.set_process_default(access.operator())
    access.set_resolver(None)


def signed_in(script: str, email: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / script), default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest) -> str:
    """The page's notices, numbers and text, with Markdown escapes taken out."""
    parts = [w.value for w in at.warning] + [m.label for m in at.metric] + [m.value for m in at.markdown]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts)).replace("\u2060", "")


def test_home_shows_a_reviewer_no_alerts_spend_or_budgets_and_records_no_refusal(attention: Store) -> None:
    at = signed_in("Home.py", "rita@acme.com")
    text = shown(at)
    assert "Alert" not in text and "Budget" not in text and "Spend" not in text
    assert "Production, last 7 days" not in [s.value for s in at.subheader]
    assert events(attention, actor="rita@acme.com", outcome="refused") == [], "Home asked before reading"


def test_home_shows_a_pm_the_alert_the_budget_and_the_spend(attention: Store) -> None:
    at = signed_in("Home.py", "pat@acme.com")
    text = shown(at)
    assert "**Alert accuracy-low**" in text and "**Budget tight**" in text
    assert [m.label for m in at.metric][:4] == ["Predictions", "Accuracy", "p95 latency", "Spend"]


def signed_in_tab(script: str, email: str, tab: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / script), default_timeout=60)
    at.query_params["tab"] = tab
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def without(monkeypatch: pytest.MonkeyPatch, role: Role, permission: Permission) -> None:
    """Take one permission from a role for a test: no built-in role reads costs without changing them."""
    monkeypatch.setitem(ROLE_PERMISSIONS, role, ROLE_PERMISSIONS[role] - {permission})


@pytest.mark.parametrize("may_change", [True, False])
def test_the_price_editor_is_offered_only_to_roles_that_may_change_prices(
        attention: Store, monkeypatch: pytest.MonkeyPatch, may_change: bool) -> None:
    if not may_change:
        without(monkeypatch, Role.PM, Permission.COSTS_WRITE)
    at = signed_in_tab("pages/7_Costs.py", "pat@acme.com", "Prices")
    assert bool([b for b in at.button if b.key == "costs.prices_save"]) is may_change
    refusal = "Your role (pm) can read costs but not change prices; an engineer, a PM or an admin can."
    assert (refusal in [c.value for c in at.caption]) is not may_change


@pytest.mark.parametrize("may_change", [True, False])
def test_the_budget_form_is_offered_only_to_roles_that_may_change_budgets(
        attention: Store, monkeypatch: pytest.MonkeyPatch, may_change: bool) -> None:
    if not may_change:
        without(monkeypatch, Role.PM, Permission.COSTS_WRITE)
    at = signed_in_tab("pages/7_Costs.py", "pat@acme.com", "Budgets")
    assert bool([s for s in at.selectbox if s.key == "costs.budget_pick"]) is may_change
    assert any("tight" in m.value for m in at.markdown), "the budgets themselves show either way"


@pytest.mark.parametrize("may_change", [True, False])
def test_the_alert_rule_form_is_offered_only_to_roles_that_may_change_rules(
        attention: Store, monkeypatch: pytest.MonkeyPatch, may_change: bool) -> None:
    if not may_change:
        without(monkeypatch, Role.PM, Permission.ALERTS_WRITE)
    at = signed_in_tab("pages/6_Monitoring.py", "pat@acme.com", "Alerts")
    assert bool([b for b in at.button if b.key == "monitoring.alert_add"]) is may_change
    assert bool([b for b in at.button if b.key == "monitoring.alert_delete"]) is may_change


@pytest.mark.parametrize("may_change", [True, False])
def test_the_decision_is_offered_only_to_roles_that_may_decide(
        attention: Store, monkeypatch: pytest.MonkeyPatch, may_change: bool) -> None:
    made = experiment_svc.create(attention, "checkout", two_variants())
    experiment_svc.start(attention, made.id)
    if not may_change:
        without(monkeypatch, Role.PM, Permission.EXPERIMENTS_WRITE)
    at = signed_in_tab("pages/8_Experiments.py", "pat@acme.com", "Experiments")
    assert bool([b for b in at.button if b.key == "experiments.ship"]) is may_change
    assert any("can read experiments but not start, stop or decide" in c.value for c in at.caption) is not may_change


def test_home_with_data_shows_a_reviewer_no_jobs_and_links_only_the_pages_they_may_open(
        attention: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(attention, write_jsonl([chat("Where is my order?", "On its way.")]), "support")
    at = signed_in("Home.py", "rita@acme.com")
    headings = [s.value for s in at.subheader]
    assert "What is here" in headings and "Jobs" not in headings
    text = shown(at)
    assert "Alert" not in text and "Budget" not in text and "Spend" not in text
    linked = {link.proto.page for link in at.get("page_link")}  # the page each link opens, by its name
    assert linked.isdisjoint({"Jobs", "Costs", "Monitoring", "Experiments", "Models"}) and "Review" in linked
    assert events(attention, actor="rita@acme.com", outcome="refused") == []
