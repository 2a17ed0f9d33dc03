"""Hostile files and destinations through the real CLI: one JSON object on stdout, never a traceback.

Every case a user or a script can hit with a damaged file (truncated or corrupt gzip, bad bytes in
CSV, JSON arrays with oversized, deeply nested or undecodable elements, invalid UTF-16) or a strange
`--out` (a named pipe, a symlink, a device, a read-only or full disk) runs `python -m workbench` in
a subprocess, as a user would.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import chat
from workbench.domain.records import MAX_RECORD_BYTES
from workbench.errors import InvalidInput
from workbench.services import datasets, exporting
from workbench.services.importing import import_path
from workbench.store import Store


def cli(db: Path, *args: str, prelude: str = "") -> tuple[int, dict[str, Any], str]:
    """Run the CLI with --json; check stdout is exactly one JSON object and stderr has no traceback."""
    script = f"{prelude}\nfrom workbench.cli import main\nmain()"
    proc = subprocess.run(
        [sys.executable, "-c", script, "--db", str(db), *args, "--json"], capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in proc.stderr and "Aborted!" not in proc.stderr + proc.stdout, proc.stderr
    payload = orjson.loads(proc.stdout)  # exactly one JSON value: orjson refuses anything after it
    assert isinstance(payload, dict) and isinstance(payload.get("ok"), bool), proc.stdout
    assert (proc.returncode == 0) == payload["ok"], (proc.returncode, proc.stdout)
    if not payload["ok"]:
        assert isinstance(payload["error"], str) and payload["error"]
    return proc.returncode, payload, proc.stderr


def _lines(n: int, width: int = 60) -> bytes:
    return b"".join(orjson.dumps(chat(f"Question {i} " + "q" * width, f"Answer {i}")) + b"\n" for i in range(n))


def _truncated_gzip() -> bytes:
    compressed = gzip.compress(_lines(4000))
    return compressed[: len(compressed) // 2]


def _crc_broken_gzip() -> bytes:
    damaged = bytearray(gzip.compress(_lines(200)))
    damaged[-6] ^= 0xFF
    return bytes(damaged)


def _corrupt_gzip() -> bytes:
    damaged = bytearray(gzip.compress(_lines(200)))
    damaged[10:30] = b"\xff" * 20
    return bytes(damaged)


def _utf16_broken_late() -> bytes:
    text = _lines(9000, width=40).decode()
    cut = text.index("\n", len(text) * 3 // 4) + 1
    return codecs.BOM_UTF16_LE + text[:cut].encode("utf-16-le") + b"\x00\xdc" + text[cut:].encode("utf-16-le")


def _json_array_with_bad_elements() -> bytes:
    good = [orjson.dumps({"prompt": f"p{i}", "completion": "c"}) for i in range(4)]
    elements = [
        good[0],
        b'{"prompt": "' + b"x" * (MAX_RECORD_BYTES + 1) + b'", "completion": "c"}',
        good[1],
        b"[" * 100_000 + b"]" * 100_000,
        good[2],
        b'{"prompt": "caf\xe9", "completion": "c"}',
        good[3],
    ]
    return b"[\n" + b",\n".join(elements) + b"\n]\n"


def _csv_with_hostile_rows() -> bytes:
    return (
        b"prompt,completion\n"
        b"p1,c1\n"
        b'p2,"caf\xe9"\n'
        b"p3," + b"y" * (200 * 1024) + b"\n"
        b'p4,"' + b"z" * (MAX_RECORD_BYTES + 1) + b'"\n'
        b"p5,c5,extra\n"
        b"p6,c6\n"
    )


# name, content, expected ok, what the error or report must say
IMPORT_CASES: list[tuple[str, Callable[[], bytes], Callable[[dict[str, Any]], None]]] = []


def case(name: str, content: Callable[[], bytes]) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    def register(check: Callable[[dict[str, Any]], None]) -> None:
        IMPORT_CASES.append((name, content, check))

    return register


@case("cut.jsonl.gz", _truncated_gzip)
def _(payload: dict[str, Any]) -> None:
    fault = payload["fault"]
    assert payload["ok"] is False and payload["imported"] == fault["line"] - 1 > 1000
    assert "the gzip data ends before its end-of-stream marker (the file is truncated), at byte" in fault["message"]
    assert payload["error"].endswith(f"; {payload['imported']:,} examples read before it were imported")
    assert f"line {fault['line']:,}: reading stopped" in payload["error"]


@case("crc.jsonl.gz", _crc_broken_gzip)
def _(payload: dict[str, Any]) -> None:
    assert payload["ok"] is False and payload["imported"] == 200
    assert payload["fault"]["line"] == 201 and "CRC check failed" in payload["fault"]["message"]


@case("corrupt.jsonl.gz", _corrupt_gzip)
def _(payload: dict[str, Any]) -> None:
    assert payload == {
        "ok": False,
        "error": "corrupt.jsonl.gz: cannot be read: the gzip data is corrupt "
        "(Error -3 while decompressing data: invalid block type)",
    }


@case("late.jsonl", _utf16_broken_late)
def _(payload: dict[str, Any]) -> None:
    fault = payload["fault"]
    assert payload["ok"] is False and payload["imported"] == fault["line"] - 1 > 6000
    assert "not valid UTF-16-LE (illegal encoding), at byte" in fault["message"]


@case("array.json", _json_array_with_bad_elements)
def _(payload: dict[str, Any]) -> None:
    assert payload["ok"] is True and payload["imported"] == 4
    assert [(e["line"], e["message"].split(" ")[0:3]) for e in payload["errors"]] == [
        (3, ["item", "2", "is"]),
        (5, ["nested", "too", "deeply:"]),
        (7, ["not", "valid", "UTF-8:"]),
    ]
    assert payload["errors"][0]["message"].endswith("bytes, over the 16 MB limit per record")


@case("rows.csv", _csv_with_hostile_rows)
def _(payload: dict[str, Any]) -> None:
    assert payload["ok"] is True and payload["imported"] == 3
    assert payload["errors"] == [
        {"line": 3, "message": "not valid UTF-8: byte 0xe9 in column 'completion'"},
        {"line": 5, "message": "a cell is over the 16 MB limit per record; the row was skipped"},
        {"line": 6, "message": "row has 3 cells but the header has 2 columns"},
    ]


@case("fake.jsonl.gz", lambda: _lines(3))
def _(payload: dict[str, Any]) -> None:
    assert payload == {"ok": False, "error": "fake.jsonl.gz: named .gz but is not gzip-compressed"}


@case("noise.jsonl", lambda: b"\n".join(b"{" + bytes(b for b in range(256) if b != 0x0A) for _ in range(64)))
def _(payload: dict[str, Any]) -> None:
    assert payload["ok"] is False and payload["imported"] == 0 and payload["error_count"] == 64
    assert "noise.jsonl: nothing imported; 64 of 64 lines could not be imported (first: line 1: " in payload["error"]


@case("binary.csv", lambda: bytes(range(256)) * 64)
def _(payload: dict[str, Any]) -> None:
    assert payload["ok"] is False and set(payload) == {"ok", "error"}
    assert payload["error"].startswith("binary.csv line 1: CSV header has columns ")


@case("blank.jsonl", lambda: b"\n \n\t\n")
def _(payload: dict[str, Any]) -> None:
    assert payload == {"ok": False, "error": "blank.jsonl: the file is empty; nothing to import"}


@pytest.mark.parametrize(("name", "content", "check"), IMPORT_CASES, ids=[c[0] for c in IMPORT_CASES])
def test_hostile_files_import_with_one_json_answer(
    tmp_path: Path, name: str, content: Callable[[], bytes], check: Callable[[dict[str, Any]], None]
) -> None:
    path = tmp_path / name
    path.write_bytes(content())
    db = tmp_path / "h.db"
    _, payload, _ = cli(db, "datasets", "import", str(path), "--name", "hostile")
    check(payload)
    store = Store(db)
    if payload.get("imported"):
        # Kept what was read, and logged the import with its report (the fault included).
        assert datasets.get_dataset(store, "hostile").example_count == payload["imported"]
        [logged] = datasets.import_history(store, "hostile")
        assert logged.errors == payload["errors"][:1000]
    else:
        assert datasets.list_datasets(store) == []


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_import_of_something_not_a_file_is_refused(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "thing"
    if kind == "folder":
        target.mkdir()
        code, payload, _ = cli(tmp_path / "h.db", "datasets", "import", str(target), "--name", "x")
        assert (code, payload) == (2, {"ok": False, "error": f"Invalid value for 'PATH': File '{target}' is a directory."})
    else:
        os.mkfifo(target)
        code, payload, _ = cli(tmp_path / "h.db", "datasets", "import", str(target), "--name", "x")
        assert (code, payload["error"]) == (1, f"{target}: not a regular file (a folder, named pipe or device); import reads files only")


# ------------------------------------------------------------------------------------------- export --out


@pytest.fixture(scope="module")
def exportable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with dataset 'd': 2,000 examples, about 200 KB exported."""
    folder = tmp_path_factory.mktemp("export")
    path = folder / "data.jsonl"
    path.write_bytes(_lines(2000))
    import_path(Store(folder / "x.db"), path, "d")
    return folder / "x.db"


