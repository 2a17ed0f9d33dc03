"""Predictions in through the service: pricing on arrival, derived fields, rollups, log imports (file, gzip, S3)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import workbench
from workbench.domain.invocation_logs import body_text
from workbench.domain.predictions import (
    CACHE_HIT_ROW,
    MAX_CLOCK_SKEW,
    PredictionIn,
    latency_bucket,
    latency_bucket_bounds,
)
from workbench.errors import InvalidInput
from workbench.services import predictions as svc
from workbench.store import Store
from workbench.store import predictions as rows

NOVA_LITE = "amazon.nova-lite-v1:0"  # the catalogue prices it at $0.00006 in, $0.00024 out per 1K tokens


def _all(store: Store) -> list[rows.PredictionRow]:
    with store.connect() as db:
        return list(reversed(rows.page(db, limit=100_000)))


def _one(store: Store, **fields: Any) -> rows.PredictionRow:
    (pid,) = svc.ingest(store, [PredictionIn(**fields)])
    with store.connect() as db:
        found = rows.get(db, pid)
    assert found is not None
    return found


def test_cost_is_computed_on_arrival_with_the_price_row(store: Store) -> None:
    row = _one(store, model_version=f"us.{NOVA_LITE}", tokens_in=1000, tokens_out=2000)
    assert row.cost_usd == pytest.approx(0.00006 + 2 * 0.00024)
    assert row.cost_source == "inferred"
    assert row.price_row is not None and "nova-lite" in row.price_row


def test_the_callers_cost_wins_and_is_marked_ingested(store: Store) -> None:
    row = _one(store, model_version=NOVA_LITE, tokens_in=1000, tokens_out=1000, cost_usd=0.5)
    assert (row.cost_usd, row.cost_source, row.price_row) == (0.5, "ingested", None)


def test_an_application_cache_hit_is_not_charged(store: Store) -> None:
    row = _one(store, model_version=NOVA_LITE, tokens_in=1000, tokens_out=1000, cache_hit=True)
    assert (row.cost_usd, row.price_row, row.cache_hit) == (0.0, CACHE_HIT_ROW, True)


def test_cached_input_tokens_are_priced_once_and_said_so(store: Store) -> None:
    row = _one(store, model_version=NOVA_LITE, tokens_in=1000, tokens_cached=1000, tokens_out=0)
    assert row.cost_usd == pytest.approx(2 * 0.00006)
    assert row.price_row is not None and "cached input at the input rate" in row.price_row


@pytest.mark.parametrize("fields", [{"model_version": "my-own-model", "tokens_in": 10}, {"model_version": NOVA_LITE}])
def test_no_price_or_no_tokens_leaves_the_cost_unknown(store: Store, fields: dict[str, Any]) -> None:
    row = _one(store, **fields)
    assert (row.cost_usd, row.cost_source) == (None, "unpriced")


def test_time_is_normalised_to_utc_and_text_is_hashed_and_counted(store: Store) -> None:
    row = _one(store, model_version="m", ts="2026-03-01T09:30:00.5+02:00", input="héllo", output="ok", latency_ms=250)
    assert row.ts == "2026-03-01T07:30:00.500+00:00"
    assert row.input_hash is not None and row.input_hash.startswith("sha256:")
    assert (row.input_chars, row.output_chars) == (5, 2)
    assert row.latency_bucket == latency_bucket(250)


def test_text_kept_out_keeps_the_callers_hashes(store: Store) -> None:
    row = _one(store, model_version="m", input_hash="sha256:abcdef0123", output_hash="abcdef012345")
    assert (row.input, row.input_hash, row.output_hash, row.input_chars) == (None, "sha256:abcdef0123", "abcdef012345", None)


def test_latency_buckets_cover_every_value_in_order() -> None:
    values = [0, 5, 10, 11, 100, 1_000, 59_999, 599_999, 600_000, 10**7]
    buckets = [latency_bucket(v) for v in values]
    assert buckets == sorted(buckets) and buckets[0] == 0 and buckets[-1] == 41
    for value in (11, 100, 1_000, 59_999):
        low, high = latency_bucket_bounds(latency_bucket(value))  # type: ignore[arg-type]
        assert low <= value < high


def test_the_daily_rollup_follows_inserts_updates_and_deletes(store: Store) -> None:
    svc.ingest(store, [
        PredictionIn(model_version="a", ts="2026-01-01T10:00:00Z", correct=True, rating=4, latency_ms=100, task_type="t"),
        PredictionIn(model_version="a", ts="2026-01-01T23:59:59Z", correct=False, latency_ms=300, task_type="t"),
        PredictionIn(model_version="a", ts="2026-01-02T00:00:00Z", error="timeout", task_type="t"),
        PredictionIn(model_version="b", ts="2026-01-01T10:00:00Z", experiment_id="e1", variant="B"),
    ])
    with store.connect() as db:
        days = {(d["day"], d["model_version"], d["variant"]): d for d in rows.daily(db)}
        assert set(days) == {("2026-01-01", "a", ""), ("2026-01-02", "a", ""), ("2026-01-01", "b", "B")}
        first = days[("2026-01-01", "a", "")]
        assert (first["n"], first["n_labelled"], first["n_correct"], first["n_rated"], first["sum_latency"]) == (2, 2, 1, 1, 400)
        assert days[("2026-01-02", "a", "")]["n_error"] == 1
        assert sum(rows.latency_counts(db, model_version="a").values()) == 2
    with store.write() as db:
        db.execute("UPDATE predictions SET correct = 1 WHERE correct = 0")
        db.execute("DELETE FROM predictions WHERE model_version = 'b'")
    with store.connect() as db:
        days = {(d["day"], d["model_version"]): d for d in rows.daily(db)}
        assert days[("2026-01-01", "a")]["n_correct"] == 2
        assert ("2026-01-01", "b") not in days
        raw = db.execute("SELECT COUNT(*), SUM(correct) FROM predictions WHERE substr(ts, 1, 10) = '2026-01-01'").fetchone()
        assert raw == (2, 2)


def test_track_writes_one_prediction_and_refuses_bad_fields(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    pid = workbench.track(model_version="m", output="hi", latency_ms=12)
    assert _all(store)[0].id == pid and _all(store)[0].source == "track"
    with pytest.raises(InvalidInput, match="tokens_in"):
        workbench.track(model_version="m", tokens_in=-3)
    with pytest.raises(InvalidInput, match="output: .*unicode"):
        workbench.track(model_version="m", output="bad \ud800")


# ---------------------------------------------------------------------------------------------- imports


def _write(path: Path, lines: list[Any], *, gz: bool = False) -> Path:
    data = b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_jsonl_import_keeps_good_lines_and_reports_bad_ones_by_file_line_and_field(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "log.jsonl", [
        {"model_version": "m", "output": "one"},
        b"{not json",
        {"model_version": "m", "tokens_in": -1},
        b"",
        [1, 2],
        {"model_version": "m", "output": "two"},
    ])
    report = svc.import_log(store, path, "jsonl")
    assert (report.read, report.stored, report.rejected) == (5, 2, 3)
    assert [(e.file, e.line, e.field) for e in report.errors] == [("log.jsonl", 2, ""), ("log.jsonl", 3, "tokens_in"),
                                                                  ("log.jsonl", 5, "")]
    assert [r.output for r in _all(store)] == ["one", "two"]
    assert {r.source for r in _all(store)} == {"import"}


def test_a_gzipped_jsonl_log_is_read_in_batches(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "log.jsonl.gz", [{"model_version": "m", "input": str(i)} for i in range(2500)], gz=True)
    report = svc.import_log(store, path, "jsonl", batch_size=1000)
    assert (report.read, report.stored) == (2500, 2500)
    assert [r.input for r in _all(store)] == [str(i) for i in range(2500)]


def test_csv_import_reads_typed_columns_and_reports_bad_rows(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "model_version,ts,tokens_in,correct,tags,latency_ms,notes\n"
        f"{NOVA_LITE},2026-01-01T00:00:00Z,100,true,\"a, b\",12.5,ignored\n"
        "m,2026-01-01T00:00:00Z,lots,,,,\n"
        ",,,,,,\n"
        "m,,,false,\"[\"\"x\"\"]\",,\n",
        encoding="utf-8",
    )
    report = svc.import_log(store, path, "csv")
    assert (report.read, report.stored, report.rejected) == (4, 2, 2)
    assert [(e.line, e.field) for e in report.errors] == [(3, "tokens_in"), (4, "model_version")]
    assert report.warnings and "notes" in report.warnings[0]
    first, second = _all(store)
    assert (first.tokens_in, first.correct, first.tags, first.latency_ms, first.cost_source) == (100, True, ["a", "b"], 12.5, "inferred")
    assert (second.correct, second.tags) == (False, ["x"])


def _bedrock_record(**overrides: Any) -> dict[str, Any]:
    """A Converse call as Bedrock's model invocation logging writes it (schemaType ModelInvocationLog)."""
    record = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-02-03T04:05:06Z",
        "accountId": "123456789012", "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/app/s"},
        "region": "us-east-1", "requestId": "a1b2c3d4-0000-0000-0000-000000000000", "operation": "Converse",
        "modelId": f"us.{NOVA_LITE}",
        "input": {"inputContentType": "application/json", "inputTokenCount": 35, "cacheReadInputTokenCount": 5,
                  "inputBodyJson": {"system": [{"text": "Be brief."}],
                                    "messages": [{"role": "user", "content": [{"text": "Why is the sky blue?"}]}]}},
        "output": {"outputContentType": "application/json", "outputTokenCount": 12,
                   "outputBodyJson": {"output": {"message": {"role": "assistant", "content": [{"text": "Scattering."}]}},
                                      "stopReason": "end_turn", "metrics": {"latencyMs": 640},
                                      "usage": {"inputTokens": 35, "outputTokens": 12}}},
        "requestMetadata": {"team": "support"},
    }
    return {**record, **overrides}


