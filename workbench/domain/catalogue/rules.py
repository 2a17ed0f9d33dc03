"""The rules the validators check, per record shape, each with the finding codes it reports and its source.

A target lists the rules that apply to it; a test checks that every code listed here is reported by the
validator for some record, and that the validator reports no code a target does not list.
"""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule

R = Rule

# --- shared by every target --------------------------------------------------------------------------

ONE_OBJECT = R(summary="Each line is one JSON object.", codes=("data_type",), source=src.OPENAI_COOKBOOK_PREP)
ONE_OBJECT_BEDROCK = R(summary="Each line is one JSON object (JSONL).", codes=("data_type",), source=src.BEDROCK_TEXT_DATA)

# --- OpenAI chat -------------------------------------------------------------------------------------

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

# --- chat shapes on Bedrock: shared turn rules -------------------------------------------------------

def _turns(source: str) -> tuple[Rule, ...]:
    return (
        R(summary="A non-empty `messages` list of objects, each with `role` and `content`.",
          codes=("missing_messages_list", "missing_key", "invalid_type"), source=source),
        R(summary="Roles only user and assistant; the system prompt goes in the top-level `system`.",
          codes=("unrecognized_role",), source=source),
        R(summary="At least two messages: first user, then alternating, last assistant.",
          codes=("too_few_messages", "first_not_user", "roles_not_alternating", "last_not_assistant"), source=source),
        R(summary="Every message has text.", codes=("empty_content",), source=source),
    )


def _no_tools(label: str, source: str) -> Rule:
    return R(
        summary=f"No tool use: {label} training data has no place for tool definitions, calls or results.",
        codes=("tool_use_not_supported",), source=source,
    )


HAIKU = (
    ONE_OBJECT_BEDROCK,
    R(summary="Only `system` and `messages` at the top, only `role` and `content` in a message.",
      codes=("forbidden_key",), source=src.HAIKU_COOKBOOK),
    R(summary="`system` and every `content` are plain strings.", codes=("invalid_type",), source=src.BEDROCK_TEXT_DATA),
    *_turns(src.HAIKU_COOKBOOK),
    R(summary="No '\\nHuman:' or '\\nAssistant:' in the system prompt or any message.", codes=("reserved_keyword",),
      source=src.HAIKU_VALIDATOR),
    R(summary="Multi-turn records are accepted with a warning (AWS documents single-turn).",
      codes=("multi_turn_warning",), source=src.BEDROCK_TEXT_DATA),
    R(summary="At most 32,000 tokens per record, estimated as characters / 3.", codes=("too_many_tokens",),
      source=src.HAIKU_VALIDATOR),
    R(summary="32 to 10,000 training and 32 to 1,000 validation records; at most 10,000 together.",
      codes=("too_few_examples", "too_many_examples", "too_many_total_examples"), source=src.HAIKU_VALIDATOR),
    R(summary="Training file at most 10 GB, validation file at most 1 GB.", codes=("file_too_large",),
      source=src.HAIKU_VALIDATOR),
    _no_tools("Claude 3 Haiku", src.BEDROCK_TEXT_DATA),
)


def _converse(source: str, validator: str) -> tuple[Rule, ...]:
    return (
        ONE_OBJECT_BEDROCK,
        R(summary="Top-level keys: schemaVersion (a string), system, messages (others are ignored).",
          codes=("unrecognized_key",), source=source),
        *_turns(source),
        R(summary="`system` and `content` are lists of {text} (or media) blocks.", codes=("invalid_type",), source=source),
        R(summary="Images and video only in user turns, as {format, source: {s3Location: {uri}}} in the dataset's "
                  "bucket.",
          codes=("media_in_assistant", "invalid_media", "invalid_media_format", "invalid_media_uri",
                 "media_bucket_mismatch"), source=validator),
        R(summary="At most 10 images or 1 video per record, never both; one kind of record in the whole dataset.",
          codes=("too_many_images", "too_many_videos", "mixed_media", "mixed_dataset_media"), source=validator),
        R(summary="Media only for base models that accept it.", codes=("media_not_supported",),
          source=src.NOVA_CUSTOMIZATION),
        R(summary="`reasoningContent` (Nova 2) only in assistant turns.", codes=("forbidden_key",), source=src.NOVA2_DATA),
    )


NOVA = (
    *_converse(src.NOVA_DATA, src.NOVA_VALIDATOR),
    R(summary="Records with images or video need a base model that takes them (Nova Micro takes none): a warning "
              "until one is chosen.", codes=("media_model_unknown",), source=src.NOVA_CUSTOMIZATION),
    R(summary="No reserved tokens (User:, Bot:, Assistant:, System:, Thought:, [EOS], <image>, <video>...) in "
              "any text.", codes=("reserved_token",), source=src.NOVA_VALIDATOR),
    R(summary="8 to 20,000 training records; at least 100 recommended.",
      codes=("too_few_examples", "too_many_examples", "below_recommended_examples"), source=src.NOVA_VALIDATOR),
    R(summary="Nova 2 ignores a validation set.", codes=("validation_not_supported",), source=src.NOVA2_DATA),
    R(summary="Tool use might make the job fail (warning per tool block).", codes=("tool_use",), source=src.NOVA2_DATA),
    R(summary="`toolConfig` is {tools: [{toolSpec: {name, inputSchema: {json}}}]}.", codes=("invalid_tool_definition",),
      source=src.CONVERSE_TOOL_CONFIG),
    R(summary="`toolUse` {toolUseId, name, input: object} only in assistant turns; `toolResult` {toolUseId, "
              "content} only in user turns.",
      codes=("misplaced_tool_use", "invalid_tool_use", "invalid_tool_result"), source=src.CONVERSE_TOOL_USE),
    R(summary="A `toolResult` answers an earlier `toolUse` by its toolUseId.", codes=("tool_result_without_call",),
      source=src.CONVERSE_TOOL_RESULT),
    R(summary="A used tool is declared in `toolConfig` (warning).", codes=("unknown_tool",), source=src.CONVERSE_TOOL_CONFIG),
)

LLAMA32 = (
    *_converse(src.LLAMA_VALIDATOR, src.LLAMA_VALIDATOR),
    R(summary="`system` holds at most one element.", codes=("too_many_system_items",), source=src.LLAMA_VALIDATOR),
    R(summary="At most 10,000 training and 1,000 validation records.", codes=("too_few_examples", "too_many_examples"),
      source=src.LLAMA_VALIDATOR),
    _no_tools("Llama 3.2", src.LLAMA_VALIDATOR),
)


def _prompt_completion(label: str, source: str) -> tuple[Rule, ...]:
    return (
        ONE_OBJECT_BEDROCK,
        R(summary="`prompt` and `completion` strings; other keys are ignored.",
          codes=("missing_key", "invalid_type", "unrecognized_key"), source=source),
        R(summary="The completion has text (an empty prompt is a warning).", codes=("empty_content",), source=source),
        _no_tools(label, source),
    )


LLAMA31 = (
    *_prompt_completion("Llama 3.1", src.LLAMA_VALIDATOR),
    R(summary="At most 10,000 training and 1,000 validation records.", codes=("too_few_examples", "too_many_examples"),
      source=src.LLAMA_VALIDATOR),
)

TITAN = (
    *_prompt_completion("Titan Text", src.BEDROCK_TEXT_DATA),
    R(summary="At least one record.", codes=("too_few_examples",), source=src.BEDROCK_TEXT_DATA),
    R(summary="At most 4,096 input tokens per record: the job fails mid-run on a longer one.",
      codes=("too_many_tokens",), source=src.TITAN_TOKEN_LIMIT),
)
