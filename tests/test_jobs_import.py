"""Importing OpenAI jobs started elsewhere: the real openai SDK over HTTP to the local double, real SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.doubles.openai_server import API_KEY, OpenAIDouble
from tests.helpers import WriteJsonl, chat
from workbench.domain.jobs import BackendName, JobState
from workbench.errors import InvalidInput
from workbench.providers.openai_ft import OpenAIBackend
from workbench.services import importing, jobs, splits, watcher
from workbench.services.compare import compare_jobs
from workbench.services.job_import import import_jobs
from workbench.services.models import list_models
from workbench.store import Store

TODAY = date(2026, 11, 30)


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OpenAIDouble]:
    """A fresh double per test: listing returns every job it holds, so tests must not see each other's."""
    server = OpenAIDouble().serve()
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    yield server
    server.close()


def backends(double: OpenAIDouble) -> jobs.BackendFactory:
    def make(name: BackendName) -> OpenAIBackend:
        assert name is BackendName.OPENAI
        return OpenAIBackend(api_key=API_KEY, base_url=double.base_url, max_retries=0)

    return make


def _method(n_epochs: int) -> dict[str, Any]:
    return {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": n_epochs}}}


def test_a_remote_job_is_adopted_then_watched_to_success(store: Store, double: OpenAIDouble):
    remote = double.add_job(status="running", suffix="triage", method=_method(3))
    found = import_jobs(store, "openai", job=remote["id"], backends=backends(double))
    [job] = found.imported
    assert (job.name, job.provider_job_id, job.state, job.provider_status) == ("triage", remote["id"], JobState.RUNNING, "running")
    assert job.base_model == "gpt-4o-mini-2024-07-18" and job.hyperparameters["n_epochs"] == 3
    assert job.dataset_name is None and job.files == {"train": remote["training_file"]}

    for step in range(1, 4):
        double.add_metrics(remote["id"], step, 1.0 / step, total_steps=3, full_valid_loss=1.2 / step)
    double.set_status(remote["id"], "succeeded", fine_tuned_model="ft:gpt-4o-mini:acme:triage:x1", trained_tokens=99)
    result = watcher.poll_round(store, backends=backends(double))
    assert result.changed == ["triage: running -> succeeded"]
    detail = jobs.show_job(store, job.id)
    assert detail.job.output_model == "ft:gpt-4o-mini:acme:triage:x1"
    assert [m.step for m in detail.metrics] == [1, 2, 3]
    assert [m.model_id for m in list_models(store)] == ["ft:gpt-4o-mini:acme:triage:x1"]


def test_importing_twice_adds_nothing_and_says_so(store: Store, double: OpenAIDouble):
    remote = double.add_job(status="running")
    first = import_jobs(store, "openai", job=remote["id"], backends=backends(double))
    again = import_jobs(store, "openai", job=remote["id"], backends=backends(double))
    assert len(first.imported) == 1 and again.imported == []
    assert again.skipped == [f"{remote['id']} is already in the ledger as job {first.imported[0].id} "
                             f"{first.imported[0].name!r}; nothing imported"]
    assert len(jobs.list_jobs(store)) == 1


def test_a_job_we_launched_is_recognised_by_its_provider_id(store: Store, double: OpenAIDouble, write_jsonl: WriteJsonl):
    records = [chat(f"Q{i}", f"A{i}", system="Be brief.") for i in range(20)]
    importing.import_path(store, write_jsonl(records), "qa")
    splits.split_dataset(store, "qa", (0.8, 0.2, 0.0), seed=1)
    ours = jobs.launch(store, jobs.LaunchForm(backend=BackendName.OPENAI, dataset="qa", base_model="gpt-4o-mini-2024-07-18",
                                              name="ours"), backends=backends(double), today=TODAY)
    elsewhere = double.add_job(status="succeeded", fine_tuned_model="ft:gpt-4o-mini:acme::y2", method=_method(2))
    double.add_metrics(elsewhere["id"], 1, 0.8, total_steps=1, full_valid_loss=0.7)
    found = import_jobs(store, "openai", limit=10, backends=backends(double))
    assert [j.provider_job_id for j in found.imported] == [elsewhere["id"]]
    assert found.skipped == [f"{ours.provider_job_id} is already in the ledger as job {ours.id} 'ours'; nothing imported"]
    # A finished job is polled once on import (the watcher never polls it): metrics, model, comparable.
    adopted = found.imported[0]
    assert adopted.name == elsewhere["id"] and adopted.state is JobState.SUCCEEDED
    assert [m.val_loss for m in jobs.show_job(store, adopted.id).metrics] == [pytest.approx(0.7)]
    assert [m.model_id for m in list_models(store)] == ["ft:gpt-4o-mini:acme::y2"]
    assert compare_jobs(store, [ours.id, adopted.id]).best == adopted.name


def test_a_name_already_used_falls_back_to_the_job_id(store: Store, double: OpenAIDouble):
    first = double.add_job(status="running", suffix="bot")
    second = double.add_job(status="running", suffix="bot")
    found = import_jobs(store, "openai", backends=backends(double))
    # Listed newest first: the newer job takes the name, the older one its id.
    assert {j.provider_job_id: j.name for j in found.imported} == {second["id"]: "bot", first["id"]: first["id"]}


def test_unknown_job_and_other_providers_are_refused_clearly(store: Store, double: OpenAIDouble):
    with pytest.raises(InvalidInput, match="ftjob-nope was not found"):
        import_jobs(store, "openai", job="ftjob-nope", backends=backends(double))
    with pytest.raises(InvalidInput, match="importing jobs works for openai only, not bedrock"):
        import_jobs(store, "bedrock", backends=backends(double))
    assert jobs.list_jobs(store) == []


def test_cli_import(store: Store, double: OpenAIDouble):
    remote = double.add_job(status="running", suffix="cli-bot")
    env = {**os.environ}

    def cli(*args: str) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(store.path), "jobs", "import", *args,
                               "--json"], capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr + proc.stdout
        return orjson.loads(proc.stdout)

    first = cli("--provider", "openai", "--job", remote["id"])
    assert [j["name"] for j in first["imported"]] == ["cli-bot"] and first["imported"][0]["state"] == "running"
    again = cli("--limit", "5")
    assert again["imported"] == [] and len(again["skipped"]) == 1


