"""The rules checked for Claude 3 Haiku on Bedrock, one per check of AWS's sample validator, with sources."""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity
from workbench.domain.catalogue.rules.common import ONE_OBJECT_BEDROCK, _no_tools, _turns

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

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
