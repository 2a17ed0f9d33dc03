"""The ingest API: production predictions and feedback in over HTTP, for code running elsewhere.

`create_app(store)` builds the FastAPI app; `workbench api` serves it with uvicorn (127.0.0.1:8765
unless told otherwise, and `make run` starts it beside the app). Every route under /v1 except
/v1/health takes `Authorization: Bearer <token>` (tokens from `workbench tokens create`); a missing,
unknown, forged, expired or revoked token gets 401 with `WWW-Authenticate: Bearer` (one message for all
but a missing one, so a caller learns nothing about which). Each request acts as its token's owner with
the token's role: sending predictions or feedback needs `predictions.write`, reading an assignment
`experiments.read`, and a role without it gets 403 naming both. Refusals go to the audit trail, at most
one a minute per (reason, token prefix or client address). Bodies over `MAX_BODY_BYTES` get
413 before they are read whole; malformed JSON (bytes that are not UTF-8, nesting or a number past what the
parser reads, included: see `read_json_body`) and invalid fields get 422 naming each field as a path
(`predictions[3].tokens_in`, `feedback[2].rating`); a store busy past its timeout gets 503 with Retry-After. A
201 carries `warnings` for what was stored but will not count (an experiment or variant that does not exist). No
request ever gets a traceback. The OpenAPI spec is at /openapi.json; /docs shows it as one self-contained
page (no scripts or styles from a CDN, so it works on a machine with no internet).
"""

from __future__ import annotations

import html
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import workbench
from workbench.domain.access import NOBODY, Actor, Permission
from workbench.domain.predictions import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    FeedbackBody,
    PredictionsBody,
    Source,
    as_list,
    field_path,
)
from workbench.errors import Busy, Conflict, Forbidden, NotFound, WorkbenchError
from workbench.services import access, api_tokens
from workbench.services import experiments as experiment_svc
from workbench.services import predictions as svc
from workbench.store import Store
from workbench.store.api_tokens import TokenRow

DEFAULT_PORT = 8765


class Stored(BaseModel):
    ok: bool = True
    count: int = Field(description="Items stored.")
    ids: list[int] = Field(description="Their ids, in the order sent (a prediction's id is what feedback names).")
    warnings: list[str] = Field(default_factory=list, description=(
        "Stored, but worth knowing: one per distinct problem, naming the items, e.g. predictions naming an "
        "experiment or variant that does not exist, which no analysis will count."))


class Problem(BaseModel):
    ok: bool = False
    error: str = Field(description="What was wrong, in words.")
    errors: list[dict[str, str]] = Field(default_factory=list, description="One entry per field: `field` and `message`.")


class RoleProblem(Problem):
    role: str | None = Field(description="The role the request's token carries.")
    permission: str = Field(description="The permission the route needs and that role lacks.")


class Health(BaseModel):
    ok: bool = True
    version: str


class Unauthorized(Exception):
    """A request to /v1 without a valid token: answered 401 with WWW-Authenticate."""


class RoleRefused(Exception):
    """A valid token whose role lacks the route's permission: answered 403 naming both."""

    def __init__(self, message: str, role: str | None, permission: Permission) -> None:
        super().__init__(message)
        self.role = role
        self.permission = permission


MISSING_TOKEN = ("missing bearer token: send the header 'Authorization: Bearer <token>' "
                 "(an admin creates one with `workbench tokens create --name NAME`)")
INVALID_TOKEN = ("the bearer token is not valid, has expired or has been revoked: ask an admin for a new one "
                 "(`workbench tokens create --name NAME`)")
"""One answer for unknown, forged, expired and revoked tokens: which it was is for the audit trail, not the caller."""

REFUSALS_WINDOW_S = 60.0
REFUSALS_PER_WINDOW = 100
"""Refusal events written per window in all, whatever their keys: random tokens, each its own key, stay bounded."""
_PENDING_KEYS = 10_000


