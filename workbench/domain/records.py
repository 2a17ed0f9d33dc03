"""Turn a byte stream (JSONL, .jsonl.gz, a JSON array, CSV) into numbered records, one at a time.

Reading is streaming end to end so that a 1 GB file imports in constant memory, and every problem
is reported against the line it came from instead of stopping the read: a bad line costs that line
only. The caller opens the stream; this module never touches the file system.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

import orjson

from workbench.errors import InvalidInput

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""A single record larger than this is rejected (with its line) rather than held in memory."""

_CHUNK = 1024 * 1024
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
    head = _peek(stream, 4096)
    if not head.strip():
        raise InvalidInput(f"{name}: the file is empty; nothing to import")
    encoding = _encoding(head)
    container = _container(head, name, encoding)
    if encoding not in ("utf-8", "utf-8-sig"):
        stream = _Reencoded(stream, encoding)
    elif encoding == "utf-8-sig":
        stream.read(3)
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
        head = _peek(decompressed, 4096)
        return _container(head, name, _encoding(head))
    finally:
        stream.seek(start)


def _decompress(stream: IO[bytes], name: str) -> IO[bytes]:
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    if _peek(buffered, 2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
    if name.endswith(".gz"):
        raise InvalidInput(f"{name}: named .gz but is not gzip-compressed")
    return buffered


def _peek(stream: IO[bytes], n: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is None:
        raise InvalidInput("the upload stream cannot be read ahead")
    data: bytes = peek(n)
    return data[:n]


def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # UTF-16 without a byte-order mark: every other byte of ASCII text is NUL.
    sample = head[:200]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4 and sample[0] != 0:
        return "utf-16-le"
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4 and sample[1] != 0:
        return "utf-16-be"
    return "utf-8"


def _container(head: bytes, name: str, encoding: str) -> Container:
    text = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")
    lowered = name.lower().removesuffix(".gz")
    if text.startswith("["):
        return Container.JSON_ARRAY
    if text.startswith("{"):
        return Container.JSONL
    if lowered.endswith(".csv") or lowered.endswith(".tsv"):
        return Container.CSV
    first_line = text.split("\n", 1)[0]
    if "," in first_line or "\t" in first_line:
        return Container.CSV
    return Container.JSONL


class _Reencoded(io.RawIOBase):
    """Present a UTF-16 byte stream as UTF-8, so the line readers only ever see UTF-8."""

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        self._text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")  # type: ignore[arg-type]
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                chunk = self._text.read(_CHUNK // 4)
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"not valid UTF-16: {exc.reason} at byte {exc.start}") from exc
            if not chunk:
                return 0
            self._pending = chunk.lstrip("\ufeff").encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def peek(self, n: int = 0) -> bytes:
        return self._pending[:n]


def _as_binary(stream: IO[bytes]) -> IO[bytes]:
    if isinstance(stream, _Reencoded):
        return io.BufferedReader(stream, buffer_size=_CHUNK)
    return stream


def _read_jsonl(stream: IO[bytes], decode: bool = True) -> Iterator[RawRecord]:
    stream = _as_binary(stream)
    line_no = 0
    while True:
        raw = stream.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            size = len(raw) + _skip_rest_of_line(stream)
            yield RawRecord(
                line_no,
                error=f"record is {size:,} bytes, over the {MAX_RECORD_BYTES // (1024 * 1024)} MB limit per record",
                size=size,
            )
            continue
        if not raw.strip():
            continue
        yield decode_line(raw, line_no) if decode else RawRecord(line_no, record=raw, size=len(raw))


def _skip_rest_of_line(stream: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = stream.readline(_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def decode_line(raw: bytes, line_no: int) -> RawRecord:
    """Decode one JSONL line, or say precisely why it is not JSON."""
    try:
        return RawRecord(line_no, record=orjson.loads(raw), size=len(raw))
    except orjson.JSONDecodeError as exc:
        return RawRecord(line_no, error=_json_error(raw, exc), size=len(raw))


def _json_error(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid UTF-8: byte 0x{raw[bad.start]:02x} at column {bad.start + 1}"
    stripped = text.strip()
    if stripped[:1] not in ("{", "["):
        shown = stripped[:30] + ("..." if len(stripped) > 30 else "")
        return f"not JSON: expected an object starting with '{{', found {shown!r}"
    if exc.pos >= len(text.rstrip()) - 1:
        return f"truncated JSON: the record ends before it is complete (column {exc.pos + 1})"
    return f"not valid JSON: {exc.msg} at column {exc.pos + 1}"


def _read_json_array(stream: IO[bytes], name: str) -> Iterator[RawRecord]:
    """Decode a top-level JSON array element by element, holding at most one element in memory."""
    reader = io.TextIOWrapper(_as_binary(stream), encoding="utf-8", errors="strict", newline="")  # type: ignore[arg-type]
    decoder = json.JSONDecoder()
    buf, pos, line, eof = "", 0, 1, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        try:
            chunk = reader.read(_CHUNK)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{name} line {line}: not valid UTF-8 ({exc.reason})") from exc
        if not chunk:
            eof = True
            return False
        buf = buf[pos:] + chunk
        pos = 0
        return True

    def skip_ws() -> None:
        nonlocal pos, line
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n\ufeff":
                line += buf[pos] == "\n"
                pos += 1
            if pos < len(buf) or not fill():
                return

    fill()
    skip_ws()
    if pos >= len(buf) or buf[pos] != "[":
        raise InvalidInput(f"{name} line {line}: expected a JSON array starting with '['")
    pos += 1
    index = 0
    while True:
        skip_ws()
        if pos >= len(buf):
            yield RawRecord(line, error="truncated JSON array: the file ends before the closing ']'")
            return
        if buf[pos] == "]":
            return
        if index and buf[pos] == ",":
            pos += 1
            skip_ws()
        elif index:
            yield RawRecord(line, error=f"expected ',' or ']' after item {index}, found {buf[pos]!r}")
            return
        start_line = line
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if eof or len(buf) - pos > MAX_RECORD_BYTES:
                    reason = "truncated JSON" if eof else "record over the size limit"
                    yield RawRecord(start_line, error=f"{reason}: item {index + 1}: {exc.msg}")
                    return
                fill()
        line += buf.count("\n", pos, end)
        yield RawRecord(start_line, record=value, size=end - pos)
        pos = end
        index += 1


def _read_csv(stream: IO[bytes], name: str) -> Iterator[RawRecord]:
    text = io.TextIOWrapper(_as_binary(stream), encoding="utf-8", errors="strict", newline="")  # type: ignore[arg-type]
    sample = text.readline()
    dialect: type[csv.Dialect] = csv.excel_tab if sample.count("\t") > sample.count(",") else csv.excel
    reader = csv.DictReader(_chain_first(sample, text), dialect=dialect)
    columns = {c.strip().lower() for c in (reader.fieldnames or []) if c}
    shape = next((shape for needed, shape in _CSV_SHAPES if needed <= columns), None)
    if shape is None:
        found = ", ".join(sorted(columns)) or "none"
        raise InvalidInput(
            f"{name} line 1: CSV header has columns {found}; expected 'user' + 'assistant' (optional 'system'), "
            "'prompt' + 'completion', or 'instruction' + 'output' (optional 'input')"
        )
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (UnicodeDecodeError, csv.Error) as exc:
            yield RawRecord(reader.line_num + 1, error=f"unreadable CSV row: {exc}")
            return
        normalised = {(k or "").strip().lower(): v for k, v in row.items() if k is not None}
        if None in row:
            yield RawRecord(reader.line_num, error="row has more cells than the header has columns")
            continue
        yield RawRecord(reader.line_num, record=_csv_record(normalised, shape), size=sum(len(v or "") for v in row.values()))


def _chain_first(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from rest


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