def test_bedrock_invocation_log_records_become_priced_predictions(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "bedrock.json.gz", [
        _bedrock_record(),
        _bedrock_record(schemaType="Something"),
        _bedrock_record(modelId=""),
        _bedrock_record(input={"inputTokenCount": -4}),
    ], gz=True)
    report = svc.import_log(store, path, "bedrock-invocation-log")
    assert (report.read, report.stored, report.rejected) == (4, 1, 3)
    assert [(e.line, e.field) for e in report.errors] == [(2, "schemaType"), (3, "modelId"),
                                                         (4, "input.inputTokenCount")]  # the log's own field
    (row,) = _all(store)
    assert row.model_version == f"us.{NOVA_LITE}" and row.ts == "2026-02-03T04:05:06.000+00:00"
    assert (row.input, row.output) == ("Be brief.\nWhy is the sky blue?", "Scattering.")
    assert (row.tokens_in, row.tokens_cached, row.tokens_out, row.latency_ms) == (35, 5, 12, 640)
    assert row.cost_source == "inferred" and row.cost_usd == pytest.approx((40 * 0.00006 + 12 * 0.00024) / 1000)
    assert row.tags == {"operation": "Converse", "requestId": "a1b2c3d4-0000-0000-0000-000000000000",
                        "region": "us-east-1", "team": "support"}


