"""Import a file of training examples into a dataset, line by line, keeping the good lines.

Each line is parsed into the canonical example, scanned for PII, token-counted and checked, then
written in short transactions (about `WRITE_SECONDS` each), so an interrupted import leaves
whole examples only and the same file imported again adds nothing (the content hash is unique per
dataset). A file that breaks part-way (truncated gzip, invalid UTF-16) keeps what was read before
the break; the result's `fault` says where it broke, and the import is logged with its report.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.access import Permission
from workbench.domain.formats import Format
from workbench.domain.progress import Cancelled
from workbench.domain.progress import Progress as ActionProgress
from workbench.domain.records import RawRecord, read_records
from workbench.domain.rows import EncodedExample
from workbench.errors import Busy, InvalidInput
from workbench.services import access
from workbench.services.preparing import Line, prepared_batches, should_parallelise
from workbench.store import Store, is_busy, write_transaction
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

BATCH_SIZE = 1000
"""Lines prepared together (in this process or handed to a worker at once)..."""
BATCH_BYTES = 4 * 1024 * 1024
"""...or fewer, once they hold this many bytes, so batches of large examples stay small in memory."""
WRITE_SECONDS = 0.25
"""Target length of one write transaction. Every other writer (a label, a bulk action, the job
watcher) waits while one runs, so transactions must be short; but each commit costs SQLite work
of its own (FTS5 writes a segment per commit, index pages are rewritten per commit): writing
100,000 examples took 14 s of CPU at 10,000 rows per commit and 25 s at 250. A fixed row count is
either slow on a slow machine or wasteful on a fast one, so the writer measures its transactions
and sizes the next one to take about this long (`_Writer`)."""
FIRST_WRITE_ROWS = 500
MIN_WRITE_ROWS = 100
WRITE_GAP_S = 0.005
"""Pause between back-to-back transactions, so a writer waiting for the lock (polling every 2 ms,
see `workbench.store.LOCK_POLL_S`) gets it between two of the import's transactions."""
MAX_WRITE_ROWS = 10_000
WRITE_BYTES = 16 * 1024 * 1024
"""Most bytes of the file held in memory waiting to be written."""
WRITE_CACHE_KIB = 16 * 1024
"""SQLite page cache for the writing connection: the unique-hash and filter indexes take random
inserts, and the default 2 MB cache turns those into page reloads. It fills as the store grows and
counts in the import's peak memory: at 64 MiB it was most of the growth from 20,000 to 100,000
examples (peak RSS 294 -> 342 MB, SQLite's own high-water mark 37 -> 66 MB), while a 2 MB cache
imported 20,000 examples no slower; pages it drops are re-read from the OS cache, not the disk."""
MAX_REPORTED_ERRORS = 1000
MAX_NAME_LENGTH = 100

Progress = Callable[[int], None]
"""Called with the number of bytes read so far, after each batch (the upload bar, `--progress` lines)."""
ImportProgress = ActionProgress | Progress
"""What an import reports to: a `workbench.domain.progress.Progress` (stage "importing", in bytes of
the file, which can also stop it) or a plain callback told the bytes read."""


class LineIssue(BaseModel):
    line: int = Field(description="1-based line (or CSV row) of the source file.")
    message: str


class ImportResult(BaseModel):
    dataset: str
    dataset_id: int | None = Field(description="None when nothing could be imported and no dataset was created.")
    imported: int = 0
    duplicates: int = Field(default=0, description="Lines whose content the dataset already held (or held twice in the file).")
    format: str | None = Field(default=None, description="The format most lines were in.")
    formats: dict[str, int] = Field(default_factory=dict, description="Lines per detected format.")
    errors: list[LineIssue] = Field(default_factory=list, description="Lines that were not imported, and why.")
    error_count: int = 0
    warnings: list[LineIssue] = Field(
        default_factory=list, description="Lines imported with something worth knowing: the first MAX_REPORTED_ERRORS notes."
    )
    warning_count: int = Field(default=0, description="Every note, listed in `warnings` or not.")
    lines_read: int = 0
    fault: LineIssue | None = Field(
        default=None,
        description="Where and why the file could not be read to its end (truncated or corrupt); the lines before it were imported.",
    )
    stopped: bool = Field(
        default=False,
        description="Stopped on request after `lines_read` lines: those were imported, the rest of the file was not read.",
    )

    @property
    def added_nothing(self) -> bool:
        """Say whether the dataset is unchanged: no line was imported or already there."""
        return self.imported == 0 and self.duplicates == 0


