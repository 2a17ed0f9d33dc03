"""Log import under hostile input: odd record shapes, broken gzip, huge lines, bad encodings, re-imports."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.domain.invocation_logs import prediction_fields
from workbench.errors import Conflict, InvalidInput
from workbench.services import predictions as svc
from workbench.store import Store
from workbench.store import predictions as rows

BEDROCK = "bedrock-invocation-log"


def _all(store: Store) -> list[rows.PredictionRow]:
    with store.connect() as db:
        return list(reversed(rows.page(db, limit=100_000)))


def _record(**overrides: Any) -> dict[str, Any]:
    return {"schemaType": "ModelInvocationLog", "timestamp": "2026-11-01T00:00:00Z", "modelId": "x", **overrides}


def _jsonl(path: Path, values: list[Any]) -> Path:
    path.write_bytes(b"\n".join(v if isinstance(v, bytes) else orjson.dumps(v) for v in values) + b"\n")
    return path


@pytest.mark.parametrize("output", [
    {"outputBodyJson": {"output": {"message": "str"}}},
    {"outputBodyJson": {"delta": {"text": 5}}},
    {"outputBodyJson": {"messages": 5}},
    {"outputBodyJson": {"output": {"message": {"content": 7}}}},
])
def test_badly_shaped_bedrock_bodies_never_crash_the_reader(output: dict[str, Any]) -> None:
    fields = prediction_fields(_record(output=output))
    assert fields["model_version"] == "x" and (fields.get("output") is None or isinstance(fields["output"], str))


def test_a_record_the_reader_cannot_handle_costs_that_record_only(store: Store, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = svc.invocation_logs.read_record

    def flaky(record: Any) -> Any:
        if record.get("modelId") == "boom":
            raise AttributeError("'str' object has no attribute 'get'")
        return real(record)

    monkeypatch.setattr(svc.invocation_logs, "read_record", flaky)
    path = _jsonl(tmp_path / "b.jsonl", [_record(), _record(modelId="boom"), _record()])
    report = svc.import_log(store, path, BEDROCK)
    assert (report.read, report.stored, report.rejected) == (3, 2, 1)
    assert report.errors[0].line == 2 and "AttributeError" in report.errors[0].message


def test_a_bedrock_record_without_a_timestamp_is_a_line_error(store: Store, tmp_path: Path) -> None:
    undated = _record()
    del undated["timestamp"]
    report = svc.import_log(store, _jsonl(tmp_path / "b.jsonl", [undated, _record()]), BEDROCK)
    assert (report.stored, report.rejected) == (1, 1)
    assert (report.errors[0].line, report.errors[0].field) == (1, "timestamp")


def _truncated_gzip(path: Path, lines: int) -> Path:
    whole = gzip.compress(b"".join(orjson.dumps({"model_version": "m", "input": str(i) * 50}) + b"\n"
                                   for i in range(lines)))
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


def test_a_truncated_gzip_is_reported_with_counts_and_the_cli_says_not_ok(store: Store, tmp_path: Path) -> None:
    path = _truncated_gzip(tmp_path / "log.jsonl.gz", 5000)
    report = svc.import_log(store, path, "jsonl")
    assert report.stored == report.read > 0 and report.rejected == 0
    (broken,) = report.incomplete
    assert broken.file == "log.jsonl.gz" and broken.line == report.read + 1 and "truncated" in broken.message
    result = CliRunner().invoke(main, ["--db", str(store.path), "predictions", "import", str(path), "--force", "--json"])
    payload = orjson.loads(result.output)
    assert result.exit_code == 1 and payload["ok"] is False and f"line {broken.line}" in payload["error"]
    assert payload["stored"] == report.stored and payload["incomplete"][0]["line"] == broken.line


def test_a_second_import_of_the_same_file_is_refused_unless_forced(store: Store, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "log.jsonl", [{"model_version": "m", "input": "a"}, {"model_version": "m", "input": "b"}])
    assert svc.import_log(store, path).stored == 2
    with pytest.raises(Conflict, match="already imported.*--force"):
        svc.import_log(store, path)
    copy = tmp_path / "renamed.jsonl"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(Conflict):
        svc.import_log(store, copy)  # the content decides, not the name
    assert len(_all(store)) == 2
    assert svc.import_log(store, path, force=True).stored == 2 and len(_all(store)) == 4
    result = CliRunner().invoke(main, ["--db", str(store.path), "predictions", "import", str(path), "--json"])
    assert result.exit_code != 0 and "--force" in orjson.loads(result.output)["error"]


def test_an_s3_object_imported_before_is_skipped(store: Store, aws: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="p/one.jsonl", Body=orjson.dumps({"model_version": "m"}) + b"\n")
    assert svc.import_log(store, "s3://logs/p/").stored == 1
    s3.put_object(Bucket="logs", Key="p/two.jsonl", Body=orjson.dumps({"model_version": "m"}) + b"\n")
    again = svc.import_log(store, "s3://logs/p/")
    assert (again.files, again.stored) == (1, 1) and "imported before" in again.warnings[-1]
    assert len(_all(store)) == 2


def test_a_huge_line_is_skipped_quickly_and_the_next_line_kept(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as out:
        out.write(b"\0" * (32 * 1024 * 1024))
        out.write(b"\n" + orjson.dumps({"model_version": "m", "input": "after"}) + b"\n")
    started = time.monotonic()
    report = svc.import_log(store, path)
    assert time.monotonic() - started < 5
    assert (report.read, report.stored, report.rejected) == (2, 1, 1)
    assert report.errors[0].line == 1 and "longer than" in report.errors[0].message
    assert [r.input for r in _all(store)] == ["after"]


def test_line_splitting_is_linear_and_lines_survive_chunk_boundaries() -> None:
    import io

    lines = [b"x" * n for n in (0, 1, 65535, 65536, 65537, 200_000, 3)]
    stream = io.BytesIO(b"\n".join(lines))
    read = list(svc._lines(stream, max_bytes=100_000))
    assert [(line.number, len(line.text or "")) for line in read if line.text is not None] == [
        (1, 1), (2, 2), (3, 65536), (4, 65537), (5, 65538), (7, 4)]
    assert read[5].number == 6 and "longer than 100,000 bytes" in (read[5].problem or "")


def test_invalid_utf8_is_a_line_error_in_jsonl_and_csv(store: Store, tmp_path: Path) -> None:
    jsonl = tmp_path / "latin.jsonl"
    jsonl.write_bytes(b'{"model_version": "m", "input": "h\xe9llo"}\n{"model_version": "m", "input": "ok"}\n')
    report = svc.import_log(store, jsonl)
    assert (report.stored, report.rejected) == (1, 1) and report.errors[0].line == 1
    assert "UTF-8" in report.errors[0].message
    csv_path = tmp_path / "latin.csv"
    csv_path.write_bytes(b"model_version,input\nm,h\xe9llo\nm,fine\n")
    report = svc.import_log(store, csv_path, "csv")
    assert (report.stored, report.rejected) == (1, 1) and report.errors[0].line == 2
    assert [r.input for r in _all(store)] == ["ok", "fine"]


def test_an_unclosed_csv_quote_is_reported(store: Store, tmp_path: Path) -> None:
    middle = tmp_path / "middle.csv"
    middle.write_text('model_version,input,output\nm,"open,x\nm,b,c\nm,"d",e\n', encoding="utf-8")
    report = svc.import_log(store, middle, "csv")
    assert report.rejected >= 1 and report.errors[0].line == 2 and "quote" in report.errors[0].message
    at_end = tmp_path / "end.csv"
    at_end.write_text('model_version,input\nm,fine\nm,"never closed\nm,lost\n', encoding="utf-8")
    report = svc.import_log(store, at_end, "csv")
    assert report.stored == 1 and report.rejected == 1
    assert report.errors[0].line == 3 and "never closed" in report.errors[0].message


def test_a_directory_is_named_as_one(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is a directory"):
        svc.import_log(store, tmp_path)


def test_a_file_none_of_whose_lines_was_stored_can_be_imported_again(store: Store, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", [{"model_version": ""}])
    assert svc.import_log(store, path).stored == 0
    assert svc.import_log(store, path).rejected == 1  # not refused as a re-import
