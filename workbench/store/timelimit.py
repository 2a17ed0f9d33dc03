"""A time limit for the queries a user drives, so one slow filter never hangs a page.

Follows datasette's `sqlite_timelimit` (datasette/utils/__init__.py): a progress handler, called
every few hundred SQLite virtual-machine steps, checks a deadline and interrupts the statement once
it has passed. The interrupted statement fails and leaves the connection usable.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_utils import Database

from workbench.errors import QueryTooSlow

DEFAULT_LIMIT_S = 2.0
"""Long enough for every filter the search benchmark times at a million examples (count < 0.2 s),
short enough that a page never feels hung."""

_STEPS = 1000
"""Virtual-machine steps between deadline checks: about a tenth of a millisecond of work each."""


def query_time_limit() -> float:
    """Return the limit for user-driven queries, in seconds: `WORKBENCH_QUERY_TIME_LIMIT`, or 2."""
    raw = os.environ.get("WORKBENCH_QUERY_TIME_LIMIT", "").strip()
    try:
        limit = float(raw) if raw else DEFAULT_LIMIT_S
    except ValueError:
        limit = DEFAULT_LIMIT_S
    return limit if limit > 0 else DEFAULT_LIMIT_S


@contextmanager
def time_limit(db: Database, seconds: float | None = None) -> Iterator[None]:
    """Interrupt any statement on `db` still running `seconds` after the block starts; raise QueryTooSlow.

    The limit covers the whole block (a count and a page together), which is what a user waits for.
    """
    limit = query_time_limit() if seconds is None else seconds
    deadline = time.perf_counter() + limit
    # A very short limit (tests) checks on every step so the first slow statement is the one stopped.
    steps = 1 if limit <= 0.02 else _STEPS

    stopped = False

    def past_deadline() -> int:
        nonlocal stopped
        stopped = stopped or time.perf_counter() >= deadline
        return int(stopped)

    db.conn.set_progress_handler(past_deadline, steps)
    try:
        yield
    except sqlite3.OperationalError as exc:
        # Usually "interrupted"; a statement FTS5 runs inside a query reports its own failure instead
        # ("vtable constructor failed"), so what tells is whether the handler stopped one.
        if not stopped:
            raise
        raise QueryTooSlow(f"This query took longer than the {limit:g} s limit and was stopped.") from exc
    finally:
        db.conn.set_progress_handler(None, steps)