def test_a_finished_job_whose_result_file_is_gone_is_imported_and_read(store: Store, double: OpenAIDouble):
    remote = double.add_job(status="succeeded", fine_tuned_model="ft:gpt-4o-mini:acme::gone", method=_method(1))
    remote["result_files"].append("file-deleted")
    double.add_metrics(remote["id"], 1, 0.5, total_steps=1)
    found = import_jobs(store, "openai", job=remote["id"], backends=backends(double))
    assert found.errors == []
    [job] = found.imported
    assert job.state is JobState.SUCCEEDED and [m.step for m in jobs.show_job(store, job.id).metrics] == [1]
    assert [m.model_id for m in list_models(store)] == ["ft:gpt-4o-mini:acme::gone"]


def test_a_failed_first_poll_is_retried_by_the_next_import(store: Store, double: OpenAIDouble):
    remote = double.add_job(status="succeeded", fine_tuned_model="ft:gpt-4o-mini:acme::later", method=_method(1))
    double.add_metrics(remote["id"], 1, 0.5, total_steps=1)

    class Flaky(OpenAIBackend):
        def poll(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("connection reset")

    first = import_jobs(store, "openai", job=remote["id"],
                        backends=lambda _: Flaky(api_key=API_KEY, base_url=double.base_url, max_retries=0))
    [orphan] = first.imported
    assert first.errors and "again" in first.errors[0] and "RuntimeError" in first.errors[0]
    again = import_jobs(store, "openai", job=remote["id"], backends=backends(double))
    assert again.skipped == [] and again.errors == []
    assert [j.id for j in again.imported] == [orphan.id]
    assert [m.step for m in jobs.show_job(store, orphan.id).metrics] == [1]
    assert [m.model_id for m in list_models(store)] == ["ft:gpt-4o-mini:acme::later"]
    third = import_jobs(store, "openai", job=remote["id"], backends=backends(double))
    assert third.imported == [] and len(third.skipped) == 1
    assert len(jobs.list_jobs(store)) == 1


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_job_id_is_refused_plainly(store: Store, double: OpenAIDouble, blank: str):
    with pytest.raises(InvalidInput, match="--job is blank"):
        import_jobs(store, "openai", job=blank, backends=backends(double))
