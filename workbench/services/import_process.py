"""Import an upload from a long-lived server: small files here, large ones in a child process.

A large import goes fastest with a worker process and interpreter settings (garbage collector
paused, a shorter thread switch interval) that are process-wide. A server such as Streamlit runs
other sessions at the same time, so it must not change them, and forking it is unsafe besides.
A large upload is therefore saved to a temporary file and imported by `python -m workbench
datasets import --json --progress`, a process that exists for that one import; its progress lines
drive the caller's bar and its JSON report comes back as the same `ImportResult`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

import orjson

import workbench
from workbench.errors import InvalidInput, WorkbenchError
from workbench.services.importing import ImportResult, Progress, check_dataset_name, import_stream
from workbench.services.preparing import PARALLEL_MIN_BYTES
from workbench.store import Store

CHILD_MIN_BYTES = PARALLEL_MIN_BYTES
"""Uploads at least this large are imported in a child process: the size at which a worker pays."""


def import_upload(
    store: Store,
    stream: IO[bytes],
    filename: str,
    name: str,
    fmt: str | None = None,
    progress: Progress | None = None,
    *,
    size: int,
) -> ImportResult:
    """Import an upload into dataset `name`; process-wide state of the calling process is never changed."""
    if size < CHILD_MIN_BYTES:
        return import_stream(store, stream, filename, name, fmt, progress, size_hint=size)
    return import_in_child(store, stream, filename, name, fmt, progress)


def import_in_child(
    store: Store,
    stream: IO[bytes],
    filename: str,
    name: str,
    fmt: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Save the stream to a temporary file and import it with the CLI in a child process.

    The child is killed if this call is abandoned (the browser session ends, an exception), so no
    import runs on unobserved; whatever it committed by then stays, as with an interrupted import.
    """
    name = check_dataset_name(name)  # fail before copying a large file
    with tempfile.TemporaryDirectory(prefix="workbench-import-") as folder:
        path = Path(folder) / (Path(filename).name or "upload")
        try:
            with path.open("wb") as out:
                shutil.copyfileobj(stream, out, 1024 * 1024)
        except OSError as exc:
            raise WorkbenchError(f"{filename}: could not save the upload for importing ({exc.strerror or exc})") from exc
        report = Path(folder) / "report.json"
        command = [
            sys.executable, "-m", "workbench", "--db", str(store.path), "datasets", "import", str(path),
            "--name", name, "--format", fmt or "auto", "--progress", "--json",
        ]
        with report.open("wb") as stdout:
            messages = _run(command, stdout, progress)
        return _result(report.read_bytes(), messages)


def _run(command: list[str], stdout: IO[bytes], progress: Progress | None) -> list[str]:
    """Run the child, relaying its progress lines; return its other stderr lines."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=env)
    messages: list[str] = []
    try:
        assert child.stderr is not None
        for raw in child.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            done = _progress_bytes(line)
            if done is None:
                messages.append(line)
            elif progress is not None:
                progress(done)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return messages


def _progress_bytes(line: str) -> int | None:
    parts = line.split()
    if len(parts) == 3 and parts[0] == "progress" and parts[1].isdigit():
        return int(parts[1])
    return None


def _result(report: bytes, messages: list[str]) -> ImportResult:
    try:
        payload = orjson.loads(report)
    except orjson.JSONDecodeError:
        detail = "; ".join(m for m in messages if m.strip())[-500:] or "no report"
        raise WorkbenchError(f"the import process ended without a report: {detail}") from None
    if "dataset" not in payload:
        raise InvalidInput(payload.get("error") or "the import failed")
    return ImportResult.model_validate({k: v for k, v in payload.items() if k not in ("ok", "error")})


def _package_root() -> str:
    return str(Path(workbench.__file__).resolve().parent.parent)