def _export(db: Path, out: str) -> tuple[int, dict[str, Any]]:
    code, payload, _ = cli(db, "datasets", "export", "d", "--format", "openai", "--out", out)
    return code, payload


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_export_refuses_a_fifo_a_symlink_a_device_a_folder_and_an_empty_path(exportable: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere.jsonl")
    refusals = {
        str(fifo): f"{fifo} is a named pipe (FIFO); an export only writes a new file or replaces a regular file",
        str(link): f"{link} is a symbolic link; an export only writes a new file or replaces a regular file",
        "/dev/null": "/dev/null is a device; an export only writes a new file or replaces a regular file",
        "": "the output path is empty; name the file to write (for example --out train.jsonl)",
    }
    for out, message in refusals.items():
        assert _export(exportable, out) == (1, {"ok": False, "error": message})
    # A folder is already a usage error: click checks the option before the command runs.
    assert _export(exportable, str(tmp_path)) == (
        2, {"ok": False, "error": f"Invalid value for '--out': File '{tmp_path}' is a directory."}
    )
    assert fifo.is_fifo() and link.is_symlink() and not (tmp_path / "elsewhere.jsonl").exists()
    assert _leftovers(tmp_path) == []


def test_export_replaces_a_regular_file_atomically_and_keeps_its_mode(exportable: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    out.write_text("old\n")
    out.chmod(0o640)
    code, payload = _export(exportable, str(out))
    assert (code, payload["written"], payload["path"]) == (0, 2000, str(out))
    assert len(out.read_bytes().splitlines()) == 2000 and (out.stat().st_mode & 0o777) == 0o640
    assert _leftovers(tmp_path) == []


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """Mount a small tmpfs (a full or read-only disk, for real), or skip where mounting is not allowed."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_export_onto_a_full_disk_is_one_error_and_leaves_nothing(exportable: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full", "size=64k") as disk:
        previous = disk / "train.jsonl"
        previous.write_bytes(b"the last good export\n")
        code, payload = _export(exportable, str(previous))
        assert (code, payload) == (
            1, {"ok": False, "error": f"{previous}: the export could not be written (No space left on device); no file was left behind"}
        )
        assert sorted(p.name for p in disk.iterdir()) == ["train.jsonl"]
        assert previous.read_bytes() == b"the last good export\n"


def test_export_into_a_read_only_folder_is_one_error_and_leaves_nothing(exportable: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as disk:
        out = disk / "train.jsonl"
        code, payload = _export(exportable, str(out))
        assert (code, payload) == (1, {"ok": False, "error": f"{out}: cannot write into {disk} (Read-only file system)"})
        assert list(disk.iterdir()) == []


def test_a_write_failing_with_enospc_removes_the_temporary_file(exportable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit-level, for machines where no tmpfs can be mounted: the disk fills at the final flush."""

    def full(_: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(exporting.os, "fsync", full)
    out = tmp_path / "train.jsonl"
    with pytest.raises(InvalidInput, match=r"could not be written \(No space left on device\); no file was left behind"):
        exporting.export_path(Store(exportable), "d", "openai", out)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------- kill -9 mid-import


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's reaping is left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_kill_9_of_an_import_takes_its_worker_with_it(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(_lines(80_000))
    # The same CLI, with the size at which a worker starts lowered so a small file gets one.
    script = "from workbench.services import preparing\npreparing.PARALLEL_MIN_BYTES = 0\nfrom workbench.cli import main\nmain()"
    importer = subprocess.Popen(
        [sys.executable, "-c", script, "--db", str(tmp_path / "k.db"), "datasets", "import", str(path), "--name", "big", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while not workers and time.monotonic() < deadline and importer.poll() is None:
            time.sleep(0.05)
            workers = {pid for pid in _children(importer.pid) if "prepar" in _cmdline(pid) or _is_fork_of(pid, importer.pid)}
        assert workers, "the import finished or never started a worker"
        importer.send_signal(signal.SIGKILL)
        importer.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers), f"worker(s) {workers} outlived the import they served"
    finally:
        if importer.poll() is None:
            importer.kill()


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


def _is_fork_of(pid: int, parent: int) -> bool:
    """A forked worker runs the parent's command line; the resource tracker runs its own."""
    return _cmdline(pid) == _cmdline(parent)
