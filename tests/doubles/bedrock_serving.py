"""A local HTTP double of the Bedrock control-plane endpoints moto 5.2.5 lacks: Provisioned Throughput and
custom model deployments (moto answers HTTP 500 for them in server mode).

Real boto3 talks to it over HTTP on 127.0.0.1 (`endpoint_url=double.url`, or `AWS_ENDPOINT_URL_BEDROCK` for a
subprocess), so botocore's own request building, URL-encoding of ARNs in paths, response parsing and error
classes are exercised. Paths, status codes and shapes follow botocore's `bedrock` service model (2023-04-20):

- POST   /provisioned-model-throughput                                 -> 201 {"provisionedModelArn"}
- GET    /provisioned-model-throughput/{provisionedModelId}            -> 200 {status, modelUnits, failureMessage, ...}
- DELETE /provisioned-model-throughput/{provisionedModelId}            -> 200 {}
- POST   /model-customization/custom-model-deployments                 -> 202 {"customModelDeploymentArn"}
- GET    /model-customization/custom-model-deployments/{identifier}   -> 200 {status, failureMessage, ...}
- DELETE /model-customization/custom-model-deployments/{identifier}   -> 200 {}

Errors are rest-json: the code in the `x-amzn-ErrorType` header and `{"message": ...}` in the body. Like the real
service, it checks the name patterns and `modelUnits` >= 1 (ValidationException), and answers
ResourceNotFoundException for an unknown id. Tests move resources on with `set_status`, delete them behind the
workbench's back with `forget`, make the next calls fail with `fail_next`, and read what was sent from `requests`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

ACCOUNT, REGION = "123456789012", "us-east-1"
PT_PATH = "/provisioned-model-throughput"
DEPLOY_PATH = "/model-customization/custom-model-deployments"
PT_NAME = re.compile(r"([0-9a-zA-Z][_-]?)+")
DEPLOY_NAME = re.compile(r"([0-9a-zA-Z][_-]?){1,63}")


@dataclass
class Recorded:
    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)


class BedrockServingDouble:
    """The double's state and its test-side controls; `serve()` puts it behind a real HTTP server."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.resources: dict[str, dict[str, Any]] = {}
        self._failures: list[tuple[int, str]] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self) -> BedrockServingDouble:
        double = self

        class Handler(_Handler):
            state = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bedrock-serving-double", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "call serve() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- test-side controls ---------------------------------------------------------------------------------

    def set_status(self, arn: str, status: str, failure_message: str | None = None) -> None:
        with self._lock:
            found = self.resources[arn]
            found["status"] = status
            if failure_message is not None:
                found["failureMessage"] = failure_message

    def forget(self, arn: str) -> None:
        """Delete a resource as the console would, without the workbench knowing."""
        with self._lock:
            del self.resources[arn]

    def fail_next(self, status: int, code: str, times: int = 1) -> None:
        with self._lock:
            self._failures += [(status, code)] * times

    def sent(self, method: str, prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # -- the API --------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any], str | None]:
        payload = json.loads(body) if body else {}
        with self._lock:
            self.requests.append(Recorded(method, path, payload))
            if self._failures:
                status, code = self._failures.pop(0)
                return status, {"message": f"{code} from the double"}, code
            if path == PT_PATH and method == "POST":
                return self._create_pt(payload)
            if path == DEPLOY_PATH and method == "POST":
                return self._create_deployment(payload)
            for prefix in (PT_PATH, DEPLOY_PATH):
                if path.startswith(prefix + "/") and method in ("GET", "DELETE"):
                    return self._one(method, unquote(path[len(prefix) + 1:]), prefix)
        return 404, {"message": f"the double has no {method} {path}"}, "UnknownOperationException"

    def _arn(self, kind: str) -> str:
        return f"arn:aws:bedrock:{REGION}:{ACCOUNT}:{kind}/{next(self._ids):012d}"

    def _create_pt(self, req: dict[str, Any]) -> tuple[int, dict[str, Any], str | None]:
        name, units = str(req.get("provisionedModelName", "")), req.get("modelUnits")
        if not (1 <= len(name) <= 63) or PT_NAME.fullmatch(name) is None:
            return _validation(f"provisionedModelName {name!r} fails pattern ([0-9a-zA-Z][_-]?)+")
        if not isinstance(units, int) or units < 1:
            return _validation("modelUnits must be at least 1")
        if req.get("commitmentDuration") not in (None, "OneMonth", "SixMonths"):
            return _validation("commitmentDuration must be OneMonth or SixMonths")
        if any(r.get("provisionedModelName") == name for r in self.resources.values()):
            return 400, {"message": f"a Provisioned Throughput named {name} exists"}, "ValidationException"
        arn, now = self._arn("provisioned-model"), _now()
        self.resources[arn] = {
            "provisionedModelArn": arn, "provisionedModelName": name, "modelArn": req["modelId"],
            "desiredModelArn": req["modelId"], "foundationModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-micro-v1:0",
            "modelUnits": units, "desiredModelUnits": units, "status": "Creating", "creationTime": now,
            "lastModifiedTime": now, **({"commitmentDuration": req["commitmentDuration"]} if req.get("commitmentDuration") else {}),
        }
        return 201, {"provisionedModelArn": arn}, None

    def _create_deployment(self, req: dict[str, Any]) -> tuple[int, dict[str, Any], str | None]:
        name = str(req.get("modelDeploymentName", ""))
        if DEPLOY_NAME.fullmatch(name) is None:
            return _validation(f"modelDeploymentName {name!r} fails pattern ([0-9a-zA-Z][_-]?){{1,63}}")
        arn = self._arn("custom-model-deployment")
        self.resources[arn] = {
            "customModelDeploymentArn": arn, "modelDeploymentName": name, "modelArn": req["modelArn"],
            "createdAt": _now(), "status": "Creating", **({"description": req["description"]} if req.get("description") else {}),
        }
        return 202, {"customModelDeploymentArn": arn}, None

    def _one(self, method: str, ident: str, prefix: str) -> tuple[int, dict[str, Any], str | None]:
        name_key = "provisionedModelName" if prefix == PT_PATH else "modelDeploymentName"
        arn = ident if ident in self.resources else next(
            (a for a, r in self.resources.items() if r.get(name_key) == ident), None)
        if arn is None or (name_key not in self.resources[arn]):
            return 404, {"message": f"Resource {ident} not found"}, "ResourceNotFoundException"
        if method == "DELETE":
            del self.resources[arn]
            return 200, {}, None
        return 200, dict(self.resources[arn]), None


def _validation(message: str) -> tuple[int, dict[str, Any], str]:
    return 400, {"message": message}, "ValidationException"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    state: BedrockServingDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not access logs
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, error = self.state.handle(self.command, urlsplit(self.path).path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "double-request")
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve
