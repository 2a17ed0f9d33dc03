"""The rules `workbench datasets validate --target openai` checks, one per provider check, with sources."""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity
from workbench.domain.catalogue.rules.common import ONE_OBJECT

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

OPENAI = (
    ONE_OBJECT,
    R(summary="A non-empty `messages` list of objects.", codes=("missing_messages_list", "invalid_type"),
      source=src.OPENAI_COOKBOOK_PREP),
    R(summary="Every message has `role` and `content` (content may be left out on an assistant tool call).",
      codes=("message_missing_key",), source=src.OPENAI_COOKBOOK_PREP),
    R(summary="Message keys only: role, content, name, weight, tool_calls, tool_call_id, function_call.",
      codes=("message_unrecognized_key",), source=src.OPENAI_COOKBOOK_PREP),
    R(summary="Roles only: system, user, assistant, tool (function for legacy function calls).",
      codes=("unrecognized_role",), source=src.OPENAI_COOKBOOK_PREP),
    R(summary="Content is non-empty text.", codes=("missing_content", "empty_content"), source=src.OPENAI_COOKBOOK_PREP),
    R(summary="At least one assistant message, and ending on one (a later turn is never trained on).",
      codes=("example_missing_assistant_message", "last_not_assistant"), source=src.OPENAI_COOKBOOK_PREP),
    R(summary="A system and a user message in each example (warnings).",
      codes=("missing_system_message", "missing_user_message"), source=src.OPENAI_COOKBOOK_PREP),
    R(summary="`weight` is 0 or 1, on assistant messages only; not every assistant turn at 0.",
      codes=("invalid_weight", "misplaced_weight", "all_weights_zero"), source=src.OPENAI_GUIDE),
    R(summary="Top-level keys only: messages, tools, functions, parallel_tool_calls (others are ignored).",
      codes=("unrecognized_key",), source=src.OPENAI_GUIDE),
    R(summary="`tools` is a list of {type: function, function: {name, parameters}} objects; a name uses a-z, A-Z, 0-9, _ and - (at most 64).",
      codes=("invalid_tool_definition",), source=src.OPENAI_TOOLS_EXAMPLE),
    R(summary="`tool_calls` only on assistant messages, each {id, type: function, function: {name, arguments}}.",
      codes=("misplaced_tool_calls", "invalid_tool_call"), source=src.OPENAI_TOOLS_EXAMPLE),
    R(summary="Function `arguments` is a string holding a JSON object, not an object.",
      codes=("tool_arguments_not_json_string",), source=src.OPENAI_TOOLS_EXAMPLE),
    R(summary="A tool message carries the `tool_call_id` of an earlier assistant tool call.",
      codes=("missing_tool_call_id", "tool_result_without_call"), source=src.OPENAI_TOOLS_EXAMPLE),
    R(summary="A called function is one of the example's `tools` (warning).", codes=("unknown_tool",),
      source=src.OPENAI_TOOLS_EXAMPLE),
    R(summary="At least 10 examples; 50 or more recommended.", codes=("too_few_examples", "below_recommended_examples"),
      source=src.OPENAI_GUIDE),
    R(summary="Examples over the model's training context are truncated from the end (warning).",
      codes=("too_many_tokens",), source=src.OPENAI_GUIDE),
)
