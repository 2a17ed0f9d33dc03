"""What a fine-tuning job will cost before it is launched: tokens x epochs x the catalogue's price.

Prices come from the target catalogue with their source and whether they were checked on the provider's
page; an estimate carries them, so a user sees which table produced a number and how sure it is.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from workbench.domain.catalogue import BaseModelSpec, Price


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


def _per_token(price: Price) -> float | None:
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
    if price is not None and epochs is not None and (per := _per_token(price)) is not None:
        training_usd = round(train_tokens * epochs * per, 4)
        lines.append(CostLine(
            label="training", usd=training_usd,
            detail=f"{train_tokens:,} tokens x {epochs} epochs x ${price.usd:g} per {price.unit}",
            source=price.source, verified=price.verified,
        ))
    else:
        why = "no training price in the catalogue for this model" if price is None else "epochs unknown"
        lines.append(CostLine(label="training", usd=None, detail=why))
    if model is not None:
        for other in model.prices:
            if other is not price:
                lines.append(CostLine(label=other.unit, usd=other.usd, detail=f"${other.usd:g} per {other.unit}",
                                      source=other.source, verified=other.verified))
    lines += extra or []
    note = "" if price is None or price.verified else "Prices are second-hand: confirm them on the provider's pricing page."
    return Estimate(train_tokens=train_tokens, epochs=epochs, training_usd=training_usd, lines=lines, note=note)
