"""Import a file of training examples into a dataset, line by line, keeping the good lines.

Each line is parsed into the canonical example, scanned for PII, token-counted and checked, then
inserted in batches; each batch is one transaction, so an interrupted import leaves whole examples
only and the same file imported again adds nothing (the content hash is unique per dataset).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pydantic import BaseModel, Field

from workbench.domain.checks import derived_fields
from workbench.domain.formats import Format, FormatError, detect, is_definite, parse
from workbench.domain.records import read_records
from workbench.errors import InvalidInput
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

BATCH_SIZE = 2000
MAX_REPORTED_ERRORS = 1000

Progress = Callable[[int], None]
"""Called with the number of bytes read so far, after each batch."""


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
    warnings: list[LineIssue] = Field(default_factory=list, description="Lines imported with something worth knowing.")
    lines_read: int = 0


def import_path(store: Store, path: str | Path, name: str, fmt: Format | str | None = None, progress: Progress | None = None) -> ImportResult:
    """Import a file from disk into dataset `name` (created if new)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    with path.open("rb") as stream:
        return import_stream(store, stream, path.name, name, fmt, progress)


def import_stream(
    store: Store,
    stream: IO[bytes],
    filename: str,
    name: str,
    fmt: Format | str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import from an open binary stream (an upload, a file); see the module docstring for guarantees."""
    name = name.strip()
    if not name:
        raise InvalidInput("a dataset name is required")
    forced = _format(fmt)
    result = ImportResult(dataset=name, dataset_id=None)
    votes: Counter[Format] = Counter()
    definite: Counter[Format] = Counter()
    batch: list = []
    bytes_read = 0

    def fail(line: int, message: str) -> None:
        result.error_count += 1
        if len(result.errors) < MAX_REPORTED_ERRORS:
            result.errors.append(LineIssue(line=line, message=message))

    def flush() -> None:
        if not batch:
            return
        with store.connect() as db, db.atomic():
            if result.dataset_id is None:
                existing = dataset_rows.find_dataset(db, name)
                dataset = existing or dataset_rows.create_dataset(db, name, source_format=None)
                result.dataset_id = dataset.id
            ids, dups = example_rows.insert_examples(db, result.dataset_id, batch)
        result.imported += len(ids)
        result.duplicates += dups
        batch.clear()
        if progress:
            progress(bytes_read)

    for raw in read_records(stream, filename):
        result.lines_read += 1
        bytes_read += raw.size
        if raw.error is not None:
            fail(raw.line, raw.error)
            continue
        try:
            parsed = parse(raw.record, forced)
        except FormatError as exc:
            detected = detect(raw.record)
            hint = f" (it looks like {detected.value})" if forced and detected and detected != forced else ""
            fail(raw.line, f"{exc}{hint}")
            continue
        votes[parsed.format] += 1
        if is_definite(raw.record, parsed.format):
            definite[parsed.format] += 1
        # parse() has hashed the example already; the source line is not part of the hash.
        example = parsed.example.model_copy(update={"source_line": raw.line, **derived_fields(parsed.example)})
        if len(result.warnings) < MAX_REPORTED_ERRORS:
            result.warnings += [LineIssue(line=raw.line, message=w) for w in parsed.warnings]
        batch.append(example)
        if len(batch) >= BATCH_SIZE:
            flush()
    flush()

    result.formats = {f.value: n for f, n in votes.most_common()}
    chosen = forced or _vote(votes, definite)
    result.format = chosen.value if chosen else None
    if result.dataset_id is not None:
        _finish(store, result, filename)
    elif result.lines_read == 0:
        raise InvalidInput(f"{filename}: the file holds no records")
    return result


def _finish(store: Store, result: ImportResult, filename: str) -> None:
    assert result.dataset_id is not None
    with store.connect() as db:
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
            errors=[e.model_dump() for e in result.errors],
        )
    if dataset.split_config:
        # A dataset that has been split keeps new arrivals in line with its ratios, without
        # moving anything already assigned.
        from workbench.services.splits import assign_new_examples

        assign_new_examples(store, dataset.name)


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
