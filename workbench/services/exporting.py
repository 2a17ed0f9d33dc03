"""Write a dataset, a split or a frozen version out in any format, PII scrubbed unless asked not to."""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import orjson
from pydantic import BaseModel, Field, computed_field

from workbench.domain.access import Permission
from workbench.domain.example import Example, Split
from workbench.domain.filters import ExampleFilter
from workbench.domain.formats import Format, Loss, render
from workbench.domain.pii import scrub_example
from workbench.domain.progress import Progress
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store import versions as version_rows


class LossyExample(BaseModel):
    """One example the conversion could not carry whole: where it came from, and what it lost, by field."""

    example_id: int | None
    source_line: int | None = Field(default=None, description="Line of the imported file the example came from.")
    lost: list[Loss] = Field(description="Each field the target could not hold, and why.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def losses(self) -> list[str]:
        """The losses as readable lines, '<field>: <reason>'."""
        return [str(loss) for loss in self.lost]


class ExportResult(BaseModel):
    dataset: str
    format: Format
    version: str | None = None
    split: str | None = None
    written: int = 0
    scrubbed: int = Field(default=0, description="Examples whose PII was replaced by placeholders.")
    lossy: list[LossyExample] = Field(
        default_factory=list,
        description="Examples the conversion could not carry whole, and why: the first `LOSSY_SAMPLE` of them (`lossy_count` counts them all).",
    )
    lossy_count: int = Field(default=0, description="Examples the conversion could not carry whole.")
    lost_fields: dict[str, int] = Field(
        default_factory=dict,
        description="How many examples lost each field, turn numbers left out ('messages[*].tool_calls': 12).",
    )
    path: str | None = None


_INDEX = re.compile(r"\[\d+\]")
LOSSY_SAMPLE = 200
"""Lossy examples an export lists one by one (the first ones written); `lost_fields` and `lossy_count` cover all."""


def source_examples(
    store: Store,
    dataset: str,
    *,
    version: str | None = None,
    split: Split | str | None = None,
    on_count: Callable[[int], None] | None = None,
) -> Iterator[Example]:
    """Yield the examples of a dataset, or of a frozen version, optionally one split only.

    `on_count(n)` is told how many there are before the first one comes.
    """
    chosen = Split(split) if split else None
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        version_id = version_rows.get_version(db, dataset_id, version).id if version else None
        if on_count is not None:
            counts = version_rows.split_counts(db, dataset_id, version_id)
            on_count(counts.get(chosen.value, 0) if chosen else sum(counts.values()))
        if version_id is not None:
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
    progress: Progress | None = None,
) -> ExportResult:
    """Write one JSON line per example to `out` in format `fmt`; return counts and a sample of per-example losses.

    Streams: memory holds one batch of examples and the first `LOSSY_SAMPLE` lossy ones, whatever
    the size. A `Cancelled` stops it part-way (`export_path` then removes its unfinished file).

    Needs `datasets.read`, not `datasets.write`: an export changes nothing in the store, and writes
    only what a reader can already page through on the Browse tab (PII scrubbed by default), so
    refusing it would protect nothing and only make a reviewer or PM copy pages by hand.
    """
    access.require(store, Permission.DATASETS_READ, action="dataset.export", target=f"dataset:{dataset}")
    progress = progress or Progress()
    try:
        fmt = Format(fmt)
    except ValueError as exc:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(f.value for f in Format)}") from exc
    result = ExportResult(dataset=dataset, format=fmt, version=version, split=Split(split).value if split else None)
    for example in source_examples(
        store, dataset, version=version, split=split, on_count=lambda total: progress.stage("exporting", total)
    ):
        if scrub_pii and example.pii:
            example = scrub_example(example)
            result.scrubbed += 1
        rendered = render(example, fmt, list_metadata=True)
        if rendered.lost:
            result.lossy_count += 1
            if len(result.lossy) < LOSSY_SAMPLE:
                result.lossy.append(LossyExample(example_id=example.id, source_line=example.source_line, lost=rendered.lost))
            for path in {_INDEX.sub("[*]", loss.field) for loss in rendered.lost}:
                result.lost_fields[path] = result.lost_fields.get(path, 0) + 1
        out.write(orjson.dumps(rendered.record) + b"\n")
        result.written += 1
        progress.advance()
    if result.written == 0:
        where = f"split {result.split!r} of " if result.split else ""
        raise InvalidInput(f"{where}{'version ' + version + ' of ' if version else ''}dataset {dataset!r} has no examples to export")
    progress.finish()
    return result


def export_path(
    store: Store, dataset: str, fmt: Format | str, path: str | Path, *, progress: Progress | None = None, **options: object
) -> ExportResult:
    """Export to a file, written beside its destination and renamed into place so a failure leaves no half file.

    Only a new path or an existing regular file is written: a symlink, named pipe, device or folder
    is refused, because renaming over one would silently replace it with a plain file. Any failure
    while writing (disk full, no permission) removes the temporary file and says what went wrong;
    so does a `Cancelled`, which leaves the destination as it was.
    """
    target, mode = _export_target(path)
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".partial")
    except OSError as exc:
        raise InvalidInput(f"{target}: cannot write into {directory} ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(handle, "wb") as out:
            result = export_stream(store, dataset, fmt, out, progress=progress, **options)  # type: ignore[arg-type]
            out.flush()
            os.fsync(out.fileno())  # a full disk can show only here; find out before the rename
        os.chmod(temp, mode)
        os.replace(temp, target)
    except OSError as exc:
        raise InvalidInput(f"{target}: the export could not be written ({exc.strerror or exc}); no file was left behind") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    result.path = str(target)
    return result


def _export_target(path: str | Path) -> tuple[Path, int]:
    """Check the destination is a new path or a regular file; return it with the mode the file gets."""
    if not str(path).strip():
        raise InvalidInput("the output path is empty; name the file to write (for example --out train.jsonl)")
    target = Path(path)
    try:
        found = os.lstat(target)
    except FileNotFoundError:
        return target, 0o666 & ~_umask()
    except OSError as exc:
        raise InvalidInput(f"{target}: cannot use this output path ({exc.strerror or exc})") from exc
    if stat.S_ISREG(found.st_mode):
        return target, stat.S_IMODE(found.st_mode)
    kinds = [
        (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"),
    ]
    kind = next((label for test, label in kinds if test(found.st_mode)), "not a regular file")
    raise InvalidInput(f"{target} is {kind}; an export only writes a new file or replaces a regular file")


def _umask() -> int:
    """Read the process umask without setting it (os.umask can only be read by changing it, process-wide)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def export_bytes(store: Store, dataset: str, fmt: Format | str, **options: object) -> tuple[bytes, ExportResult]:
    """Export into memory, for a browser download."""
    buffer = io.BytesIO()
    result = export_stream(store, dataset, fmt, buffer, **options)  # type: ignore[arg-type]
    return buffer.getvalue(), result
