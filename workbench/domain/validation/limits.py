"""Each target's dataset limits (providers.md 1.3, 3.1): record counts, file size, tokens per record."""

from __future__ import annotations

from workbench.domain.tokens import HAIKU_ESTIMATE, LLAMA_PROXY, NOVA_PROXY, TITAN_PROXY, openai_counter
from workbench.domain.validation.models import Target, TargetRules
from workbench.errors import InvalidInput


def rules_for(target: Target | str, *, split: str = "train", base_model: str | None = None) -> TargetRules:
    """Look up the limits for a target and split (providers.md 1.3, 3.1), refined by the base model."""
    target = _coerce_target(target)
    if split not in ("train", "validation"):
        raise InvalidInput(f"split must be 'train' or 'validation', not {split!r}.")
    split = str(split)
    train = split == "train"
    model = (base_model or "").lower()
    if target is Target.OPENAI:
        name = base_model or "gpt-4o-mini-2024-07-18"
        return TargetRules(
            target=target, label="OpenAI", split=split, min_records=10 if train else 1,
            recommended_min_records=50 if train else None, token_limit=_openai_context(name),
            token_limit_is_error=False, counter=openai_counter(name), model_note=name,
        )
    if target is Target.BEDROCK_CLAUDE_HAIKU:
        return TargetRules(
            target=target, label="Claude 3 Haiku", split=split, min_records=32,
            max_records=10_000 if train else 1_000, max_bytes=(10 if train else 1) * 1024**3,
            token_limit=32_000, counter=HAIKU_ESTIMATE,
        )
    if target is Target.BEDROCK_NOVA and model.startswith("meta.llama3-2"):
        return TargetRules(
            target=target, label="Llama 3.2", split=split, min_records=1, max_records=10_000 if train else 1_000,
            counter=LLAMA_PROXY, max_system_items=1, model_note=base_model or "",
            media_supported="11b" in model or "90b" in model,
        )
    if target is Target.BEDROCK_NOVA:
        return TargetRules(
            target=target, label="Amazon Nova", split=split, min_records=8 if train else 1,
            max_records=20_000 if train else None, recommended_min_records=100 if train else None,
            counter=NOVA_PROXY, check_reserved_tokens=True, model_note=base_model or "",
            media_supported=False if "micro" in model else (True if model else None),
        )
    if target is Target.BEDROCK_LLAMA:
        return TargetRules(
            target=target, label="Llama 3.1", split=split, min_records=1, max_records=10_000 if train else 1_000,
            counter=LLAMA_PROXY,
        )
    return TargetRules(
        target=target, label="Titan Text", split=split, min_records=1, token_limit=4_096, counter=TITAN_PROXY
    )


def _openai_context(model: str) -> int:
    """Return an OpenAI base model's training context (providers.md 3.1).

    65,536 is documented for gpt-4o-2024-08-06 and gpt-4o-mini-2024-07-18, and assumed for later models.
    """
    if model.startswith("gpt-3.5-turbo-0613"):
        return 4_096
    if model.startswith("gpt-3.5"):
        return 16_385
    return 65_536


def _coerce_target(target: Target | str) -> Target:
    try:
        return Target(target)
    except ValueError as exc:
        raise InvalidInput(f"Unknown target {target!r}; use one of {', '.join(t.value for t in Target)}.") from exc
