"""The one typed catalogue of fine-tuning targets: every fact the workbench knows about a target lives here.

The CLI's choices, the pages' labels, validation (limits, tokenizer, rules), and later the launch form
and cost estimates all read from `TARGETS`. Adding a target is one entry in `openai.py` or `bedrock.py`:
the `Target` enum, `targets_for` and `format_label` follow from it.
"""

from __future__ import annotations

from enum import StrEnum

from workbench.domain.catalogue import bedrock, openai
from workbench.domain.catalogue.models import (
    BaseModelSpec,
    Hyperparameter,
    Lifecycle,
    ModelFacts,
    ModelRule,
    Price,
    Provider,
    RecordLimits,
    Rule,
    RuleOrigin,
    Severity,
    TargetSpec,
    TokenLimit,
    ToolSupport,
    ToolUse,
)
from workbench.domain.formats import FORMAT_LABELS, Format
from workbench.errors import InvalidInput

TARGETS: tuple[TargetSpec, ...] = (*openai.TARGETS, *bedrock.TARGETS)
"""Every target, in the order pages and the CLI list them."""

_BY_ID = {t.id: t for t in TARGETS}

# Built from the entries, so a new entry is a new member with no second edit: "bedrock-nova" -> BEDROCK_NOVA.
Target = StrEnum(  # type: ignore[misc]
    "Target", [(t.id.upper().replace("-", "_"), t.id) for t in TARGETS], module=__name__, qualname="Target"
)
Target.__doc__ = "A fine-tuning target's id, one member per catalogue entry."


def target_ids() -> list[str]:
    """Return every target id, in catalogue order (the CLI's --target choices)."""
    return [t.id for t in TARGETS]


def get_target(target: str) -> TargetSpec:
    """Return a target's catalogue entry; an unknown id is InvalidInput naming the known ones."""
    try:
        return _BY_ID[str(target)]
    except KeyError:
        raise InvalidInput(f"unknown target {target!r}; use one of {', '.join(_BY_ID)}.") from None


def targets_for(fmt: Format | str) -> list[TargetSpec]:
    """Return the targets whose training files are written in `fmt`."""
    return [t for t in TARGETS if t.format == fmt]


def format_label(fmt: Format | str) -> str:
    """Name a format with the targets that train on it, e.g. "Prompt / completion — Bedrock: Llama 3.1, ..."."""
    fmt = Format(fmt)
    users = ", ".join(t.label for t in targets_for(fmt))
    return f"{FORMAT_LABELS[fmt]} — {users}" if users else FORMAT_LABELS[fmt]


__all__ = [
    "TARGETS",
    "BaseModelSpec",
    "Hyperparameter",
    "Lifecycle",
    "ModelFacts",
    "ModelRule",
    "Price",
    "Provider",
    "RecordLimits",
    "Rule",
    "RuleOrigin",
    "Severity",
    "Target",
    "TargetSpec",
    "TokenLimit",
    "ToolSupport",
    "ToolUse",
    "format_label",
    "get_target",
    "targets_for",
    "target_ids",
]
