"""Importing files through the service: good lines kept, bad lines reported, nothing half-written."""

from __future__ import annotations

import gc
import gzip
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain.filters import ExampleFilter
from workbench.errors import InvalidInput
from workbench.services import datasets, preparing
from workbench.services.importing import LineIssue, import_path, import_stream
from workbench.store import Store


def _count(store: Store, name: str) -> int:
    return datasets.get_dataset(store, name).example_count


@pytest.fixture
def owned() -> Iterator[None]:
    """Run the test as the CLI does: this process owns its settings, so a large import may use a worker."""
    preparing.own_process()
    yield
    preparing.own_process(None)


def test_import_reports_counts_format_and_pii(store: Store, write_jsonl: WriteJsonl, sample_records: list) -> None:
    result = import_path(store, write_jsonl(sample_records), "support")
    assert (result.imported, result.duplicates, result.format, result.errors) == (20, 0, "openai", [])
    page = datasets.browse(store, "support", ExampleFilter(has_pii=True))
    assert page.total == 1
    assert page.examples[0].pii[0].kind == "email"
    assert page.examples[0].token_count > 0


def test_reimporting_the_same_file_adds_nothing(store: Store, write_jsonl: WriteJsonl, sample_records: list) -> None:
    path = write_jsonl(sample_records)
    import_path(store, path, "support")
    again = import_path(store, path, "support")
    assert (again.imported, again.duplicates) == (0, 20)
    assert _count(store, "support") == 20


def test_duplicate_lines_within_a_file_are_counted(store: Store, write_jsonl: WriteJsonl) -> None:
    result = import_path(store, write_jsonl([chat("a", "b"), chat("a", "b"), chat("a", "c")]), "d")
    assert (result.imported, result.duplicates) == (2, 1)


