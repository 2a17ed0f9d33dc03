"""The ingest API over real HTTP (uvicorn on a loopback port): auth, validation, limits, storage, no 5xx."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api_server import call, serve_api, stored_predictions
from workbench.services import api_tokens
from workbench.store import Store
from workbench.store import predictions as rows

ROOT = Path(__file__).resolve().parent.parent


def test_health_needs_no_token(api: str) -> None:
    status, _, body = call("GET", f"{api}/v1/health")
    assert status == 200 and body["ok"] is True


def test_openapi_spec_and_docs_are_served(api: str) -> None:
    status, _, spec = call("GET", f"{api}/openapi.json")
    assert status == 200
    assert {"/v1/predictions", "/v1/feedback", "/v1/health"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    status, headers, page = call("GET", f"{api}/docs")
    assert status == 200 and "text/html" in headers.get("content-type", headers.get("Content-Type", ""))
    assert "/v1/predictions" in page and "PredictionIn" in page and "tokens_in" in page
    # Offline: nothing fetched from another host (the stock page loads Swagger from a CDN).
    assert "http://" not in page.replace("http://localhost", "") and "https://" not in page and "//cdn" not in page
    assert "<script" not in page


@pytest.mark.parametrize("header", [None, "Bearer wb_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer x" * 50])
def test_missing_or_bad_tokens_get_401_with_a_bearer_challenge(api: str, store: Store, header: str | None) -> None:
    status, headers, body = call("POST", f"{api}/v1/predictions", {"model_version": "m"},
                                 headers={"Authorization": header} if header else None)
    assert status == 401
    assert headers.get("www-authenticate", headers.get("WWW-Authenticate")) == "Bearer"
    assert "token" in body["error"]
    assert stored_predictions(store) == []


def test_a_revoked_token_is_refused_at_once(api: str, store: Store, token: str) -> None:
    assert call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=token)[0] == 201
    api_tokens.revoke(store, "tests")
    status, _, body = call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=token)
    assert status == 401 and "revoked" in body["error"]
    assert len(stored_predictions(store)) == 1


def test_an_unknown_token_and_a_revoked_one_get_the_same_answer(api: str, store: Store, token: str) -> None:
    """Which it was is for the audit trail; the caller learns nothing about whether the token ever existed."""
    unknown = call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token="wb_" + "Q" * 43)
    api_tokens.revoke(store, "tests")
    revoked = call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=token)
    assert unknown[0] == revoked[0] == 401 and unknown[2] == revoked[2]


def test_a_token_records_its_last_use(api: str, store: Store, token: str) -> None:
    call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=token)
    (listed,) = api_tokens.list_tokens(store)
    assert listed.last_used_at is not None


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"input": "hi"}, "model_version", "required"),
    ({"model_version": "   "}, "model_version", "empty"),
    ({"model_version": "m", "tokens_in": -1}, "tokens_in", "greater than or equal to 0"),
    ({"model_version": "m", "latency_ms": -5}, "latency_ms", "greater than or equal"),
    ({"model_version": "m", "rating": 6}, "rating", "less than or equal to 5"),
    ({"model_version": "m", "ts": "2026-01-01T10:00:00"}, "ts", "timezone"),
    ({"model_version": "m", "ts": "yesterday"}, "ts", "datetime"),
    ({"model_version": "m", "ts": "0001-01-01T00:00:00+05:00"}, "ts", "between 2000-01-01 and 2200-01-01"),
    ({"model_version": "m", "tokens_input": 3}, "tokens_input", "not permitted"),
    ({"model_version": "m", "tags": ["x" * 101]}, "tags[0]", "at most 100"),
    ({"model_version": "m", "input_hash": "short"}, "input_hash", "pattern"),
    ({"model_version": "m", "variant": "B"}, "variant", "experiment_id"),
    ({"model_version": "m", "ts": "2099-01-01T00:00:00Z"}, "ts", "in the future"),
    ({"model_version": "m", "tokens_in": "12"}, "tokens_in", "valid integer"),
    ([{"model_version": "m"}, {"model_version": "m"}, {"model_version": "m", "tokens_out": "many"}],
     "predictions[2].tokens_out", "integer"),
    ({"predictions": [{"model_version": "m"}, {"model_version": "m", "confidence": 2}]},
     "predictions[1].confidence", "less than or equal to 1"),
    ("just a string", "body", "expected a JSON object"),
])
def test_bad_payloads_get_422_naming_the_field(api: str, store: Store, token: str, body: object, field: str,
                                                 words: str) -> None:
    status, _, answer = call("POST", f"{api}/v1/predictions", body, token=token)
    assert status == 422, answer
    fields = [e["field"] for e in answer["errors"]]
    assert any(f == field or f.endswith(field) for f in fields), answer
    assert words in answer["error"] + " ".join(e["message"] for e in answer["errors"])
    assert stored_predictions(store) == []


@pytest.mark.parametrize("raw", [b'{"model_version": "m",', b"\xff\xfe", b"", b"[1, 2"])
def test_malformed_json_gets_422_not_500(api: str, token: str, raw: bytes) -> None:
    status, _, answer = call("POST", f"{api}/v1/predictions", raw=raw, token=token)
    assert status == 422, answer
    assert answer["ok"] is False and answer["errors"]


def test_a_batch_of_1000_is_accepted_and_stored_in_order(api: str, store: Store, token: str) -> None:
    batch = [{"model_version": "amazon.nova-lite-v1:0", "input": f"q{i}", "output": f"a{i}", "tokens_in": 100,
              "tokens_out": 20, "latency_ms": 100 + i} for i in range(1000)]
    status, _, answer = call("POST", f"{api}/v1/predictions", {"predictions": batch}, token=token)
    assert status == 201 and answer["count"] == 1000
    stored = stored_predictions(store)
    assert [r.id for r in stored] == answer["ids"]
    assert [r.input for r in stored] == [f"q{i}" for i in range(1000)]
    assert all(r.source == "api" and r.cost_source == "inferred" and r.price_row for r in stored)
    with store.connect() as db:
        assert sum(d["n"] for d in rows.daily(db)) == 1000


def test_more_than_1000_in_one_request_is_refused_with_the_limit(api: str, store: Store, token: str) -> None:
    status, _, answer = call("POST", f"{api}/v1/predictions", [{"model_version": "m"}] * 1001, token=token)
    assert status == 422 and "1000" in answer["error"]
    assert stored_predictions(store) == []


def test_an_oversized_body_gets_413(store: Store, token: str) -> None:
    with serve_api(store, max_body_bytes=10_000) as url:
        big = {"model_version": "m", "input": "x" * 20_000}
        status, _, answer = call("POST", f"{url}/v1/predictions", big, token=token)
        assert status == 413 and "10,000 bytes" in answer["error"]
        # Chunked, with no Content-Length to refuse it by: cut off while it streams in.
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.putrequest("POST", "/v1/predictions")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        payload = b'{"model_version": "m", "input": "' + b"y" * 30_000 + b'"}'
        for start in range(0, len(payload), 4096):
            chunk = payload[start:start + 4096]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 413
        conn.close()
    assert stored_predictions(store) == []


HOSTILE = [
    "<script>alert(1)</script>",
    "'; DROP TABLE predictions;--",
    "nul\x00inside",
    "\u202eevil right-to-left override",
    "emoji \U0001f600 and combining e\u0301",
    "{{ config }} ${jndi:ldap://x} %s %n",
    "",
]


def test_hostile_text_is_stored_verbatim(api: str, store: Store, token: str) -> None:
    # Tags are identifiers: control characters are refused there (and tested so elsewhere), kept in free text.
    body = [{"model_version": "m", "input": text, "output": text, "tags": [text[:50].replace("\x00", "") or "-"]}
            for text in HOSTILE]
    status, _, answer = call("POST", f"{api}/v1/predictions", body, token=token)
    assert status == 201, answer
    stored = stored_predictions(store)
    assert [r.input for r in stored] == HOSTILE and [r.output for r in stored] == HOSTILE


def test_a_lone_surrogate_is_refused_by_field_not_a_500(api: str, store: Store, token: str) -> None:
    status, _, answer = call("POST", f"{api}/v1/predictions", raw=b'{"model_version": "m", "output": "bad \\ud800"}',
                             token=token)
    assert status == 422 and answer["errors"][0]["field"] == "output"
    assert "unicode" in answer["errors"][0]["message"].lower()


def test_feedback_by_prediction_or_unit(api: str, store: Store, token: str) -> None:
    _, _, made = call("POST", f"{api}/v1/predictions", {"model_version": "m", "unit_id": "u1"}, token=token)
    pid = made["ids"][0]
    status, _, answer = call("POST", f"{api}/v1/feedback", [
        {"prediction_id": pid, "rating": 2, "correction": "better", "categories": ["tone"], "reviewer": "ana"},
        {"unit_id": "u1", "rating": 5},
    ], token=token)
    assert status == 201 and answer["count"] == 2
    with store.connect() as db:
        (given,) = rows.feedback_for(db, prediction_id=pid)
        assert (given.rating, given.correction, given.categories) == (2, "better", ["tone"])
        assert rows.feedback_for(db, unit_id="u1")[0].rating == 5


def test_a_nan_latency_is_refused_as_not_finite(api: str, store: Store, token: str) -> None:
    status, _, answer = call("POST", f"{api}/v1/predictions", raw=b'{"model_version": "m", "latency_ms": NaN}',
                             token=token)
    assert status == 422 and answer["errors"][0]["field"] == "latency_ms"
    assert "finite number" in answer["errors"][0]["message"]
    assert stored_predictions(store) == []


def test_feedback_errors_name_the_fields_at_fault(api: str, token: str) -> None:
    _, _, neither = call("POST", f"{api}/v1/feedback", {"rating": 3}, token=token)
    assert {e["field"] for e in neither["errors"]} == {"prediction_id", "unit_id"}
    status, _, unknown = call("POST", f"{api}/v1/feedback", [{"unit_id": "u"}, {"prediction_id": 999}], token=token)
    assert status == 422 and unknown["errors"] == [
        {"field": "feedback[1].prediction_id", "message": unknown["error"]}]


@pytest.mark.parametrize(("body", "field"), [
    ({"rating": 3}, "prediction_id or unit_id"),
    ({"prediction_id": 999, "rating": 3}, "feedback[0].prediction_id"),
    ({"unit_id": "u", "rating": 0}, "rating"),
])
def test_bad_feedback_is_refused_naming_the_field(api: str, token: str, body: dict, field: str) -> None:
    status, _, answer = call("POST", f"{api}/v1/feedback", body, token=token)
    assert status == 422 and field in answer["error"], answer


def test_a_store_busy_past_its_timeout_gets_503_with_retry_after(store: Store, token: str) -> None:
    import sqlite3

    impatient = Store(store.path, busy_timeout=0.2)
    holder = sqlite3.connect(store.path)
    with serve_api(impatient) as url:
        holder.execute("BEGIN IMMEDIATE")
        try:
            status, headers, answer = call("POST", f"{url}/v1/predictions", {"model_version": "m"}, token=token)
        finally:
            holder.rollback()
            holder.close()
        assert status == 503 and "busy" in answer["error"]
        assert headers.get("retry-after", headers.get("Retry-After")) == "1"
        assert call("POST", f"{url}/v1/predictions", {"model_version": "m"}, token=token)[0] == 201


def test_feedback_needs_a_token(api: str) -> None:
    assert call("POST", f"{api}/v1/feedback", {"unit_id": "u"})[0] == 401


def test_the_api_and_another_process_writing_at_once_lose_nothing(api: str, store: Store, token: str) -> None:
    """Two writers on one file: the API's requests and a second process's batches interleave; every row lands."""
    script = (
        "import sys\n"
        "from workbench.store import Store\n"
        "from workbench.domain.predictions import PredictionIn\n"
        "from workbench.services.predictions import ingest\n"
        "store = Store(sys.argv[1])\n"
        "for b in range(20):\n"
        "    ingest(store, [PredictionIn(model_version='other', input=f'{b}-{i}') for i in range(100)], source='import')\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script, str(store.path)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    statuses: list[int] = []

    def send() -> None:
        for b in range(20):
            batch = [{"model_version": "api", "input": f"{b}-{i}"} for i in range(100)]
            statuses.append(call("POST", f"{api}/v1/predictions", batch, token=token)[0])

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(timeout=120)
    assert other.wait(timeout=120) == 0
    assert statuses == [201] * 20
    stored = stored_predictions(store)
    assert sum(r.model_version == "api" for r in stored) == 2000
    assert sum(r.model_version == "other" for r in stored) == 2000
    assert len({r.id for r in stored}) == 4000
    with store.connect() as db:
        assert {d["model_version"]: d["n"] for d in rows.daily(db)} == {"api": 2000, "other": 2000}


def test_schemathesis_finds_no_server_error(api: str, token: str) -> None:
    """Generated requests (valid and not) against the served spec: none gets a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [schemathesis.GenerationMode.POSITIVE]
        if operation.method.upper() == "POST":  # invalid bodies too; a GET without parameters has nothing to break
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:

            @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(mode))
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30)
                assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])

            check()
