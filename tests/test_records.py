"""Reading files: containers, compression, encodings, and a precise message for every broken line."""

from __future__ import annotations

import codecs
import gzip
import io

import orjson
import pytest

from workbench.domain.records import MAX_RECORD_BYTES, Container, detect_container, read_records
from workbench.errors import InvalidInput

LINE = b'{"prompt": "caf\xc3\xa9", "completion": "ok"}'


def records(data: bytes, name: str = "data.jsonl") -> list:
    return list(read_records(io.BytesIO(data), name))


def test_jsonl_lines_are_numbered_and_blank_lines_skipped() -> None:
    got = records(LINE + b"\n\n" + LINE + b"\n")
    assert [(r.line, r.record["prompt"]) for r in got] == [(1, "café"), (3, "café")]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (LINE + b"\nnot json at all\n", 2, "not JSON: expected an object starting with '{'"),
        (LINE + b'\n{"prompt": "p", "completion": "c"', 2, "truncated JSON"),
        (LINE + b'\n{"prompt": "p" "completion": "c"}\n', 2, "not valid JSON"),
        (b'{"prompt": "\xff\xfe bad", "completion": "c"}\n', 1, "not valid UTF-8: byte 0xff at column 13"),
    ],
)
def test_bad_lines_are_reported_with_their_line_and_reading_continues(data: bytes, line: int, message: str) -> None:
    got = records(data)
    bad = [r for r in got if r.error]
    assert len(bad) == 1
    assert bad[0].line == line
    assert message in bad[0].error
    assert any(r.record for r in got) or line == 1


def test_utf8_bom_is_ignored() -> None:
    assert records(codecs.BOM_UTF8 + LINE + b"\n")[0].record["prompt"] == "café"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_are_decoded(encoding: str) -> None:
    text = (LINE.decode() + "\n") * 3
    got = records(text.encode(encoding))
    assert [r.record["prompt"] for r in got] == ["café"] * 3
    assert all(r.error is None for r in got)


@pytest.mark.parametrize("data", [b"", b"   \n\n  "])
def test_empty_file_is_refused_as_a_whole(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        records(data, "empty.jsonl")


def test_a_record_over_the_size_limit_is_skipped_without_stopping_the_read() -> None:
    huge = b'{"prompt": "' + b"a" * (MAX_RECORD_BYTES + 10) + b'", "completion": "c"}\n'
    got = records(huge + LINE + b"\n")
    assert got[0].line == 1 and "over the 16 MB limit" in got[0].error
    assert got[1].line == 2 and got[1].record["completion"] == "ok"


def test_a_50mb_single_line_is_rejected_with_its_size() -> None:
    huge = b'{"prompt": "' + b"x" * (50 * 1024 * 1024) + b'", "completion": "c"}'
    got = records(huge)
    assert len(got) == 1
    assert "52,428,8" in got[0].error and "limit per record" in got[0].error


def test_gzip_is_detected_by_content() -> None:
    got = records(gzip.compress(LINE + b"\n" + LINE), "data.jsonl.gz")
    assert len(got) == 2 and all(r.record for r in got)


def test_a_gz_name_without_gzip_content_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not gzip"):
        records(LINE, "data.jsonl.gz")


def test_json_array_is_streamed_element_by_element() -> None:
    data = orjson.dumps([{"prompt": str(i), "completion": "c"} for i in range(5)], option=orjson.OPT_INDENT_2)
    got = records(data, "data.json")
    assert [r.record["prompt"] for r in got] == ["0", "1", "2", "3", "4"]
    assert got[0].line == 2 and got[1].line > got[0].line


def test_truncated_json_array_keeps_the_complete_elements() -> None:
    got = records(b'[{"prompt": "a", "completion": "b"}, {"prompt": "c", "comp', "data.json")
    assert got[0].record == {"prompt": "a", "completion": "b"}
    assert "truncated" in got[1].error


def test_csv_with_named_columns_becomes_records_with_metadata() -> None:
    data = b'user,assistant,system,category\n"Hi, there",Hello,Be kind,greeting\nq2,a2,,other\n'
    got = records(data, "data.csv")
    assert got[0].record == {
        "messages": [
            {"role": "system", "content": "Be kind"},
            {"role": "user", "content": "Hi, there"},
            {"role": "assistant", "content": "Hello"},
        ],
        "metadata": {"category": "greeting"},
    }
    assert got[1].line == 3


def test_csv_without_the_expected_columns_names_what_it_found() -> None:
    with pytest.raises(InvalidInput, match=r"data.csv line 1: CSV header has columns answer, question"):
        records(b"question,answer\nq,a\n", "data.csv")


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (LINE, "x.jsonl", Container.JSONL),
        (b"[" + LINE + b"]", "x.json", Container.JSON_ARRAY),
        (b"prompt,completion\na,b\n", "x.txt", Container.CSV),
        (b"prompt,completion\na,b\n", "x.csv", Container.CSV),
    ],
)
def test_detect_container(data: bytes, name: str, expected: Container) -> None:
    assert detect_container(io.BytesIO(data), name) is expected


class _LazyJsonl(io.RawIOBase):
    """A JSONL stream generated on the fly, so a test can read far more bytes than it ever holds."""

    def __init__(self, lines: int, line: bytes) -> None:
        self._left, self._line, self._pending = lines, line, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while len(self._pending) < len(buffer) and self._left:
            self._pending += self._line
            self._left -= 1
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def test_reading_is_streaming_in_constant_memory() -> None:
    import tracemalloc

    line = orjson.dumps({"prompt": "x" * 20_000, "completion": "y"}) + b"\n"
    lines = 10_000  # ~200 MB through the reader
    tracemalloc.start()
    try:
        count = sum(1 for r in read_records(io.BufferedReader(_LazyJsonl(lines, line)), "big.jsonl") if r.record)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == lines
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for {lines * len(line) / 1e6:.0f} MB read"
