"""The prompt/completion record rules: Llama 3.1 and Titan Text on Amazon Bedrock.

Sources: https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html and AWS's sample
validator (aws-samples/amazon-bedrock-samples `custom-models/bedrock-fine-tuning/meta-llama/dataset_validation/`).
The rules, one by one, are listed in `workbench/domain/catalogue/rules/` and docs/validation-rules.md.
"""

from __future__ import annotations

from typing import Any

from workbench.domain.validation.models import TargetRules
from workbench.domain.validation.shape import (
    _check_keys,
    _Dataset,
    _kind,
    _Out,
)
from workbench.domain.validation.tools import (
    TOOL_TOP_KEYS,
    _reject_tool_use,
)


def _check_prompt_completion(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the prompt/completion rules (Llama 3.1, Titan): two strings, nothing else is read, no tool use."""
    label = rules.label
    hints = {"system": "fold the system prompt into the prompt"}
    _reject_tool_use(record, out, label)
    _check_keys(
        record, "", ("prompt", "completion"), out, f"{label}'s prompt/completion format", strict=False, hints=hints,
        skip=TOOL_TOP_KEYS,
    )
    tokens = 0
    for key in ("prompt", "completion"):
        if key not in record:
            hint = " This is a chat record: export it as prompt/completion." if "messages" in record else ""
            out.error(
                "missing_key", key,
                f'The record has no {key!r}; {label} records are {{"prompt": ..., "completion": ...}}.{hint}',
            )
            continue
        if not isinstance(value := record[key], str):
            out.error("invalid_type", key, f"{key} is {_kind(value)}; it must be a string.")
            continue
        tokens += rules.counter.count(value)
        if value.strip():
            continue
        if key == "completion":
            out.error("empty_content", key, "completion is empty; it is the text the model learns to produce.")
        else:
            out.warn("empty_content", key, "prompt is empty; the model learns the completion with no context.")
    return tokens

