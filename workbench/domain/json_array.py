"""Split a top-level JSON array into its elements as bytes, without parsing them.

Decoding the whole tail with `json.raw_decode` meant one bad element stopped the file: an element
over the size limit, 100,000 levels of nesting (a `RecursionError`), or one invalid UTF-8 byte
(which failed the text decoder for the whole stream). This scanner only tracks strings and bracket
depth, so it finds where each element ends whatever the element holds; each element is then decoded
on its own and a bad one costs that element only. Memory stays bounded: an element past `max_bytes`
is counted and skipped, not held.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

import orjson

from workbench.domain.byte_streams import CHUNK, StreamBroken

# Outside a string: a whole string (skipped in one C-level match), an unterminated string's opening
# quote (it continues in the next chunk), or a bracket or comma.
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{},"]', re.DOTALL)
_STRING_END = re.compile(rb'["\\]')
# Where an object element may end: a '}' followed by the ',' or ']' that separates elements.
_OBJECT_END = re.compile(rb"\}[ \t\r\n]*[,\]]")
_SPACE = b" \t\r\n"


class Element(NamedTuple):
    """One array element's bytes (None when skipped as oversized), or why the array could not go on."""

    line: int
    raw: bytes | None
    size: int
    error: str | None = None
    fatal: bool = False
    value: Any = None
    decoded: bool = False


_UNDECODED = object()
_MAX_TRIES = 64
"""Candidate ends tried before scanning exactly: each try decodes the element so far, so an element
with thousands of nested objects is scanned instead of decoded thousands of times."""