class RefusalLimiter:
    """Decide which refused requests get an audit event: one per (reason, key) per window, and a cap per window.

    In memory and per process: the trail needs to show that a token or an address is being refused,
    not every attempt. Each event carries `repeats`, the refusals of its key left out since its last
    event, and `others_left_out`, those dropped by the cap, so the counts are not lost.
    """

    def __init__(self, window_s: float = REFUSALS_WINDOW_S, most: int = REFUSALS_PER_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.most = most
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], tuple[float, int]] = {}
        self._window_start = clock()
        self._admitted = 0
        self._left_out = 0

    def admit(self, reason: str, key: str) -> dict[str, int] | None:
        """Return the counts to record with an event for this refusal, or None when it should not be recorded."""
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self.window_s:
                self._new_window(now)
            wanted = (reason, key)
            last = self._last.get(wanted)
            if last is not None and now - last[0] < self.window_s:
                self._last[wanted] = (last[0], last[1] + 1)
                return None
            if self._admitted >= self.most:
                self._left_out += 1
                return None
            self._admitted += 1
            self._last[wanted] = (now, 0)
            counts = {"repeats": last[1] if last else 0, "others_left_out": self._left_out}
            self._left_out = 0
            return counts

    def _new_window(self, now: float) -> None:
        self._window_start = now
        self._admitted = 0
        # Keys quiet for a window are forgotten unless their repeats are still to be reported.
        kept = {k: v for k, v in self._last.items() if now - v[0] < self.window_s or v[1] > 0}
        if len(kept) > _PENDING_KEYS:
            kept = dict(sorted(kept.items(), key=lambda item: item[1][0])[-_PENDING_KEYS:])
        self._last = kept


@dataclass(frozen=True)
class Caller:
    """Who a request acts as: its token and that token's owner with the token's role."""

    token: TokenRow
    actor: Actor


_bearer = HTTPBearer(auto_error=False, description="A token from `workbench tokens create`.")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refused(request: Request, actor: Actor, action: str, target: str, *, reason: str, key: str,
             **detail: Any) -> None:
    """Record a refused request, unless one like it (same reason and key) was recorded within the window."""
    counts = request.app.state.refusals.admit(reason, key)
    if counts is None:
        return
    api_tokens.record_refusal(request.app.state.store, actor, action, target, reason=reason, client=_client(request),
                              path=request.url.path, **detail, **{k: v for k, v in counts.items() if v})


def authorised(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
    """Return who the request's token acts as, or refuse the request with 401 (and say so in the trail)."""
    stranger = NOBODY.model_copy(update={"via": "token"})
    if credentials is None:
        client = _client(request)
        _refused(request, stranger, "token.use", f"client:{client}", reason="missing", key=client)
        raise Unauthorized(MISSING_TOKEN)
    presented = credentials.credentials
    checked = api_tokens.check(request.app.state.store, presented)
    if checked.valid is not None:
        return Caller(checked.valid, api_tokens.actor_of(checked.valid))
    assert checked.reason is not None
    ours = presented.startswith(api_tokens.TOKEN_PREFIX)
    prefix = presented[:api_tokens.PREFIX_CHARS] if ours else ""
    named = checked.named
    actor = api_tokens.actor_of(named) if named is not None and checked.reason != "forged" else stranger
    target = f"token:{named.name}" if named is not None else f"client:{_client(request)}"
    # Only a workbench token's clear prefix is kept: anything else sent by mistake may be another system's secret.
    # An unknown token's prefix is the caller's own invention: keyed by it, a flood of made-up tokens would
    # each get an event and use up the window's cap, hiding the forged tries at a real token behind them.
    key = prefix if prefix and named is not None else _client(request)
    _refused(request, actor, "token.use", target, reason=checked.reason, key=key,
             **({"prefix": prefix} if prefix else {}))
    raise Unauthorized(INVALID_TOKEN)


def permitted(permission: Permission, action: str) -> Callable[..., Caller]:
    """A dependency: the request's caller, when its token's role has `permission`; else 403 (and the trail)."""

    def check(request: Request, caller: Annotated[Caller, Depends(authorised)]) -> Caller:
        if caller.actor.can(permission):
            return caller
        role = caller.actor.role.value if caller.actor.role else None
        _refused(request, caller.actor, action, f"token:{caller.token.name}", reason=f"needs {permission.value}",
                 key=caller.token.prefix)
        raise RoleRefused(
            f"token {caller.token.name!r} acts as {caller.actor.email} with role {role or 'none'}, which may not "
            f"{permission.value} ({action}); ask an admin for a token with a role that may "
            f"(e.g. `workbench tokens create --name NAME --role engineer`)", role, permission)

    return check


Writer = Annotated[Caller, Depends(permitted(Permission.PREDICTIONS_WRITE, "predictions.ingest"))]
FeedbackWriter = Annotated[Caller, Depends(permitted(Permission.PREDICTIONS_WRITE, "feedback.add"))]
ExperimentReader = Annotated[Caller, Depends(permitted(Permission.EXPERIMENTS_READ, "experiment.assignment"))]


def read_json_body(body: bytes) -> Any:
    """Parse a request body as JSON, turning every way it can fail into a `json.JSONDecodeError` that says why.

    FastAPI answers a JSONDecodeError with our 422, but any other parsing error (bytes that are not
    UTF-8, nesting deeper than the parser's recursion limit, an integer past Python's 4,300-digit
    limit) with a bare 400 of its own; here each becomes a JSONDecodeError naming the problem and where.
    """
    encoding = json.detect_encoding(body)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        raise json.JSONDecodeError(f"not valid {name} at byte {exc.start + 1}, {exc.reason}; send "
                                   "JSON encoded as UTF-8", "", 0) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply: lists or objects inside each other past what the "
                                   "parser reads, where a request needs 4 levels at most", "", 0) from None
    except ValueError as exc:
        if "digits" not in str(exc):
            raise json.JSONDecodeError(f"could not be read: {exc}", "", 0) from None
        most = sys.get_int_max_str_digits()
        long_number = re.search(rf"\d{{{most + 1},}}", text)
        at = f" at character {long_number.start() + 1}" if long_number else ""
        raise json.JSONDecodeError(f"number too long{at}: integers are read up to {most:,} "
                                   "digits, and no field takes one anywhere near that long", "", 0) from None


