"""Local LoRA fine-tuning: a detached `workbench.training.lora_train` process per job, watched through its run dir.

Each job owns `runs_dir()/<job name>/`: the data it trains on (`data/`), `config.json`, and what the
trainer writes (`status.json`, `metrics.jsonl`, `log.txt`, `checkpoints/`, `adapter/`; see
`workbench.training.lora_train`). The process starts in its own session, so it outlives the watcher and
the app; everything the backend knows it reads back from those files, so any process can poll or cancel
any run, and an app restart loses nothing.

Base models are never downloaded: the child runs with `HF_HUB_OFFLINE=1`, and `submit` refuses a base
model that is neither a local folder nor a Hugging Face id already in the local cache
(https://huggingface.co/docs/huggingface_hub/guides/manage-cache: `<cache>/models--ORG--NAME/snapshots/REV/`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench import settings
from workbench.domain.jobs import (
    BackendName,
    JobEvent,
    JobSnapshot,
    JobState,
    LaunchRequest,
    MetricPoint,
    PollCursor,
    Submitted,
)
from workbench.providers.base import BackendError, JobNotFound
from workbench.training import lora_train

TRAINER_MODULE = "workbench.training.lora_train"
NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
MAX_READ = 1 << 20
"""Bytes read from one file per poll: a huge backlog is read over several polls, never all at once."""

_STATES = {"starting": JobState.QUEUED, "running": JobState.RUNNING, "succeeded": JobState.SUCCEEDED,
           "failed": JobState.FAILED, "cancelled": JobState.CANCELLED}
_FINAL = ("succeeded", "failed", "cancelled")
_LINE_START = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00) (INFO|WARNING|ERROR) ")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def map_status(status: str) -> JobState:
    """Map the trainer's status word to a JobState; a word we do not know is UNKNOWN."""
    return _STATES.get(status, JobState.UNKNOWN)


def hf_cache_dirs() -> list[Path]:
    """Where huggingface_hub keeps downloaded models, in its own order of precedence."""
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    dirs.append(Path(xdg) / "huggingface" / "hub")
    return dirs


