"""Small widgets every page uses: escaped rendering of user text, conversations, messages after actions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import streamlit as st
from pydantic import BaseModel

from workbench.domain.example import Example, PiiFinding
from workbench.domain.pii import highlight_segments
from workbench.errors import WorkbenchError

_FLASH = "flash"
# Every ASCII punctuation character can be backslash-escaped in CommonMark, and escaping all of them
# leaves no markdown, HTML, directive (`:red[...]`), math (`$`) or autolink syntax in user text.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# GFM turns emails, www. and http(s):// in plain text into links after escapes are resolved, so a
# WORD JOINER (invisible, zero-width) goes where those patterns need an unbroken character run.
_AUTOLINK = re.compile(r"(?<=@)|(?<=\bwww)(?=\.)|(?<=\bhttp)(?=:)|(?<=\bhttps)(?=:)", re.IGNORECASE)
_JOINER = "\u2060"
_ROLE_AVATARS = {"system": ":material/settings:", "tool": ":material/build:"}


# ------------------------------------------------------------------------------------------- text


def escape_markdown(text: str) -> str:
    """Return text that st.markdown shows literally: no formatting, links, HTML or line joining.

    What the reader sees is the text itself; only invisible word joiners are added, inside emails
    and URLs, so that they are not turned into links.
    """
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)].replace("\t", "    ")
        # Leading spaces would start a code block; non-breaking ones keep the indentation visible.
        lines.append("&nbsp;" * len(indent) + _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(_JOINER, stripped)))
    return "  \n".join(lines)


def highlighted_markdown(text: str, findings: list[PiiFinding]) -> str:
    """Return escaped markdown of text with each PII finding on a red background."""
    pieces = []
    for segment, kind in highlight_segments(text, findings):
        escaped = escape_markdown(segment)
        pieces.append(f":red-background[{escaped}]" if kind else escaped)
    return "".join(pieces)


def user_text(text: str, findings: list[PiiFinding] | None = None) -> None:
    """Show dataset text exactly as written, PII findings highlighted."""
    if not text:
        st.caption("(empty)")
        return
    st.markdown(highlighted_markdown(text, findings or []))


def conversation(example: Example, *, highlight_pii: bool = True) -> None:
    """Show an example as chat bubbles, the system prompt first and set apart."""
    by_part: dict[str, list[PiiFinding]] = {}
    if highlight_pii:
        for finding in example.pii:
            by_part.setdefault(finding.where, []).append(finding)
    if example.system:
        with st.chat_message("system", avatar=_ROLE_AVATARS["system"]):
            st.caption("System prompt")
            user_text(example.system, by_part.get("system"))
    for i, message in enumerate(example.messages):
        role = message.role.value
        with st.chat_message(role, avatar=_ROLE_AVATARS.get(role)):
            if role == "tool" or message.weight is not None:
                st.caption(" · ".join(p for p in (role if role == "tool" else "", _weight(message.weight)) if p))
            user_text(message.content, by_part.get(f"messages[{i}]"))


def chart_text(text: str) -> str:
    """Return dataset text for a plotly label, where <b>, <a href> and friends would otherwise be markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _weight(weight: float | None) -> str:
    return "" if weight is None else f"training weight {weight:g}"


# ---------------------------------------------------------------------------------------- actions


def flash(scope: str, message: str, kind: str = "success") -> None:
    """Leave a message for `show_flash(scope)` to show on the next run (callbacks run before the page)."""
    st.session_state.setdefault(_FLASH, {})[scope] = (kind, message)


def show_flash(scope: str) -> None:
    """Show, once, the message an action left for this part of the page."""
    kind, message = st.session_state.get(_FLASH, {}).pop(scope, (None, None))
    if kind == "error":
        st.error(message, icon=":material/error:")
    elif kind == "warning":
        st.warning(message, icon=":material/warning:")
    elif kind:
        st.success(message, icon=":material/check_circle:")


def run_action(scope: str, fn: Callable[..., Any], /, *args: Any, success: str | Callable[[Any], str] = "Done.", **kwargs: Any) -> Any:
    """Call a service that writes, report the outcome next to the widget, and drop cached reads.

    Meant for on_click/on_change callbacks and submitted forms. A WorkbenchError becomes a message
    the user can act on; anything else is a bug and propagates.
    """
    try:
        result = fn(*args, **kwargs)
    except WorkbenchError as exc:
        flash(scope, str(exc), "error")
        return None
    st.cache_data.clear()
    message = success(result) if callable(success) else success
    flash(scope, message)
    st.toast(message, icon=":material/check:")
    return result


def field_help(model: type[BaseModel], name: str) -> str | None:
    """Return a pydantic field's description, to reuse as a widget's help text."""
    field = model.model_fields.get(name)
    return field.description if field else None


def plural(n: int, word: str, many: str | None = None) -> str:
    """Return '1 example' / '3 examples'."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def human_bytes(n: int) -> str:
    """Return a size the way people read it: 812 B, 14.2 KB, 3.1 MB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"
