"""SQLite via sqlite-utils: the only place SQL lives.

A `Store` is cheap and thread-safe because it holds a path, not a connection: each operation opens
its own connection (Streamlit runs every rerun on a new thread, and sqlite3 connections must not
cross threads). WAL lets readers carry on while one connection writes.

Reading and writing go two ways, and only two:

    with store.connect() as db:   # reads: never blocked by a writer (WAL)
        ...
    with store.write() as db:     # every write: the pages, the CLI, imports, the job watcher, the API
        ...

`store.write()` opens `BEGIN IMMEDIATE`, which takes the write lock before the block's first
statement. A block that reads and then writes (a bulk action's matching ids, the rows an undo puts
back, the next free id) therefore reads the store as it is under the lock, and a second writer
waits, up to the busy timeout, instead of failing. A deferred `BEGIN` (what `db.atomic()` opens
when no transaction is open) would read first and ask for the lock later; if another connection
commits in between, SQLite refuses the write at once with "database is locked", and no timeout
helps. Store functions that write several statements use `write_transaction(db)`, which is this
same immediate transaction when called on its own and a savepoint inside `store.write()`.

Keep write blocks short: every other writer waits for them. Heavy work (parsing, scanning for PII,
counting tokens) belongs before the block, not inside it. When the lock stays taken longer than
the busy timeout (`WORKBENCH_BUSY_TIMEOUT` seconds, default 10), the write raises `Busy`, whose
message the pages and the CLI show as it is; the transaction is rolled back, so nothing is left
half-written.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from workbench.errors import Busy, InvalidInput

DEFAULT_PATH = Path("data/workbench.db")
BUSY_TIMEOUT_S = 10.0
"""How long a writer waits for another to finish before giving up with `Busy`. Far above the
longest write the workbench makes (an import's transaction, well under a second), so a timeout
means something is wrong: a stuck process or a tool holding the file."""
PAGE_SIZE = 8192


def default_path() -> Path:
    """Return the store path from WORKBENCH_DB, or data/workbench.db."""
    return Path(os.environ.get("WORKBENCH_DB") or DEFAULT_PATH)


def default_busy_timeout() -> float:
    """Return the busy timeout in seconds from WORKBENCH_BUSY_TIMEOUT, or `BUSY_TIMEOUT_S`."""
    raw = os.environ.get("WORKBENCH_BUSY_TIMEOUT") or ""
    if not raw.strip():
        return BUSY_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise InvalidInput(f"WORKBENCH_BUSY_TIMEOUT must be a number of seconds from 0 to 3600, not {raw!r}")
    return seconds


def utcnow() -> str:
    """Return the current time as UTC ISO-8601, the one timestamp format the store holds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def is_busy(exc: BaseException) -> bool:
    """Say whether a sqlite3 error means another connection holds a lock this one needed."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == sqlite3.SQLITE_BUSY
    return "database is locked" in str(exc)


class Store:
    """A handle on one workbench database file.

    Opening one is cheap when the file is up to date (one read of `PRAGMA user_version`), because
    every page and CLI call opens it; only a new or older file takes the write lock to migrate.
    """

    def __init__(self, path: str | Path | None = None, *, busy_timeout: float | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.busy_timeout = default_busy_timeout() if busy_timeout is None else busy_timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        from workbench.store import migrations  # here, not above: migrations uses write_transaction

        with self.connect() as db:
            if not migrations.is_current(db):
                # Only a file with no tables yet takes a new page size (a no-op otherwise, so two
                # processes creating the file at once cannot disagree); 8 KiB pages suit rows of
                # a kilobyte or more (messages inline) and the search index: about 8% less
                # writing work than the 4 KiB default on an import.
                db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                migrations.apply(db, timeout=self.busy_timeout)

    @contextmanager
    def connect(self) -> Iterator[Database]:
        """Open a connection for one operation, with foreign keys on and a busy timeout.

        For reads. A write through it works but is not the way: see `write()`. A lock that stays
        taken past the timeout surfaces as `Busy` rather than a sqlite3 error.
        """
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            yield Database(conn, execute_plugins=False)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise Busy(
                    f"the store {self.path} is busy: another process has held the write lock for "
                    f"{self.busy_timeout:g} s (an import?); try again"
                ) from exc
            raise
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """Open a connection holding the write lock for one unit of work: read, check, write.

        The block commits when it ends and rolls back if it raises. Waits for another writer up to
        the busy timeout, then raises `Busy`.
        """
        with self.connect() as db, write_transaction(db):
            yield db

    def schema_version(self) -> int:
        """Return PRAGMA user_version: the number of migrations this file has had."""
        with self.connect() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"


LOCK_POLL_S = 0.002
"""How often a waiting writer retries the write lock."""


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock, retrying every `LOCK_POLL_S` up to the connection's busy timeout.

    SQLite's own busy handler backs off to one retry per 100 ms. An import commits every quarter
    second and starts its next transaction a few milliseconds later, so a label polling every
    100 ms could miss gap after gap and wait seconds; polling every 2 ms it gets the next gap.
    """
    (timeout_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
    deadline = time.monotonic() + timeout_ms / 1000
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(LOCK_POLL_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """Run a block in a transaction that holds the write lock from its first statement.

    `BEGIN` alone defers the lock to the first write, so a block that reads before it writes (the
    next free id, which hashes already exist) could read a snapshot another connection changes
    before the write lands, and then fail at once instead of waiting. Inside an open transaction
    (`store.write()`) this nests as a savepoint instead.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    _begin_immediate(db.conn)
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise
