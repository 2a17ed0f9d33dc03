"""Launch and watch jobs end to end: the real openai SDK over HTTP to the local double, real SQLite, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import orjson
import pytest

from tests.doubles.openai_server import API_KEY, backends
from tests.helpers import chat
from workbench.domain.jobs import BackendName, JobState
from workbench.errors import InvalidInput
from workbench.providers.openai_ft import OpenAIBackend
from workbench.services import importing, jobs, watcher
from workbench.services.models import list_models
from workbench.store import Store
from workbench.store import jobs as job_rows

TODAY = date(2026, 11, 30)


def form(**kw) -> jobs.LaunchForm:
    base = {"backend": BackendName.OPENAI, "dataset": "support", "base_model": "gpt-4o-mini-2024-07-18",
            "name": "parcels-1", "params": {"n_epochs": "2"}}
    return jobs.LaunchForm(**{**base, **kw})


def test_launch_freezes_exports_validates_and_submits_the_checked_file(support, double):
    job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
    assert job.state is JobState.VALIDATING and job.provider_job_id and job.version == "parcels-1"
    uploads = double.requests_to("POST", "/v1/files")
    assert len(uploads) == 2  # train and validation
    assert uploads[0].upload is not None
    sent = [orjson.loads(line) for line in uploads[0].upload[1].splitlines()]
    assert len(sent) == 30 and sent[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    body = double.requests_to("POST", "/v1/fine_tuning/jobs")[0].body
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert job.request == {k: v for k, v in body.items()}
    assert job.estimate_usd and job.estimate_usd > 0


def test_a_refused_launch_leaves_no_job_and_says_why(support, double):
    with pytest.raises(InvalidInput, match="launch refused: .*above the budget"):
        jobs.launch(support, form(budget_usd=0.000001), backends=backends(double), today=TODAY)
    assert jobs.list_jobs(support) == [] and double.requests_to("POST", "/v1/files") == []


def test_a_provider_refusal_is_recorded_as_failed(support, double):
    double.fail_next(400)
    with pytest.raises(Exception):  # noqa: B017 - whichever BackendError the 400 becomes
        jobs.launch(support, form(), backends=backends(double), today=TODAY)
    [job] = jobs.list_jobs(support)
    assert job.state is JobState.FAILED and job.failure_message


def test_watcher_follows_a_job_to_success_and_registers_the_model(support, double):
    job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
    remote = job.provider_job_id
    assert remote
    double.set_status(remote, "running")
    for step in range(1, 6):
        double.add_metrics(remote, step, 2.0 / step, total_steps=10, full_valid_loss=2.2 / step if step % 2 else None)
    first = watcher.poll_round(support, backends=backends(double))
    assert first.polled == 1 and first.changed == ["parcels-1: validating -> running"]
    detail = jobs.show_job(support, job.id)
    assert [m.step for m in detail.metrics] == [1, 2, 3, 4, 5]
    # Not due yet: a second round right away polls nothing and writes nothing twice.
    assert watcher.poll_round(support, backends=backends(double)).polled == 0
    _due_now(support, job.id)
    for step in range(6, 11):
        double.add_metrics(remote, step, 1.0 / step, total_steps=10)
    double.set_status(remote, "succeeded", fine_tuned_model="ft:gpt-4o-mini:acme:parcels-1:abc", trained_tokens=1234)
    last = watcher.poll_round(support, backends=backends(double))
    assert last.changed == ["parcels-1: running -> succeeded"]
    detail = jobs.show_job(support, job.id)
    assert detail.job.state is JobState.SUCCEEDED and detail.job.output_model == "ft:gpt-4o-mini:acme:parcels-1:abc"
    assert [m.step for m in detail.metrics] == list(range(1, 11))
    assert any("running -> succeeded" in e.message for e in detail.events)
    [model] = list_models(support)
    assert model.model_id == "ft:gpt-4o-mini:acme:parcels-1:abc" and model.metrics["final_train_loss"] == pytest.approx(0.1)
    # Final: never polled again.
    _due_now(support, job.id)
    assert watcher.poll_round(support, backends=backends(double)).polled == 0


def _due_now(store: Store, job_id: int) -> None:
    with store.write() as db:
        job_rows.update_job(db, job_id, next_poll_at=None)


def test_throttling_backs_off_and_loses_nothing(support, double):
    job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
    double.fail_next(429, times=5)
    result = watcher.poll_round(support, backends=backends(double))
    assert result.errors and "parcels-1" in result.errors[0]
    row = jobs.get_job(support, job.id)
    assert row.poll_failures == 1 and row.next_poll_at and row.state is JobState.VALIDATING
    assert any("retrying in" in e.message for e in jobs.show_job(support, job.id).events)


def test_a_job_deleted_on_the_provider_is_marked_unknown(support, double):
    job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
    double.delete_job(str(job.provider_job_id))
    watcher.poll_round(support, backends=backends(double))
    row = jobs.get_job(support, job.id)
    assert row.state is JobState.UNKNOWN and "gone" in (row.failure_message or "")


def test_cancel_and_retry_with_the_same_settings(support, double):
    job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
    jobs.cancel_job(support, job.id, backends=backends(double))
    watcher.poll_round(support, backends=backends(double))
    assert jobs.get_job(support, job.id).state is JobState.CANCELLED
    with pytest.raises(InvalidInput, match="only a queued, validating or running job can be cancelled"):
        jobs.cancel_job(support, job.id, backends=backends(double))
    again = jobs.retry_job(support, job.id, backends=backends(double))
    assert again.name == "parcels-1-retry1" and again.retry_of == job.id and again.version == job.version
    assert again.hyperparameters == job.hyperparameters


def test_missing_credentials_name_the_variable(support, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(InvalidInput, match="OPENAI_API_KEY"):
        jobs.launch(support, form(), today=TODAY)


def _watch_process(db: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", "--db", str(db), "jobs", "watch", "--interval", "0.2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def test_two_watchers_then_kill_9_and_restart_pick_up_where_they_were(support, double):
    job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
    remote = str(job.provider_job_id)
    double.set_status(remote, "running")
    env = {**os.environ, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": double.base_url}
    # Local polling interval for the test: every due job at once.
    first, second = _watch_process(support.path, env), _watch_process(support.path, env)
    try:
        for step in range(1, 21):
            double.add_metrics(remote, step, 3.0 / step, total_steps=40)
            if step == 10:
                first.send_signal(signal.SIGKILL)
            time.sleep(0.05)
        _wait_for(lambda: _steps(support, job.id) >= 1, 20)
        _due_now(support, job.id)
        second.send_signal(signal.SIGKILL)
        second.wait(10)
        third = _watch_process(support.path, env)
        try:
            # The killed watchers' leases run out (LEASE_S); make the job due and lease-free as time would.
            with support.write() as db:
                db.execute("UPDATE jobs SET lease_until = NULL, next_poll_at = NULL WHERE id = ?", [job.id])
            double.set_status(remote, "succeeded", fine_tuned_model="ft:done")
            _wait_for(lambda: jobs.get_job(support, job.id).state is JobState.SUCCEEDED, 30)
        finally:
            third.send_signal(signal.SIGTERM)
            third.wait(10)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    metrics = jobs.show_job(support, job.id).metrics
    assert [m.step for m in metrics] == list(range(1, 21))  # every step once, none twice, none lost


def _steps(store: Store, job_id: int) -> int:
    return len(jobs.show_job(store, job_id).metrics)


def _wait_for(check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


# --- faults found by attacking the feature --------------------------------------------------------------------


def test_a_bad_answer_for_one_job_never_stops_the_round(support, double):
    bad = jobs.launch(support, form(name="bad-one"), backends=backends(double), today=TODAY)
    good = jobs.launch(support, form(name="good-one"), backends=backends(double), today=TODAY)

    class Broken(OpenAIBackend):
        def poll(self, provider_job_id, cursor):
            if provider_job_id == bad.provider_job_id:
                raise ValueError("year 318857 is out of range")
            return super().poll(provider_job_id, cursor)

    double.set_status(str(good.provider_job_id), "running")
    result = watcher.poll_round(support, backends=lambda _n: Broken(api_key=API_KEY, base_url=double.base_url, max_retries=0))
    assert result.polled == 2 and any("bad-one" in e for e in result.errors)
    assert jobs.get_job(support, good.id).state is JobState.RUNNING
    row = jobs.get_job(support, bad.id)
    assert row.poll_failures == 1 and row.state.active
    assert any("unexpected answer (ValueError" in e.message for e in jobs.show_job(support, bad.id).events)


def test_two_failure_streaks_each_leave_their_event(support, double):
    job = jobs.launch(support, form(), backends=backends(double), today=TODAY)
    for _ in range(2):
        double.fail_next(429, times=1)
        watcher.poll_round(support, backends=backends(double))
        _due_now(support, job.id)
        watcher.poll_round(support, backends=backends(double))  # a good poll ends the streak
        _due_now(support, job.id)
        time.sleep(1.1)  # event keys carry the time to the second
    failures = [e for e in jobs.show_job(support, job.id).events if "poll failed" in e.message]
    assert len(failures) == 2


def test_an_unexpected_submit_failure_is_recorded_and_retryable(support, double):
    class Garbled(OpenAIBackend):
        def submit(self, request):
            raise AttributeError("'str' object has no attribute 'id'")

    with pytest.raises(InvalidInput, match="recorded as failed: unexpected answer from openai"):
        jobs.launch(support, form(), backends=lambda _n: Garbled(api_key=API_KEY, base_url=double.base_url), today=TODAY)
    [row] = jobs.list_jobs(support)
    assert row.state is JobState.FAILED and "AttributeError" in (row.failure_message or "")
    assert jobs.retry_job(support, row.id, backends=backends(double)).state is JobState.VALIDATING


def test_a_launch_that_died_before_submitting_is_failed_by_the_watcher_and_cancellable(support, double):
    from datetime import UTC, datetime, timedelta

    with support.write() as db:
        stuck = job_rows.insert_job(db, name="stuck", backend="openai", base_model="m", state="queued")
        other = job_rows.insert_job(db, name="stuck-2", backend="openai", base_model="m", state="queued")
    assert jobs.cancel_job(support, other.id).state is JobState.CANCELLED
    later = datetime.now(UTC) + timedelta(hours=1)
    result = watcher.poll_round(support, backends=backends(double), now=lambda: later)
    assert "stuck: queued -> failed (launch never finished)" in result.changed
    assert jobs.get_job(support, stuck.id).state is JobState.FAILED


def test_a_taken_or_numeric_name_is_refused_before_anything_is_frozen(support, double):
    from workbench.services.versions import list_versions

    jobs.launch(support, form(), backends=backends(double), today=TODAY)
    before = len(list_versions(support, "support"))
    with pytest.raises(InvalidInput, match="a job named 'parcels-1' already exists"):
        jobs.launch(support, form(), backends=backends(double), today=TODAY)
    with pytest.raises(InvalidInput, match="all digits"):
        jobs.launch(support, form(name="2"), backends=backends(double), today=TODAY)
    assert len(list_versions(support, "support")) == before


def test_retry_refuses_when_its_dataset_was_deleted_and_replaced(support, double, write_jsonl):
    from workbench.services.datasets import delete_dataset

    double.fail_next(400)
    with pytest.raises(Exception):  # noqa: B017
        jobs.launch(support, form(), backends=backends(double), today=TODAY)
    [failed] = jobs.list_jobs(support)
    delete_dataset(support, "support")
    importing.import_path(support, write_jsonl([chat(f"other {i}", f"x {i}") for i in range(20)], "b.jsonl"), "support")
    with pytest.raises(InvalidInput, match="has since been deleted|which was deleted"):
        jobs.retry_job(support, failed.id, backends=backends(double))


def test_a_status_we_do_not_know_is_asked_again_but_a_gone_job_is_not(support, double):
    weird = jobs.launch(support, form(name="weird"), backends=backends(double), today=TODAY)
    gone = jobs.launch(support, form(name="gone"), backends=backends(double), today=TODAY)
    double.set_status(str(weird.provider_job_id), "paused_for_review")
    double.delete_job(str(gone.provider_job_id))
    watcher.poll_round(support, backends=backends(double))
    assert jobs.get_job(support, weird.id).state is JobState.UNKNOWN
    assert jobs.get_job(support, weird.id).next_poll_at is not None
    assert jobs.get_job(support, gone.id).next_poll_at is None
    double.set_status(str(weird.provider_job_id), "running")
    with support.write() as db:  # its slow re-poll comes due
        job_rows.update_job(db, weird.id, next_poll_at="2000-01-01T00:00:00+00:00")
    watcher.poll_round(support, backends=backends(double))
    assert jobs.get_job(support, weird.id).state is JobState.RUNNING
