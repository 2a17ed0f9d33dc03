"""GET /v1/experiments/{id}/assignment over real HTTP: sticky, the hash's answer, and each refusal."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api_server import call
from workbench.domain.assignment import assign
from workbench.services import api_tokens
from workbench.services import experiments as svc
from workbench.store import Store


@pytest.fixture
def experiment(store: Store) -> int:
    made = svc.create(store, "checkout", [svc.VariantIn(name="control", target="model-a", weight=1),
                                          svc.VariantIn(name="treatment", target="model-b", weight=3)])
    return svc.start(store, made.id).id


def test_assignment_is_sticky_and_the_hash_over_http(api: str, token: str, experiment: int) -> None:
    weights = {"control": 1.0, "treatment": 3.0}
    seen = {}
    for i in range(60):
        unit = f"user-{i}"
        status, _, body = call("GET", f"{api}/v1/experiments/{experiment}/assignment?unit={unit}", token=token)
        assert status == 200, body
        assert body == {"experiment_id": experiment, "unit": unit, "variant": assign("checkout", unit, weights),
                        "target": "model-a" if body["variant"] == "control" else "model-b"}
        seen[unit] = body["variant"]
    for unit, variant in list(seen.items())[:10]:
        assert call("GET", f"{api}/v1/experiments/{experiment}/assignment?unit={unit}", token=token)[2]["variant"] == variant
    assert set(seen.values()) == {"control", "treatment"}


def test_a_unit_with_other_characters_is_assigned_as_sent(api: str, token: str, experiment: int) -> None:
    unit = "josé@example.com / 7"
    status, _, body = call("GET", f"{api}/v1/experiments/{experiment}/assignment?unit={quote(unit)}", token=token)
    assert status == 200 and body["unit"] == unit
    assert body["variant"] == assign("checkout", unit, {"control": 1.0, "treatment": 3.0})


def test_an_unknown_experiment_is_404(api: str, token: str) -> None:
    status, _, body = call("GET", f"{api}/v1/experiments/999/assignment?unit=u", token=token)
    assert status == 404 and "no experiment 999" in body["error"]


def test_an_experiment_that_is_not_running_is_409(api: str, store: Store, token: str, experiment: int) -> None:
    svc.stop(store, experiment)
    status, _, body = call("GET", f"{api}/v1/experiments/{experiment}/assignment?unit=u", token=token)
    assert status == 409 and "stopped, not running" in body["error"]
    draft = svc.create(store, "later", [svc.VariantIn(name="a", target="m"), svc.VariantIn(name="b", target="n")])
    assert call("GET", f"{api}/v1/experiments/{draft.id}/assignment?unit=u", token=token)[0] == 409


@pytest.mark.parametrize("query", ["", "?unit=", "?other=1", "?unit=%20"])
def test_a_missing_unit_is_422_naming_it(api: str, token: str, experiment: int, query: str) -> None:
    status, _, body = call("GET", f"{api}/v1/experiments/{experiment}/assignment{query}", token=token)
    assert status == 422 and "unit" in body["error"], body


def test_a_bad_experiment_id_is_422(api: str, token: str) -> None:
    status, _, body = call("GET", f"{api}/v1/experiments/abc/assignment?unit=u", token=token)
    assert status == 422 and "experiment_id" in body["error"]


@pytest.mark.parametrize("header", [None, "Bearer wb_not-a-real-token"])
def test_assignment_needs_a_token(api: str, experiment: int, header: str | None) -> None:
    status, headers, body = call("GET", f"{api}/v1/experiments/{experiment}/assignment?unit=u",
                                 headers={"Authorization": header} if header else None)
    assert status == 401 and "token" in body["error"]
    assert headers.get("www-authenticate", headers.get("WWW-Authenticate")) == "Bearer"


def test_the_route_is_in_the_openapi_spec(api: str) -> None:
    spec = call("GET", f"{api}/openapi.json")[2]
    assert "/v1/experiments/{experiment_id}/assignment" in spec["paths"]


def test_a_shipped_experiment_409_says_define_a_new_one_not_start_it(api: str, store: Store, token: str,
                                                                     experiment: int) -> None:
    svc.decide(store, experiment, ship="treatment")
    status, _, body = call("GET", f"{api}/v1/experiments/{experiment}/assignment?unit=u", token=token)
    assert status == 409 and "was shipped (treatment) on " in body["error"]
    assert "define a new experiment" in body["error"] and "start" not in body["error"], \
        "`experiments start` refuses a shipped test, so the API must not advise it"


def test_a_pm_dashboard_token_reads_assignments_and_a_reviewer_token_is_refused(api: str, store: Store,
                                                                                experiment: int) -> None:
    from workbench.domain.access import Role

    pm = api_tokens.create(store, "dashboards", role=Role.PM, owner="service:dashboards").token
    reviewer = api_tokens.create(store, "review-bot", role=Role.REVIEWER).token
    url = f"{api}/v1/experiments/{experiment}/assignment?unit=user-1"
    status, _, body = call("GET", url, token=pm)
    assert status == 200 and body["variant"] in ("control", "treatment")
    status, _, body = call("GET", url, token=reviewer)
    assert status == 403 and (body["role"], body["permission"]) == ("reviewer", "experiments.read")