class _JSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = read_json_body(await self.body())
        return self._json


class JSONRoute(APIRoute):
    """A route whose JSON body is read by `read_json_body`, so every malformed body gets the documented 422."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_JSONRequest(request.scope, request.receive))

        return handle


def _problem(status: int, message: str, errors: list[dict[str, str]] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(Problem(error=message, errors=errors or []).model_dump(), status_code=status, headers=headers)


class BodyLimit:
    """Refuse a request body over `max_bytes` with 413: by its Content-Length at once, else while it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    # Answer now and tell the app the client has gone: FastAPI turns any error raised
                    # while it reads a body into its own 400, so raising here would not reach us.
                    refused = True
                    await self._too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app answers after it is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            if not refused:
                raise

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _problem(413, f"the request body is larger than {self.max_bytes:,} bytes: send at most "
                                 f"{MAX_BATCH:,} predictions per request, in smaller batches")
        await response(scope, receive, send)


def create_app(store: Store, *, max_body_bytes: int = MAX_BODY_BYTES,
               refusals: RefusalLimiter | None = None) -> FastAPI:
    """Build the ingest API over `store`; `refusals` decides which refused requests reach the audit trail."""
    app = FastAPI(
        title="Fine-Tuning Workbench ingest API",
        version=workbench.__version__,
        description="Send production predictions and feedback to the workbench. Authenticate with "
                    "`Authorization: Bearer <token>`; create a token with `workbench tokens create --name NAME`.",
        docs_url=None,
        redoc_url=None,
    )
    app.router.route_class = JSONRoute
    app.state.store = store
    app.state.refusals = refusals or RefusalLimiter()
    errors = {400: {"model": Problem}, 401: {"model": Problem}, 403: {"model": RoleProblem}, 413: {"model": Problem},
              422: {"model": Problem}, 503: {"model": Problem}}

    @app.get("/v1/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Say the API is up (no token needed)."""
        return Health(version=workbench.__version__)

    @app.post("/v1/predictions", response_model=Stored, status_code=201, responses=errors, tags=["ingest"])
    def post_predictions(body: PredictionsBody, caller: Writer) -> Stored:
        """Store one prediction, a list of them, or `{"predictions": [...]}` (up to 1,000 per request).

        Needs a token whose role may write predictions (engineer or admin)."""
        with access.acting_as(caller.actor):
            stored = svc.ingest_with_warnings(store, as_list(body), source=Source.API)  # priced from the price table
        return Stored(count=len(stored.ids), ids=stored.ids, warnings=stored.warnings)

    @app.post("/v1/feedback", response_model=Stored, status_code=201, responses=errors, tags=["ingest"])
    def post_feedback(body: FeedbackBody, caller: FeedbackWriter) -> Stored:
        """Store feedback on predictions (by `prediction_id`) or units (by `unit_id`): one, a list, or `{"feedback": [...]}`.

        Needs a token whose role may write predictions (engineer or admin)."""
        with access.acting_as(caller.actor):
            ids = svc.add_feedback(store, as_list(body), source="api")
        return Stored(count=len(ids), ids=ids)

    @app.get("/v1/experiments/{experiment_id}/assignment", response_model=experiment_svc.Assignment,
             responses={**errors, 404: {"model": Problem}, 409: {"model": Problem}}, tags=["experiments"])
    def get_assignment(experiment_id: int, unit: Annotated[str, Query(min_length=1, max_length=500)],
                       caller: ExperimentReader) -> experiment_svc.Assignment:
        """The variant a unit (user, session) sees in a running experiment: the same on every call.

        Needs a token whose role may read experiments (engineer, PM or admin)."""
        with access.acting_as(caller.actor):
            return experiment_svc.assignment(store, experiment_id, unit)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))

    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthorized)
    async def unauthorised(_request: Request, exc: Unauthorized) -> Response:
        return _problem(401, str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RoleRefused)
    async def role_refused(_request: Request, exc: RoleRefused) -> Response:
        body = RoleProblem(error=str(exc), role=exc.role, permission=exc.permission.value)
        return JSONResponse(body.model_dump(), status_code=403)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        items = "feedback" if request.url.path.rstrip("/").endswith("/feedback") else "predictions"
        found = [_field_error(e, items) for e in exc.errors()]
        shown = "; ".join(f"{e['field']}: {e['message']}" for e in found[:5])
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        return _problem(422, f"the request was refused: {shown}{more}", found)

    @app.exception_handler(WorkbenchError)
    async def refused(_request: Request, exc: WorkbenchError) -> Response:
        if isinstance(exc, Busy):
            return _problem(503, str(exc), headers={"Retry-After": "1"})
        if isinstance(exc, Forbidden):  # the service layer's own check (it already wrote the trail)
            return _problem(403, str(exc))
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422
        named = [{"field": field, "message": str(exc)} for field in getattr(exc, "fields", [])]
        return _problem(status, str(exc), named)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        return _problem(500, f"internal error ({type(exc).__name__}); the server log has the details")


