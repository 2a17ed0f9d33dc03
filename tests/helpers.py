"""Small builders shared by the tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

WriteJsonl = Callable[..., Path]


def chat(user: str, assistant: str, system: str | None = None, **extra: Any) -> dict[str, Any]:
    """Build an OpenAI-format record."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user},
        {"role": "assistant", "content": assistant},
    ]
    return {"messages": messages, **extra}
