"""Tokens that belong to someone and carry a role, over real HTTP: who may call what, and the refusals on the trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.api_server import call, serve_api
from workbench.api import INVALID_TOKEN, RefusalLimiter
from workbench.cli import main
from workbench.domain.access import Actor, Role
from workbench.domain.predictions import FeedbackIn, PredictionIn
from workbench.errors import Forbidden
from workbench.services import access, api_tokens, audit
from workbench.services import experiments as experiment_svc
from workbench.services import predictions as svc
from workbench.store import Store
from workbench.store.audit import AuditEvent


@pytest.fixture
def experiment(store: Store) -> int:
    made = experiment_svc.create(store, "checkout", [experiment_svc.VariantIn(name="control", target="model-a", weight=1),
                                                     experiment_svc.VariantIn(name="treatment", target="model-b", weight=1)])
    return experiment_svc.start(store, made.id).id


def _count(store: Store, table: str) -> int:
    with store.connect() as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _refusals(store: Store, **filters: Any) -> list[AuditEvent]:
    return audit.events(store, outcome="refused", **filters)


def _expire(store: Store, name: str) -> None:
    with store.write() as db:
        db.execute("UPDATE api_tokens SET expires_at = ? WHERE name = ?",
                   [(datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds"), name])


# ------------------------------------------------------------------------------------------ role matrix

# (role, POST /v1/predictions, POST /v1/feedback, GET assignment)
MATRIX = [
    (Role.ENGINEER, 201, 201, 200),
    (Role.ADMIN, 201, 201, 200),
    (Role.PM, 403, 403, 200),
    (Role.REVIEWER, 403, 403, 403),
]


@pytest.mark.parametrize(("role", "predictions", "feedback", "assignment"), MATRIX)
def test_each_role_reaches_only_the_endpoints_it_may(api: str, store: Store, experiment: int, role: Role,
                                                     predictions: int, feedback: int, assignment: int) -> None:
    token = api_tokens.create(store, f"{role.value}-svc", role=role, owner=f"service:{role.value}-svc").token
    status, _, body = call("POST", f"{api}/v1/predictions", {"model_version": "m", "unit_id": "u1"}, token=token)
    assert status == predictions, body
    status, _, body = call("POST", f"{api}/v1/feedback", {"unit_id": "u1", "rating": 4}, token=token)
    assert status == feedback, body
    status, _, body = call("GET", f"{api}/v1/experiments/{experiment}/assignment?unit=u1", token=token)
    assert status == assignment, body
    assert _count(store, "predictions") == (1 if predictions == 201 else 0)
    assert _count(store, "prediction_feedback") == (1 if feedback == 201 else 0)


@pytest.mark.parametrize(("role", "path", "permission", "action"), [
    (Role.PM, "/v1/predictions", "predictions.write", "predictions.ingest"),
    (Role.REVIEWER, "/v1/feedback", "predictions.write", "feedback.add"),
    (Role.REVIEWER, "/v1/experiments/{id}/assignment?unit=u1", "experiments.read", "experiment.assignment"),
])
def test_a_refused_role_gets_403_naming_role_and_permission_and_the_trail_records_it(
        api: str, store: Store, experiment: int, role: Role, path: str, permission: str, action: str) -> None:
    token = api_tokens.create(store, "dash", role=role, owner="pat@acme.com").token
    url = f"{api}{path.format(id=experiment)}"
    method = "GET" if "assignment" in path else "POST"
    status, _, body = call(method, url, None if method == "GET" else {"model_version": "m", "unit_id": "u1"},
                           token=token)
    assert status == 403
    assert body["ok"] is False and body["role"] == role.value and body["permission"] == permission
    assert role.value in body["error"] and permission in body["error"] and "dash" in body["error"]
    (event,) = _refusals(store, action=action)
    assert (event.actor, event.role, event.via, event.target) == ("pat@acme.com", role.value, "token", "token:dash")
    assert event.detail["reason"] == f"needs {permission}" and event.detail["path"] == path.split("?")[0].format(
        id=experiment)


def test_a_403_is_given_before_the_body_is_read(api: str, store: Store) -> None:
    """A role that may not write learns nothing about the payload's fields from a 422."""
    token = api_tokens.create(store, "pm", role=Role.PM).token
    status, _, body = call("POST", f"{api}/v1/predictions", {"tokens_in": "many"}, token=token)
    assert status == 403 and body["permission"] == "predictions.write"


