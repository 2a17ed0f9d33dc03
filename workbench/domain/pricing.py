"""What a fine-tuning job will cost before it is launched: tokens x epochs x the catalogue's price.

Prices come from the target catalogue with their source and whether they were checked on the provider's
page; an estimate carries them, so a user sees which table produced a number and how sure it is.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from workbench.domain.catalogue import BaseModelSpec, Price
from workbench.domain.catalogue import bedrock as bedrock_catalogue
from workbench.domain.catalogue import sources as src


class CostLine(BaseModel):
    """One part of an estimate: training, storage, serving; `usd` None where no price is known."""

    label: str
    usd: float | None
    detail: str = ""
    source: str | None = None
    verified: bool = False


class Estimate(BaseModel):
    """A launch's estimated cost, line by line, with what it was computed from."""

    train_tokens: int = Field(description="Tokens in the training file, as the target's tokenizer counts them.")
    epochs: int | None = Field(description="Passes over the data the estimate assumes.")
    training_usd: float | None = Field(description="The training line alone: what the budget limit compares.")
    lines: list[CostLine] = Field(default_factory=list)
    note: str = ""


def openai_default_epochs(n_examples: int) -> int:
    """OpenAI's 'auto' epoch count as the cookbook computes it: 3, more for small sets, fewer for huge ones.

    openai/openai-cookbook examples/Chat_finetuning_data_prep.ipynb: TARGET_EPOCHS=3, MIN_TARGET_EXAMPLES=100,
    MAX_TARGET_EXAMPLES=25000, MIN_DEFAULT_EPOCHS=1, MAX_DEFAULT_EPOCHS=25.
    """
    if n_examples <= 0:
        return 3
    if n_examples * 3 < 100:
        return min(25, 100 // n_examples)
    if n_examples * 3 > 25_000:
        return max(1, 25_000 // n_examples)
    return 3


def _rate(usd: float) -> str:
    return f"${usd:.6f}".rstrip("0").rstrip(".") if usd < 0.01 else f"${usd:,.4f}".rstrip("0").rstrip(".")


def per_token(price: Price) -> float | None:
    unit = price.unit.lower()
    if "1m" in unit:
        return price.usd / 1_000_000
    if "1k" in unit:
        return price.usd / 1_000
    return None


def training_price(model: BaseModelSpec | None) -> Price | None:
    """Return the model's price per training token, if the catalogue has one."""
    if model is None:
        return None
    return next((p for p in model.prices if "training token" in p.unit.lower()), None)


def estimate(model: BaseModelSpec | None, *, train_tokens: int, epochs: int | None, extra: list[CostLine] | None = None) -> Estimate:
    """Training cost = tokens in the file x epochs x price per token, plus any fixed lines (storage, serving)."""
    price = training_price(model)
    lines: list[CostLine] = []
    training_usd: float | None = None
    if price is not None and epochs is not None and (per := per_token(price)) is not None:
        training_usd = round(train_tokens * epochs * per, 4)
        lines.append(CostLine(
            label="training", usd=training_usd,
            detail=f"{train_tokens:,} tokens x {epochs} epochs x {_rate(price.usd)} per {price.unit}",
            source=price.source, verified=price.verified,
        ))
    else:
        why = "no training price in the catalogue for this model" if price is None else "epochs unknown"
        lines.append(CostLine(label="training", usd=None, detail=why))
    if model is not None:
        for other in model.prices:
            if other is not price and not is_serving_price(other):  # serving_lines() prices serving
                lines.append(CostLine(label=other.unit, usd=other.usd, detail=f"per {other.unit}",
                                      source=other.source, verified=other.verified))
    lines += extra or []
    note = "" if price is None or price.verified else "Prices are second-hand: confirm them on the provider's pricing page."
    return Estimate(train_tokens=train_tokens, epochs=epochs, training_usd=training_usd, lines=lines, note=note)


# --- serving a Bedrock custom model ------------------------------------------------------------------------

HOURS_PER_MONTH = 730
"""The month AWS's pricing examples bill hourly resources for (24 x 365 / 12)."""
_BEDROCK_ID = re.compile(r"(amazon|anthropic|meta|cohere|mistral|ai21)\.", re.IGNORECASE)


def is_serving_price(price: Price) -> bool:
    """Tell a serving price (Provisioned Throughput per hour, on-demand per token) from training and storage."""
    unit = price.unit.lower()
    return "provisioned throughput" in unit or "on-demand inference" in unit


def provisioned_price(model: BaseModelSpec | None, commitment: str = "none") -> Price | None:
    """Return the hourly price of one model unit for a commitment ('none', '1month', '6months'), if catalogued."""
    if model is None:
        return None
    wanted = bedrock_catalogue.PT_UNIT.format(bedrock_catalogue.PT_COMMITMENTS[commitment])
    return next((p for p in model.prices if p.unit == wanted), None)


def on_demand_prices(model: BaseModelSpec | None) -> tuple[Price, Price] | None:
    """Return the (input, output) per-1K-token rates an on-demand deployment is billed at, if catalogued."""
    if model is None:
        return None
    rates = [next((p for p in model.prices if p.unit == bedrock_catalogue.ON_DEMAND_UNIT.format(kind)), None)
             for kind in ("input", "output")]
    return (rates[0], rates[1]) if rates[0] and rates[1] else None


def on_demand_allowed(base_model: str) -> bool:
    """Say whether custom models of this base model may be deployed on demand (Nova Micro, Lite and Pro)."""
    return re.match(bedrock_catalogue.ON_DEMAND_MODELS, base_model, flags=re.IGNORECASE) is not None


def serving_lines(model: BaseModelSpec | None) -> list[CostLine]:
    """What serving a Bedrock custom model of this base model costs: Provisioned Throughput per hour, and on-demand
    per token where the model allows it. Empty for models Bedrock does not serve (OpenAI, local).

    These are rates, not totals: a launch estimate shows them beside the training cost so a user sees what keeping
    the result running will cost before paying to train it.
    """
    if model is None or not _BEDROCK_ID.match(model.id):
        return []
    lines: list[CostLine] = []
    for commitment, words in bedrock_catalogue.PT_COMMITMENTS.items():
        price = provisioned_price(model, commitment)
        if price is not None:
            lines.append(CostLine(
                label=f"serving: Provisioned Throughput, {words}", usd=price.usd,
                detail=f"${price.usd:,.2f} per model unit per hour, about ${price.usd * HOURS_PER_MONTH:,.0f} per month "
                       "for 1 unit, billed while it exists whether used or not",
                source=price.source, verified=price.verified,
            ))
    if not lines:
        lines.append(CostLine(
            label="serving: Provisioned Throughput", usd=None,
            detail=f"no hourly price in the catalogue for {model.label}: a custom model is billed at its base model's "
                   "rate per model unit per hour; read it on the pricing page before deploying",
            source=src.BEDROCK_PRICING,
        ))
    lines += _on_demand_lines(model)
    return lines


def _on_demand_lines(model: BaseModelSpec) -> list[CostLine]:
    if not on_demand_allowed(model.id):
        return [CostLine(
            label="serving: on-demand", usd=None,
            detail=f"not offered: custom {model.label} models are served only through Provisioned Throughput "
                   "(on-demand is for Nova Micro, Lite and Pro custom models)",
            source=src.NOVA_ON_DEMAND,
        )]
    rates = on_demand_prices(model)
    since = f"{bedrock_catalogue.ON_DEMAND_SINCE:%Y-%m-%d}"
    if rates is None:
        return [CostLine(label="serving: on-demand", usd=None,
                         detail=f"per token at the base model's rate (no rate in the catalogue); models trained on or "
                                f"after {since} only", source=src.NOVA_ON_DEMAND)]
    return [
        CostLine(label=f"serving: on-demand, {kind} tokens", usd=price.usd,
                 detail=f"per 1K {kind} tokens (a rate, not a total), no hourly charge; models trained on or after {since} only",
                 source=price.source, verified=price.verified)
        for kind, price in zip(("input", "output"), rates, strict=True)
    ]