class ArrayScanner:
    """Yield the elements of a JSON array read from a UTF-8 byte stream, with their starting lines."""

    def __init__(self, stream: IO[bytes], max_bytes: int) -> None:
        self._stream = stream
        self._max = max_bytes
        self._buf = b""
        self._pos = 0
        self._base = 0  # offset in the stream of self._buf[0]
        self._line = 1
        self._eof = False
        self._read = getattr(stream, "read1", stream.read)

    def elements(self) -> Iterator[Element]:
        """Yield every element, then an error element if the array does not close properly."""
        try:
            yield from self._elements()
        except StreamBroken as exc:
            yield Element(self._line, None, 0, exc.describe(), fatal=True)

    def opens_with_bracket(self) -> bool:
        """Consume leading whitespace and the opening '['; say whether it was there."""
        self._skip_space()
        if self._pos < len(self._buf) and self._buf[self._pos : self._pos + 1] == b"[":
            self._pos += 1
            return True
        return False

    @property
    def line(self) -> int:
        return self._line

    def _elements(self) -> Iterator[Element]:
        index = 0
        while True:
            before = self._base + self._pos
            self._skip_space()
            if self._pos >= len(self._buf):
                yield Element(self._line, None, 0, "truncated JSON array: the file ends before the closing ']'", fatal=True)
                return
            if index == 0 and self._buf[self._pos : self._pos + 1] == b"]":
                self._pos += 1
                yield from self._trailing()
                return
            index += 1
            start_line = self._line
            raw, closer, value = self._element()
            size = self._base + self._pos - before
            if closer is None:
                if raw is None or not raw.strip(_SPACE):
                    yield Element(start_line, None, size, f"truncated JSON array: the file ends inside item {index:,}", fatal=True)
                    return
                yield Element(start_line, raw, size, value=value, decoded=value is not _UNDECODED)
                yield Element(self._line, None, 0, "truncated JSON array: the file ends before the closing ']'", fatal=True)
                return
            if raw is None:
                limit = f"{self._max // (1024 * 1024)} MB" if self._max >= 1024 * 1024 else f"{self._max:,} bytes"
                yield Element(start_line, None, size, f"item {index:,} is {size:,} bytes, over the {limit} limit per record")
            elif not raw.rstrip(_SPACE):
                yield Element(start_line, None, size, f"item {index:,} is empty (a stray ',')")
            else:
                yield Element(start_line, raw, size, value=value, decoded=value is not _UNDECODED)
            if closer == b"]":
                yield from self._trailing()
                return

    def _element(self) -> tuple[bytes | None, bytes | None, Any]:
        """Return one element's bytes (None if too large), the byte that closed it, and its value if decoded.

        The usual element is a valid object, and the first '}' followed by ',' or ']' at which the
        bytes so far decode is its end: an earlier '}' is inside a string or a nested value, where
        the prefix cannot be valid JSON. Trying those ends with orjson runs at C speed; anything
        else (not an object, or not valid) is scanned exactly, byte structure by byte structure.
        """
        if self._buf[self._pos : self._pos + 1] == b"{":
            found = self._decode_object()
            if found is not None:
                return found
        raw, closer = self._scan()
        return raw, closer, _UNDECODED

    def _decode_object(self) -> tuple[bytes, bytes, Any] | None:
        i = self._pos
        for _ in range(_MAX_TRIES):
            match = _OBJECT_END.search(self._buf, i)
            if match is None:
                if len(self._buf) - self._pos > self._max:
                    return None
                # A candidate may straddle the chunk boundary: look again from the last '}'.
                tail = self._buf.rfind(b"}", i)
                i = tail if tail != -1 and not self._buf[tail + 1 :].strip(_SPACE) else len(self._buf)
                offset = self._pos
                if not self._fill():
                    return None
                i -= offset
                continue
            end = match.start() + 1
            if end - self._pos > self._max:
                return None  # the exact scan counts and skips it
            raw = self._buf[self._pos : end]
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                i = end
                continue
            self._line += raw.count(b"\n") + self._buf.count(b"\n", end, match.end())
            self._pos = match.end()
            return raw, self._buf[match.end() - 1 : match.end()], value
        return None

    def _scan(self) -> tuple[bytes | None, bytes | None]:
        """Scan one element exactly up to its ',' or the array's ']' at depth 0."""
        start = self._pos
        i = start
        depth = 0
        in_string = False
        skipped = False  # part of an oversized element was already dropped from the buffer
        while True:
            buf = self._buf
            match = (_STRING_END if in_string else _TOKEN).search(buf, i)
            if match is None:
                i = len(buf)
            elif in_string:
                if buf[match.start()] == 0x22:  # '"'
                    in_string, i = False, match.end()
                elif match.start() + 1 < len(buf):
                    i = match.start() + 2  # an escaped character, whatever it is
                else:
                    i = match.start()  # a backslash at the end of the chunk: decide after the next
                    match = None
            else:
                token = match.group()
                i = match.end()
                if token == b'"':
                    in_string = True
                elif len(token) > 1:
                    pass  # a whole string
                elif token in b"[{":
                    depth += 1
                elif token in b"]}":
                    depth -= 1
                    if depth < 0 and token == b"]":
                        return self._finish(start, match.start(), i, skipped, b"]")
                    depth = max(depth, 0)
                elif depth == 0:  # a comma between elements
                    return self._finish(start, match.start(), i, skipped, b",")
            if match is None:
                keep = start
                if skipped or i - start > self._max:
                    # Too large to keep: count its lines, drop what is held, read on.
                    self._line += self._buf.count(b"\n", start, i)
                    skipped, keep = True, i
                self._buf, self._base = self._buf[keep:], self._base + keep
                self._pos, start, i = 0, 0, i - keep
                if not self._fill():
                    self._line += self._buf.count(b"\n", start, i)
                    self._pos = len(self._buf)
                    # At depth 0 the element may be whole, only the array's ']' missing.
                    whole = depth == 0 and not in_string and not skipped
                    return (self._buf[start:i] if whole else None), None

    def _finish(self, start: int, end: int, after: int, skipped: bool, closer: bytes) -> tuple[bytes | None, bytes]:
        self._line += self._buf.count(b"\n", start, end)
        self._pos = after
        if skipped or end - start > self._max:
            return None, closer
        return self._buf[start:end], closer

    def _trailing(self) -> Iterator[Element]:
        self._skip_space()
        if self._pos < len(self._buf):
            yield Element(self._line, None, 0, "the file goes on after the array's closing ']'; the rest was not read", fatal=True)

    def _skip_space(self) -> None:
        while True:
            buf = self._buf
            n = len(buf)
            while self._pos < n and buf[self._pos] in _SPACE:
                self._line += buf[self._pos] == 0x0A
                self._pos += 1
            if self._pos < n or not self._fill():
                return

    def _fill(self) -> bool:
        if self._eof:
            return False
        # read1: one read of the stream below. A plain read() gathers several and, when a later one
        # raises StreamBroken (invalid UTF-16, truncated gzip), drops the good bytes of the earlier
        # ones with it: the whole file was refused with no line, instead of keeping what came before.
        chunk = self._read(CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._base += self._pos
        self._pos = 0
        return True