@pytest.mark.parametrize(("body", "text"), [
    ({"prompt": "<s>[INST] hi [/INST]", "max_gen_len": 20}, "<s>[INST] hi [/INST]"),
    ({"inputText": "User: hi"}, "User: hi"),
    ({"generation": "Khartoum.", "stop_reason": "stop"}, "Khartoum."),
    ({"content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn"}, "Hello"),
    ({"results": [{"outputText": "A"}, {"outputText": "B"}]}, "A\nB"),
    ([{"outputText": "Hel"}, {"outputText": "lo"}], "Hello"),
    ({"choices": [{"message": {"content": "Yes"}}]}, "Yes"),
    ({"unknown": {"shape": 1}}, '{"unknown":{"shape":1}}'),
    (None, None),
])
def test_body_text_reads_each_model_familys_shape(body: Any, text: str | None) -> None:
    assert body_text(body) == text


def test_an_unknown_format_or_missing_file_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="format 'xml' is not known"):
        svc.import_log(store, tmp_path / "x", "xml")
    with pytest.raises(InvalidInput, match="no such file"):
        svc.import_log(store, tmp_path / "missing.jsonl")


def test_an_s3_prefix_is_read_object_by_object(store: Store, aws: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="logs")
    base = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/02/03/04"
    s3.put_object(Bucket="logs", Key=f"{base}/one.json.gz", Body=gzip.compress(orjson.dumps(_bedrock_record()) + b"\n"))
    s3.put_object(Bucket="logs", Key=f"{base}/two.json.gz", Body=gzip.compress(
        orjson.dumps(_bedrock_record(requestId="r2")) + b"\n" + b"{broken\n"))
    s3.put_object(Bucket="logs", Key="elsewhere/three.json", Body=orjson.dumps(_bedrock_record()))
    s3.put_object(Bucket="logs", Key="AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
                  Body=b"")
    s3.put_object(Bucket="logs", Key=f"{base}/data/big-input.json.gz", Body=gzip.compress(b'{"messages": []}'))
    report = svc.import_log(store, "s3://logs/AWSLogs/", "bedrock-invocation-log")
    assert (report.files, report.read, report.stored, report.rejected) == (2, 3, 2, 1)
    assert "skipped 2 object(s)" in report.warnings[0]
    assert report.errors[0].file == f"s3://logs/{base}/two.json.gz" and report.errors[0].line == 2
    assert sorted(r.tags["requestId"] for r in _all(store)) == ["a1b2c3d4-0000-0000-0000-000000000000", "r2"]  # type: ignore[index]
    with pytest.raises(InvalidInput, match="no objects under this prefix"):
        svc.import_log(store, "s3://logs/nothing-here/", "bedrock-invocation-log")


