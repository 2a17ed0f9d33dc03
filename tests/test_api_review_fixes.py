"""Review fixes for the ingest API and log import: every malformed body gets the documented 422, strict types,
identifiers without control characters, warnings for experiments that will not count, and clear import errors."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api_server import call, stored_predictions
from workbench.domain.predictions import PredictionIn
from workbench.errors import InvalidInput
from workbench.services import experiments as experiment_svc
from workbench.services import predictions as svc
from workbench.store import Store

# ------------------------------------------------------------------------------------ malformed bodies


@pytest.mark.parametrize(("raw", "words"), [
    (b'{"model_version":"caf\xe9"}', "not valid UTF-8 at byte 22"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"model_version":"m","tokens_in":' + b"9" * 5000 + b"}", "number too long"),
    (b'{"model_version":"m","latency_ms":' + b"1" * 5000 + b".5}", None),  # a long float reads (and is refused)
])
def test_every_malformed_body_gets_the_documented_422(api: str, store: Store, token: str, raw: bytes,
                                                      words: str | None) -> None:
    for path in ("/v1/predictions", "/v1/feedback"):
        status, _, answer = call("POST", f"{api}{path}", raw=raw, token=token)
        assert status == 422, answer
        assert isinstance(answer, dict) and answer["ok"] is False and answer["errors"], answer
        if words is not None:
            assert words in answer["error"] and answer["errors"][0]["field"] == "body", answer
    assert stored_predictions(store) == []


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_a_body_without_a_json_content_type_gets_the_documented_shape(api: str, token: str,
                                                                      content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    status, _, answer = call("POST", f"{api}/v1/predictions", raw=b'{"model_version": "m"}', token=token,
                             headers=headers)
    assert status < 500 and isinstance(answer, dict) and "ok" in answer, answer


def test_too_much_feedback_names_feedback_not_predictions(api: str, token: str) -> None:
    for body in ([{"unit_id": "u"}] * 1001, {"feedback": [{"unit_id": "u"}] * 1001}):
        status, _, answer = call("POST", f"{api}/v1/feedback", body, token=token)
        assert status == 422 and [e["field"] for e in answer["errors"]] == ["feedback"], answer
        assert "predictions" not in answer["error"]
    status, _, answer = call("POST", f"{api}/v1/feedback", [{"unit_id": "u"}, {"unit_id": "u", "rating": 9}], token=token)
    assert status == 422 and answer["errors"][0]["field"] == "feedback[1].rating", answer


# ---------------------------------------------------------------------------------------- strict types


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"correct": "yes"}, "correct", "boolean"),
    ({"correct": 1}, "correct", "boolean"),
    ({"cache_hit": "false"}, "cache_hit", "boolean"),
    ({"ts": 1700000000}, "ts", "ISO-8601 string with a timezone"),
    ({"ts": "1970-01-01T00:00:00Z"}, "ts", "2000-01-01"),
    ({"model_version": "m\x00x"}, "model_version", "U+0000 at character 2"),
    ({"template_version": "t\x01"}, "template_version", "U+0001"),
    ({"task_type": "\x1fx"}, "task_type", "U+001F at character 1"),
    ({"unit_id": "u\n"}, "unit_id", "control character"),
    ({"experiment_id": "1\t"}, "experiment_id", "control character"),
    ({"experiment_id": "1", "variant": "B\x00"}, "variant", "control character"),
    ({"tags": ["ok", "b\x00d"]}, "tags[1]", "control character"),
    ({"tags": {"k\x00": "v"}}, "tags", "control character"),
    ({"tags": {"k": "v\x07"}}, "tags.k", "control character"),
])
def test_loose_types_and_control_characters_are_refused_by_field(api: str, store: Store, token: str,
                                                                 body: dict[str, Any], field: str, words: str) -> None:
    status, _, answer = call("POST", f"{api}/v1/predictions", {"model_version": "m", **body}, token=token)
    assert status == 422, answer
    fields = [e["field"] for e in answer["errors"]]
    assert any(f == field or f.startswith(field) for f in fields), answer
    assert words in " ".join(e["message"] for e in answer["errors"]), answer
    assert stored_predictions(store) == []


def test_free_text_may_hold_control_characters(api: str, store: Store, token: str) -> None:
    text = "line\x00one\n\ttwo\x1b"
    status, _, answer = call("POST", f"{api}/v1/predictions", {"model_version": "m", "input": text, "output": text,
                                                              "ground_truth": text, "error": text}, token=token)
    assert status == 201, answer
    (row,) = stored_predictions(store)
    assert row.input == row.output == text
    status, _, answer = call("POST", f"{api}/v1/feedback", {"prediction_id": answer["ids"][0], "correction": text,
                                                            "comment": text}, token=token)
    assert status == 201, answer


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"prediction_id": "1"}, "prediction_id", "integer"),
    ({"unit_id": "u", "reviewer": "a\x00"}, "reviewer", "control character"),
    ({"unit_id": "u", "categories": ["tone", "x\x02"]}, "categories[1]", "control character"),
    ({"unit_id": "u", "ts": 1700000000}, "ts", "ISO-8601"),
    ({"unit_id": "u", "ts": "1999-12-31T23:59:59Z"}, "ts", "2000-01-01"),
])
def test_feedback_types_are_strict_too(api: str, store: Store, token: str, body: dict[str, Any], field: str,
                                       words: str) -> None:
    call("POST", f"{api}/v1/predictions", {"model_version": "m"}, token=token)
    status, _, answer = call("POST", f"{api}/v1/feedback", body, token=token)
    assert status == 422, answer
    assert any(e["field"] == field for e in answer["errors"]), answer
    assert words in " ".join(e["message"] for e in answer["errors"]), answer


def test_python_callers_may_still_pass_a_datetime(store: Store) -> None:
    from datetime import UTC, datetime

    assert PredictionIn(model_version="m", ts=datetime(2026, 1, 2, tzinfo=UTC)).ts is not None
    with pytest.raises(InvalidInput, match="correct"):
        svc.track_one(store, model_version="m", correct="yes")
    np = pytest.importorskip("numpy")
    assert PredictionIn(model_version="m", correct=np.int64(3) == np.int64(3)).correct is True  # a numpy comparison


def test_the_log_import_applies_the_same_checks(store: Store, tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    lines = [{"model_version": "m", "correct": "yes"}, {"model_version": "m", "ts": 1700000000},
             {"model_version": "m\x00"}, {"model_version": "m", "correct": True, "cache_hit": False}]
    jsonl.write_bytes(b"\n".join(orjson.dumps(v) for v in lines) + b"\n")
    report = svc.import_log(store, jsonl)
    assert report.stored == 1 and [(e.line, e.field) for e in report.errors] == [
        (1, "correct"), (2, "ts"), (3, "model_version")]
    table = tmp_path / "p.csv"
    table.write_text("model_version,correct,cache_hit,ts\n"
                     "m,true,false,2026-01-01T00:00:00Z\n"
                     "m,yes,,\n"
                     "m,,,1970-01-01T00:00:00Z\n"
                     "m,FALSE,TRUE,\n")
    report = svc.import_log(store, table, "csv")
    assert report.stored == 2 and [(e.line, e.field) for e in report.errors] == [(3, "correct"), (4, "ts")]
    stored = [r for r in stored_predictions(store) if r.source == "import"]
    assert [(r.correct, r.cache_hit) for r in stored][-2:] == [(True, False), (False, True)]


# ------------------------------------------------------------------------- experiments that will not count


def _experiment(store: Store) -> int:
    made = experiment_svc.create(store, "checkout", [experiment_svc.VariantIn(name="control", target="model-a"),
                                                     experiment_svc.VariantIn(name="treatment", target="model-b")])
    return made.id


def test_predictions_for_a_missing_experiment_or_variant_are_stored_with_warnings(api: str, store: Store,
                                                                                  token: str) -> None:
    known = _experiment(store)
    body = [{"model_version": "m", "experiment_id": str(known), "variant": "control"},
            {"model_version": "m", "experiment_id": "999", "variant": "a"},
            {"model_version": "m", "experiment_id": str(known), "variant": "C"},
            {"model_version": "m", "experiment_id": 999, "variant": "b"},
            {"model_version": "m"}]
    status, _, answer = call("POST", f"{api}/v1/predictions", body, token=token)
    assert status == 201 and answer["count"] == 5, answer
    assert answer["warnings"] == [
        "predictions[1], predictions[3]: experiment 999 does not exist: it will not count in any analysis",
        f"predictions[2]: experiment {known} has no variant 'C' (its variants: control, treatment): "
        "it will not count in any analysis",
    ]
    assert len(stored_predictions(store)) == 5
    status, _, clean = call("POST", f"{api}/v1/predictions", body[0], token=token)
    assert status == 201 and clean["warnings"] == []


def test_experiments_are_looked_up_once_per_request(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    known = _experiment(store)
    calls: list[int] = []
    real = svc.experiment_rows.list_all

    def counted(db: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(db, **kwargs)

    monkeypatch.setattr(svc.experiment_rows, "list_all", counted)
    batch = [PredictionIn(model_version="m", experiment_id=str(known if i % 2 else 999), variant="control")
             for i in range(1000)]
    stored = svc.ingest_with_warnings(store, batch)
    assert len(stored.ids) == 1000 and len(calls) == 1
    assert len(stored.warnings) == 1 and "predictions[0], predictions[2]," in stored.warnings[0]
    assert "(and 490 more)" in stored.warnings[0]
    calls.clear()
    assert svc.ingest_with_warnings(store, [PredictionIn(model_version="m")]).warnings == [] and calls == []


def test_the_log_import_reports_experiments_that_will_not_count(store: Store, tmp_path: Path) -> None:
    known = _experiment(store)
    path = tmp_path / "x.jsonl"
    values = [{"model_version": "m", "experiment_id": "42", "variant": "a"},
              {"model_version": "m", "experiment_id": str(known), "variant": "treatment"},
              {"model_version": "m", "experiment_id": "42", "variant": "b"},
              {"model_version": "m", "experiment_id": str(known), "variant": "Z"}]
    path.write_bytes(b"\n".join(orjson.dumps(v) for v in values))
    report = svc.import_log(store, path, batch_size=2)
    assert report.stored == 4
    assert report.warnings == [
        "x.jsonl lines 1, 3: experiment 42 does not exist: it will not count in any analysis",
        f"x.jsonl line 4: experiment {known} has no variant 'Z' (its variants: control, treatment): "
        "it will not count in any analysis",
    ]


# ------------------------------------------------------------------------------------------- log import


def _bedrock(**overrides: Any) -> dict[str, Any]:
    record = {"schemaType": "ModelInvocationLog", "timestamp": "2026-01-05T10:00:00Z",
              "modelId": "amazon.nova-lite-v1:0", "operation": "Converse", "requestId": "r1",
              "input": {"inputTokenCount": 10, "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}},
              "output": {"outputTokenCount": 2, "outputBodyJson": {"output": {"message": {"content": [{"text": "yo"}]}}}}}
    return {**record, **overrides}


def test_a_bedrock_prompt_over_the_cut_is_stored_cut_with_a_warning(store: Store, tmp_path: Path) -> None:
    long_prompt = {"messages": [{"role": "user", "content": [{"text": "x" * 123_456}]}]}
    path = tmp_path / "bedrock.jsonl.gz"
    with gzip.open(path, "wb") as out:
        out.write(orjson.dumps(_bedrock()) + b"\n" + orjson.dumps(_bedrock(input={"inputBodyJson": long_prompt})) + b"\n")
    report = svc.import_log(store, path, "bedrock-invocation-log")
    assert report.stored == 2 and report.errors == []
    assert report.warnings == ["bedrock.jsonl.gz line 2: input cut to the first 100,000 of 123,456 characters "
                               "(23,456 cut); the stored text is incomplete"]
    assert len(stored_predictions(store)[-1].input or "") == 100_000


@pytest.mark.parametrize(("overrides", "field"), [
    ({"modelId": {"arn": "x"}}, "modelId"),
    ({"modelId": 7}, "modelId"),
    ({"timestamp": 1700000000}, "timestamp"),
    ({"input": {"inputTokenCount": "ten"}}, "input.inputTokenCount"),
])
def test_a_bedrock_error_names_the_source_field(store: Store, tmp_path: Path, overrides: dict[str, Any],
                                                field: str) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(orjson.dumps(_bedrock(**overrides)) + b"\n")
    report = svc.import_log(store, path, "bedrock-invocation-log")
    assert report.stored == 0 and [e.field for e in report.errors] == [field], report.errors


def test_a_device_is_named_not_a_regular_file(store: Store) -> None:
    with pytest.raises(InvalidInput, match="not a regular file") as refused:
        svc.import_log(store, "/dev/zero")
    assert "no such file" not in str(refused.value)
    with pytest.raises(InvalidInput, match="no such file"):
        svc.import_log(store, "/nonexistent/log.jsonl")
