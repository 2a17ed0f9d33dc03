"""Turn a byte stream (JSONL, .jsonl.gz, a JSON array, CSV) into numbered records, one at a time.

Reading is streaming end to end so that a 1 GB file imports in constant memory, and every problem
is reported against the line it came from instead of stopping the read: a bad line costs that line
only. A fault in the file itself (truncated or corrupt gzip, invalid UTF-16) ends the read with one
last error, marked `fatal`, that names the line and byte where the file broke; every record before
it has been yielded. The caller opens the stream; this module never touches the file system.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

import orjson

from workbench.domain.byte_streams import CHUNK, GzipGuard, Reencoded, StreamBroken
from workbench.domain.json_array import ArrayScanner
from workbench.errors import InvalidInput

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""A single record larger than this is rejected (with its line) rather than held in memory."""

# The csv module refuses fields over 128 KiB by default, far below the record limit above. The limit
# is process-wide; it is only ever raised, once, on import, so nothing else reading CSV is narrowed.
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))

_MB = MAX_RECORD_BYTES // (1024 * 1024)
_MAX_DEPTH = 1024
"""orjson refuses documents nested deeper than this (https://github.com/ijl/orjson#deserialize)."""
_GZIP_MAGIC = b"\x1f\x8b"


class Container(StrEnum):
    JSONL = "jsonl"
    JSON_ARRAY = "json-array"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read, or the reason it could not be read; `line` is 1-based in the source file."""

    line: int
    record: Any = None
    error: str | None = None
    size: int = 0
    fatal: bool = False
    """Reading stopped here: the file could not be read any further (the error says where and why)."""


# CSV columns that map onto a format, checked in order; other columns become metadata.
_CSV_SHAPES: list[tuple[frozenset[str], str]] = [
    (frozenset({"user", "assistant"}), "chat"),
    (frozenset({"prompt", "completion"}), "prompt-completion"),
    (frozenset({"instruction", "output"}), "alpaca"),
]


def read_records(stream: IO[bytes], name: str = "upload", *, decode: bool = True) -> Iterator[RawRecord]:
    """Yield every record of a file with its line number, detecting compression, encoding and container.

    Raises InvalidInput only for problems with the file as a whole (empty, unreadable header);
    everything line-level is yielded as a RawRecord with `error` set. With `decode=False` JSONL lines
    come back as their raw bytes, for `decode_line` to turn into a record elsewhere (a worker process).
    """
    stream = _decompress(stream, name)
    try:
        head = _peek(stream, 4096)
    except StreamBroken as exc:
        raise InvalidInput(f"{name}: cannot be read: {exc.reason}") from exc
    if not head.strip():
        raise InvalidInput(f"{name}: the file is empty; nothing to import")
    encoding, bom = _encoding(head)
    container = _container(head, name, encoding)
    if encoding != "utf-8":
        stream = io.BufferedReader(Reencoded(stream, encoding, skip=bom), buffer_size=CHUNK)
    elif bom:
        stream.read(bom)
    if container is Container.CSV:
        yield from _read_csv(stream, name)
    elif container is Container.JSON_ARRAY:
        yield from _read_json_array(stream, name)
    else:
        yield from _read_jsonl(stream, decode)


def detect_container(stream: IO[bytes], name: str = "upload") -> Container:
    """Return the container a stream holds without consuming it (the stream must be seekable)."""
    start = stream.tell()
    try:
        decompressed = _decompress(stream, name)
        try:
            head = _peek(decompressed, 4096)
        except StreamBroken as exc:
            raise InvalidInput(f"{name}: cannot be read: {exc.reason}") from exc
        return _container(head, name, _encoding(head)[0])
    finally:
        stream.seek(start)


def _decompress(stream: IO[bytes], name: str) -> IO[bytes]:
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    if _peek(buffered, 2)[:2] == _GZIP_MAGIC:
        return io.BufferedReader(GzipGuard(buffered), buffer_size=CHUNK)
    if name.endswith(".gz"):
        raise InvalidInput(f"{name}: named .gz but is not gzip-compressed")
    return buffered


def _peek(stream: IO[bytes], n: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is None:
        raise InvalidInput("the upload stream cannot be read ahead")
    data: bytes = peek(n)
    return data[:n]


def _encoding(head: bytes) -> tuple[str, int]:
    """Return the file's encoding and the length of its byte-order mark (skipped before reading)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", len(codecs.BOM_UTF8)
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    # UTF-16 without a byte-order mark: every other byte of ASCII text is NUL.
    sample = head[:200]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4 and sample[0] != 0:
        return "utf-16-le", 0
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4 and sample[1] != 0:
        return "utf-16-be", 0
    return "utf-8", 0


