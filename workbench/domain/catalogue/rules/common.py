"""Rule pieces several targets shared before each target listed its own rules; kept until each module stands alone."""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

ONE_OBJECT = R(summary="Each line is one JSON object.", codes=("data_type",), source=src.OPENAI_COOKBOOK_PREP)
ONE_OBJECT_BEDROCK = R(summary="Each line is one JSON object (JSONL).", codes=("data_type",), source=src.BEDROCK_TEXT_DATA)


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



def _prompt_completion(label: str, source: str) -> tuple[Rule, ...]:
    return (
        ONE_OBJECT_BEDROCK,
        R(summary="`prompt` and `completion` strings; other keys are ignored.",
          codes=("missing_key", "invalid_type", "unrecognized_key"), source=source),
        R(summary="The completion has text (an empty prompt is a warning).", codes=("empty_content",), source=source),
        _no_tools(label, source),
    )