def test_the_spec_documents_the_403(api: str) -> None:
    _, _, spec = call("GET", f"{api}/openapi.json")
    answers = spec["paths"]["/v1/predictions"]["post"]["responses"]
    assert "403" in answers and "RoleProblem" in orjson.dumps(answers["403"]).decode()


# --------------------------------------------------------------------------- refused tokens, one answer


def _other_deployments_token(tmp_path: Path) -> str:
    return api_tokens.create(Store(tmp_path / "elsewhere.db"), "svc").token


def _forged(token: str) -> str:
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


@pytest.mark.parametrize(("case", "reason"), [
    ("another deployment", "unknown"),
    ("expired", "expired"),
    ("revoked", "revoked"),
    ("forged suffix", "forged"),
])
def test_foreign_expired_revoked_and_forged_tokens_get_the_same_401_and_are_recorded(
        api: str, store: Store, tmp_path: Path, case: str, reason: str) -> None:
    good = api_tokens.create(store, "svc", owner="ana@acme.com", expires_days=30).token
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=good)[0] == 201
    presented = good
    if case == "another deployment":
        presented = _other_deployments_token(tmp_path)
    elif case == "expired":
        _expire(store, "svc")
    elif case == "revoked":
        api_tokens.revoke(store, "svc")
    else:
        presented = _forged(good)
    status, headers, body = call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=presented)
    assert status == 401 and body["error"] == INVALID_TOKEN
    assert headers.get("www-authenticate", headers.get("WWW-Authenticate")) == "Bearer"
    assert _count(store, "predictions") == 1
    (event,) = _refusals(store, action="token.use")
    assert event.detail["reason"] == reason and event.detail["prefix"] == presented[:10]
    assert presented not in orjson.dumps(event.model_dump()).decode()  # never the token itself
    if reason in ("expired", "revoked"):  # the trail names whose token it was
        assert (event.actor, event.role, event.target) == ("ana@acme.com", "engineer", "token:svc")
    elif reason == "forged":  # someone holds the prefix of a real token but not its secret
        assert (event.actor, event.target) == ("anonymous", "token:svc")
    else:
        assert event.actor == "anonymous" and event.target == "client:127.0.0.1"


def test_a_token_never_outranks_its_owner_once_roles_are_assigned(api: str, store: Store) -> None:
    """Removing or lowering a person's role stops their tokens at once; a service account's token is unaffected."""
    from workbench.services import users

    users.assign(store, "ops@acme.com", "admin")
    users.assign(store, "ana@acme.com", "engineer")
    hers = api_tokens.create(store, "ana-ingest", owner="ana@acme.com").token
    service = api_tokens.create(store, "pipeline", owner="service:pipeline").token
    with pytest.raises(Forbidden, match="ana@acme.com has role engineer, so a token they own cannot have role admin"):
        api_tokens.create(store, "too-wide", owner="ana@acme.com", role="admin")
    with pytest.raises(Forbidden, match="bo@acme.com has role none"):
        api_tokens.create(store, "nobody", owner="bo@acme.com")
    assert [e.target for e in _refusals(store, action="token.create")] == ["token:nobody", "token:too-wide"]
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=hers)[0] == 201

    users.assign(store, "ana@acme.com", "reviewer")  # lowered: her engineer token now outranks her
    status, _, body = call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=hers)
    assert status == 401 and body["error"] == INVALID_TOKEN
    assert _refusals(store, action="token.use")[0].detail["reason"] == "owner"
    users.remove(store, "ana@acme.com")
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=hers)[0] == 401
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=service)[0] == 201


def test_a_token_that_is_not_a_workbench_token_is_recorded_without_any_of_its_text(api: str, store: Store) -> None:
    secret = "sk-live-0123456789abcdef"
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=secret)[0] == 401
    (event,) = _refusals(store, action="token.use")
    assert event.detail["reason"] == "unknown" and "prefix" not in event.detail
    assert "sk-live" not in orjson.dumps(event.model_dump()).decode()


