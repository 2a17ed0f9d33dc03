"""The OpenAI backend through the real `openai` SDK, over real HTTP, against a local double of the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.doubles.openai_server import API_KEY, OpenAIDouble
from workbench.domain.jobs import BackendName, JobState, LaunchRequest, PollCursor
from workbench.providers.base import BackendError, JobNotFound, MissingCredentials, Throttled
from workbench.providers.openai_ft import OpenAIBackend, suffix_for

TRAIN = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
VALID = b'{"messages": [{"role": "user", "content": "yo"}, {"role": "assistant", "content": "hey"}]}\n'
RESULT_CSV = (
    "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
    "1,1.5,0.1,,\n2,1.2,0.2,1.4,0.3\n3,0.9,0.3,,\n4,0.7,0.4,0.8,0.5\n"
)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIDouble]:
    double = OpenAIDouble().serve()
    yield double
    double.close()


@pytest.fixture
def double(server: OpenAIDouble) -> OpenAIDouble:
    server.reset_calls()
    return server


@pytest.fixture
def backend(double: OpenAIDouble) -> OpenAIBackend:
    return OpenAIBackend(api_key=API_KEY, base_url=double.base_url, max_retries=0, events_page_size=3)


@pytest.fixture
def request_(tmp_path: Path) -> LaunchRequest:
    train = tmp_path / "train.jsonl"
    train.write_bytes(TRAIN)
    valid = tmp_path / "val.jsonl"
    valid.write_bytes(VALID)
    return LaunchRequest(
        job_name="support-bot",
        base_model="gpt-4o-mini-2024-07-18",
        train_file=str(train),
        validation_file=str(valid),
        hyperparameters={"n_epochs": 3, "learning_rate_multiplier": "auto", "seed": 7},
    )


def test_submit_uploads_both_files_and_sends_hyperparameters_under_method(
    backend: OpenAIBackend, double: OpenAIDouble, request_: LaunchRequest
) -> None:
    submitted = backend.submit(request_)

    uploads = double.requests_to("POST", "/v1/files")
    assert [(u.form["purpose"], u.upload) for u in uploads] == [
        ("fine-tune", ("train.jsonl", TRAIN)),
        ("fine-tune", ("val.jsonl", VALID)),
    ]
    (create,) = double.requests_to("POST", "/v1/fine_tuning/jobs")
    assert create.body == {
        "model": "gpt-4o-mini-2024-07-18",
        "training_file": submitted.files["train"],
        "validation_file": submitted.files["validation"],
        "suffix": "support-bot",
        "seed": 7,
        "metadata": {"workbench_job": "support-bot"},
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 3, "learning_rate_multiplier": "auto"}},
        },
    }
    assert "hyperparameters" not in create.body  # deprecated top-level form
    assert submitted.state is JobState.VALIDATING and submitted.provider_status == "validating_files"
    assert submitted.request == create.body
    assert double.jobs[submitted.provider_job_id]["training_file"] == submitted.files["train"]
    assert backend.name is BackendName.OPENAI


def test_preview_is_the_sent_payload_with_placeholder_file_ids(
    backend: OpenAIBackend, double: OpenAIDouble, request_: LaunchRequest
) -> None:
    preview = backend.preview(request_)
    assert double.requests == []  # nothing sent
    submitted = backend.submit(request_)
    (create,) = double.requests_to("POST", "/v1/fine_tuning/jobs")
    assert preview["training_file"] == "<uploaded: train.jsonl>"
    assert preview["validation_file"] == "<uploaded: val.jsonl>"
    placeholders = {submitted.files["train"]: "<uploaded: train.jsonl>", submitted.files["validation"]: "<uploaded: val.jsonl>"}
    assert {k: placeholders.get(v, v) if isinstance(v, str) else v for k, v in create.body.items()} == preview


def test_only_parameters_the_user_set_are_sent(backend: OpenAIBackend, request_: LaunchRequest) -> None:
    bare = request_.model_copy(update={"hyperparameters": {"batch_size": "8", "n_epochs": None}, "validation_file": None})
    payload = backend.preview(bare)
    assert payload["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 8}}}
    assert "seed" not in payload and "validation_file" not in payload


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_epochs": 2.5}, r"hyperparameters.n_epochs=2.5: give a whole number or \"auto\""),
        ({"learning_rate_multiplier": "fast"}, r"learning_rate_multiplier='fast': give a number"),
        ({"warmup_steps": 3}, r"hyperparameters.warmup_steps: OpenAI .* no such setting; use n_epochs"),
        ({"seed": "auto"}, r"hyperparameters.seed='auto': give a whole number$"),
    ],
)
def test_bad_hyperparameters_are_refused_before_upload(
    backend: OpenAIBackend, double: OpenAIDouble, request_: LaunchRequest, params: dict[str, object], match: str
) -> None:
    with pytest.raises(BackendError, match=match):
        backend.submit(request_.model_copy(update={"hyperparameters": params}))
    assert double.requests == []


def test_a_name_that_breaks_the_suffix_pattern_is_sanitised_and_said(backend: OpenAIBackend, request_: LaunchRequest) -> None:
    odd = request_.model_copy(update={"job_name": "Support bot: v2 / " + "x" * 80})
    payload = backend.preview(odd)
    assert payload["suffix"] == "Support-bot-v2-" + "x" * 49
    assert len(payload["suffix"]) == 64
    assert payload["metadata"] == {"workbench_job": odd.job_name}
    (note,) = backend.notes(odd)
    assert "was changed to the OpenAI model suffix" in note and "at most 64" in note
    assert backend.notes(request_) == []
    assert suffix_for(":::") == ("workbench", suffix_for(":::")[1])


def test_submit_of_missing_file_names_it(backend: OpenAIBackend, request_: LaunchRequest, tmp_path: Path) -> None:
    gone = request_.model_copy(update={"train_file": str(tmp_path / "nope.jsonl")})
    with pytest.raises(BackendError, match=r"nope.jsonl: the exported file to upload does not exist"):
        backend.submit(gone)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("validating_files", JobState.VALIDATING),
        ("queued", JobState.QUEUED),
        ("running", JobState.RUNNING),
        ("succeeded", JobState.SUCCEEDED),
        ("failed", JobState.FAILED),
        ("cancelled", JobState.CANCELLED),
        ("paused", JobState.UNKNOWN),
    ],
)
def test_poll_maps_every_status(backend: OpenAIBackend, double: OpenAIDouble, status: str, state: JobState) -> None:
    job = double.add_job(status=status)
    snapshot = backend.poll(job["id"], PollCursor())
    assert snapshot.state is state
    assert snapshot.provider_status == status


def test_poll_reports_failure_output_model_tokens_and_eta(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="running", estimated_finish=1_900_000_000)
    running = backend.poll(job["id"], PollCursor())
    assert running.estimated_finish is not None and running.estimated_finish.year == 2030

    error = {"code": "invalid_training_file", "message": "Line 3 has no assistant message", "param": "training_file"}
    double.set_status(job["id"], "failed", error=error)
    failed = backend.poll(job["id"], running.cursor)
    assert failed.failure_message == "Line 3 has no assistant message (parameter 'training_file')"

    done = double.add_job(status="succeeded", fine_tuned_model="ft:gpt-4o-mini:org:bot:abc", trained_tokens=1234)
    snapshot = backend.poll(done["id"], PollCursor())
    assert (snapshot.output_model, snapshot.trained_tokens) == ("ft:gpt-4o-mini:org:bot:abc", 1234)
    assert snapshot.failure_message is None


def test_events_page_with_a_cursor_oldest_first_and_never_twice(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="running", method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}})
    job["hyperparameters"]["n_epochs"] = 2
    double.add_event(job["id"], "Validating training file")
    for step in (1, 2, 3):
        double.add_metrics(job["id"], step, 2.0 - step / 10, total_steps=8, valid_loss=1.9 if step == 2 else None)
    double.add_event(job["id"], "Low disk", level="warn")

    first = backend.poll(job["id"], PollCursor())  # 6 events over 2 pages of 3
    assert len(double.requests_to("GET", f"/v1/fine_tuning/jobs/{job['id']}/events")) == 2
    created = f"Created fine-tuning job: {job['id']}"
    assert [e.message for e in first.events] == [created, "Validating training file", "Low disk"]
    assert first.events[-1].level == "warning"
    assert [(m.step, m.train_loss, m.val_loss, m.epoch) for m in first.metrics] == [
        (1, 1.9, None, 0.25),
        (2, 1.8, 1.9, 0.5),
        (3, 1.7, None, 0.75),
    ]
    assert first.cursor.last_step == 3 and first.progress == 3 / 8

    for step in range(4, 9):
        double.add_metrics(job["id"], step, 1.0, total_steps=8, valid_loss=0.9, full_valid_loss=0.8 if step == 8 else None)
    double.add_event(job["id"], "Training done")
    second = backend.poll(job["id"], first.cursor)
    assert [m.step for m in second.metrics] == [4, 5, 6, 7, 8]
    assert second.metrics[-1].val_loss == 0.8  # full validation loss wins over the sampled one
    assert second.metrics[-1].epoch == 2.0
    assert [e.message for e in second.events] == ["Training done"]

    third = backend.poll(job["id"], second.cursor)
    assert (third.events, third.metrics) == ((), ())
    assert third.cursor.last_event == second.cursor.last_event
    keys = [e.key for e in (*first.events, *second.events)]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("encoded", [False, True], ids=["plain", "base64"])
def test_result_csv_fills_steps_the_events_missed(backend: OpenAIBackend, double: OpenAIDouble, encoded: bool) -> None:
    job = double.add_job(status="running")
    double.add_metrics(job["id"], 1, 1.5, total_steps=4)
    running = backend.poll(job["id"], PollCursor())
    assert [m.step for m in running.metrics] == [1]
    assert running.metrics[0].epoch is None  # n_epochs still "auto"

    double.add_metrics(job["id"], 3, 0.9, total_steps=4)
    double.attach_result_csv(job["id"], RESULT_CSV, base64_encoded=encoded)
    double.set_status(job["id"], "succeeded", fine_tuned_model="ft:x")
    done = backend.poll(job["id"], running.cursor)
    assert [(m.step, m.train_loss, m.val_loss) for m in done.metrics] == [(2, 1.2, 1.4), (3, 0.9, None), (4, 0.7, 0.8)]
    assert done.progress == 1.0

    again = backend.poll(job["id"], done.cursor)
    assert again.metrics == ()
    assert len(double.requests_to("GET", f"/v1/files/{job['result_files'][0]}/content")) == 1


def test_an_unreadable_result_file_warns_instead_of_crashing(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="succeeded")
    file_id = double.add_file(b"\x00\xffnot a csv", "step_metrics.csv", purpose="fine-tune-results")["id"]
    job["result_files"].append(file_id)
    snapshot = backend.poll(job["id"], PollCursor())
    assert snapshot.state is JobState.SUCCEEDED
    assert any(e.level == "warning" and file_id in e.message for e in snapshot.events)


def test_checkpoints_are_listed_oldest_first(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="succeeded")
    double.add_checkpoint(job["id"], 10, train_loss=1.0)
    double.add_checkpoint(job["id"], 20, train_loss=0.5, full_valid_loss=0.6)
    checkpoints = backend.checkpoints(job["id"])
    assert [(c["step"], c["model"]) for c in checkpoints] == [
        (10, "ft:gpt-4o-mini-2024-07-18:org:ckpt-step-10"),
        (20, "ft:gpt-4o-mini-2024-07-18:org:ckpt-step-20"),
    ]
    assert checkpoints[1]["metrics"]["full_valid_loss"] == 0.6


def test_rate_limit_is_throttled(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job()
    double.fail_next(429)
    with pytest.raises(Throttled, match="rate-limiting this key: Rate limit reached"):
        backend.poll(job["id"], PollCursor())
    assert backend.poll(job["id"], PollCursor()).state is JobState.RUNNING


def test_sdk_retries_absorb_a_short_burst_of_429(double: OpenAIDouble) -> None:
    job = double.add_job()
    patient = OpenAIBackend(api_key=API_KEY, base_url=double.base_url, max_retries=2)
    double.fail_next(429, times=2)
    assert patient.poll(job["id"], PollCursor()).state is JobState.RUNNING


@pytest.mark.parametrize("how", ["told", "wrong key"])
def test_a_refused_key_is_missing_credentials(backend: OpenAIBackend, double: OpenAIDouble, how: str) -> None:
    job = double.add_job()
    if how == "told":
        double.fail_next(401)
    else:
        backend = OpenAIBackend(api_key="sk-wrong", base_url=double.base_url, max_retries=0)
    with pytest.raises(MissingCredentials, match=r"^OPENAI_API_KEY was refused: Incorrect API key provided"):
        backend.poll(job["id"], PollCursor())


def test_a_job_deleted_on_openai_is_job_not_found(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job()
    double.delete_job(job["id"])
    with pytest.raises(JobNotFound, match=rf"{job['id']} was not found"):
        backend.poll(job["id"], PollCursor())
    with pytest.raises(JobNotFound):
        backend.cancel(job["id"])


def test_cancel(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="running")
    backend.cancel(job["id"])
    assert double.requests_to("POST", f"/v1/fine_tuning/jobs/{job['id']}/cancel")
    assert backend.poll(job["id"], PollCursor()).state is JobState.CANCELLED
    with pytest.raises(BackendError, match=r"OpenAI refused the request \(parameter 'id'\): .*already completed"):
        backend.cancel(job["id"])


def test_bad_request_carries_the_provider_message_and_param(backend: OpenAIBackend, request_: LaunchRequest) -> None:
    with pytest.raises(BackendError, match=r"parameter 'model'\): Missing required parameter: 'model'"):
        backend.submit(request_.model_copy(update={"base_model": ""}))


def test_unreachable_api_names_the_base_url(double: OpenAIDouble) -> None:
    dead = OpenAIBackend(api_key=API_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(BackendError, match=r"could not reach the OpenAI API at http://127.0.0.1:9/v1"):
        dead.poll("ftjob-1", PollCursor())


def test_list_and_import_existing_jobs(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    older = double.add_job(status="succeeded", metadata={"workbench_job": "first"}, fine_tuned_model="ft:a")
    newer = double.add_job(status="running", user_provided_suffix="mine")
    listed = backend.list_remote_jobs(limit=2)
    assert [j.provider_job_id for j in listed] == [newer["id"], older["id"]]

    imported = backend.import_job(older["id"])
    assert (imported.name, imported.state, imported.output_model, imported.base_model) == (
        "first",
        JobState.SUCCEEDED,
        "ft:a",
        "gpt-4o-mini-2024-07-18",
    )
    assert backend.import_job(newer["id"]).name == "mine"
    submitted = imported.to_submitted()
    assert submitted.provider_job_id == older["id"] and submitted.files == {"train": older["training_file"]}
    assert submitted.request["method"]["type"] == "supervised"
    with pytest.raises(JobNotFound):
        backend.import_job("ftjob-missing")


def test_from_environment_reads_the_sdk_variables(monkeypatch: pytest.MonkeyPatch, double: OpenAIDouble) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY is not set"):
        OpenAIBackend.from_environment()
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", double.base_url)
    backend = OpenAIBackend.from_environment(max_retries=0)
    assert backend.base_url.rstrip("/") == double.base_url
    assert isinstance(backend.client, openai.OpenAI)
    assert backend.list_remote_jobs(limit=1)


def test_a_cursor_whose_event_vanished_never_repeats_a_step(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="running")
    double.add_metrics(job["id"], 1, 1.5, total_steps=3)
    first = backend.poll(job["id"], PollCursor())
    double.events[job["id"]] = [e for e in double.events[job["id"]] if e["id"] != first.cursor.last_event]
    double.add_metrics(job["id"], 2, 1.0, total_steps=3)
    second = backend.poll(job["id"], first.cursor)
    assert [m.step for m in second.metrics] == [2]
    assert second.cursor.extra["steps"] == [[1, 2]]


def test_a_result_file_openai_no_longer_serves_still_lets_the_job_succeed(
    backend: OpenAIBackend, double: OpenAIDouble
) -> None:
    job = double.add_job(status="succeeded", fine_tuned_model="ft:gone")
    job["result_files"].append("file-missing")
    snapshot = backend.poll(job["id"], PollCursor())
    assert snapshot.state is JobState.SUCCEEDED
    assert snapshot.output_model == "ft:gone"
    assert [e.level for e in snapshot.events if "file-missing" in e.message] == ["warning"]


@pytest.mark.parametrize("content", [b"!!!not-base64!!!", b"c3RlcA=", b"\xff\xfe garbage"])
def test_a_garbled_or_badly_encoded_result_file_warns_and_succeeds(
    backend: OpenAIBackend, double: OpenAIDouble, content: bytes
) -> None:
    job = double.add_job(status="succeeded")
    file_id = double.add_file(content, "step_metrics.csv", purpose="fine-tune-results")["id"]
    job["result_files"].append(file_id)
    snapshot = backend.poll(job["id"], PollCursor())
    assert snapshot.state is JobState.SUCCEEDED
    assert any(e.level == "warning" and file_id in e.message for e in snapshot.events)


def test_bad_metric_rows_are_skipped_with_one_warning_per_poll(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="running")
    double.add_metrics(job["id"], 1, 1.5, total_steps=8)
    for step in (-1, 2.5, "inf", "nan", 2**53 + 2, None, "abc"):
        double.add_event(job["id"], "Step ?", type="metrics", data={"step": step, "train_loss": 1.0})
    for loss in ("inf", "nan", -0.5):
        double.add_event(job["id"], "Step 5", type="metrics", data={"step": 5, "train_loss": loss})
    double.add_event(job["id"], "Step 6", type="metrics", data={"step": 6, "train_loss": 1.0, "total_steps": "x"})
    snapshot = backend.poll(job["id"], PollCursor())
    assert [m.step for m in snapshot.metrics] == [1, 6]
    warnings = [e for e in snapshot.events if e.level == "warning"]
    assert len(warnings) == 1 and warnings[0].message.startswith("10 metrics rows")

    again = backend.poll(job["id"], snapshot.cursor)
    assert (again.events, again.metrics) == ((), ())

    csv_text = "step,train_loss,valid_loss\n7,0.5,\n-3,0.4,\n8.5,0.3,\n,0.2,\n9,inf,\n10,0.1,-1\n11,0.1,0.2\n"
    double.attach_result_csv(job["id"], csv_text)
    double.set_status(job["id"], "succeeded")
    done = backend.poll(job["id"], again.cursor)
    assert done.state is JobState.SUCCEEDED
    assert [m.step for m in done.metrics] == [7, 11]
    warnings = [e for e in done.events if e.level == "warning"]
    assert len(warnings) == 1 and warnings[0].message.startswith("5 metrics rows")


def test_malformed_event_fields_are_tolerated(backend: OpenAIBackend, double: OpenAIDouble) -> None:
    job = double.add_job(status="running", estimated_finish=10**20)
    odd = double.add_event(job["id"], "placeholder")
    odd.update(created_at=10**20, message=None, level=None)
    snapshot = backend.poll(job["id"], PollCursor())
    assert snapshot.state is JobState.RUNNING
    assert snapshot.estimated_finish is None
    found = next(e for e in snapshot.events if e.key == odd["id"])
    assert found.message == "" and found.level == "info"
