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


# ------------------------------------------------------------------------------ files that break part-way


def _jsonl(n: int) -> bytes:
    return b"".join(orjson.dumps({"prompt": f"p{i} " + "x" * 100, "completion": "c"}) + b"\n" for i in range(n))


def test_a_truncated_gzip_keeps_every_line_before_the_break_and_says_where() -> None:
    body = _jsonl(5000)
    compressed = gzip.compress(body)
    got = records(compressed[: len(compressed) // 2], "data.jsonl.gz")
    good, bad = [r for r in got if r.record], [r for r in got if r.error]
    assert len(bad) == 1 and bad[0].fatal and bad[0] is got[-1]
    # Every complete line the truncated file still holds was read, in order, and the break is the next line.
    assert [r.line for r in good] == list(range(1, len(good) + 1)) and len(good) > 1000
    assert bad[0].line == len(good) + 1
    decompressed = gzip.GzipFile(fileobj=io.BytesIO(compressed[: len(compressed) // 2]))
    readable = b""
    with pytest.raises(EOFError):
        while chunk := decompressed.read1(65536):
            readable += chunk
    assert readable.count(b"\n") == len(good)
    assert bad[0].error == (
        "reading stopped: the gzip data ends before its end-of-stream marker (the file is truncated), "
        f"at byte {len(readable):,} of the decompressed data; nothing after it was read"
    )


def test_a_gzip_that_fails_its_checksum_keeps_the_lines_and_reports_the_corruption() -> None:
    body = _jsonl(300)
    damaged = bytearray(gzip.compress(body))
    damaged[-6] ^= 0xFF  # the CRC-32 in the trailer
    got = records(bytes(damaged), "data.jsonl.gz")
    assert sum(1 for r in got if r.record) == 300
    assert got[-1].line == 301 and got[-1].fatal
    assert "the gzip data is corrupt (CRC check failed" in got[-1].error
    assert f"at byte {len(body):,} of the decompressed data" in got[-1].error


def test_a_gzip_corrupt_from_its_first_block_is_refused_as_a_whole() -> None:
    damaged = bytearray(gzip.compress(_jsonl(50)))
    damaged[10:30] = b"\xff" * 20
    with pytest.raises(InvalidInput, match=r"data.jsonl.gz: cannot be read: the gzip data is corrupt \(Error -3"):
        records(bytes(damaged), "data.jsonl.gz")


def test_invalid_utf16_past_the_first_chunk_names_its_byte_in_the_file_and_its_line() -> None:
    lines = [orjson.dumps({"prompt": f"caf\u00e9 {i} " + "y" * 200, "completion": "ok"}).decode() + "\n" for i in range(6000)]
    before = "".join(lines[:4000]).encode("utf-16-le")
    after = "".join(lines[4000:]).encode("utf-16-le")
    assert len(before) > 1024 * 1024  # past the first chunk the reader decodes
    data = codecs.BOM_UTF16_LE + before + b"\x00\xd8A\x00" + after  # a high surrogate, then not a low one
    got = records(data)
    assert [r.line for r in got if r.record] == list(range(1, 4001))
    assert got[-1].line == 4001 and got[-1].fatal
    assert got[-1].error == (
        f"reading stopped: not valid UTF-16-LE (illegal UTF-16 surrogate), at byte {2 + len(before):,} of the file; "
        "nothing after it was read"
    )


# ----------------------------------------------------------------------------------- JSON arrays, hostile


def test_each_bad_json_array_element_is_reported_at_its_own_line_and_the_rest_read() -> None:
    good = [orjson.dumps({"prompt": f"p{i}", "completion": "c"}) for i in range(5)]
    oversized = b'{"prompt": "' + b"x" * (MAX_RECORD_BYTES + 10) + b'", "completion": "c"}'
    deep = b"[" * 100_000 + b"]" * 100_000
    bad_utf8 = b'{"prompt": "caf\xff", "completion": "c"}'
    data = b"[\n" + b",\n".join([good[0], oversized, good[1], deep, good[2], bad_utf8, good[3], b'{"a": 1} {"b": 2}', good[4]]) + b"\n]\n"
    got = records(data, "data.json")
    assert [(r.line, r.record["prompt"]) for r in got if r.record] == [(2, "p0"), (4, "p1"), (6, "p2"), (8, "p3"), (10, "p4")]
    assert [(r.line, r.error, r.fatal) for r in got if r.error] == [
        (3, f"item 2 is {len(oversized) + 2:,} bytes, over the 16 MB limit per record", False),
        (5, "nested too deeply: more than 1,024 levels of arrays and objects", False),
        (7, "not valid UTF-8: byte 0xff at byte 16", False),
        (9, "not valid JSON: unexpected content after document at byte 10", False),
    ]


def test_json_array_elements_spanning_lines_and_chunks_keep_their_line_numbers() -> None:
    tricky = 'line one\nline two \\" ]}, {['  # brackets, a comma and an escaped quote inside a string
    elements = [{"prompt": f"{tricky} {i}", "completion": "c" * (i * 997 % 50_000)} for i in range(300)]
    data = orjson.dumps(elements, option=orjson.OPT_INDENT_2)
    got = records(data, "data.json")
    assert [r.record for r in got] == elements
    starts = [n + 1 for n, text in enumerate(data.split(b"\n")) if text == b"  {"]
    assert [r.line for r in got] == starts


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'[{"prompt": "a", "completion": "b"},, {"prompt": "c", "completion": "d"}]', [(1, "item 2 is empty (a stray ',')", False)]),
        (b'[{"prompt": "a", "completion": "b"}]\n{"more": 1}', [(2, "the file goes on after the array's closing ']'; the rest was not read", True)]),
        (b'[{"prompt": "a", "completion": "b"}, {"prompt": "c\\"]}', [(1, "truncated JSON array: the file ends inside item 2", True)]),
        (b'[{"prompt": "a", "completion": "b"}\n', [(2, "truncated JSON array: the file ends before the closing ']'", True)]),
    ],
)
def test_json_array_structure_faults(data: bytes, expected: list) -> None:
    got = records(data, "data.json")
    assert [(r.line, r.error, r.fatal) for r in got if r.error] == expected
    assert got[0].record == {"prompt": "a", "completion": "b"}


# ---------------------------------------------------------------------------------------- CSV, hostile


def test_csv_with_invalid_utf8_reports_that_row_and_imports_the_rest() -> None:
    got = records(b"prompt,completion\np1,c1\np2,\"caf\xe9\"\np3,c3\n", "data.csv")
    assert [(r.line, r.record["prompt"]) for r in got if r.record] == [(2, "p1"), (4, "p3")]
    assert [(r.line, r.error) for r in got if r.error] == [(3, "not valid UTF-8: byte 0xe9 in column 'completion'")]


def test_csv_row_with_extra_cells_is_reported_at_the_line_it_starts_on() -> None:
    data = b'prompt,completion\n"multi\nline\nprompt",c1\n\np2,c2,surplus,cells\np3,c3\n'
    got = records(data, "data.csv")
    assert [(r.line, r.record["prompt"]) for r in got if r.record] == [(2, "multi\nline\nprompt"), (7, "p3")]
    assert [(r.line, r.error) for r in got if r.error] == [(6, "row has 4 cells but the header has 2 columns")]


def test_csv_cells_up_to_the_record_limit_are_read_and_a_larger_one_costs_its_row_only() -> None:
    big = "y" * (200 * 1024)
    huge = "z" * (MAX_RECORD_BYTES + 1)
    data = f"prompt,completion\np1,{big}\np2,\"{huge}\"\np3,c3\np4,c4\n".encode()
    got = records(data, "data.csv")
    assert [(r.line, r.record["prompt"]) for r in got if r.record] == [(2, "p1"), (4, "p3"), (5, "p4")]
    assert got[0].record["completion"] == big
    assert [(r.line, r.error) for r in got if r.error] == [(3, "a cell is over the 16 MB limit per record; the row was skipped")]
