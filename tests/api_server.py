"""The ingest API served by uvicorn on a free loopback port, in a thread: real HTTP for the API and client tests."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
import uvicorn

from workbench.api import create_app
from workbench.services import api_tokens
from workbench.store import Store
from workbench.store import predictions as prediction_rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_api(store: Store, **app_options: Any) -> Iterator[str]:
    """Serve `create_app(store)` until the block ends; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(store, **app_options), host="127.0.0.1", port=port, log_level="error",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def call(method: str, url: str, body: Any = None, *, token: str | None = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """Make one request; return (status, headers, parsed JSON body or the text)."""
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, got, text = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, got, text = exc.code, dict(exc.headers), exc.read()
    try:
        return status, got, orjson.loads(text)
    except orjson.JSONDecodeError:
        return status, got, text.decode("utf-8", "replace")


@pytest.fixture
def api(store: Store) -> Iterator[str]:
    """The API over the test's store, on a free port (import it into a test module to use it)."""
    with serve_api(store) as url:
        yield url


@pytest.fixture
def token(store: Store) -> str:
    """An engineer's token on the test's store."""
    return api_tokens.create(store, "tests").token


def stored_predictions(store: Store) -> list[prediction_rows.PredictionRow]:
    """Every stored prediction, oldest first."""
    with store.connect() as db:
        return list(reversed(prediction_rows.page(db, limit=100_000)))