def import_path(
    store: Store, path: str | Path, name: str, fmt: Format | str | None = None, progress: ImportProgress | None = None
) -> ImportResult:
    """Import a file from disk into dataset `name` (created if new)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if not path.is_file():
        # Opening a named pipe would wait forever for a writer; a folder or device is not a training file.
        raise InvalidInput(f"{path}: not a regular file (a folder, named pipe or device); import reads files only")
    with path.open("rb") as stream:
        return import_stream(store, stream, path.name, name, fmt, progress, size_hint=path.stat().st_size)


def import_stream(
    store: Store,
    stream: IO[bytes],
    filename: str,
    name: str,
    fmt: Format | str | None = None,
    progress: ImportProgress | None = None,
    *,
    size_hint: int | None = None,
) -> ImportResult:
    """Import from an open binary stream (an upload, a file); see the module docstring for guarantees.

    `size_hint` (the file's size in bytes, when known) lets a large import prepare examples in a
    worker process while this one writes, and is the total a `Progress` is given. A `Cancelled`
    from it stops the import between two batches: the lines read by then are written (whole
    examples, logged as an import), the result says `stopped`, and the rest of the file is not
    read; a stop before the first batch raises `Cancelled` with nothing written. Needs
    `datasets.write`, checked before a byte is read.
    """
    from workbench.services.datasets import dataset_target

    access.require(store, Permission.DATASETS_WRITE, action="dataset.import", target=dataset_target(store, name))
    name = check_dataset_name(name)
    forced = _format(fmt)
    result = ImportResult(dataset=name, dataset_id=None)
    votes: Counter[Format] = Counter()
    definite: Counter[Format] = Counter()
    errors: list[LineIssue] = []
    warnings: list[LineIssue] = []
    lines_read = error_count = warning_count = bytes_read = 0
    parallel = should_parallelise(size_hint)

    # Per-line bookkeeping uses plain locals: this loop runs in the one process that writes, which is
    # the import's bottleneck once preparing runs in workers.
    faults: list[LineIssue] = []
    batches = _batches(read_records(stream, filename, decode=not parallel), faults)
    pending: list[EncodedExample] = []
    pending_bytes = 0
    writer = _Writer(store, result)
    report = _bytes_reporter(progress, size_hint)
    prepared_stream = prepared_batches(batches, forced, parallel=parallel)
    stopped = False
    try:
        try:
            for prepared, size in prepared_stream:
                for line, error, line_format, is_definite, line_warnings, row in prepared:
                    if error is not None:
                        error_count += 1
                        if len(errors) < MAX_REPORTED_ERRORS:
                            errors.append(LineIssue(line=line, message=error))
                        continue
                    votes[line_format] += 1  # type: ignore[index]
                    if is_definite:
                        definite[line_format] += 1  # type: ignore[index]
                    if line_warnings:
                        warning_count += len(line_warnings)
                        room = MAX_REPORTED_ERRORS - len(warnings)
                        warnings += [LineIssue(line=line, message=w) for w in line_warnings[:room]]
                    pending.append(row)  # type: ignore[arg-type]
                lines_read += len(prepared)
                bytes_read += size
                pending_bytes += size
                remaining = -1 if size_hint is None else size_hint - bytes_read
                # Near the end, write as soon as more waits than is left to read: the final transaction,
                # which nothing overlaps, stays small instead of a full transaction.
                if len(pending) >= writer.rows or pending_bytes >= WRITE_BYTES or 0 <= remaining < pending_bytes:
                    writer.write(pending)
                    pending, pending_bytes = [], 0
                if report is not None:
                    report(bytes_read)
        except Cancelled:
            # Stopped between two batches: what was read is written below, so the report's counts are
            # exactly what the dataset gained; the rest of the file is never read.
            stopped = True
        writer.write(pending)
    finally:
        prepared_stream.close()  # stops a worker at once when the import ends early (Cancelled, a failure)
        writer.close()
    if stopped and not lines_read:
        raise Cancelled()
    result.stopped = stopped
    result.fault = faults[0] if faults else None
    if result.fault is not None and result.fault not in errors:
        errors.append(result.fault)  # past the first MAX_REPORTED_ERRORS, the fault is still listed
    result.errors, result.warnings = errors, warnings
    result.error_count, result.warning_count, result.lines_read = error_count, warning_count, lines_read

    result.formats = {f.value: n for f, n in votes.most_common()}
    chosen = forced or _vote(votes, definite)
    result.format = chosen.value if chosen else None
    if result.dataset_id is None:
        # Nothing was written; an existing dataset still logs the attempt and why it added nothing.
        with store.connect() as db:
            existing = dataset_rows.find_dataset(db, result.dataset)
        result.dataset_id = existing.id if existing and result.lines_read else None
    if result.dataset_id is not None:
        # A stopped import still logs what it added and keeps a split dataset's new examples assigned;
        # that last step is not offered to the Progress again, which would only stop it half-done.
        _finish(store, result, filename, progress if isinstance(progress, ActionProgress) and not stopped else None)
    elif result.lines_read == 0:
        raise InvalidInput(f"{filename}: the file holds no records")
    return result


class _Writer:
    """Write prepared examples in transactions sized to last about `WRITE_SECONDS` each.

    One connection serves the whole import: closing the last connection to a WAL file checkpoints
    it, which a connection per transaction would pay every time. The first transaction creates the
    dataset, so a file with no good line leaves no empty dataset behind.
    """

    def __init__(self, store: Store, result: ImportResult) -> None:
        self._store = store
        self._result = result
        self._connection: contextlib.AbstractContextManager[Database] | None = None
        self._db: Database | None = None
        self.rows = FIRST_WRITE_ROWS
        self._committed_at = -1.0
        """Rows for the next transaction; adjusted after each one from how long it took."""

    def write(self, rows: list[EncodedExample]) -> None:
        """Insert `rows`, in as many transactions as keep each one short."""
        start = 0
        while start < len(rows):
            chunk = rows[start : start + self.rows]
            began = time.perf_counter()
            try:
                self._write(chunk)
            except sqlite3.OperationalError as exc:  # this connection is held open by hand, outside `connect`'s translation
                if not is_busy(exc):
                    raise
                raise Busy(
                    f"the store {self._store.path} stayed busy for {self._store.busy_timeout:g} s (another action holds its "
                    f"write lock); {self._result.imported:,} examples were imported before this; import the file again to add the rest"
                ) from exc
            start += len(chunk)
            self._resize(len(chunk), time.perf_counter() - began)

    def close(self) -> None:
        """Close the writing connection, if one was opened."""
        if self._connection is not None:
            self._connection.__exit__(None, None, None)
            self._connection = self._db = None

    def _write(self, rows: list[EncodedExample]) -> None:
        if self._db is None:
            self._connection = self._store.connect()
            self._db = self._connection.__enter__()
            self._db.execute(f"PRAGMA cache_size = -{WRITE_CACHE_KIB}")
        result = self._result
        since = time.monotonic() - self._committed_at
        if since < WRITE_GAP_S:
            time.sleep(WRITE_GAP_S - since)
        with write_transaction(self._db) as db:
            if result.dataset_id is None:
                existing = dataset_rows.find_dataset(db, result.dataset)
                result.dataset_id = (existing or dataset_rows.create_dataset(db, result.dataset)).id
            ids, dups = example_rows.insert_encoded(db, result.dataset_id, rows)
        self._committed_at = time.monotonic()
        result.imported += len(ids)
        result.duplicates += dups

    def _resize(self, rows: int, seconds: float) -> None:
        # Only a full transaction says how fast this machine writes; a short tail says little.
        if rows < self.rows or seconds <= 0:
            return
        wanted = int(rows * WRITE_SECONDS / seconds)
        # Move at most 2x per step, so one transaction slowed by a checkpoint or a busy core does
        # not swing the size.
        self.rows = max(MIN_WRITE_ROWS, min(MAX_WRITE_ROWS, self.rows * 2, max(self.rows // 2, wanted)))


def name_from_file(filename: str) -> str:
    """Return the dataset name a blank name stands for: the file's name without its extensions."""
    stem = Path(filename).name
    for suffix in (".gz", ".jsonl", ".json", ".csv", ".tsv"):
        stem = stem.removesuffix(suffix)
    return stem


def check_dataset_name(name: str) -> str:
    """Return a dataset name trimmed, or say what is wrong with it."""
    name = name.strip()
    if not name:
        raise InvalidInput("a dataset name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a dataset name may be at most {MAX_NAME_LENGTH} characters, not {len(name)}")
    # Cc covers C0, DEL and C1 (U+0085 is a line break too); Zl/Zp are Unicode's line and paragraph separators.
    bad = next((ch for ch in name if unicodedata.category(ch) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise InvalidInput(
            f"a dataset name may not contain control characters (tabs, newlines...): {name!r} has U+{ord(bad):04X}"
        )
    hidden = next((ch for ch in name if ch in _HIDDEN_IN_NAMES), None)
    if hidden is not None:
        raise InvalidInput(
            f"a dataset name may not contain invisible or text-direction characters: {ascii(name)} has U+{ord(hidden):04X}"
        )
    if all(unicodedata.category(ch) in ("Cf", "Mn", "Zs") for ch in name):
        raise InvalidInput(f"a dataset name needs a visible character: {ascii(name)} shows nothing")
    return name


_HIDDEN_IN_NAMES = frozenset("\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff")
"""Bidi controls and zero-width characters: two names that differ only by one look the same in every
list, and a right-to-left override makes a name read as something else (Unicode TR36, section 2:
https://www.unicode.org/reports/tr36/). Zero-width joiners stay allowed: scripts and emoji need them."""


def _batches(records: Iterator[RawRecord], faults: list[LineIssue] | None = None) -> Iterator[tuple[list[Line], int]]:
    """Group records into batches of plain tuples, each with the bytes it covers; note where the file broke."""
    lines: list[Line] = []
    size = 0
    for raw in records:
        if raw.fatal and faults is not None:
            faults.append(LineIssue(line=raw.line, message=raw.error or "the file could not be read further"))
        lines.append((raw.line, raw.record, raw.error))
        size += raw.size
        if len(lines) >= BATCH_SIZE or size >= BATCH_BYTES:
            yield lines, size
            lines, size = [], 0
    if lines:
        yield lines, size


def _bytes_reporter(progress: ImportProgress | None, size_hint: int | None) -> Progress | None:
    """Turn what an import reports to into a callback told the bytes read so far."""
    if not isinstance(progress, ActionProgress):
        return progress
    action = progress
    action.stage("importing", size_hint or 0, "bytes")
    reported = 0

    def advance(bytes_read: int) -> None:
        nonlocal reported
        action.advance(bytes_read - reported)
        reported = bytes_read

    return advance


def _finish(store: Store, result: ImportResult, filename: str, progress: ActionProgress | None = None) -> None:
    assert result.dataset_id is not None
    with store.write() as db:
        dataset = dataset_rows.get_dataset(db, result.dataset_id)
        if dataset.source_format is None and result.format:
            dataset_rows.touch_dataset(db, dataset.id, source_format=result.format)
        else:
            dataset_rows.touch_dataset(db, dataset.id)
        dataset_rows.record_import(
            db,
            dataset.id,
            filename=filename,
            fmt=result.format,
            imported=result.imported,
            duplicates=result.duplicates,
            errors=[e.model_dump() for e in _logged_errors(result)],
            error_count=result.error_count,
        )
        access.audit(db, "dataset.import", f"dataset:{dataset.id}", file=filename, format=result.format,
                     imported=result.imported, duplicates=result.duplicates, errors=result.error_count,
                     stopped=result.stopped)
    if dataset.split_config:
        # A dataset that has been split keeps new arrivals in line with its ratios, without
        # moving anything already assigned.
        from workbench.services.splits import assign_new_examples

        assign_new_examples(store, dataset.name, progress=progress)


def _logged_errors(result: ImportResult) -> list[LineIssue]:
    """The errors the import log keeps: the first MAX_REPORTED_ERRORS, the file's fault always among them."""
    if result.fault is None or len(result.errors) <= MAX_REPORTED_ERRORS:
        return result.errors[:MAX_REPORTED_ERRORS]
    return [*result.errors[: MAX_REPORTED_ERRORS - 1], result.fault]


def _vote(votes: Counter[Format], definite: Counter[Format]) -> Format | None:
    """Pick the file's format: the most common unambiguous one, else the most common overall."""
    if definite:
        return definite.most_common(1)[0][0]
    if votes:
        return votes.most_common(1)[0][0]
    return None


def _format(fmt: Format | str | None) -> Format | None:
    if fmt is None or fmt == "auto":
        return None
    try:
        return Format(fmt)
    except ValueError as exc:
        choices = ", ".join(["auto", *(f.value for f in Format)])
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {choices}") from exc
