"""Write a dataset, a split or a frozen version out in any format, PII scrubbed unless asked not to."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
from pydantic import BaseModel, Field

from workbench.domain.example import Example, Split
from workbench.domain.filters import ExampleFilter
from workbench.domain.formats import Format, render
from workbench.domain.pii import scrub_example
from workbench.errors import InvalidInput
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store import versions as version_rows


class Loss(BaseModel):
    example_id: int | None
    source_line: int | None = None
    losses: list[str]


class ExportResult(BaseModel):
    dataset: str
    format: Format
    version: str | None = None
    split: str | None = None
    written: int = 0
    scrubbed: int = Field(default=0, description="Examples whose PII was replaced by placeholders.")
    lossy: list[Loss] = Field(default_factory=list, description="Examples the conversion could not carry whole, and why.")
    path: str | None = None


def source_examples(store: Store, dataset: str, *, version: str | None = None, split: Split | str | None = None) -> Iterator[Example]:
    """Yield the examples of a dataset, or of a frozen version, optionally one split only."""
    chosen = Split(split) if split else None
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        if version:
            version_id = version_rows.get_version(db, dataset_id, version).id
            yield from version_rows.iter_version_examples(db, version_id, chosen)
        else:
            yield from example_rows.iter_examples(db, dataset_id, ExampleFilter(split=chosen))


def export_stream(
    store: Store,
    dataset: str,
    fmt: Format | str,
    out: IO[bytes],
    *,
    version: str | None = None,
    split: Split | str | None = None,
    scrub_pii: bool = True,
) -> ExportResult:
    """Write one JSON line per example to `out` in format `fmt`; return counts and per-example losses."""
    try:
        fmt = Format(fmt)
    except ValueError as exc:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(f.value for f in Format)}") from exc
    result = ExportResult(dataset=dataset, format=fmt, version=version, split=Split(split).value if split else None)
    for example in source_examples(store, dataset, version=version, split=split):
        if scrub_pii and example.pii:
            example = scrub_example(example)
            result.scrubbed += 1
        rendered = render(example, fmt)
        if rendered.losses:
            result.lossy.append(Loss(example_id=example.id, source_line=example.source_line, losses=rendered.losses))
        out.write(orjson.dumps(rendered.record) + b"\n")
        result.written += 1
    if result.written == 0:
        where = f"split {result.split!r} of " if result.split else ""
        raise InvalidInput(f"{where}{'version ' + version + ' of ' if version else ''}dataset {dataset!r} has no examples to export")
    return result


def export_path(store: Store, dataset: str, fmt: Format | str, path: str | Path, **options: object) -> ExportResult:
    """Export to a file, written beside its destination and renamed into place so a failure leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as out:
            result = export_stream(store, dataset, fmt, out, **options)  # type: ignore[arg-type]
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    result.path = str(path)
    return result


def export_bytes(store: Store, dataset: str, fmt: Format | str, **options: object) -> tuple[bytes, ExportResult]:
    """Export into memory, for a browser download."""
    buffer = io.BytesIO()
    result = export_stream(store, dataset, fmt, buffer, **options)  # type: ignore[arg-type]
    return buffer.getvalue(), result
