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

_FOLD_SYSTEM = "fold the system prompt into the prompt"


def _check_prompt_completion(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the prompt/completion rules (Llama 3.1, Titan): two strings, nothing else is read, no tool use."""
    label = rules.label
    _reject_tool_use(record, out, label)
    skip = TOOL_TOP_KEYS
    if rules.max_system_items is not None and "system" in record and _check_system(record["system"], out, rules):
        skip = (*skip, "system")  # reported as an error: not again as an ignored key
    _check_keys(
        record, "", ("prompt", "completion"), out, f"{label}'s prompt/completion format", strict=False,
        hints={"system": _FOLD_SYSTEM}, skip=skip,
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
        _check_text(key, value, out)
    return tokens


def _check_text(key: str, value: str, out: _Out) -> None:
    """Report a blank completion (nothing to learn) as an error and a blank prompt (no context) as a warning."""
    if value.strip():
        return
    if key == "completion":
        out.error(
            "empty_content", key,
            "completion is empty; it is the text the model learns to produce. Write the answer, or drop the record.",
        )
    else:
        out.warn("empty_content", key, "prompt is empty; the model learns the completion with no context.")


def _check_system(system: Any, out: _Out, rules: TargetRules) -> bool:
    """Report a top-level `system` that AWS's Llama validator fails; return True when it was reported.

    The validator runs `validate_system_prompt` on prompt/completion rows too: it fails a `system` whose
    len() is over the cap (a string counts its characters) or that has no len() at all (null, a number).
    A `system` it lets through is only ignored, so the caller warns about it as an unread key.
    """
    cap = rules.max_system_items or 0
    try:
        size = len(system)
    except TypeError:
        size = None
    if size is not None and size <= cap:
        return False
    what = f"{_kind(system)}" if size is None else f"{_kind(system)} of {size:,} {_units(system)}"
    out.error(
        "forbidden_key", "system",
        f"The record has a top-level 'system' ({what}); {rules.label} records are only prompt and completion, and "
        f"AWS's validator fails a 'system' unless it holds at most {cap} element. Move the system prompt into the prompt "
        "and remove the key.",
    )
    return True


def _units(value: Any) -> str:
    if isinstance(value, str):
        return "characters"
    return "keys" if isinstance(value, dict) else "elements"
