"""A local HTTP double of the OpenAI files and fine-tuning endpoints the workbench uses.

The real `openai` SDK talks to it over real HTTP on 127.0.0.1 (`base_url=double.base_url`), so tests
exercise the SDK's own request building, multipart upload, pagination and error classes. Shapes follow
the SDK's types (openai/openai-python `src/openai/types/fine_tuning/`, `types/file_object.py`) and the
API reference (https://platform.openai.com/docs/api-reference/fine-tuning): lists are newest first,
`after` is the id of the last item of the previous page, and errors come as
`{"error": {"message", "type", "param", "code"}}`.

Tests drive jobs through the methods of `OpenAIDouble` (add events, set status, attach a result file,
fail the next calls, delete a job) and read what the SDK sent from `requests`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "sk-double-test"


@dataclass
class Recorded:
    """One request as the double received it: multipart forms are decoded, JSON bodies parsed."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None
    form: dict[str, str] = field(default_factory=dict)
    upload: tuple[str, bytes] | None = None


class OpenAIDouble:
    """The double's state and its test-side controls; `serve()` puts it behind a real HTTP server."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.checkpoints: dict[str, list[dict[str, Any]]] = {}
        self._failures: list[int] = []
        self._counter = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def serve(self) -> OpenAIDouble:
        """Start the HTTP server on a free port of 127.0.0.1, in a daemon thread."""
        double = self

        class Handler(_Handler):
            state = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-double", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "call serve() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- test-side controls ------------------------------------------------------------------------

    def reset_calls(self) -> None:
        """Forget recorded requests and pending failures (jobs and files stay), between tests."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` calls with `status` (429 rate limit, 401 bad key, 500...)."""
        with self._lock:
            self._failures.extend([status] * times)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def add_job(self, *, model: str = "gpt-4o-mini-2024-07-18", status: str = "running", **fields: Any) -> dict[str, Any]:
        """Create a job directly, as if made elsewhere (for import and listing tests)."""
        with self._lock:
            train = fields.pop("training_file", None) or self.add_file(b'{"messages": []}\n', "train.jsonl")["id"]
            create = {k: fields.pop(k) for k in ("validation_file", "suffix", "seed", "metadata", "method") if k in fields}
            job = self._new_job({"model": model, "training_file": train, **create})
            job.update(status=status, **fields)
            return job

    def add_file(self, content: bytes, filename: str, purpose: str = "fine-tune") -> dict[str, Any]:
        with self._lock:
            file_id = self._next_id("file")
            obj = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
            }
            self.files[file_id] = obj
            self.file_bytes[file_id] = content
            return obj

    def add_event(
        self, job_id: str, message: str, *, level: str = "info", type: str = "message", data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with self._lock:
            event = {
                "object": "fine_tuning.job.event",
                "id": self._next_id("ftevent"),
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "type": type,
                "data": data or {},
            }
            self.events[job_id].append(event)
            return event

    def add_metrics(
        self,
        job_id: str,
        step: int,
        train_loss: float,
        *,
        total_steps: int | None = None,
        valid_loss: float | None = None,
        full_valid_loss: float | None = None,
    ) -> dict[str, Any]:
        """Add a `metrics` event as OpenAI writes one per step (guide: 'Step 3/30: training loss=...')."""
        data: dict[str, Any] = {"step": step, "train_loss": train_loss, "train_mean_token_accuracy": 0.5}
        if total_steps is not None:
            data["total_steps"] = total_steps
        if valid_loss is not None:
            data["valid_loss"] = valid_loss
        if full_valid_loss is not None:
            data["full_valid_loss"] = full_valid_loss
        message = f"Step {step}/{total_steps or '?'}: training loss={train_loss:.4f}"
        return self.add_event(job_id, message, type="metrics", data=data)

    def set_status(self, job_id: str, status: str, **fields: Any) -> None:
        """Move a job to `status`, setting other fields too (fine_tuned_model, error, trained_tokens...)."""
        with self._lock:
            job = self.jobs[job_id]
            job["status"] = status
            job.update(fields)
            if status in ("succeeded", "failed", "cancelled"):
                job["finished_at"] = int(time.time())

    def attach_result_csv(self, job_id: str, csv_text: str, *, base64_encoded: bool = False) -> str:
        """Attach a result file; `base64_encoded` stores it the way the cookbook decodes it (b64decode)."""
        raw = csv_text.encode()
        content = base64.b64encode(raw) if base64_encoded else raw
        with self._lock:
            file_id = self.add_file(content, "step_metrics.csv", purpose="fine-tune-results")["id"]
            self.jobs[job_id]["result_files"].append(file_id)
            return file_id

    def add_checkpoint(self, job_id: str, step: int, **metrics: float) -> dict[str, Any]:
        with self._lock:
            job = self.jobs[job_id]
            checkpoint = {
                "object": "fine_tuning.job.checkpoint",
                "id": self._next_id("ftckpt"),
                "created_at": int(time.time()),
                "fine_tuned_model_checkpoint": f"ft:{job['model']}:org:ckpt-step-{step}",
                "fine_tuning_job_id": job_id,
                "metrics": {"step": step, **metrics},
                "step_number": step,
            }
            self.checkpoints[job_id].append(checkpoint)
            return checkpoint

    def delete_job(self, job_id: str) -> None:
        """Forget a job, so every later call about it answers 404."""
        with self._lock:
            self.jobs.pop(job_id, None)
            self.events.pop(job_id, None)
            self.checkpoints.pop(job_id, None)

    # -- what the endpoints do ---------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter:06d}"

    def _new_job(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id = self._next_id("ftjob")
        method = body.get("method") or {"type": "supervised", "supervised": {"hyperparameters": {}}}
        chosen = (method.get(method["type"]) or {}).get("hyperparameters") or {}
        hyperparameters = {k: chosen.get(k, "auto") for k in ("n_epochs", "batch_size", "learning_rate_multiplier")}
        job = {
            "object": "fine_tuning.job",
            "id": job_id,
            "created_at": int(time.time()),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": hyperparameters,
            "model": body["model"],
            "organization_id": "org-double",
            "result_files": [],
            "seed": body.get("seed", 42),
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata"),
            "method": {"type": method["type"], method["type"]: {"hyperparameters": hyperparameters}},
            "user_provided_suffix": body.get("suffix"),
        }
        self.jobs[job_id] = job
        self.events[job_id] = []
        self.checkpoints[job_id] = []
        self.add_event(job_id, f"Created fine-tuning job: {job_id}")
        return job

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> tuple[int, Any]:
        """Answer one request: (status, JSON body or raw bytes)."""
        with self._lock:
            recorded = Recorded(method, path, query)
            self.requests.append(recorded)
            if self._failures:
                return _failure(self._failures.pop(0))
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                return _failure(401)
            parts = [p for p in path.split("/") if p][1:]  # drop "v1"
            if parts[:1] == ["files"]:
                return self._files(method, parts[1:], headers, body, recorded)
            if parts[:2] == ["fine_tuning", "jobs"]:
                return self._jobs(method, parts[2:], query, body, recorded)
            return _error(404, f"Invalid URL ({method} {path})", "invalid_request_error")

    def _files(self, method: str, rest: list[str], headers: Any, body: bytes, recorded: Recorded) -> tuple[int, Any]:
        if method == "POST" and not rest:
            form, upload = _parse_multipart(headers.get("Content-Type", ""), body)
            recorded.form, recorded.upload = form, upload
            if upload is None:
                return _error(400, "Missing file", "invalid_request_error", param="file")
            if form.get("purpose") != "fine-tune":
                return _error(400, f"Invalid purpose {form.get('purpose')!r}", "invalid_request_error", param="purpose")
            return 200, self.add_file(upload[1], upload[0], form["purpose"])
        if method == "GET" and rest and rest[0] in self.files:
            if rest[1:] == ["content"]:
                return 200, self.file_bytes[rest[0]]
            return 200, self.files[rest[0]]
        return _error(404, f"No such File object: {rest[0] if rest else ''}", "invalid_request_error", param="id")

    def _jobs(self, method: str, rest: list[str], query: dict[str, str], body: bytes, recorded: Recorded) -> tuple[int, Any]:
        if not rest:
            if method == "POST":
                recorded.body = payload = json.loads(body or b"{}")
                return self._create(payload)
            return 200, _page(list(reversed(self.jobs.values())), query)
        job_id, action = rest[0], rest[1:]
        if job_id not in self.jobs:
            return _error(404, f"Could not find fine-tune: {job_id}", "invalid_request_error", param="fine_tune_id")
        job = self.jobs[job_id]
        if method == "GET" and not action:
            return 200, job
        if method == "GET" and action == ["events"]:
            return 200, _page(list(reversed(self.events[job_id])), query)
        if method == "GET" and action == ["checkpoints"]:
            return 200, _page(list(reversed(self.checkpoints[job_id])), query)
        if method == "POST" and action == ["cancel"]:
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return _error(400, f"Job {job_id} has already completed: {job['status']}", "invalid_request_error", param="id")
            self.set_status(job_id, "cancelled")
            return 200, job
        return _error(404, f"Invalid URL ({method} .../{'/'.join(action)})", "invalid_request_error")

    def _create(self, payload: dict[str, Any]) -> tuple[int, Any]:
        for key in ("model", "training_file"):
            if not payload.get(key):
                return _error(400, f"Missing required parameter: '{key}'.", "invalid_request_error", param=key)
        for key in ("training_file", "validation_file"):
            if payload.get(key) and payload[key] not in self.files:
                return _error(400, f"invalid {key}: {payload[key]}", "invalid_request_error", param=key)
        if len(payload.get("suffix") or "") > 64:
            return _error(400, "suffix must be at most 64 characters", "invalid_request_error", param="suffix")
        return 200, self._new_job(payload)


def _page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """Cut a newest-first list the way OpenAI's cursor pages do: after the id `after`, at most `limit`."""
    limit = int(query.get("limit", "20"))
    after = query.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _error(status: int, message: str, type_: str, *, param: str | None = None, code: str | None = None) -> tuple[int, Any]:
    return status, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _failure(status: int) -> tuple[int, Any]:
    if status == 429:
        return _error(429, "Rate limit reached for requests", "requests", code="rate_limit_exceeded")
    if status == 401:
        message = "Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys."
        return _error(401, message, "invalid_request_error", code="invalid_api_key")
    return _error(status, f"The double was told to answer {status}", "server_error")


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """Decode multipart/form-data with the stdlib email parser (the cgi module is deprecated)."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    form: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            upload = (filename, payload)
        elif name:
            form[str(name)] = payload.decode()
    return form, upload


class _Handler(BaseHTTPRequestHandler):
    state: OpenAIDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not access logs
        return

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._read_body()
        status, answer = self.state.handle(self.command, url.path, query, self.headers, body)
        if isinstance(answer, bytes):
            data, content_type = answer, "application/octet-stream"
        else:
            data, content_type = json.dumps(answer).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("retry-after-ms", "10")
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve


def backends(double: OpenAIDouble) -> Callable[[Any], Any]:
    """A backend factory for the jobs service that talks to this double (real SDK, real HTTP, no retries)."""
    from workbench.domain.jobs import BackendName
    from workbench.providers.openai_ft import OpenAIBackend

    def make(name: BackendName) -> OpenAIBackend:
        assert name is BackendName.OPENAI
        return OpenAIBackend(api_key=API_KEY, base_url=double.base_url, max_retries=0)

    return make
