"""Shared fixtures: a real SQLite store in tmp_path and small files to import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl, chat
from workbench.store import Store


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
