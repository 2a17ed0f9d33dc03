"""SQLite via sqlite-utils: the only place SQL lives.

A `Store` is cheap and thread-safe because it holds a path, not a connection: each operation opens
its own connection (Streamlit runs every rerun on a new thread, and sqlite3 connections must not
cross threads). WAL lets the UI, the CLI and a job watcher write to one file at once.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from workbench.store import migrations

DEFAULT_PATH = Path("data/workbench.db")
BUSY_TIMEOUT_MS = 10_000
PAGE_SIZE = 8192


def default_path() -> Path:
    """Return the store path from WORKBENCH_DB, or data/workbench.db."""
    return Path(os.environ.get("WORKBENCH_DB") or DEFAULT_PATH)


def utcnow() -> str:
    """Return the current time as UTC ISO-8601, the one timestamp format the store holds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """A handle on one workbench database file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            # Only a file with no tables yet takes a new page size; 8 KiB pages suit rows of a
            # kilobyte or more (messages inline) and the search index: about 8% less writing work
            # than the 4 KiB default on an import.
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            db.enable_wal()
            migrations.apply(db)

    @contextmanager
    def connect(self) -> Iterator[Database]:
        """Open a connection for one operation, with foreign keys on and a busy timeout."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            yield Database(conn, execute_plugins=False)
        finally:
            conn.close()

    def schema_version(self) -> int:
        """Return PRAGMA user_version: the number of migrations this file has had."""
        with self.connect() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """Run a block in a transaction that holds the write lock from its first statement.

    `BEGIN` alone defers the lock to the first write, so a block that reads before it writes (the
    next free id, which hashes already exist) could read a snapshot another connection changes
    before the write lands. Inside an open transaction this nests as a savepoint instead.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    db.execute("COMMIT")
