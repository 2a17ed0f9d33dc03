"""Start the app and every process it needs, bound to loopback unless the user asks otherwise.

`make run` calls this. The store holds training data with personal information and, unless a
deployment configures sign-in (docs/team.md), the app lets in whoever reaches it, so every server
the project starts listens on 127.0.0.1 by default; exposing it takes an explicit `WORKBENCH_HOST`
(or `make run HOST=0.0.0.0`) and prints a warning, or with sign-in a reminder to serve it over HTTPS. One
supervisor owns the child processes so that Ctrl-C (or SIGTERM) stops them all, and a child that
dies takes the others down with it instead of leaving half an app running.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
DEFAULT_API_PORT = 8765
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Service:
    """One long-running child process: a name for messages and the command that starts it."""

    name: str
    argv: list[str]


def resolve_host(cli_host: str | None = None, env: dict[str, str] | None = None) -> str:
    """Return the address to bind: the --host flag, else WORKBENCH_HOST, else loopback."""
    env = os.environ if env is None else env
    host = (cli_host or env.get("WORKBENCH_HOST") or DEFAULT_HOST).strip()
    if not host:
        return DEFAULT_HOST
    return host


def is_loopback(host: str) -> bool:
    """Say whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secrets_files(env: dict[str, str] | None = None) -> list[Path]:
    """The secrets files Streamlit reads for an app started here: `STREAMLIT_SECRETS_FILES`, else its two defaults."""
    env = os.environ if env is None else env
    named = [Path(p.strip()) for p in env.get("STREAMLIT_SECRETS_FILES", "").split(",") if p.strip()]
    return named or [ROOT / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]


def sign_in_configured(files: Sequence[Path] | None = None) -> bool:
    """Say whether the app's secrets hold an `[auth]` table, i.e. people must sign in (ui/auth.py decides the same)."""
    import tomllib

    for path in secrets_files() if files is None else files:
        try:
            with path.open("rb") as f:
                if isinstance(tomllib.load(f).get("auth"), dict):
                    return True
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return False


def exposure_warning(host: str, *, signed_in: bool | None = None) -> str | None:
    """Return the warning printed when the app would listen beyond this machine, else None."""
    if is_loopback(host):
        return None
    if signed_in if signed_in is not None else sign_in_configured():
        return (
            f"NOTE: the workbench is listening on {host}, reachable from other machines. Sign-in is configured, "
            "so only people with a role get in (workbench users list); serve it behind HTTPS, since the "
            "identity cookie travels with every request."
        )
    return (
        f"WARNING: the workbench is listening on {host}, reachable from other machines, and has no "
        "sign-in: anyone who can reach this address can read and change every dataset in the store, "
        "personal data included. Unset WORKBENCH_HOST (or drop HOST=) to keep it on 127.0.0.1."
    )


def app_service(host: str, port: int, python: str = sys.executable) -> Service:
    """Describe the Streamlit app process, with the bind address given explicitly on the command line."""
    return Service(
        "app",
        [
            python, "-m", "streamlit", "run", str(ROOT / "Home.py"),
            "--server.address", host,
            "--server.port", str(port),
            "--server.headless", "true",
        ],
    )


def watcher_service(python: str = sys.executable) -> Service:
    """Describe the job watcher: polls every active job, so jobs progress with no browser open."""
    return Service("watcher", [python, "-m", "workbench", "jobs", "watch"])


def api_port(env: dict[str, str] | None = None) -> int:
    """Return the ingest API's port: WORKBENCH_API_PORT, else 8765."""
    env = os.environ if env is None else env
    return int(env.get("WORKBENCH_API_PORT") or DEFAULT_API_PORT)


def api_service(host: str, port: int, python: str = sys.executable) -> Service:
    """Describe the ingest API process, bound to the same address as the app."""
    return Service("api", [python, "-m", "workbench", "api", "--host", host, "--port", str(port)])


def services(host: str, port: int, api_port_number: int | None = None) -> list[Service]:
    """Return every process `make run` starts: the app, the job watcher and the ingest API."""
    return [app_service(host, port), watcher_service(), api_service(host, api_port_number or api_port())]


def supervise(to_start: Sequence[Service], *, poll_s: float = 0.5) -> int:
    """Run every service until one exits or the user presses Ctrl-C, then stop them all.

    Returns the exit status to leave with: 0 after Ctrl-C/SIGTERM, otherwise the status of the
    first child that stopped on its own.
    """
    children: list[tuple[Service, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        for service in to_start:
            children.append((service, subprocess.Popen(service.argv, cwd=ROOT)))
        while not stopping:
            for service, proc in children:
                code = proc.poll()
                if code is not None:
                    print(f"workbench: {service.name} stopped (exit {code}); stopping the rest", file=sys.stderr)
                    return code or 1
            time.sleep(poll_s)
    except KeyboardInterrupt:
        status = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_all(children)
    return status


def _stop_all(children: list[tuple[Service, subprocess.Popen[bytes]]], grace_s: float = 10.0) -> None:
    # SIGTERM rather than SIGINT: a child started from a non-interactive shell in the background
    # inherits SIGINT ignored, but every server here stops cleanly on SIGTERM.
    for _, proc in children:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace_s
    for _, proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, print where the app is, and supervise its processes."""
    parser = argparse.ArgumentParser(prog="python -m workbench.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=None, help=f"Address to bind (default: $WORKBENCH_HOST or {DEFAULT_HOST}).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WORKBENCH_PORT") or DEFAULT_PORT))
    args = parser.parse_args(argv)
    host = resolve_host(args.host)
    warning = exposure_warning(host)
    if warning:
        print(warning, file=sys.stderr)
    shown = "localhost" if is_loopback(host) else host
    print(f"Fine-Tuning Workbench: http://{shown}:{args.port}  ingest API: http://{shown}:{api_port()}/docs  "
          "(Ctrl-C stops everything)", file=sys.stderr)
    return supervise(services(host, args.port))


if __name__ == "__main__":
    sys.exit(main())
