"""OpenAI rules, each with a record that breaks it and one that narrowly passes.

The cookbook's checks (openai/openai-cookbook `examples/Chat_finetuning_data_prep.ipynb`) are followed
exactly where it has a key for them; the guide's additions (tools, images, weights, counts) where it has none.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.rule_cases import Dataset, Findings, RuleCase, assert_breaks, assert_passes, valid_record
from tests.service_cases import service_cases
from workbench.domain.validation import Finding, rules_for
from workbench.domain.validation.dataset import _dataset_findings
from workbench.domain.validation.shape import _Dataset

T = "openai"
SYS = {"role": "system", "content": "You are terse."}
USER = {"role": "user", "content": "Hi"}
BOT = {"role": "assistant", "content": "Hello."}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
IMG = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
TEXT = {"type": "text", "text": "What is this?"}


def ex(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"messages": list(messages), **top}


def m(role: Any, content: Any = "Hi", **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def call(call_id: Any = "call_1", name: Any = "lookup", arguments: Any = '{"q": "x"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def calls(*items: Any) -> dict[str, Any]:
    return {"role": "assistant", "tool_calls": list(items)}


def result(call_id: Any = "call_1") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": '{"ok": true}'}


def tooled(*messages: Any) -> dict[str, Any]:
    return ex(SYS, USER, *messages, tools=TOOLS)


GOOD = valid_record(T)
GB8 = 8 * 1024**3


def sized(total_bytes: int, split: str = "train") -> Findings:
    """The dataset-level check for a file of `total_bytes` (writing 8 GB here would take too long)."""

    def run() -> list[Finding]:
        return _dataset_findings(50, total_bytes, rules_for(T, split=split), _Dataset(), None)

    return Findings(run)
LONG = "word " * 66_000


def C(rule: str, breaks: Any, passes: Any, why: str, **kw: Any) -> RuleCase:  # noqa: N802 - reads as a table
    return RuleCase(target=T, rule=f"openai.{rule}", breaks=breaks, passes=passes, why=why, **kw)


CASES: list[RuleCase] = [
    # The cookbook's "Format validation" cell.
    C("one-object", ["not", "an object"], GOOD, "a list is not a dict"),
    C("one-object", "messages", GOOD, "a bare string"),
    C("messages-list", {}, GOOD, "no messages key"),
    C("messages-list", ex(), ex(BOT), "empty list vs one assistant message"),
    C("messages-list", {"messages": None}, GOOD, "messages null"),
    C("messages-list", {"messages": "Hi"}, GOOD, "messages a string"),
    C("message-object", ex(SYS, "Hi", BOT), GOOD, "a string in the list"),
    C("message-keys", ex(SYS, {"role": "user"}, BOT), ex(SYS, {"role": "user", "content": "Hi"}, BOT), "user without content"),
    C("message-keys", ex(SYS, USER, {"role": "assistant"}), tooled(calls(call())),
      "content left out only beside tool_calls"),
    C("message-keys", ex(SYS, {"content": "Hi"}, BOT), GOOD, "no role"),
    C("message-unrecognized-key", ex(SYS, m("user", refusal="no"), BOT), ex(SYS, m("user", name="bob"), BOT),
      "refusal vs name"),
    C("message-unrecognized-key", ex(SYS, USER, m("assistant", "Hello.", Weight=1)),
      ex(SYS, USER, m("assistant", "Hello.", weight=1)), "Weight capitalised vs weight"),
    C("roles", ex(m("System", "Be terse."), USER, BOT), GOOD, "System capitalised"),
    C("roles", ex(SYS, m("bot"), BOT), ex(SYS, USER, m("function", "42", name="lookup"), BOT),
      "bot vs the cookbook's function role"),
    C("roles", ex(SYS, m("developer"), BOT), tooled(calls(call()), result(), BOT), "developer vs the guide's tool role"),
    C("roles", ex(SYS, m(None), BOT), GOOD, "role null"),
    C("content", ex(SYS, m("user", ""), BOT), ex(SYS, m("user", " "), BOT), 'content "" vs " "'),
    C("content", ex(SYS, m("user", None), BOT), tooled({"role": "assistant", "content": None, "tool_calls": [call()]}),
      "null content only beside a tool call"),
    C("content", ex(SYS, m("user", 42), BOT), ex(SYS, m("user", "42"), BOT), "a number vs a string"),
    C("content", ex(SYS, USER, m("assistant", "")),
      ex(SYS, USER, m("assistant", "", function_call={"name": "lookup", "arguments": "{}"}), BOT),
      "empty content passes beside function_call"),
    C("content", ex(SYS, m("user", []), BOT), ex(SYS, m("user", [TEXT]), BOT), "an empty part list vs one text part"),
    C("assistant-message", ex(SYS, USER), ex(SYS, USER, BOT), "no assistant message"),
    C("assistant-message", ex(SYS, USER, m("Assistant", "Hello.")), GOOD, "Assistant capitalised is not assistant"),
    C("system-user-messages", ex(USER, BOT), GOOD, "no system message"),
    C("system-user-messages", ex(SYS, BOT), ex(SYS, USER, BOT), "no user message"),
    C("too-many-tokens", ex(SYS, USER, m("assistant", LONG)), ex(SYS, USER, m("assistant", "word " * 60_000)),
      "66,000 vs 60,000 words on gpt-4o-mini"),
    C("too-many-tokens", ex(SYS, USER, m("assistant", "word " * 16_400)), ex(SYS, USER, m("assistant", "word " * 16_300)),
      "16,385 on gpt-3.5-turbo-0125", base_model="gpt-3.5-turbo-0125"),
    # The service, from OpenAI's documentation.
    C("min-examples", Dataset([GOOD] * 9), Dataset([GOOD] * 10), "9 vs 10 examples"),
    C("min-examples", Dataset([]), Dataset([GOOD]), "0 vs 1 validation example", split="validation"),
    C("recommended-examples", Dataset([GOOD] * 49), Dataset([GOOD] * 50), "49 vs 50 examples"),
    C("file-size", sized(GB8 + 1), sized(GB8), "one byte over 8 GB"),
    C("file-size", sized(GB8 + 1, "validation"), sized(GB8, "validation"), "a validation file one byte over 8 GB"),
    C("weight", ex(SYS, USER, m("assistant", "Hello.", weight=2)), ex(SYS, USER, m("assistant", "Hello.", weight=1)),
      "weight 2 vs 1"),
    C("weight", ex(SYS, USER, m("assistant", "Hello.", weight=0.5)), ex(SYS, USER, m("assistant", "A", weight=0), BOT),
      "weight 0.5 vs 0"),
    C("weight", ex(SYS, USER, m("assistant", "Hello.", weight=True)), ex(SYS, USER, m("assistant", "Hello.", weight=1.0)),
      "true vs 1.0"),
    C("weight", ex(SYS, USER, m("assistant", "Hello.", weight="1")), GOOD, "the string '1'"),
    C("name", ex(SYS, m("user", name=5), BOT), ex(SYS, m("user", name="5"), BOT), "5 vs '5'"),
    C("content-parts", ex(SYS, m("user", [{"type": "text", "text": 5}]), BOT), ex(SYS, m("user", [TEXT, IMG]), BOT),
      "text not a string"),
    C("content-parts", ex(SYS, m("user", [{"type": "image", "url": "https://example.com/a.png"}]), BOT),
      ex(SYS, m("user", [IMG]), BOT), "type image vs image_url"),
    C("images", ex(SYS, USER, m("assistant", [IMG])), ex(SYS, USER, m("assistant", [{"type": "text", "text": "A cat."}])),
      "an image in an assistant message"),
    C("images", ex(SYS, m("user", [TEXT] + [IMG] * 11), BOT), ex(SYS, m("user", [TEXT] + [IMG] * 10), BOT),
      "11 vs 10 images"),
    C("tool-definitions", {**tooled(calls(call())), "tools": [{"type": "function", "function": {"parameters": {}}}]},
      tooled(calls(call())), "a tool without a name"),
    C("tool-definitions", {**tooled(calls(call())), "tools": {"lookup": {}}}, tooled(calls(call())), "tools not a list"),
    C("tool-definitions",
      ex(SYS, USER, BOT, tools=[{"type": "function", "function": {"name": "look up", "parameters": {}}}]),
      ex(SYS, USER, BOT, tools=[{"type": "function", "function": {"name": "look_up-2", "parameters": {}}}]),
      "a space in the name vs _ and -"),
    C("tool-definitions", ex(SYS, USER, BOT, tools=[{"type": "function", "function": {"name": "f" * 65}}]),
      ex(SYS, USER, BOT, tools=[{"type": "function", "function": {"name": "f" * 64}}]), "65 vs 64 characters"),
    C("tool-calls", ex(SYS, m("user", tool_calls=[call()]), BOT, tools=TOOLS), tooled(calls(call())),
      "tool_calls on a user message"),
    C("tool-calls", tooled(calls(call(call_id=None))), tooled(calls(call())), "a call without an id"),
    C("tool-calls", tooled({"role": "assistant", "tool_calls": []}), tooled(calls(call())), "empty tool_calls"),
    C("tool-calls", tooled(m("assistant", "Hello.", tool_call_id="call_1")), tooled(calls(call()), result(), BOT),
      "tool_call_id on an assistant message"),
    C("tool-calls", ex(SYS, USER, {"role": "assistant", "function_call": {"arguments": "{}"}}),
      ex(SYS, USER, {"role": "assistant", "function_call": {"name": "lookup", "arguments": "{}"}}),
      "legacy function_call without a name"),
    C("tool-arguments", tooled(calls(call(arguments={"q": "x"}))), tooled(calls(call(arguments='{"q": "x"}'))),
      "an object vs a JSON string"),
    C("tool-arguments", tooled(calls(call(arguments="q=x"))), tooled(calls(call(arguments="{}"))), "not JSON vs {}"),
    C("tool-arguments", tooled(calls(call(arguments="[1]"))), tooled(calls(call(arguments=" {} "))),
      "a JSON list vs a spaced object"),
    C("tool-arguments", ex(SYS, USER, {"role": "assistant", "function_call": {"name": "lookup", "arguments": {}}}),
      ex(SYS, USER, {"role": "assistant", "function_call": {"name": "lookup", "arguments": "{}"}}),
      "legacy function_call arguments as an object"),
    C("tool-results", tooled(calls(call()), {"role": "tool", "content": "42"}, BOT), tooled(calls(call()), result(), BOT),
      "a tool result without tool_call_id"),
    C("tool-results", tooled(calls(call()), result("call_2"), BOT), tooled(calls(call()), result("call_1"), BOT),
      "an id no call has"),
    C("tool-results", tooled(result("call_1"), calls(call()), BOT), tooled(calls(call()), result("call_1"), BOT),
      "the result before its call"),
    # The workbench's advice.
    C("top-level-keys", ex(SYS, USER, BOT, metadata={"source": "x"}), ex(SYS, USER, BOT, parallel_tool_calls=False),
      "metadata vs parallel_tool_calls"),
    C("whitespace-content", ex(SYS, m("user", " \n"), BOT), ex(SYS, m("user", " ."), BOT), "only whitespace"),
    C("ends-on-assistant", ex(SYS, USER, BOT, m("user", "Thanks")), ex(SYS, USER, BOT, USER, BOT), "a trailing user turn"),
    C("weight-placement", ex(SYS, m("user", weight=1), BOT), ex(SYS, USER, m("assistant", "Hello.", weight=1)),
      "weight on a user message"),
    C("all-weights-zero", ex(SYS, USER, m("assistant", "A", weight=0)), ex(SYS, USER, m("assistant", "A", weight=0), USER, BOT),
      "the only assistant turn at weight 0"),
    C("unknown-tool", tooled(calls(call(name="search"))), ex(SYS, USER, calls(call(name="search"))),
      "a call to an undefined function; no tools at all passes"),
]

CASES += service_cases(T, "openai.one-object", "openai.conversion-loss")  # invalid_json, conversion_loss


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_breaks(case: RuleCase) -> None:
    assert_breaks(case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_passes(case: RuleCase) -> None:
    assert_passes(case)


def test_role_is_reported_once_when_missing() -> None:
    """The cookbook counts a missing role twice (message_missing_key and unrecognized_role); we report it once."""
    from tests.rule_cases import findings_of

    case = CASES[0]
    found = findings_of(case, ex(SYS, {"content": "Hi"}, BOT))
    codes = [f.code for f in found if f.source_line == 1]
    assert "message_missing_key" in codes and "unrecognized_role" not in codes
