"""The HTTP client: batching by size, time and exit; retries on 429/5xx; never raising into the caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from tests.api_server import free_port, serve_api
from workbench.client import Client, DeliveryError
from workbench.services import api_tokens
from workbench.store import Store
from workbench.store import predictions as rows


class Double:
    """A local HTTP server answering each POST with the next scripted status (201 once the script runs out)."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[list[dict[str, Any]]] = []
        self.auth: list[str] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                double.auth.append(self.headers.get("Authorization", ""))
                status = double.script.pop(0) if double.script else 201
                if status == 201:
                    double.received.append(orjson.loads(body))
                answer = orjson.dumps({"ok": status == 201})
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def double() -> Iterator[Double]:
    server = Double()
    yield server
    server.close()


def _client(url: str, **options: Any) -> Client:
    defaults: dict[str, Any] = {"batch_size": 10, "flush_interval_s": 60.0, "backoff_s": 0.001, "sleep": lambda _s: None}
    return Client(url, token="wb_test", **{**defaults, **options})


def _wait(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_full_batch_is_sent_at_once_and_the_rest_on_close(double: Double) -> None:
    client = _client(double.url)
    for i in range(25):
        client.track(model_version="m", input=str(i))
    _wait(lambda: len(double.received) >= 2)
    assert [len(b) for b in double.received] == [10, 10]
    client.close()
    assert [len(b) for b in double.received] == [10, 10, 5]
    assert [p["input"] for b in double.received for p in b] == [str(i) for i in range(25)]
    assert client.sent == 25 and client.dropped == 0
    assert set(double.auth) == {"Bearer wb_test"}


def test_a_partial_batch_is_sent_after_the_interval(double: Double) -> None:
    client = _client(double.url, flush_interval_s=0.05)
    client.track(model_version="m")
    _wait(lambda: len(double.received) == 1)
    client.close()


@pytest.mark.parametrize("failures", [[503], [503, 502, 429], [500, 504]])
def test_retryable_failures_are_retried_until_delivered(double: Double, failures: list[int]) -> None:
    double.script = list(failures)
    client = _client(double.url)
    client.track(model_version="m")
    client.flush()
    assert len(double.received) == 1 and client.sent == 1 and client.dropped == 0
    assert len(double.auth) == len(failures) + 1
    client.close()


def test_backoff_grows_and_gives_up_after_max_retries_without_raising(double: Double) -> None:
    double.script = [503] * 10
    slept: list[float] = []
    client = _client(double.url, max_retries=3, backoff_s=1.0, sleep=slept.append)
    client.track(model_version="m")
    client.flush()  # no exception: the caller's request path is never broken
    assert client.dropped == 1 and client.sent == 0 and "503" in (client.last_error or "")
    assert len(slept) == 3 and slept[0] < slept[1] < slept[2]
    client.close()


def test_a_refused_batch_is_not_retried_and_can_raise_when_asked(double: Double) -> None:
    double.script = [422]
    client = _client(double.url, raise_errors=True)
    client.track(model_version="m")
    with pytest.raises(DeliveryError, match="HTTP 422"):
        client.flush()
    assert len(double.auth) == 1 and client.dropped == 1
    client.close()


def test_an_unreachable_server_is_retried_then_counted(double: Double) -> None:
    client = _client(f"http://127.0.0.1:{free_port()}", max_retries=2)
    client.track(model_version="m")
    client.flush()
    assert client.dropped == 1 and "connection failed" in (client.last_error or "")
    client.close()


def test_the_client_delivers_to_the_real_api(store: Store) -> None:
    token = api_tokens.create(store, "client").token
    with serve_api(store) as url:
        with Client(url, token=token, batch_size=50, flush_interval_s=60) as client:
            for i in range(120):
                client.track(model_version="m", input=str(i), latency_ms=i)
        assert client.sent == 120 and client.dropped == 0
        (pid,) = [r.id for r in _rows(store) if r.input == "7"]
        feedback = Client(url, token=token, raise_errors=True)
        feedback.feedback(prediction_id=pid, rating=4)
        feedback.close()
    assert sorted(int(r.input or 0) for r in _rows(store)) == list(range(120))
    with store.connect() as db:
        assert rows.feedback_for(db, prediction_id=pid)[0].rating == 4


def _rows(store: Store) -> list[rows.PredictionRow]:
    with store.connect() as db:
        return rows.page(db, limit=1000)


class _AlwaysBusy:
    """A server answering every POST with 503 and `Retry-After: 60`: a storm a client must not wait out at exit."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(503)
                self.send_header("Retry-After", "60")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_close_gives_up_at_its_deadline_during_a_retry_after_storm(capsys: pytest.CaptureFixture[str]) -> None:
    busy = _AlwaysBusy()
    try:
        client = Client(busy.url, token="wb_test", flush_interval_s=0.05, close_timeout_s=1.0)
        client.track(model_version="m")
        time.sleep(0.3)  # the background thread is now waiting out a Retry-After of 60 s
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 4
    finally:
        busy.server.shutdown()
        busy.server.server_close()
    assert client.dropped == 1 and client.sent == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "1 prediction(s)" in lines[0] and "close deadline" in lines[0]


def test_close_with_the_server_down_drops_the_queue_at_the_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", token="wb_test", flush_interval_s=60.0, close_timeout_s=1.0)
    for i in range(1500):
        client.track(model_version="m", input=str(i))
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 4
    assert client.dropped == 1500 and client.sent == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "1,500 prediction(s)" in lines[0]


def test_a_retry_after_wait_is_cut_to_the_close_deadline(double: Double) -> None:
    double.script = [429]
    slept: list[float] = []
    client = _client(double.url, close_timeout_s=5.0, sleep=slept.append)
    client.track(model_version="m")
    client.close()
    assert client.sent == 1 and all(s <= 5.0 for s in slept)