def test_a_missing_token_is_recorded_by_client_address(api: str, store: Store) -> None:
    status, _, body = call("POST", f"{api}/v1/predictions", {"model_version": "m"})
    assert status == 401 and "missing bearer token" in body["error"]
    (event,) = _refusals(store, action="token.use")
    assert event.detail["reason"] == "missing" and event.target == "client:127.0.0.1"


# ------------------------------------------------------------------------------------- rate limiting


def test_a_flood_of_bad_requests_writes_one_event_per_reason_and_token_a_minute(api: str, store: Store) -> None:
    good = api_tokens.create(store, "svc").token
    pm = api_tokens.create(store, "pm", role=Role.PM).token
    for _ in range(25):
        assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=_forged(good))[0] == 401
        assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=pm)[0] == 403
        assert call("POST", f"{api}/v1/predictions", {"model_version": "m"})[0] == 401
    reasons = sorted(e.detail["reason"] for e in _refusals(store))
    assert reasons == ["forged", "missing", "needs predictions.write"]
    # Another token's refusal is its own key: recorded even within the minute.
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token="wb_" + "Z" * 43)[0] == 401
    assert len(_refusals(store)) == 4


def test_made_up_tokens_cannot_crowd_forged_tries_at_a_real_token_out_of_the_trail(api: str, store: Store) -> None:
    """An unknown token's prefix is the caller's choice, so unknown tokens count by client address, not by prefix."""
    good = api_tokens.create(store, "svc").token
    for i in range(150):
        assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=f"wb_{i:07d}" + "Q" * 36)[0] == 401
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=_forged(good))[0] == 401
    reasons = sorted(e.detail["reason"] for e in _refusals(store))
    assert reasons == ["forged", "unknown"]


def test_after_the_window_the_next_event_counts_the_refusals_left_out(store: Store) -> None:
    clock = [0.0]
    good = api_tokens.create(store, "svc").token
    with serve_api(store, refusals=RefusalLimiter(window_s=60, clock=lambda: clock[0])) as url:
        for _ in range(5):
            call("POST", f"{url}/v1/predictions", {"model_version": "m"}, token=_forged(good))
        assert len(_refusals(store)) == 1
        clock[0] = 61.0
        call("POST", f"{url}/v1/predictions", {"model_version": "m"}, token=_forged(good))
    latest, first = _refusals(store)
    assert "repeats" not in first.detail and latest.detail["repeats"] == 4


def test_the_limiter_caps_events_across_keys_and_reports_what_it_dropped() -> None:
    clock = [0.0]
    limiter = RefusalLimiter(window_s=60, most=3, clock=lambda: clock[0])
    admitted = [limiter.admit("unknown", f"wb_{i:07d}") for i in range(10)]
    assert sum(a is not None for a in admitted) == 3  # random tokens, each its own key, cannot flood the trail
    clock[0] = 60.0
    assert limiter.admit("unknown", "wb_new") == {"repeats": 0, "others_left_out": 7}
    assert limiter.admit("unknown", "wb_0000000") == {"repeats": 0, "others_left_out": 0}


def test_the_limiter_forgets_quiet_keys() -> None:
    clock = [0.0]
    limiter = RefusalLimiter(window_s=60, clock=lambda: clock[0])
    for i in range(50):
        limiter.admit("unknown", f"k{i}")
    clock[0] = 120.0
    limiter.admit("unknown", "fresh")
    assert len(limiter._last) == 1


# ---------------------------------------------------------------------- the service layer's own check

WRITES = {
    "ingest": lambda store, path: svc.ingest(store, [PredictionIn(model_version="m")]),
    "feedback": lambda store, path: svc.add_feedback(store, [FeedbackIn(unit_id="u", rating=3)]),
    "import": lambda store, path: svc.import_log(store, path),
}
ACTIONS = {"ingest": "predictions.ingest", "feedback": "feedback.add", "import": "predictions.import"}


