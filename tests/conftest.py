"""Shared fixtures: a real SQLite store in tmp_path and small files to import."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api_server import api, token  # noqa: F401 (fixtures: the API on the test's store, a token for it)
from tests.helpers import WriteJsonl, chat
from workbench.store import Store


def pytest_configure(config: pytest.Config) -> None:
    """Let Ctrl-C reach the children tests start, however the suite itself was started.

    A shell without job control starts a background command (`make test &`) with SIGINT ignored,
    and an ignored signal stays ignored across exec: every child would then shrug off the Ctrl-C
    the Ctrl-C tests send it. A handler, unlike an ignore, is reset to the default in a child.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _main_module_restored() -> Iterator[None]:
    """Put back `__main__` after each test: Streamlit's AppTest installs the page it ran there.

    A process started later with multiprocessing's 'spawn' re-runs `__main__`'s file, so a page left
    there would be executed, outside Streamlit, in every worker of an unrelated test.
    """
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def _acting_operator_restored() -> Iterator[None]:
    """Put back who code acts as after each test: a test that signs someone in must not leak them into the next."""
    from workbench.services import access

    before, resolver = access._process_default, access._resolver
    yield
    access._process_default, access._resolver = before, resolver
    auth = sys.modules.get("workbench.ui.auth")
    if auth is not None:  # a page test that configured sign-in must not leave the next one failing closed
        auth._seen_configured = False


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "workbench.db")


@pytest.fixture
def write_jsonl(tmp_path: Path) -> WriteJsonl:
    def write(records: list[Any], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records))
        return path

    return write


@pytest.fixture
def sample_records() -> list[dict[str, Any]]:
    """Twenty varied chat records: topics for search, one with an email, one with hostile text."""
    topics = ["invoice", "refund", "shipping", "password", "warranty"]
    records = [
        chat(f"Question {i} about my {topics[i % 5]}", f"Answer {i} about the {topics[i % 5]}", metadata={"topic": topics[i % 5]})
        for i in range(18)
    ]
    records.append(chat("Please email me at jane.doe@example.com", "Sure, I will email you.", metadata={"topic": "contact"}))
    records.append(chat("<script>alert(1)</script> '; DROP TABLE examples;--", "I can't run that.", metadata={"topic": "hostile"}))
    return records


@pytest.fixture
def fresh_streamlit_caches() -> Iterator[None]:
    """Clear Streamlit's caches around a page test: both outlive an AppTest, so a cached store or count would leak."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Start moto's server once per session on a free local port and yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3's own chain at the moto server with dummy credentials, and wipe moto's state first."""
    import urllib.request

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # a test without credentials must not wait on IMDS
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # moto's 500s for unimplemented calls are not worth retrying
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10).close()
    return moto_server


# --- jobs against the OpenAI double (tests/test_jobs_service.py, tests/test_sweeps.py) --------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """The local HTTP double of OpenAI's fine-tuning endpoints, one per test module."""
    from tests.doubles.openai_server import OpenAIDouble

    double = OpenAIDouble().serve()
    yield double
    double.close()


@pytest.fixture
def double(server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The double with its calls forgotten and the environment pointing the openai SDK and runs at it."""
    from tests.doubles.openai_server import API_KEY

    server.reset_calls()
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    return server


@pytest.fixture
def support(store: Store, write_jsonl: WriteJsonl) -> Store:
    """40 support chats split 75/25, the dataset the jobs tests launch on."""
    from workbench.services import importing, splits

    records = [chat(f"Where is parcel {i}?", f"Parcel {i} arrives in {i % 4 + 1} days.", system="Be brief.") for i in range(40)]
    importing.import_path(store, write_jsonl(records), "support")
    splits.split_dataset(store, "support", (0.75, 0.25, 0.0), seed=3)
    return store
