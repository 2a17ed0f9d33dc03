"""Small widgets every page uses: exact and escaped rendering of user text, conversations, messages after actions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import streamlit as st
from pydantic import BaseModel

from workbench.domain.example import Example, Message, PiiFinding
from workbench.domain.locations import turn_label
from workbench.domain.pii import highlight_segments
from workbench.errors import WorkbenchError

# Shipped with the app: a `:material/...:` page icon makes the browser fetch the favicon from
# fonts.gstatic.com, which an offline machine (or one that must not call out) cannot reach.
PAGE_ICON = Path(__file__).resolve().parents[2] / "assets" / "favicon.svg"
# A turn longer than this is shown folded, its first lines visible, so one long document does not
# push the rest of the conversation (and the labels beside it) out of sight.
LONG_TURN_CHARS, LONG_TURN_LINES = 1_500, 30
PREVIEW_CHARS, PREVIEW_LINES = 400, 6
_FLASH = "flash"
# Markdown image syntax would make the browser fetch any URL a dataset names; a rendered view shows it as text.
_IMAGE = re.compile(r"!(?=\[)")
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


def exact_text(text: str) -> None:
    """Show dataset text exactly as stored: no Markdown, every space, tab and line kept, long lines wrapped."""
    if not text:
        st.caption("(empty)")
        return
    # st.code drops one leading and one trailing newline; add them so the stored ones survive.
    st.code("\n" + text + "\n", language=None, wrap_lines=True)


def rendered_text(text: str) -> None:
    """Show dataset text as Markdown, for reading formatted answers; HTML stays off and images stay text."""
    if not text:
        st.caption("(empty)")
        return
    st.markdown(_IMAGE.sub(r"\\!", text))


def conversation(example: Example, *, rendered: bool = False) -> None:
    """Show an example as chat bubbles, the system prompt first and set apart, each turn labelled.

    By default each text is shown exactly as stored; `rendered` shows it as Markdown instead.
    Turns are labelled as every finding names them ('turn 2 (assistant)'), so a PII or validation
    finding can be found at a glance.
    """
    show = rendered_text if rendered else exact_text
    if example.system is not None:
        with st.chat_message("system", avatar=_ROLE_AVATARS["system"]):
            st.caption("system")
            _folded(example.system, "system prompt", show)
    _tools(example)
    for i, message in enumerate(example.messages):
        role = message.role.value
        with st.chat_message(role, avatar=_ROLE_AVATARS.get(role)):
            st.caption(" · ".join(escape_markdown(p) for p in (turn_label(i, role), *_turn_notes(message)) if p))
            if message.content or not message.tool_calls:
                _folded(message.content, turn_label(i, role), show)
            for j, call in enumerate(message.tool_calls):
                st.caption(escape_markdown(f"tool call {j + 1}: {call.name}" + (f" (id {call.id})" if call.id else "")))
                _folded(call.arguments, f"tool call {j + 1} arguments", exact_text)


def _tools(example: Example) -> None:
    """Show the tools the example declares: a reviewer judging a tool call needs the schema it was made against."""
    if not example.tools:
        return
    names = ", ".join(tool.name for tool in example.tools)
    settings = [f"parallel_tool_calls {str(example.parallel_tool_calls).lower()}"] if example.parallel_tool_calls is not None else []
    if example.tool_choice is not None:
        settings.append("tool_choice " + orjson.dumps(example.tool_choice).decode())
    with st.expander(f"Tools offered ({len(example.tools)}): {escape_markdown(names)}", icon=":material/build:"):
        if settings:
            st.caption(escape_markdown(" · ".join(settings)))
        for tool in example.tools:
            st.caption(escape_markdown(tool.name + (f": {tool.description}" if tool.description else "")))
            if tool.parameters is not None:
                exact_text(orjson.dumps(tool.parameters, option=orjson.OPT_INDENT_2).decode())


def _folded(text: str, what: str, show: Callable[[str], None]) -> None:
    lines = text.count("\n") + 1
    if len(text) <= LONG_TURN_CHARS and lines <= LONG_TURN_LINES:
        show(text)
        return
    preview = "\n".join(text[:PREVIEW_CHARS].split("\n")[:PREVIEW_LINES])
    show(preview)
    with st.expander(f"Show the whole {what}: {len(text):,} characters, {lines:,} lines", icon=":material/unfold_more:"):
        show(text)


def _turn_notes(message: Message) -> list[str]:
    notes = [_weight(message.weight)]
    if message.name:
        notes.append(f"name {message.name}")
    if message.tool_call_id:
        notes.append(f"answers call {message.tool_call_id}")
    for block in message.blocks or []:
        if block.kind.value not in ("text", "json"):
            # A reference only: the page never fetches what a dataset points at.
            notes.append(f"{block.kind.value} {block.uri or ''}".strip())
    return notes


def page_setup(title: str, page: str | None = None) -> None:
    """Set the browser tab's title and the app's own icon, with the wide layout every page uses, then pass the gate.

    The gate (workbench.ui.auth) stops the run here when the person is not signed in or their role may not
    open `page` (the running script's path when not given).
    """
    st.set_page_config(page_title=title, page_icon=str(PAGE_ICON), layout="wide")
    from workbench.ui import auth  # here, not at the top: auth draws with this module's widgets

    auth.gate(page or auth.current_page())


def url_tabs(key: str, tabs: Mapping[str, Callable[..., None]], *args: Any) -> None:
    """Draw tabs whose choice is kept in the URL (`?tab=`), so a link or a reload reopens the same tab.

    Only the open tab's function runs (the others would redo their queries for nothing), and a
    WorkbenchError it raises is shown inside that tab, escaped, so one broken tab leaves the page usable.
    """

    def changed() -> None:
        st.query_params["tab"] = st.session_state[key]

    # `?tab=drift` opens "Drift": a typed or shared link rarely keeps the tab's capitals.
    wanted = (st.query_params.get("tab") or "").strip().casefold()
    default = next((name for name in tabs if name.casefold() == wanted), None)
    shown = st.tabs(list(tabs), key=key, default=default, on_change=changed)
    for tab, render in zip(shown, tabs.values(), strict=True):
        with tab:
            if tab.open:
                try:
                    render(*args)
                except WorkbenchError as e:
                    st.error(escape_markdown(str(e)), icon=":material/error:")


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
        flash(scope, escape_markdown(str(exc)), "error")  # service errors quote user input: never markdown
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
