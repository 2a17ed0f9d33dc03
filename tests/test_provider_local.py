"""LocalBackend: real detached trainer processes, polled through their run folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_model, conversations, write_jsonl
from workbench.domain.jobs import JobSnapshot, JobState, LaunchRequest, PollCursor
from workbench.providers.base import BackendError, JobNotFound
from workbench.providers.local import LocalBackend, map_status, read_new_lines

FAST = {"learning_rate": 0.01, "batch_size": 4, "lora_r": 8, "lora_dropout": 0, "target_modules": "all-linear"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("peft")
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    # One thread: a tiny model gains nothing from more, and OpenMP spinning on a busy machine slows it badly.
    return LocalBackend(tmp_path / "runs", env={**os.environ, "OMP_NUM_THREADS": "1"})


def request(tmp_path: Path, base_model: str, name: str = "job-1", **hyperparameters: object) -> LaunchRequest:
    train = write_jsonl(tmp_path / "train.jsonl", conversations(32))
    return LaunchRequest(job_name=name, base_model=base_model, train_file=str(train),
                         hyperparameters={**FAST, **hyperparameters})


def wait_for(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_preview_shows_config_and_command_and_writes_nothing(tmp_path: Path, backend: LocalBackend, tiny: Path) -> None:
    plan = backend.preview(request(tmp_path, str(tiny), epochs="2"))
    assert plan["config"] == {"base_model": str(tiny.resolve()), "train_file": "data/train.jsonl", "validation_file": None,
                              "hyperparameters": {**FAST, "lora_dropout": 0.0, "epochs": 2}}
    assert plan["command"] == [sys.executable, "-m", "workbench.training.lora_train", "--run-dir", str(tmp_path / "runs" / "job-1")]
    assert plan["environment"]["HF_HUB_OFFLINE"] == "1" and not (tmp_path / "runs").exists()


def test_missing_base_model_is_refused_and_nothing_downloaded(tmp_path: Path, backend: LocalBackend,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BackendError, match=r"base model 'org/absent' is neither a local folder nor .* nothing is downloaded"):
        backend.submit(request(tmp_path, "org/absent"))
    assert not (tmp_path / "runs").exists()


def test_hub_id_in_the_local_cache_is_accepted(tmp_path: Path, backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = tmp_path / "cache" / "models--org--small" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BackendError, match=r"'org/small' \(cached in .*abc123\) has config.json but no tokenizer"):
        backend.preview(request(tmp_path, "org/small"))
    (snapshot / "tokenizer.json").write_text("{}")
    assert backend.preview(request(tmp_path, "org/small"))["config"]["base_model"] == "org/small"


@pytest.mark.parametrize("files", [(), ("tokenizer_config.json",), ("vocab.json", "merges.txt")])
def test_a_model_folder_without_a_tokenizer_is_refused_naming_it(tmp_path: Path, backend: LocalBackend,
                                                                 files: tuple[str, ...]) -> None:
    folder = tmp_path / "weights-only"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    for name in files:
        (folder / name).write_text("{}")
    for action in (backend.preview, backend.submit):
        with pytest.raises(BackendError, match=rf"folder {folder} has config.json but no tokenizer: .*tokenizer.json, "
                                               r"or tokenizer_config.json plus its vocabulary \(vocab.json"):
            action(request(tmp_path, str(folder)))
    assert not (tmp_path / "runs").exists()
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "vocab.txt").write_text("a\n")
    assert backend.preview(request(tmp_path, str(folder)))["config"]["base_model"] == str(folder.resolve())


@pytest.mark.parametrize(("hyperparameters", "message"), [
    ({"lora_rank": 4}, "unknown hyperparameter 'lora_rank' for local training; known: epochs"),
    ({"epochs": "many"}, "epochs='many' is not an integer; give e.g. 3"),
])
def test_bad_hyperparameters_are_refused(tmp_path: Path, backend: LocalBackend, tiny: Path,
                                         hyperparameters: dict[str, object], message: str) -> None:
    with pytest.raises(BackendError, match=message):
        backend.preview(request(tmp_path, str(tiny), **hyperparameters))


def test_name_that_cannot_be_a_folder_is_refused(tmp_path: Path, backend: LocalBackend, tiny: Path) -> None:
    with pytest.raises(BackendError, match="cannot name a run folder"):
        backend.preview(request(tmp_path, str(tiny), name="../escape"))


def test_unknown_job_is_not_found(backend: LocalBackend) -> None:
    with pytest.raises(JobNotFound, match="local run 'nope' has no folder"):
        backend.poll("nope", PollCursor())


def test_half_written_line_waits_for_the_next_poll(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n{"step": 2}\n{"ste')
    lines, offset = read_new_lines(path, 0)
    assert [line for _, line in lines] == ['{"step": 1}', '{"step": 2}'] and offset == 24
    with open(path, "ab") as handle:
        handle.write(b'p": 3}\n')
    assert [line for _, line in read_new_lines(path, offset)[0]] == ['{"step": 3}']


def test_poll_of_a_run_folder_merges_a_steps_losses_and_maps_status(tmp_path: Path, backend: LocalBackend) -> None:
    run = tmp_path / "runs" / "done"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "succeeded", "pid": 1, "adapter": "/a", "trained_tokens": 90,
                                                 "total_steps": 2, "message": "trained 2 steps"}))
    (run / "metrics.jsonl").write_text('{"step": 1, "epoch": 0.5, "train_loss": 2.0}\n{"step": 2, "epoch": 1.0, "train_loss": 1.5}\n'
                                       '{"step": 2, "epoch": 1.0, "val_loss": 1.7}\n')
    (run / "log.txt").write_text("2026-01-01T00:00:00+00:00 ERROR boom\nTraceback line\n2026-01-01T00:00:01+00:00 INFO ok\n")
    snap = backend.poll("done", PollCursor())
    assert (snap.state, snap.output_model, snap.trained_tokens, snap.progress) == (JobState.SUCCEEDED, "/a", 90, 1.0)
    assert [(m.step, m.train_loss, m.val_loss) for m in snap.metrics] == [(1, 2.0, None), (2, 1.5, 1.7)]
    assert [(e.level, e.message) for e in snap.events] == [("error", "boom\nTraceback line"), ("info", "ok"),
                                                           ("info", "trained 2 steps")]
    again = backend.poll("done", snap.cursor)
    assert again.metrics == () and [e.key for e in again.events] == ["status:succeeded"]
    assert map_status("rebooting") is JobState.UNKNOWN


def poll_until(backend: LocalBackend, job: str, cursor: PollCursor, done: Callable[[JobSnapshot], bool],
               seen: list[JobSnapshot]) -> PollCursor:
    deadline = time.monotonic() + 90
    while True:
        snap = backend.poll(job, cursor)
        seen.append(snap)
        cursor = snap.cursor
        if done(snap):
            return cursor
        assert time.monotonic() < deadline, f"timed out in {snap.state}: {snap.failure_message}"
        time.sleep(0.2)


def test_metrics_arrive_incrementally_then_cancel_stops_with_a_checkpoint(tmp_path: Path, backend: LocalBackend,
                                                                          tiny: Path) -> None:
    submitted = backend.submit(request(tmp_path, str(tiny), epochs=40))
    assert (submitted.state, submitted.provider_job_id) == (JobState.QUEUED, "job-1")
    run = tmp_path / "runs" / "job-1"
    assert json.loads((run / "config.json").read_text())["train_file"] == "data/train.jsonl"
    seen: list[JobSnapshot] = []
    cursor = poll_until(backend, "job-1", PollCursor(), lambda _: sum(len(s.metrics) > 0 for s in seen) >= 2, seen)
    backend.cancel("job-1")
    poll_until(backend, "job-1", cursor, lambda s: s.state.final, seen)

    steps = [m.step for s in seen for m in s.metrics]
    assert steps == sorted(set(steps)) and steps[0] == 1, steps  # each step once, in order, across polls
    assert seen[-1].state is JobState.CANCELLED and seen[-1].provider_status == "cancelled"
    assert RUNNING_SEEN(seen) and seen[-1].output_model is None
    keys = [e.key for s in seen for e in s.events]
    assert len(keys) == len(set(keys)) and any("training examples" in e.message for s in seen for e in s.events)
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-")]
    assert (run / "cancel").exists()


def RUNNING_SEEN(seen: list[JobSnapshot]) -> bool:  # noqa: N802 - reads as a condition
    return any(s.state is JobState.RUNNING and s.progress is not None for s in seen)


def test_killed_process_is_failed(tmp_path: Path, backend: LocalBackend, tiny: Path) -> None:
    backend.submit(request(tmp_path, str(tiny), epochs=40))
    status = tmp_path / "runs" / "job-1" / "status.json"
    wait_for(lambda: status.exists() and "pid" in status.read_text())
    os.kill(json.loads(status.read_text())["pid"], signal.SIGKILL)
    seen: list[JobSnapshot] = []
    poll_until(backend, "job-1", PollCursor(), lambda s: s.state.final, seen)
    assert seen[-1].state is JobState.FAILED and seen[-1].provider_status == "exited"
    assert seen[-1].failure_message.startswith("process exited without finishing (killed?)")


def test_pid_of_another_program_is_not_the_trainer(tmp_path: Path, backend: LocalBackend) -> None:
    run = tmp_path / "runs" / "reused"
    run.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (run / "status.json").write_text(json.dumps({"state": "running", "pid": other.pid}))
        assert backend.poll("reused", PollCursor()).state is JobState.FAILED
    finally:
        other.kill()
        other.wait()
