"""Byte streams that fail in one known way: gzip decompression and UTF-16 re-encoding, guarded.

A truncated or corrupt `.jsonl.gz` and invalid UTF-16 part-way through a file used to surface as
`EOFError` (which click turns into a bare "Aborted!"), a zlib traceback, or a `UnicodeDecodeError`
whose offset counted from the start of the last chunk. Here every such fault becomes one
`StreamBroken`, raised only after every byte before the fault has been delivered, and carrying the
offset where the file broke, so the line readers keep what came before and say where it stopped.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from typing import IO, Any

CHUNK = 1024 * 1024


class StreamBroken(Exception):
    """The file cannot be read past `offset`; everything before it has been delivered."""

    def __init__(self, reason: str, offset: int, where: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.where = where

    def describe(self) -> str:
        """Say why and where reading stopped, for a line-level error message."""
        return f"reading stopped: {self.reason}, at byte {self.offset:,} {self.where}; nothing after it was read"


class GzipGuard(io.RawIOBase):
    """Decompress gzip, turning every decompression fault into `StreamBroken` at the decompressed offset."""

    def __init__(self, compressed: IO[bytes]) -> None:
        self._gzip = gzip.GzipFile(fileobj=compressed)  # type: ignore[arg-type]
        self._delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._gzip.read1(len(buffer))
        except EOFError as exc:
            raise StreamBroken(
                "the gzip data ends before its end-of-stream marker (the file is truncated)",
                self._delivered, "of the decompressed data",
            ) from exc
        except (zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
            raise StreamBroken(f"the gzip data is corrupt ({exc})", self._delivered, "of the decompressed data") from exc
        # read1 makes one decompression call, so the bytes before a fault are returned, not dropped
        # with the rest of a larger read.
        n = len(data)
        buffer[:n] = data
        self._delivered += n
        return n


class Reencoded(io.RawIOBase):
    """Present a UTF-16 byte stream as UTF-8, so the line readers only ever see UTF-8.

    Decoding is incremental over raw chunks so that the offset of an invalid code unit is counted
    from the start of the file; the text before it is delivered first.
    """

    def __init__(self, stream: IO[bytes], encoding: str, skip: int = 0) -> None:
        self._stream = stream
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._offset = len(stream.read(skip)) if skip else 0
        self._pending = b""
        self._broken: StreamBroken | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._broken is not None:
                raise self._broken
            if self._done:
                return 0
            self._pending = self._next_text().encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _next_text(self) -> str:
        chunk = self._stream.read(CHUNK // 2)
        final = not chunk
        held = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            joined = held + chunk
            at = self._offset - len(held) + exc.start
            self._broken = StreamBroken(f"not valid {self._encoding.upper()} ({exc.reason})", at, "of the file")
            return joined[: exc.start].decode(self._encoding, "replace")
        finally:
            self._offset += len(chunk)
        self._done = final
        return text