def test_feedback_naming_an_unknown_prediction_refuses_the_batch(store: Store) -> None:
    from workbench.domain.predictions import FeedbackIn

    (pid,) = svc.ingest(store, [PredictionIn(model_version="m")])
    with pytest.raises(InvalidInput, match=r"feedback\[1\]\.prediction_id: no prediction with id 77"):
        svc.add_feedback(store, [FeedbackIn(prediction_id=pid, rating=5), FeedbackIn(prediction_id=77, rating=1)])
    with store.connect() as db:
        assert rows.feedback_for(db, prediction_id=pid) == []


def test_a_time_far_in_the_future_is_refused_by_track_and_per_import_line(store: Store, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    with pytest.raises(InvalidInput, match="ts: .*in the future"):
        workbench.track(model_version="m", ts="2099-01-01T00:00:00Z")
    soon = (datetime.now(UTC) + MAX_CLOCK_SKEW / 2).isoformat()
    path = _write(tmp_path / "log.jsonl", [{"model_version": "m", "ts": "2099-01-01T00:00:00Z"},
                                           {"model_version": "m", "ts": soon}])
    report = svc.import_log(store, path, "jsonl")
    assert (report.stored, report.rejected) == (1, 1)
    assert (report.errors[0].line, report.errors[0].field) == (1, "ts")
    assert "future" in report.errors[0].message


def test_token_counts_are_integers_not_strings_except_in_csv_cells(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="tokens_in: .*integer"):
        svc.track_one(store, model_version="m", tokens_in="12")
    csv_log = tmp_path / "log.csv"
    csv_log.write_text("model_version,tokens_in,tokens_out\nm,12,3\nm,twelve,3\n")
    report = svc.import_log(store, csv_log, "csv")
    assert (report.stored, report.rejected) == (1, 1) and report.errors[0].field == "tokens_in"
    assert (_all(store)[0].tokens_in, _all(store)[0].tokens_out) == (12, 3)