VOCAB_FILES = ("vocab.json", "vocab.txt", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model")
"""What a slow tokenizer loads its vocabulary from, beside tokenizer_config.json (transformers' VOCAB_FILES_NAMES of
the GPT-2/BERT/Llama/T5/XLM-R tokenizers). A fast tokenizer's tokenizer.json holds the vocabulary itself."""


def has_tokenizer(folder: Path) -> bool:
    """True when AutoTokenizer can load from `folder` offline: tokenizer.json, or tokenizer_config.json and a vocab."""
    if (folder / "tokenizer.json").is_file():
        return True
    return (folder / "tokenizer_config.json").is_file() and any((folder / name).is_file() for name in VOCAB_FILES)


def _no_tokenizer(where: str) -> BackendError:
    return BackendError(
        f"base model {where} has config.json but no tokenizer: the trainer needs tokenizer.json, or "
        f"tokenizer_config.json plus its vocabulary ({', '.join(VOCAB_FILES)}); save the tokenizer into it too "
        "(tokenizer.save_pretrained(FOLDER))"
    )


def resolve_base_model(base_model: str) -> str:
    """Return the base model as the trainer will load it; BackendError when it is not on this machine.

    The trainer loads both the model and its tokenizer from the same place, offline, so a folder with
    weights but no tokenizer is refused here rather than minutes later in the run's stderr.
    """
    path = Path(base_model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackendError(f"base model folder {path} has no config.json; give a folder saved with save_pretrained")
        if not has_tokenizer(path):
            raise _no_tokenizer(f"folder {path}")
        return str(path.resolve())
    folder = "models--" + base_model.replace("/", "--")
    for cache in hf_cache_dirs():
        snapshots = [s for s in (cache / folder / "snapshots").glob("*") if (s / "config.json").is_file()]
        if any(has_tokenizer(snap) for snap in snapshots):
            return base_model
        if snapshots:
            raise _no_tokenizer(f"{base_model!r} (cached in {snapshots[0]})")
    raise BackendError(
        f"base model {base_model!r} is neither a local folder nor a Hugging Face id in the local cache "
        f"({', '.join(str(d) for d in hf_cache_dirs())}); nothing is downloaded: fetch it first "
        "(`huggingface-cli download ID`) or give the folder it was saved to"
    )


def check_hyperparameters(values: dict[str, Any]) -> dict[str, Any]:
    """Return the values typed as the trainer reads them; BackendError naming an unknown or bad one."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in lora_train.HYPERPARAMETERS:
            raise BackendError(f"unknown hyperparameter {name!r} for local training; known: "
                               f"{', '.join(lora_train.HYPERPARAMETERS)}")
        try:
            out[name] = lora_train.coerce(name, value)
        except lora_train.ConfigError as exc:
            raise BackendError(str(exc)) from None
    return out


def read_new_lines(path: Path, offset: int) -> tuple[list[tuple[int, str]], int]:
    """Return the complete lines after byte `offset` (with their offsets) and the offset after the last one.

    A last line without its newline is being written: it is left for the next poll.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(MAX_READ)
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    lines, position = [], offset
    for raw in chunk[: end + 1].split(b"\n")[:-1]:
        lines.append((position, raw.decode("utf-8", errors="replace")))
        position += len(raw) + 1
    return lines, offset + end + 1


def pid_alive(pid: int) -> bool:
    """True while `pid` runs the trainer: a zombie, a vanished pid or one reused by another program is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps it when it is our own child
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X") and b"lora_train" in cmdline
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class LocalBackend:
    """Run LoRA fine-tuning as a local process; see the module docstring."""

    name = BackendName.LOCAL

    def __init__(self, runs_dir: Path, python: str = sys.executable, env: dict[str, str] | None = None) -> None:
        self.runs_dir = Path(runs_dir).absolute()  # the child runs in its run folder: a relative path would move
        self.python = python
        self.env = env

    @classmethod
    def from_environment(cls) -> LocalBackend:
        return cls(settings.runs_dir())

    # --- launch ------------------------------------------------------------------------------------------

    def _run_dir(self, job_id: str) -> Path:
        if not NAME_PATTERN.fullmatch(job_id):
            raise BackendError(f"job name {job_id!r} cannot name a run folder; use letters, digits, '-', '_' and '.' "
                               "(at most 128, starting with a letter or digit)")
        return self.runs_dir / job_id

    def _plan(self, request: LaunchRequest) -> dict[str, Any]:
        run_dir = self._run_dir(request.job_name)
        config = {
            "base_model": resolve_base_model(request.base_model),
            "train_file": "data/train.jsonl",
            "validation_file": "data/validation.jsonl" if request.validation_file else None,
            "hyperparameters": check_hyperparameters(request.hyperparameters),
        }
        command = [self.python, "-m", TRAINER_MODULE, "--run-dir", str(run_dir)]
        return {"run_dir": str(run_dir), "config": config, "command": command,
                "environment": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}}

    def preview(self, request: LaunchRequest) -> dict[str, Any]:
        """Return the run folder, config.json and command `submit` would use; nothing is written."""
        return self._plan(request)

    def submit(self, request: LaunchRequest) -> Submitted:
        """Copy the data into a new run folder and start the trainer detached from this process."""
        plan = self._plan(request)
        missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
        if missing:
            raise BackendError(f"local training needs {', '.join(missing)}: install the train extra "
                               "(pip install 'workbench[train]')")
        run_dir = Path(plan["run_dir"])
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:
            raise BackendError(f"a run named {request.job_name!r} already exists in {self.runs_dir}; "
                               "pick another job name") from None
        files = {"train": self._place(Path(request.train_file), run_dir / "data" / "train.jsonl")}
        if request.validation_file:
            files["validation"] = self._place(Path(request.validation_file), run_dir / "data" / "validation.jsonl")
        (run_dir / "config.json").write_text(json.dumps(plan["config"], indent=2))
        pid = self._start(plan["command"], run_dir)
        (run_dir / "launch.json").write_text(json.dumps({"pid": pid, "command": plan["command"],
                                                         "started": datetime.now(UTC).isoformat()}))
        return Submitted(provider_job_id=request.job_name, provider_status="starting", state=JobState.QUEUED,
                         request=plan, files=files)

    @staticmethod
    def _place(source: Path, target: Path) -> str:
        if not source.is_file():
            raise BackendError(f"training data {source} does not exist; export the dataset version again")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        return str(target)

    def _start(self, command: list[str], run_dir: Path) -> int:
        env = dict(os.environ if self.env is None else self.env)
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        with open(run_dir / "stdout.txt", "ab") as out, open(run_dir / "stderr.txt", "ab") as err:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                       cwd=run_dir, start_new_session=True)
        return process.pid

    # --- watch -------------------------------------------------------------------------------------------

    def poll(self, provider_job_id: str, cursor: PollCursor) -> JobSnapshot:
        """Read the run's status and what its files gained since the cursor's byte offsets."""
        run_dir = self._existing(provider_job_id)
        pid = _read_json(run_dir / "status.json").get("pid") or _read_json(run_dir / "launch.json").get("pid")
        alive = bool(pid) and pid_alive(int(pid))
        status = _read_json(run_dir / "status.json")  # read after the liveness check: a run that just ended shows it
        metric_lines, metric_offset = read_new_lines(run_dir / "metrics.jsonl", int(cursor.extra.get("offset", 0)))
        log_lines, log_offset = read_new_lines(run_dir / "log.txt", int(cursor.extra.get("log_offset", 0)))
        word = str(status.get("state", "starting"))
        state, failure = map_status(word), None
        if word not in _FINAL and not pid:
            state, word = JobState.QUEUED, "starting"  # between Popen and launch.json: nothing to check yet
        elif word not in _FINAL and not alive:
            state, word = JobState.FAILED, "exited"
            failure = "process exited without finishing (killed?)" + self._stderr_tail(run_dir)
        elif state is JobState.FAILED:
            failure = str(status.get("message") or "training failed; see log.txt")
        events = self._events(log_lines)
        if word in _FINAL or failure:
            events.append(JobEvent(key=f"status:{word}", at=_parse_time(status.get("finished")) or datetime.now(UTC),
                                   level="error" if failure else "info", message=failure or str(status.get("message", word))))
        metrics = self._metrics(metric_lines)
        last_step = max([m.step for m in metrics], default=cursor.last_step)
        progress, eta = self._progress(status, last_step)
        return JobSnapshot(
            state=state, provider_status=word, events=tuple(events), metrics=tuple(metrics),
            cursor=PollCursor(last_event=events[-1].key if events else cursor.last_event, last_step=last_step,
                              extra={**cursor.extra, "offset": metric_offset, "log_offset": log_offset}),
            output_model=status.get("adapter") if word == "succeeded" else None, failure_message=failure,
            trained_tokens=status.get("trained_tokens"), progress=progress, estimated_finish=eta,
        )

    def _existing(self, job_id: str) -> Path:
        run_dir = self._run_dir(job_id)
        if not run_dir.is_dir():
            raise JobNotFound(f"local run {job_id!r} has no folder in {self.runs_dir}; it was deleted or moved")
        return run_dir

    @staticmethod
    def _stderr_tail(run_dir: Path) -> str:
        try:
            with open(run_dir / "stderr.txt", "rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - 2000))
                lines = [line for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
        except FileNotFoundError:
            return ""
        return f"; last output: {lines[-1].strip()}" if lines else ""

    @staticmethod
    def _metrics(lines: list[tuple[int, str]]) -> list[MetricPoint]:
        """Parse metric lines, merging a step's train and validation loss into one point."""
        by_step: dict[int, dict[str, Any]] = {}
        for _, line in lines:
            try:
                point = json.loads(line)
            except ValueError:
                continue
            read = MetricPoint.read(point.get("step"), point.get("epoch"), point.get("train_loss"),
                                    point.get("val_loss")) if isinstance(point, dict) else None
            if read is None:
                continue
            merged = by_step.setdefault(read.step, {"step": read.step})
            merged.update({k: v for k, v in read.model_dump().items() if v is not None})
        return [MetricPoint(**fields) for _, fields in sorted(by_step.items())]

    @staticmethod
    def _events(lines: list[tuple[int, str]]) -> list[JobEvent]:
        """One event per log entry; lines without a timestamp (a traceback) continue the entry before them."""
        events: list[JobEvent] = []
        for offset, line in lines:
            match = _LINE_START.match(line)
            if match is None and events:
                last = events[-1]
                events[-1] = last.model_copy(update={"message": f"{last.message}\n{line}"})
                continue
            at = _parse_time(match.group(1)) if match else None
            level = match.group(2).lower() if match else "info"
            events.append(JobEvent(key=f"log:{offset}", at=at or datetime.now(UTC), level=level,
                                   message=line[match.end():] if match else line))
        return events

    @staticmethod
    def _progress(status: dict[str, Any], step: int | None) -> tuple[float | None, datetime | None]:
        total, started = status.get("total_steps"), _parse_time(status.get("started"))
        if not total or step is None:
            return None, None
        fraction = min(1.0, step / total)
        if not started or fraction <= 0 or status.get("state") in _FINAL:
            return fraction, None
        elapsed = datetime.now(UTC) - started
        return fraction, started + timedelta(seconds=elapsed.total_seconds() / fraction)

    # --- cancel ------------------------------------------------------------------------------------------

    def cancel(self, provider_job_id: str) -> None:
        """Drop a `cancel` file in the run folder and send SIGTERM; the trainer saves a checkpoint and stops."""
        run_dir = self._existing(provider_job_id)
        (run_dir / "cancel").touch()
        pid = _read_json(run_dir / "status.json").get("pid") or _read_json(run_dir / "launch.json").get("pid")
        if pid and pid_alive(int(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
