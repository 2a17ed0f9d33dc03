"""`workbench tokens`, `workbench predictions import` and `workbench api` as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.api_server import call, free_port
from workbench.cli import main
from workbench.services import api_tokens
from workbench.store import Store

ROOT = Path(__file__).resolve().parent.parent


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--db", str(db), *args, "--json"])
    assert (result.exit_code == 0) == ok, result.output
    assert "Traceback" not in result.output
    return orjson.loads(result.output)  # exactly one JSON object


def test_a_token_is_shown_once_then_listed_without_its_text_and_revoked(store: Store) -> None:
    made = run(store.path, "tokens", "create", "--name", "billing-service")
    assert made["ok"] and made["token"].startswith("wb_") and made["prefix"] == made["token"][:10]
    assert api_tokens.verify(store, made["token"]) is not None
    listed = run(store.path, "tokens", "list")["tokens"]
    assert [t["name"] for t in listed] == ["billing-service"]
    assert made["token"] not in orjson.dumps(listed).decode()
    again = run(store.path, "tokens", "create", "--name", "billing-service", ok=False)
    assert "already exists" in again["error"]
    assert run(store.path, "tokens", "revoke", "billing-service")["ok"]
    assert api_tokens.verify(store, made["token"]) is None
    assert run(store.path, "tokens", "list", "--active")["tokens"] == []
    missing = run(store.path, "tokens", "revoke", "billing-service", ok=False)
    assert "no active token named 'billing-service'" in missing["error"]
    assert run(store.path, "tokens", "create", "--name", "billing-service")["ok"]  # the name is free again


@pytest.mark.parametrize("name", ["", " ", "-starts-with-dash", "x" * 65, "semi;colon"])
def test_a_bad_token_name_is_refused(store: Store, name: str) -> None:
    assert "token name" in run(store.path, "tokens", "create", "--name", name, ok=False)["error"]


def test_import_reports_counts_and_each_bad_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    path.write_text('{"model_version": "m"}\n{"model_version": "m", "rating": 9}\n{"model_version": "m"}\n')
    report = run(store.path, "predictions", "import", str(path))
    assert (report["read"], report["stored"], report["rejected"]) == (3, 2, 1)
    assert report["errors"] == [{"file": "preds.jsonl", "line": 2, "field": "rating",
                                 "message": "Input should be less than or equal to 5"}]


def test_import_with_nothing_stored_fails_and_says_why(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"nope": 1}\n')
    report = run(store.path, "predictions", "import", str(path), "--format", "bedrock-invocation-log", ok=False)
    assert "no line of" in report["error"] and report["errors"][0]["field"] == "schemaType"
    result = CliRunner().invoke(main, ["--db", str(store.path), "predictions", "import", str(path)])
    assert result.exit_code == 1 and "bad.jsonl:1 nope" in result.output


def test_import_of_a_missing_file_is_one_json_error(store: Store, tmp_path: Path) -> None:
    assert "no such file" in run(store.path, "predictions", "import", str(tmp_path / "none.jsonl"), ok=False)["error"]


def test_workbench_api_serves_on_loopback_and_stops_on_sigterm(store: Store) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_HOST"}
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "--db", str(store.path), "api", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = call("GET", f"http://127.0.0.1:{port}/v1/health")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
        assert status == 200 and body["ok"]
        assert call("POST", f"http://127.0.0.1:{port}/v1/predictions", {"model_version": "m"})[0] == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status says what stopped it.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err
    assert f"http://127.0.0.1:{port}" in err
