"""Resolve a target's limits for one split and base model, reading everything from the target catalogue."""

from __future__ import annotations

from workbench.domain.catalogue import Target, get_target
from workbench.domain.validation.models import TargetRules
from workbench.errors import InvalidInput


def rules_for(target: Target | str, *, split: str = "train", base_model: str | None = None) -> TargetRules:
    """Look up the limits for a target and split in the catalogue, refined by the base model's rules."""
    spec = get_target(target)
    if split not in ("train", "validation"):
        raise InvalidInput(f"split must be 'train' or 'validation', not {split!r}.")
    split = str(split)
    train = split == "train"
    facts = spec.facts(base_model)
    limits = spec.records
    return TargetRules(
        target=Target(spec.id),
        label=spec.label,
        format=spec.format,
        split=split,
        min_records=limits.min_train if train else limits.min_validation,
        max_records=limits.max_train if train else limits.max_validation,
        recommended_min_records=limits.recommended_min_train if train else None,
        max_bytes=limits.max_train_bytes if train else limits.max_validation_bytes,
        max_combined_records=limits.max_combined,
        token_limit=facts.token_limit,
        token_limit_is_error=spec.tokens.is_error,
        counter=facts.tokenizer,
        model_note=base_model or "",
        check_reserved_tokens=spec.check_reserved_tokens,
        max_system_items=spec.max_system_items,
        media_supported=facts.media_supported,
        uses_validation_set=facts.uses_validation_set,
        tool_support=spec.tool_use.support,
        rules=spec.rules,
    )
