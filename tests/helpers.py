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


def wait_task(store: Any, task: Any, until: Callable[[Any], bool], timeout: float = 120.0) -> Any:
    """Poll a background task until `until(task)` holds; fail naming its state if it never does."""
    import time

    from workbench.services import tasks

    deadline = time.monotonic() + timeout
    while not until(task):
        assert time.monotonic() < deadline, f"task {task.id} stayed {task.state.value}: {task}"
        time.sleep(0.1)
        task = tasks.get(store, task.id)
    return task


def task_ended(task: Any) -> bool:
    return not task.state.active