@pytest.mark.parametrize("call_name", sorted(WRITES))
@pytest.mark.parametrize(("role", "allowed"), [(Role.ENGINEER, True), (Role.ADMIN, True), (Role.PM, False),
                                               (Role.REVIEWER, False), (None, False)])
def test_predictions_write_is_refused_below_the_api_too(store: Store, tmp_path: Path, call_name: str,
                                                        role: Role | None, allowed: bool) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(orjson.dumps({"model_version": "m"}) + b"\n")
    tables = ("predictions", "prediction_feedback")
    before = [_count(store, t) for t in tables]
    with access.acting_as(Actor(email="pat@acme.com", role=role, via="oidc")):
        if allowed:
            WRITES[call_name](store, log)
        else:
            with pytest.raises(Forbidden, match="pat@acme.com"):
                WRITES[call_name](store, log)
    after = [_count(store, t) for t in tables]
    assert (after != before) == allowed
    refused = _refusals(store, action=ACTIONS[call_name])
    assert len(refused) == (0 if allowed else 1)
    if not allowed:
        assert refused[0].actor == "pat@acme.com"


def test_an_import_is_recorded_per_file_as_whoever_ran_it(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(orjson.dumps({"model_version": "m", "input": str(i)}) + b"\n" for i in range(3)))
    with access.acting_as(Actor(email="eve@acme.com", role=Role.ENGINEER, via="oidc")):
        assert svc.import_log(store, log).stored == 3
    (event,) = audit.events(store, action="predictions.import")
    assert (event.actor, event.outcome, event.detail["stored"], event.target) == ("eve@acme.com", "ok", 3,
                                                                                   f"file:{log.name}")
    assert event.detail["source"] == str(log)


# ----------------------------------------------------------------------------------------------- CLI


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--db", str(db), *args, "--json"])
    assert (result.exit_code == 0) == ok, result.output
    assert "Traceback" not in result.output
    return orjson.loads(result.output)


def test_cli_creates_a_service_token_with_a_role_and_an_expiry_and_lists_its_state(store: Store) -> None:
    made = run(store.path, "tokens", "create", "--name", "dash", "--role", "PM", "--owner", "service:dashboards",
               "--expires-days", "30")
    assert made["token"].startswith("wb_") and (made["role"], made["owner"]) == ("pm", "service:dashboards")
    assert made["expires_at"] > datetime.now(UTC).isoformat()
    run(store.path, "tokens", "create", "--name", "ingest")
    (dash, ingest) = run(store.path, "tokens", "list")["tokens"]
    assert (dash["owner"], dash["role"], dash["state"], dash["expires_at"]) == (
        "service:dashboards", "pm", "active", made["expires_at"])
    assert (ingest["role"], ingest["state"], ingest["expires_at"], ingest["last_used_at"]) == (
        "engineer", "active", None, None)
    assert ingest["owner"] == ingest["created_by"] == access.operator().email  # default: whoever made it
    _expire(store, "dash")
    states = {t["name"]: t["state"] for t in run(store.path, "tokens", "list")["tokens"]}
    assert states == {"dash": "expired", "ingest": "active"}
    assert [t["name"] for t in run(store.path, "tokens", "list", "--active")["tokens"]] == ["ingest"]
    run(store.path, "tokens", "revoke", "ingest")
    assert {t["name"]: t["state"] for t in run(store.path, "tokens", "list")["tokens"]}["ingest"] == "revoked"
    assert made["token"] not in orjson.dumps([e.model_dump() for e in audit.events(store)]).decode()
    assert [e.action for e in audit.events(store, action="token")] == ["token.revoke", "token.create", "token.create"]


@pytest.mark.parametrize(("args", "words"), [
    (["--owner", "@acme.com"], "not a domain"),
    (["--owner", "service:"], "service:NAME"),
    (["--owner", "not an email"], "one person's email"),
    (["--role", "owner"], "owner"),
    (["--expires-days", "0"], "expires-days"),
])
def test_cli_refuses_a_bad_owner_role_or_expiry(store: Store, args: list[str], words: str) -> None:
    failed = run(store.path, "tokens", "create", "--name", "x", *args, ok=False)
    assert words in failed["error"]
    assert _count(store, "api_tokens") == 0