def _container(head: bytes, name: str, encoding: str) -> Container:
    text = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")
    lowered = name.lower().removesuffix(".gz")
    if text.startswith("["):
        return Container.JSON_ARRAY
    if text.startswith("{"):
        return Container.JSONL
    if lowered.endswith((".csv", ".tsv")):
        return Container.CSV
    if lowered.endswith((".jsonl", ".json", ".ndjson")):
        # Named as JSON: a damaged first line (with a comma in it) is that line's error, not a CSV
        # header that rejects the whole file.
        return Container.JSONL
    first_line = text.split("\n", 1)[0]
    if "," in first_line or "\t" in first_line:
        return Container.CSV
    return Container.JSONL


def _read_jsonl(stream: IO[bytes], decode: bool = True) -> Iterator[RawRecord]:
    line_no = 0
    while True:
        try:
            raw = stream.readline(MAX_RECORD_BYTES + 1)
        except StreamBroken as exc:
            yield RawRecord(line_no + 1, error=exc.describe(), fatal=True)
            return
        if not raw:
            return
        line_no += 1
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            try:
                size = len(raw) + _skip_rest_of_line(stream)
            except StreamBroken as exc:
                yield RawRecord(line_no, error=exc.describe(), fatal=True)
                return
            yield RawRecord(line_no, error=f"record is {size:,} bytes, over the {_MB} MB limit per record", size=size)
            continue
        if not raw.strip():
            continue
        yield decode_line(raw, line_no) if decode else RawRecord(line_no, record=raw, size=len(raw))