def _field_error(error: dict[str, Any], items: str = "predictions") -> dict[str, str]:
    """Name an error's field as a path into the body; `items` is what a list body holds (predictions or feedback)."""
    loc = list(error.get("loc") or [])
    root = loc.pop(0) if loc and loc[0] in ("body", "query", "path", "header") else ""
    if error.get("type") == "json_invalid":
        context = error.get("ctx") or {}
        return {"field": "body", "message": f"the body is not valid JSON ({context.get('error', 'malformed')})"}
    if root == "body" and loc and loc[0] == "list":
        prefix = items
    elif root == "body":
        prefix = ""
    else:
        prefix = root
    if error.get("type") == "missing" and not loc and root == "body":
        return {"field": "body", "message": "a JSON body is required"}
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "union_tag_invalid" or error.get("type") == "model_attributes_type":
        message = "expected a JSON object, a list of objects, or an object with one list"
    path = field_path(loc, prefix)
    return {"field": "body" if path == "(the whole body)" else path, "message": message}


def docs_page(spec: dict[str, Any]) -> str:
    """Write the OpenAPI spec as a plain HTML page: every route, its parameters, body and answers, nothing fetched."""
    def esc(value: Any) -> str:
        return html.escape(str(value))

    def schema_name(content: dict[str, Any]) -> str:
        schema = (content.get("application/json") or {}).get("schema") or {}
        ref = schema.get("$ref") or ""
        return ref.rsplit("/", 1)[-1] or schema.get("type", "")

    parts = [f"<h1>{esc(spec['info']['title'])} {esc(spec['info']['version'])}</h1>",
             f"<p>{esc(spec['info'].get('description', ''))}</p>",
             '<p>The machine-readable spec: <a href="/openapi.json">/openapi.json</a>.</p>']
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{esc(method.upper())} {esc(path)}</code></h2>")
            parts.append(f"<p>{esc(op.get('description') or op.get('summary', ''))}</p>")
            if op.get("security"):
                parts.append("<p>Needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>")
            params = op.get("parameters") or []
            if params:
                parts.append("<ul>" + "".join(
                    f"<li><code>{esc(p['name'])}</code> ({esc(p['in'])}{', required' if p.get('required') else ''})</li>"
                    for p in params) + "</ul>")
            body = (op.get("requestBody") or {}).get("content")
            if body:
                parts.append(f"<p>Body: JSON, schema <code>{esc(schema_name(body) or 'see /openapi.json')}</code>.</p>")
            answers = "".join(f"<li>{esc(code)}: {esc(r.get('description', ''))} <code>{esc(schema_name(r.get('content') or {}))}</code></li>"
                              for code, r in (op.get("responses") or {}).items())
            parts.append(f"<ul>{answers}</ul>")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        fields = schema.get("properties") or {}
        if not fields:
            continue
        parts.append(f"<h3 id='{esc(name)}'>{esc(name)}</h3><table><tr><th>field</th><th>about</th></tr>")
        needed = set(schema.get("required") or [])
        parts += [f"<tr><td><code>{esc(f)}</code>{' (required)' if f in needed else ''}</td>"
                  f"<td>{esc(p.get('description', ''))}</td></tr>" for f, p in fields.items()]
        parts.append("</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(spec['info']['title'])}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def serve(store: Store, host: str, port: int) -> None:
    """Run the API with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(store), host=host, port=port, log_level="warning", access_log=False)