BAD_LINES = [
    (b"not json", "not JSON"),
    (b'{"messages": [{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}]}', "messages[1].role: role 'bot'"),
    (b'{"messages": [{"role": "user", "content": "only a question"}]}', "messages: no assistant turn"),
    (b'{"prompt": "p", "completion": 3}', "completion: must be a string, found a number"),
    (b'{"text": "no format"}', "no known format"),
    (b'{"prompt": "caf\xff", "completion": "c"}', "not valid UTF-8"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_a_bad_line_is_reported_and_the_good_lines_kept(store: Store, write_jsonl: WriteJsonl, line: bytes, message: str) -> None:
    result = import_path(store, write_jsonl([chat("q1", "a1"), line, chat("q2", "a2")]), "d")
    assert result.imported == 2
    assert [e.line for e in result.errors] == [2]
    assert message in result.errors[0].message


def test_truncated_last_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(orjson.dumps(chat("q", "a")) + b'\n{"messages": [{"role": "user", "cont')
    result = import_path(store, path, "d")
    assert result.imported == 1
    assert result.errors[0].line == 2 and "truncated" in result.errors[0].message


def test_bad_files_leave_existing_data_untouched(store: Store, write_jsonl: WriteJsonl, sample_records: list, tmp_path: Path) -> None:
    import_path(store, write_jsonl(sample_records), "support")
    before = [e.model_dump() for e in datasets.browse(store, "support", ExampleFilter(), page_size=100).examples]
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty"):
        import_path(store, empty, "support")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("question,answer\nq,a\n")
    with pytest.raises(InvalidInput, match="CSV header has columns answer, question"):
        import_path(store, bad_csv, "support")
    all_bad = write_jsonl([b"nope", b"{}"], "bad.jsonl")
    result = import_path(store, all_bad, "support")
    assert result.imported == 0 and result.error_count == 2
    after = [e.model_dump() for e in datasets.browse(store, "support", ExampleFilter(), page_size=100).examples]
    assert after == before


def test_a_file_with_only_bad_lines_creates_no_dataset(store: Store, write_jsonl: WriteJsonl) -> None:
    result = import_path(store, write_jsonl([b"nope"]), "fresh")
    assert result.dataset_id is None and result.error_count == 1
    assert datasets.list_datasets(store) == []


def test_a_prompt_completion_system_prompt_is_imported_as_one(store: Store, write_jsonl: WriteJsonl) -> None:
    records = [
        {"prompt": "P", "completion": "C"},
        {"system": "Be terse.", "prompt": "P", "completion": "C"},
        {"system": ["Be terse."], "prompt": "P2", "completion": "C"},
    ]
    result = import_path(store, write_jsonl(records), "pc")
    assert (result.format, result.imported, result.duplicates) == ("prompt-completion", 3, 0)
    assert [(w.line, w.message) for w in result.warnings] == [
        (3, "system: must be a string to be read as the system prompt, found a list; kept in metadata, not trained on")
    ]
    systems = sorted(repr(e.system) for e in datasets.browse(store, "pc", ExampleFilter()).examples)
    assert systems == ["'Be terse.'", "None", "None"]


def test_converse_system_items_joined_at_import_are_warned_about_per_line(store: Store, write_jsonl: WriteJsonl) -> None:
    turns = [{"role": "user", "content": [{"text": "q"}]}, {"role": "assistant", "content": [{"text": "a"}]}]
    records = [{"system": [{"text": "s"}], "messages": turns}, {"system": [{"text": "s"}, {"text": "t"}, {"text": "u"}], "messages": turns}]
    result = import_path(store, write_jsonl(records), "nova")
    assert [(w.line, w.message) for w in result.warnings] == [(2, "system: 3 text items joined into one system prompt (separated by a newline)")]


def test_unknown_keys_are_warned_about_and_kept(store: Store, write_jsonl: WriteJsonl) -> None:
    result = import_path(store, write_jsonl([chat("q", "a", source="crm")]), "d")
    assert result.warnings[0].message == "source: unknown key for openai; kept in metadata"
    assert datasets.browse(store, "d", ExampleFilter()).examples[0].metadata == {"source": "crm"}


def test_hostile_text_is_stored_verbatim_and_searchable(store: Store, write_jsonl: WriteJsonl, sample_records: list) -> None:
    import_path(store, write_jsonl(sample_records), "d")
    page = datasets.browse(store, "d", ExampleFilter(search="DROP TABLE"))
    assert page.total == 1
    assert page.examples[0].messages[0].content == "<script>alert(1)</script> '; DROP TABLE examples;--"
    assert datasets.get_dataset(store, "d").example_count == 20


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_and_utf16_files_import(store: Store, tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "enc.jsonl"
    path.write_text("\n".join(orjson.dumps(chat(f"é {i}", "ok")).decode() for i in range(3)), encoding=encoding)
    result = import_path(store, path, "d")
    assert (result.imported, result.errors) == (3, [])


def test_gzip_json_array_and_csv(store: Store, tmp_path: Path) -> None:
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\n".join(orjson.dumps(chat(f"gz {i}", "a")) for i in range(4))))
    array = tmp_path / "b.json"
    array.write_bytes(orjson.dumps([{"instruction": f"arr {i}", "input": "", "output": "o"} for i in range(3)]))
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("prompt,completion,label\n\"p, 1\",c1,x\np2,c2,y\n")
    assert import_path(store, gz, "d").imported == 4
    assert import_path(store, array, "d").format == "alpaca"
    result = import_path(store, csv_file, "d")
    assert (result.imported, result.format) == (2, "prompt-completion")
    assert datasets.browse(store, "d", ExampleFilter(metadata_field="label", metadata_value="y")).total == 1


def test_forced_format_rejects_other_shapes_with_a_hint(store: Store, write_jsonl: WriteJsonl) -> None:
    result = import_path(store, write_jsonl([{"prompt": "p", "completion": "c"}]), "d", "bedrock-nova")
    assert result.imported == 0
    assert "looks like prompt-completion" in result.errors[0].message


def test_unknown_format_name_is_refused(store: Store, write_jsonl: WriteJsonl) -> None:
    with pytest.raises(InvalidInput, match="unknown format 'yaml'"):
        import_path(store, write_jsonl([chat("q", "a")]), "d", "yaml")


def test_progress_is_reported_in_bytes_up_to_the_file_size(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.services import importing

    monkeypatch.setattr(importing, "BATCH_SIZE", 10)
    seen: list[int] = []
    path = write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(95)])
    with path.open("rb") as stream:
        import_stream(store, stream, path.name, "d", progress=seen.append)
    assert len(seen) == 10  # one call per batch of 10 lines
    assert seen == sorted(set(seen)) and seen[-1] == path.stat().st_size


def test_claude_file_is_detected_even_when_most_lines_are_ambiguous(store: Store, write_jsonl: WriteJsonl) -> None:
    records = [chat(f"q{i}", "a") for i in range(5)] + [{"system": "s", **chat("q", "a")}]
    assert import_path(store, write_jsonl(records), "d").format == "bedrock-claude"


def test_a_50mb_single_line_is_refused_and_the_rest_imported(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as out:
        out.write(b'{"prompt": "' + b"x" * (50 * 1024 * 1024) + b'", "completion": "c"}\n')
        out.write(orjson.dumps(chat("small", "fine")) + b"\n")
    result = import_path(store, path, "d")
    assert result.imported == 1
    assert result.errors[0].line == 1 and "over the 16 MB limit per record" in result.errors[0].message


def test_a_large_import_prepared_in_worker_processes_matches_in_process(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch, owned: None
) -> None:
    from workbench.services import importing

    records = [chat(f"Question {i} from me@example.com", f"Answer {i}") for i in range(300)]
    path = write_jsonl([*records[:150], b"not json", *records[150:], records[0]])
    monkeypatch.setattr(importing, "BATCH_SIZE", 40)
    serial = import_path(store, path, "serial")
    monkeypatch.setattr(preparing, "PARALLEL_MIN_BYTES", 0)
    assert preparing.should_parallelise(path.stat().st_size)
    parallel = import_path(store, path, "parallel")
    expected_errors = [LineIssue(line=151, message="not JSON: expected an object starting with '{', found 'not json'")]
    assert (serial.imported, serial.duplicates, serial.errors) == (300, 1, expected_errors)
    assert (parallel.imported, parallel.duplicates, parallel.errors) == (300, 1, expected_errors)
    as_rows = [
        (e.source_line, e.messages, e.pii, e.token_count, e.content_hash)
        for name in ("serial", "parallel")
        for e in datasets.browse(store, name, ExampleFilter(), page_size=500).examples
    ]
    assert as_rows[:300] == as_rows[300:]


@pytest.mark.parametrize(("name", "match"), [("   ", "name is required"), ("a" * 101, "at most 100"), ("bad\nname", "control characters")])
def test_bad_dataset_names_are_refused_before_anything_is_written(store: Store, write_jsonl: WriteJsonl, name: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        import_path(store, write_jsonl([chat("q", "a")]), name)
    assert datasets.list_datasets(store) == []


def test_an_interrupted_import_keeps_whole_transactions_only(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user leaving the page mid-upload stops the import between writes: what landed is whole and searchable."""
    from workbench.services import importing

    monkeypatch.setattr(importing, "BATCH_SIZE", 10)
    for limit in ("FIRST_WRITE_ROWS", "MIN_WRITE_ROWS", "MAX_WRITE_ROWS"):
        monkeypatch.setattr(importing, limit, 30)
    path = write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(100)])

    def stop_after_four_batches(done: int, calls: list[int] = []) -> None:  # noqa: B006 - call counter
        calls.append(done)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with path.open("rb") as stream, pytest.raises(KeyboardInterrupt):
        import_stream(store, stream, path.name, "d", progress=stop_after_four_batches)
    # Writes happen every 30 rows, so 3 whole batches of 10 landed before the 4th was reported.
    assert _count(store, "d") == 30
    assert datasets.browse(store, "d", ExampleFilter(query="Question")).total == 30
    again = import_path(store, path, "d")
    assert (again.imported, again.duplicates, _count(store, "d")) == (70, 30, 100)


def test_the_last_write_is_small_when_the_size_is_known(store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch) -> None:
    """Near the end of a file the importer writes early, so the final transaction (which nothing overlaps) is short."""
    from workbench.services import importing

    monkeypatch.setattr(importing, "BATCH_SIZE", 10)
    for limit in ("FIRST_WRITE_ROWS", "MIN_WRITE_ROWS", "MAX_WRITE_ROWS"):
        monkeypatch.setattr(importing, limit, 1000)
    sizes: list[int] = []
    real_write = importing._Writer._write

    def recording_write(self: importing._Writer, rows: list) -> None:
        sizes.append(len(rows))
        real_write(self, rows)

    monkeypatch.setattr(importing._Writer, "_write", recording_write)
    path = write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(200)])
    with path.open("rb") as stream:
        result = import_stream(store, stream, path.name, "d", size_hint=path.stat().st_size)
    assert result.imported == 200 and sum(sizes) == 200
    assert sizes[0] > 50 and sizes[-1] <= 10 and len(sizes) > 3
    with path.open("rb") as stream:
        unknown_size = import_stream(store, stream, path.name, "e")
    assert unknown_size.imported == 200 and sizes[-1] == 200


@pytest.mark.parametrize(
    ("rows", "seconds", "expected"),
    [
        (500, 0.25, 500),  # on target: keep the size
        (500, 0.05, 1000),  # five times too fast: grow, but at most double per step
        (500, 2.0, 250),  # eight times too slow: shrink, but at most halve per step
        (500, 0.4, 312),  # a little slow: shrink to what fits the target
        (120, 0.01, 500),  # a short tail (fewer rows than asked for) says nothing about speed
    ],
)
def test_write_transactions_are_sized_to_the_target_time(
    store: Store, rows: int, seconds: float, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transactions adapt to the machine: short enough that a label never waits long, long enough to be cheap."""
    from workbench.services import importing

    monkeypatch.setattr(importing, "FIRST_WRITE_ROWS", 500)
    writer = importing._Writer(store, importing.ImportResult(dataset="d", dataset_id=None))
    writer._resize(rows, seconds)
    assert writer.rows == expected


def test_every_row_is_written_once_while_transactions_change_size(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resizing between transactions of one call must neither skip nor repeat rows (it once did both)."""
    from workbench.domain.formats import parse
    from workbench.domain.rows import encode_example
    from workbench.services import importing

    clock = iter(float(t) for t in range(0, 1000, 3))  # every transaction "takes" 3 s: sizes halve
    monkeypatch.setattr(importing.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(importing, "FIRST_WRITE_ROWS", 400)
    result = importing.ImportResult(dataset="d", dataset_id=None)
    writer = importing._Writer(store, result)
    rows = [encode_example(parse(chat(f"Question {i}", f"Answer {i}")).example) for i in range(1000)]
    writer.write(rows)
    writer.close()
    assert (result.imported, result.duplicates, _count(store, "d")) == (1000, 0, 1000)
    assert writer.rows < 400


def test_write_transactions_stay_within_their_bounds(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.services import importing

    writer = importing._Writer(store, importing.ImportResult(dataset="d", dataset_id=None))
    for _ in range(20):
        writer._resize(writer.rows, 0.0001)
    assert writer.rows == importing.MAX_WRITE_ROWS
    for _ in range(20):
        writer._resize(writer.rows, 100.0)
    assert writer.rows == importing.MIN_WRITE_ROWS


def test_batches_are_capped_in_bytes_as_well_as_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.domain.records import RawRecord
    from workbench.services import importing

    monkeypatch.setattr(importing, "BATCH_BYTES", 100)
    records = [RawRecord(i, record={"x": i}, size=40) for i in range(1, 8)]
    sizes = [(len(lines), size) for lines, size in importing._batches(iter(records))]
    assert sizes == [(3, 120), (3, 120), (1, 40)]


def test_a_parallel_import_leaves_the_thread_switch_interval_as_it_was(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch, owned: None
) -> None:
    monkeypatch.setattr(preparing, "PARALLEL_MIN_BYTES", 0)
    before = sys.getswitchinterval()
    seen: list[float] = []
    path = write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(50)])
    with path.open("rb") as stream:
        import_stream(store, stream, path.name, "d", progress=lambda _: seen.append(sys.getswitchinterval()), size_hint=1)
    assert seen and max(seen) <= preparing.SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == before


def test_prepared_batches_come_back_in_order_however_the_work_is_shared() -> None:
    """The worker takes batches from the front and this process steals from the back; order must not change."""
    from workbench.services.preparing import prepare_lines, prepared_batches

    batches = [
        ([(n * 3 + k + 1, orjson.dumps(chat(f"q{n}-{k}", "a")), None) for k in range(3)], n) for n in range(60)
    ]
    parallel = list(prepared_batches(iter(batches), None, parallel=True))
    assert [size for _, size in parallel] == list(range(60))
    assert [p for batch, _ in parallel for p in batch] == [p for lines, _ in batches for p in prepare_lines(lines, None)]


def test_workers_are_forked_from_a_single_thread_and_spawned_beside_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forking a threaded process (the Streamlit server) can copy a held lock into the child forever."""
    import threading

    from workbench.services import preparing
    from workbench.services.preparing import _start_method

    with monkeypatch.context() as patch:  # whatever threads earlier tests left behind
        patch.setattr(preparing.threading, "active_count", lambda: 1)
        assert _start_method().get_start_method() == "fork"
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert _start_method().get_start_method() == "spawn"
    finally:
        release.set()
        other.join()


def test_a_shared_process_never_changes_process_wide_state(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server (Streamlit, the API) never called own_process: a large import runs serially and leaves the interpreter alone."""
    monkeypatch.setattr(preparing, "PARALLEL_MIN_BYTES", 0)
    assert preparing.process_tuning() is None
    main_module, interval = sys.modules["__main__"], sys.getswitchinterval()
    states: list[tuple[bool, float, object]] = []

    def during(_: int) -> None:
        states.append((gc.isenabled(), sys.getswitchinterval(), sys.modules["__main__"]))

    real_prepare = preparing._prepare

    def observed_prepare(lines: list, forced: object) -> list:
        during(0)
        return real_prepare(lines, forced)  # type: ignore[arg-type]

    monkeypatch.setattr(preparing, "_prepare", observed_prepare)
    path = write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(30)])
    with path.open("rb") as stream:
        result = import_stream(store, stream, path.name, "d", progress=during, size_hint=10**9)
    assert result.imported == 30
    assert not preparing.should_parallelise(10**9)
    assert states and set(states) == {(True, interval, main_module)}


def test_a_truncated_gzip_keeps_what_was_read_and_logs_the_import_with_where_it_broke(store: Store, tmp_path: Path) -> None:
    body = b"".join(orjson.dumps(chat(f"Question {i} " + "x" * 80, f"Answer {i}")) + b"\n" for i in range(3000))
    compressed = gzip.compress(body)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    result = import_path(store, path, "d")
    assert result.fault is not None and result.imported == result.fault.line - 1 > 500
    assert result.fault.message.startswith("reading stopped: the gzip data ends before its end-of-stream marker")
    assert "of the decompressed data" in result.fault.message
    assert result.errors == [result.fault] and result.error_count == 1
    assert _count(store, "d") == result.imported
    [logged] = datasets.import_history(store, "d")
    assert (logged.filename, logged.imported, logged.error_count) == ("cut.jsonl.gz", result.imported, 1)
    assert logged.errors == [result.fault.model_dump()]


def test_an_import_that_adds_nothing_to_an_existing_dataset_is_logged(store: Store, write_jsonl: WriteJsonl) -> None:
    import_path(store, write_jsonl([chat("q", "a")]), "d")
    result = import_path(store, write_jsonl([b"nope", b"{}"], "bad.jsonl"), "d")
    assert result.added_nothing and result.fault is None
    latest = datasets.import_history(store, "d")[0]
    assert (latest.filename, latest.imported, latest.error_count) == ("bad.jsonl", 0, 2)
    assert [e["line"] for e in latest.errors] == [1, 2]


def test_the_import_log_counts_every_error_and_keeps_the_fault(store: Store, tmp_path: Path) -> None:
    body = b"".join(b"nope\n" for _ in range(1200)) + b"".join(orjson.dumps(chat(f"q{i}", "a")) + b"\n" for i in range(2000))
    compressed = gzip.compress(body)
    path = tmp_path / "many.jsonl.gz"
    path.write_bytes(compressed[: len(compressed) * 3 // 4])
    result = import_path(store, path, "d")
    assert result.fault is not None and result.error_count == 1201
    [logged] = datasets.import_history(store, "d")
    assert logged.error_count == 1201 and len(logged.errors) == 1000
    assert logged.errors[-1] == result.fault.model_dump() and logged.errors[0]["line"] == 1


def test_import_memory_does_not_grow_with_the_file(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing per example outlives its batch: ten times the lines, the same Python peak (within 1.5x).

    Batches and transactions are shrunk so the small files here span many of each, and the report's
    lists are capped low so their cap, not the file, bounds them. Every line repeats an earlier one,
    is malformed or carries a note, so in-file duplicates, errors and warnings all grow with the file.
    """
    import tracemalloc
    from functools import lru_cache

    from workbench.domain import tokens
    from workbench.services import importing

    monkeypatch.setattr(importing, "BATCH_SIZE", 20)
    for limit in ("FIRST_WRITE_ROWS", "MIN_WRITE_ROWS", "MAX_WRITE_ROWS"):
        monkeypatch.setattr(importing, limit, 40)
    monkeypatch.setattr(importing, "MAX_REPORTED_ERRORS", 5)

    def write(n: int) -> Path:
        lines = []
        for i in range(n):
            record = chat(f"Question {i} about the parcel that did not arrive", f"Answer {i}: it ships on Monday", source="crm")
            lines.append(orjson.dumps(record))
            if i % 4 == 0:
                lines += [orjson.dumps(record), b"not json"]
        path = tmp_path / f"lines_{n}_{len(list(tmp_path.iterdir()))}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path

    def peak(n: int) -> tuple[int, importing.ImportResult]:
        path = write(n)
        gc.collect()
        tracemalloc.start()
        try:
            result = import_path(store, path, f"d{n}_{len(list(tmp_path.iterdir()))}")
            return tracemalloc.get_traced_memory()[1], result
        finally:
            tracemalloc.stop()

    # Warm up at the larger size: the tokenizer loads lazily, and CPython's free lists (up to 2,000
    # tuples of each size) and the token-count cache fill once per process, whatever the file.
    monkeypatch.setattr(tokens, "_count_short", lru_cache(maxsize=64)(tokens._count_short.__wrapped__))
    peak(2000)
    small, _ = peak(200)
    large, result = peak(2000)
    assert (result.imported, result.duplicates, result.error_count, result.warning_count) == (2000, 500, 500, 2500)
    assert len(result.errors) == len(result.warnings) == 5
    assert large <= 1.5 * small, f"peak {large:,} bytes for 2,000 examples vs {small:,} for 200"