def _skip_rest_of_line(stream: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = stream.readline(CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def decode_line(raw: bytes, line_no: int) -> RawRecord:
    """Decode one JSONL line, or say precisely why it is not JSON."""
    try:
        return RawRecord(line_no, record=orjson.loads(raw), size=len(raw))
    except orjson.JSONDecodeError as exc:
        return RawRecord(line_no, error=_json_error(raw, exc), size=len(raw))


def _json_error(raw: bytes, exc: orjson.JSONDecodeError, where: str = "column") -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid UTF-8: byte 0x{raw[bad.start]:02x} at {where} {bad.start + 1}"
    stripped = text.strip()
    if stripped[:1] not in ("{", "["):
        shown = stripped[:30] + ("..." if len(stripped) > 30 else "")
        return f"not JSON: expected an object starting with '{{', found {shown!r}"
    if "depth limit" in exc.msg or "recursion" in exc.msg:
        return f"nested too deeply: more than {_MAX_DEPTH:,} levels of arrays and objects"
    if text[: exc.pos].rstrip(" \t").endswith("\r"):
        # A raw CR cannot be inside a JSON string: this "line" is several records ended by CR alone.
        return (
            f"not valid JSON: {exc.msg} at {where} {exc.pos + 1}, after a carriage return: the lines end in CR "
            "alone (classic Mac line endings); JSON Lines needs LF or CRLF line ends"
        )
    if exc.pos >= len(text.rstrip()) - 1:
        return f"truncated JSON: the record ends before it is complete ({where} {exc.pos + 1})"
    return f"not valid JSON: {exc.msg} at {where} {exc.pos + 1}"


def _read_json_array(stream: IO[bytes], name: str) -> Iterator[RawRecord]:
    """Decode a top-level JSON array element by element, holding at most one element in memory."""
    scanner = ArrayScanner(stream, MAX_RECORD_BYTES)
    try:
        opened = scanner.opens_with_bracket()
    except StreamBroken as exc:
        raise InvalidInput(f"{name}: cannot be read: {exc.reason}") from exc
    if not opened:
        raise InvalidInput(f"{name} line {scanner.line}: expected a JSON array starting with '['")
    for element in scanner.elements():
        if element.raw is None:
            yield RawRecord(element.line, error=element.error, size=element.size, fatal=element.fatal)
            continue
        if element.decoded:
            yield RawRecord(element.line, record=element.value, size=element.size)
            continue
        try:
            record = orjson.loads(element.raw)
        except orjson.JSONDecodeError as exc:
            yield RawRecord(element.line, error=_json_error(element.raw, exc, "byte"), size=element.size)
            continue
        yield RawRecord(element.line, record=record, size=element.size)


def _read_csv(stream: IO[bytes], name: str) -> Iterator[RawRecord]:
    """Read CSV row by row; a row that cannot be read (bad bytes, a cell over the limit) costs that row only.

    Text is decoded with `surrogateescape` so one invalid UTF-8 byte is found in its row instead of
    stopping the decoder for the whole file. Each row is reported at the line it starts on.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")  # type: ignore[arg-type]
    try:
        sample = text.readline()
    except StreamBroken as exc:
        raise InvalidInput(f"{name}: cannot be read: {exc.reason}") from exc
    dialect: type[csv.Dialect] = csv.excel_tab if sample.count("\t") > sample.count(",") else csv.excel
    lines = _Lines(sample, text)
    reader = csv.reader(lines, dialect=dialect)
    header = [_printable(c.strip().lower()) for c in next(reader, [])]
    columns = {c for c in header if c}
    shape = next((shape for needed, shape in _CSV_SHAPES if needed <= columns), None)
    if shape is None:
        found = ", ".join(sorted(columns)) or "none"
        raise InvalidInput(
            f"{name} line 1: CSV header has columns {found}; expected 'user' + 'assistant' (optional 'system'), "
            "'prompt' + 'completion', or 'instruction' + 'output' (optional 'input')"
        )
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except StreamBroken as exc:
            yield RawRecord(start, error=exc.describe(), fatal=True)
            return
        except csv.Error as exc:
            yield RawRecord(start, error=_csv_error(exc))
            continue
        if not row:
            continue  # a blank line
        if lines.ended:
            # csv asked for another line inside a quoted cell and the file had none: a quote was
            # never closed, and everything after it was read as one cell. Left lenient (non-strict),
            # csv would hand that cell back as if it were whole.
            yield RawRecord(
                start,
                error=f"a quoted cell opened here is never closed: lines {start:,}-{reader.line_num:,} (the rest of "
                "the file) were read as one cell, so the row was skipped; close the quote or double it (\"\")",
            )
            return
        error = _row_error(row, header)
        size = sum(len(cell) for cell in row)
        if error is None and size > MAX_RECORD_BYTES:
            error = f"row is {size:,} characters, over the {_MB} MB limit per record"
        if error is not None:
            yield RawRecord(start, error=error, size=size)
            continue
        values: dict[str, str | None] = dict.fromkeys(header)
        values.update(zip(header, row, strict=False))
        values.pop("", None)
        yield RawRecord(start, record=_csv_record(values, shape), size=size)


def _csv_error(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a cell is over the {_MB} MB limit per record; the row was skipped"
    return f"unreadable CSV row: {exc}"


def _row_error(row: list[str], header: list[str]) -> str | None:
    if len(row) > len(header):
        return f"row has {len(row)} cells but the header has {len(header)} columns"
    for column, cell in zip(header, row, strict=False):
        try:
            cell.encode("utf-8")
        except UnicodeEncodeError as bad:
            byte = ord(cell[bad.start]) - 0xDC00
            return f"not valid UTF-8: byte 0x{byte:02x} in column {_printable(column)!r}"
    return None


def _printable(text: str) -> str:
    """Show text that may hold undecodable bytes (kept as surrogates) with those bytes escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Lines:
    """The CSV text line by line (the header line, already read, first), noting when the text ran out."""

    def __init__(self, first: str, rest: IO[str]) -> None:
        self._first: str | None = first
        self._rest = rest
        self.ended = False
        """Set when csv asked for a line past the end of the text."""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        line = self._rest.readline()
        if not line:
            self.ended = True
            raise StopIteration
        return line


def _csv_record(row: dict[str, str | None], shape: str) -> dict[str, Any]:
    used: set[str]
    if shape == "chat":
        used = {"system", "user", "assistant"}
        record: dict[str, Any] = {"messages": []}
        if row.get("system"):
            record["messages"].append({"role": "system", "content": row["system"]})
        record["messages"] += [
            {"role": "user", "content": row.get("user")},
            {"role": "assistant", "content": row.get("assistant")},
        ]
    elif shape == "prompt-completion":
        used = {"prompt", "completion"}
        record = {"prompt": row.get("prompt"), "completion": row.get("completion")}
    else:
        used = {"instruction", "input", "output"}
        record = {"instruction": row.get("instruction"), "input": row.get("input") or "", "output": row.get("output")}
    metadata: dict[str, Any] = {}
    for key, value in row.items():
        if key in used or value in (None, ""):
            continue
        if key == "metadata":
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = value
            if isinstance(parsed, dict):
                metadata.update(parsed)
                continue
        metadata[key] = value
    if metadata:
        record["metadata"] = metadata
    return record
