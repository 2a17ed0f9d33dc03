"""`make run`'s supervisor: loopback by default, a warning when exposed, Ctrl-C stops every child."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import serving

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, {}, "127.0.0.1"),
        (None, {"WORKBENCH_HOST": ""}, "127.0.0.1"),
        (None, {"WORKBENCH_HOST": "0.0.0.0"}, "0.0.0.0"),
        ("::1", {"WORKBENCH_HOST": "0.0.0.0"}, "::1"),
    ],
)
def test_host_comes_from_flag_then_environment_then_loopback(flag: str | None, env: dict[str, str], expected: str) -> None:
    assert serving.resolve_host(flag, env) == expected


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("localhost", False), ("::1", False), ("0.0.0.0", True), ("192.168.1.20", True), ("::", True)])
def test_only_a_non_loopback_address_is_warned_about(host: str, warned: bool) -> None:
    warning = serving.exposure_warning(host, signed_in=False)
    assert (warning is not None) == warned
    if warning:
        assert host in warning and "no sign-in" in warning


def test_with_sign_in_configured_the_warning_asks_for_https_instead(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nclient_id = "x"\n')
    assert serving.sign_in_configured([secrets])
    assert not serving.sign_in_configured([tmp_path / "missing.toml"])
    (tmp_path / "broken.toml").write_text("[auth\n")
    assert not serving.sign_in_configured([tmp_path / "broken.toml"])
    assert serving.secrets_files({"STREAMLIT_SECRETS_FILES": str(secrets)}) == [secrets]
    warning = serving.exposure_warning("0.0.0.0", signed_in=True)
    assert warning is not None and "Sign-in is configured" in warning and "HTTPS" in warning


def test_app_command_names_the_bind_address_explicitly() -> None:
    argv = serving.app_service("127.0.0.1", 8765).argv
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--server.port") + 1] == "8765"


def test_make_run_starts_the_app_the_watcher_and_the_ingest_api_on_the_same_host() -> None:
    started = serving.services("127.0.0.1", 8501, 9001)
    assert [s.name for s in started] == ["app", "watcher", "api"]
    api = started[2].argv
    assert api[api.index("--host") + 1] == "127.0.0.1" and api[api.index("--port") + 1] == "9001"
    assert serving.api_port({}) == 8765 and serving.api_port({"WORKBENCH_API_PORT": "9100"}) == 9100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_addresses(port: int) -> set[str]:
    """Read the kernel's table of listening TCP sockets for `port` (Linux), as dotted/colon addresses."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def _start(port: int, tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_HOST"}
    full_env.update({"WORKBENCH_DB": str(tmp_path / "wb.db"), "WORKBENCH_API_PORT": str(_free_port()), **env})
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.serving", "--port", str(port)],
        cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        addresses = _listening_addresses(port)
        if addresses:
            return addresses
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return out, err


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_run_listens_on_loopback_only_and_a_signal_stops_the_app(tmp_path: Path, sig: int) -> None:
    port, api_port = _free_port(), _free_port()
    proc = _start(port, tmp_path, WORKBENCH_API_PORT=str(api_port))
    try:
        assert _wait_listening(port, proc) == {"127.0.0.1"}
        assert _wait_listening(api_port, proc) == {"127.0.0.1"}
    finally:
        _, err = _stop(proc, sig)
    assert proc.returncode == 0
    assert "WARNING" not in err
    # Every child went with the supervisor: nothing listens any more.
    time.sleep(0.5)
    assert _listening_addresses(port) == set() and _listening_addresses(api_port) == set()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_exposing_the_app_takes_an_explicit_setting_and_warns(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(port, tmp_path, WORKBENCH_HOST="0.0.0.0")
    try:
        assert _wait_listening(port, proc) == {"0.0.0.0"}
    finally:
        _, err = _stop(proc)
    assert "WARNING" in err and "0.0.0.0" in err and "no sign-in" in err


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_children_that_inherit_sigint_ignored_still_stop_promptly(tmp_path: Path) -> None:
    """`make run &` from a script starts everything with SIGINT ignored; stopping must not hang on it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_HOST"}
    env["WORKBENCH_DB"] = str(tmp_path / "wb.db")
    env["WORKBENCH_API_PORT"] = str(_free_port())
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.serving", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - the point of the test
    )
    try:
        _wait_listening(port, proc)
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert time.monotonic() - started < 8, "the app child ignored the supervisor's stop signal"
    time.sleep(0.5)
    assert _listening_addresses(port) == set()


def _session_commands(sid: int) -> list[str]:
    """Command lines of every live process in session `sid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[3]) == sid:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_make_run_starts_the_job_watcher_and_ctrl_c_stops_it_too(tmp_path: Path) -> None:
    assert [s.name for s in serving.services("127.0.0.1", 8501)] == ["app", "watcher", "api"]
    port = _free_port()
    proc = _start(port, tmp_path)
    try:
        _wait_listening(port, proc)
        assert any("jobs watch" in c for c in _session_commands(proc.pid)), _session_commands(proc.pid)
        assert any("workbench api" in c for c in _session_commands(proc.pid)), _session_commands(proc.pid)
    finally:
        _stop(proc, signal.SIGINT)
    assert proc.returncode == 0
    deadline = time.monotonic() + 10
    while _session_commands(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_commands(proc.pid) == []
