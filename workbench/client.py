"""A tiny client for the ingest API, for code running away from the workbench's machine.

    from workbench.client import Client
    client = Client("http://workbench:8765", token="wb_...")
    client.track(model_version="ft:gpt-4o-mini:acme::abc", input=q, output=a, latency_ms=412)

`track` only queues: a background thread sends a batch when `batch_size` predictions are waiting
or `flush_interval_s` has passed, and whatever is left when the program exits. A 429, a 5xx or a
connection error is retried with exponential backoff (honouring Retry-After); a batch the server
refuses (4xx) or that still fails after the retries is counted in `dropped` and logged, never
raised into the caller's request path, unless the client was made with `raise_errors=True`, in
which case `flush()` raises `DeliveryError`. Standard library only, so it installs anywhere.

Exit is bounded: `close()` (run at interpreter exit too) sends what is queued within
`close_timeout_s` (10 s by default); a retry wait, Retry-After included, is cut to the time left,
and whatever is still unsent at the deadline is dropped with one warning line on stderr. A process
killed by a signal (SIGTERM from a container runtime, say) does not run exit handlers, so it loses
what is queued unless its signal handler calls `close()`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("workbench.client")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CLOSE_GRACE_S = 1.0
"""How long close() waits past its deadline for the background thread to give up its send and count it."""


class DeliveryError(Exception):
    """A batch could not be delivered (refused by the server, or still failing after every retry)."""


class Client:
    """Queue predictions and feedback and send them in batches, with retries, from a background thread."""

    def __init__(self, url: str, token: str, *, batch_size: int = 500, flush_interval_s: float = 2.0,
                 max_retries: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 30.0, timeout_s: float = 10.0,
                 max_queue: int = 100_000, raise_errors: bool = False, close_timeout_s: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be 1 to 1000 (the API's limit per request)")
        self.url = url.rstrip("/")
        self._token = token
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.max_queue = max_queue
        self.raise_errors = raise_errors
        self.close_timeout_s = close_timeout_s
        self._sleep = sleep
        self._deadline: float | None = None  # monotonic time by which close() gives up; None until closing
        self.sent = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._in_flight = 0  # predictions the background thread is sending now
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="workbench-client", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def track(self, **fields: Any) -> None:
        """Queue one prediction (the API's fields); returns at once."""
        with self._lock:
            if len(self._queue) >= self.max_queue:
                self.dropped += 1
                self.last_error = f"queue full ({self.max_queue:,} waiting): the API is unreachable or too slow"
                return
            self._queue.append(fields)
            full = len(self._queue) >= self.batch_size
        if full:
            self._wake.set()

    def feedback(self, **fields: Any) -> None:
        """Send one piece of feedback now (feedback is rare; it is not batched)."""
        self._deliver("/v1/feedback", [fields])

    def flush(self) -> None:
        """Send everything queued now, in batches; raises `DeliveryError` only with `raise_errors=True`."""
        self._drain(full_only=False)

    def _drain(self, *, full_only: bool) -> None:
        while not self._past_deadline():
            with self._lock:
                if full_only and len(self._queue) < self.batch_size:
                    return
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                if threading.current_thread() is self._thread:
                    self._in_flight = len(batch)
            if not batch:
                return
            try:
                self._deliver("/v1/predictions", batch)
            finally:
                if threading.current_thread() is self._thread:
                    self._in_flight = 0

    def close(self) -> None:
        """Flush and stop the background thread, within `close_timeout_s` (also run at interpreter exit).

        What is not delivered by then is dropped, counted in `dropped`, and said in one line on stderr.
        """
        if self._closed:
            return
        self._deadline = time.monotonic() + self.close_timeout_s
        self._closed = True
        self._closing.set()
        self._wake.set()
        dropped_before = self.dropped
        self._thread.join(timeout=max(0.0, self._deadline - time.monotonic()))
        with contextlib.suppress(DeliveryError):
            self.flush()
        # The thread's own send gives up at the deadline too; a moment lets it count what it held.
        self._thread.join(timeout=CLOSE_GRACE_S)
        with self._lock:
            unsent = len(self._queue)
            self._queue.clear()
            self.dropped += unsent
            held = self._in_flight if self._thread.is_alive() else 0
        atexit.unregister(self.close)
        lost = self.dropped - dropped_before + held
        if lost:
            sys.stderr.write(f"workbench: {lost:,} prediction(s) not delivered to {self.url} within the "
                             f"{self.close_timeout_s:g} s close deadline were dropped (last error: {self.last_error})\n")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._closed:
            woken = self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._closed:
                return  # close() sends what is left
            with contextlib.suppress(DeliveryError):  # counted and logged in _deliver; the thread keeps going
                self._drain(full_only=woken)

    def _deliver(self, path: str, items: list[dict[str, Any]]) -> None:
        with self._send_lock:
            error = self._send_with_retries(path, orjson.dumps(items, option=orjson.OPT_NAIVE_UTC))
            if error is None:
                self.sent += len(items)
                return
            self.dropped += len(items)
            self.last_error = error
        if self._deadline is None:  # while closing, close() says it once for every batch lost
                log.warning("workbench: %d item(s) not delivered to %s: %s", len(items), self.url + path, error)
        if self.raise_errors:
            raise DeliveryError(error)

    def _send_with_retries(self, path: str, body: bytes) -> str | None:
        """Return None once delivered, else why not."""
        error = "not sent"
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                self._post(path, body)
                return None
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:500].decode("utf-8", "replace")
                error = f"HTTP {exc.code}: {detail}"
                if exc.code not in RETRY_STATUSES:
                    return error
                retry_after = _seconds(exc.headers.get("Retry-After"))
            except (urllib.error.URLError, OSError) as exc:
                error = f"connection failed: {getattr(exc, 'reason', exc)}"
            if attempt < self.max_retries:
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                if not self._pause(max(delay, retry_after or 0.0)):
                    return f"{error} (gave up at the close deadline)"
        return f"{error} (after {self.max_retries} retries)"

    def _pause(self, delay: float) -> bool:
        """Wait before a retry, cut short by close(); False when the close deadline leaves no time to retry."""
        end = time.monotonic() + delay
        if self._deadline is None and self._sleep is time.sleep:
            self._closing.wait(delay)  # close() sets it: what is left of the wait is then capped at the deadline
            if self._deadline is None:
                return True
        left = end - time.monotonic()
        if self._deadline is not None:
            left = min(left, self._deadline - time.monotonic())
            if left <= 0:
                return False
        if left > 0:
            self._sleep(left)
        return not self._past_deadline()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(self.url + path, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self._token}",
        })
        timeout = self.timeout_s
        if self._deadline is not None:
            timeout = max(0.1, min(timeout, self._deadline - time.monotonic()))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()


def _seconds(value: str | None) -> float | None:
    try:
        return min(60.0, float(value)) if value else None
    except ValueError:
        return None
