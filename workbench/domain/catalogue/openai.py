"""OpenAI's supervised chat fine-tuning target.

Token limits per model come from the fine-tuning guide (65,536 is documented for gpt-4o-2024-08-06 and
gpt-4o-mini-2024-07-18 and assumed for later models); the encoding per model name is tiktoken's own table.
"""

from __future__ import annotations

from datetime import date

from workbench.domain.catalogue import rules
from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import (
    BaseModelSpec,
    Hyperparameter,
    Lifecycle,
    ModelRule,
    Price,
    Provider,
    RecordLimits,
    TargetSpec,
    TokenLimit,
    ToolSupport,
    ToolUse,
)
from workbench.domain.formats import Format
from workbench.domain.tokens import CL100K_EXACT, O200K_EXACT

_HP = (
    # Ranges from the API reference (src.OPENAI_JOBS_API): n_epochs 1..50 and batch_size 1..256 (OpenAI refuses
    # n_epochs above 50), learning_rate_multiplier a number greater than 0.
    Hyperparameter(name="n_epochs", type="int", min=1, max=50, default="auto", auto=True,
                   help="Passes over the training set; 'auto' follows the cookbook rule (3, more for small sets).",
                   source=src.OPENAI_JOBS_API),
    Hyperparameter(name="batch_size", type="int", min=1, max=256, default="auto", auto=True,
                   help="Examples per training step.", source=src.OPENAI_JOBS_API),
    Hyperparameter(name="learning_rate_multiplier", type="float", positive=True, default="auto", auto=True,
                   help="Scales the base learning rate.", source=src.OPENAI_JOBS_API),
)


def _model(model_id: str, price_per_1m: float | None = None, *, retires: date | None = None) -> BaseModelSpec:
    prices = (Price(usd=price_per_1m, unit="1M training tokens", source=src.OPENAI_GUIDE),) if price_per_1m else ()
    lifecycle = Lifecycle(fine_tuning_ends=OPENAI_FINE_TUNING_ENDS, retirement=retires, source=src.OPENAI_DEPRECATIONS)
    return BaseModelSpec(
        id=model_id, label=model_id, hyperparameters=_HP, prices=prices, lifecycle=lifecycle, source=src.OPENAI_GUIDE
    )


OPENAI_FINE_TUNING_ENDS = date(2027, 1, 6)
"""OpenAI's deprecations page: self-serve fine-tuning closes in stages (May 7 and July 2, 2026 for new and inactive
organisations); on January 6, 2027 active customers can no longer create new fine-tuning jobs. Inference on
fine-tuned models lasts until their base model retires."""


OPENAI = TargetSpec(
    id="openai",
    label="OpenAI chat fine-tuning",
    provider=Provider.OPENAI,
    format=Format.OPENAI,
    records=RecordLimits(
        min_train=10, recommended_min_train=50, min_validation=1, max_train_bytes=8 * 1024**3,
        max_validation_bytes=8 * 1024**3, source=src.OPENAI_GUIDE,
    ),  # 8 GB: the Uploads API's cap (src.OPENAI_UPLOADS_API); the Files API alone takes 512 MB
    tokens=TokenLimit(per_record=65_536, is_error=False, source=src.OPENAI_GUIDE),
    tokenizer=O200K_EXACT,
    model_rules=(
        ModelRule(pattern=r"gpt-3\.5|babbage-002|davinci-002|gpt-4(-|$)", tokenizer=CL100K_EXACT, source=src.TIKTOKEN_MODELS),
        ModelRule(pattern=r"gpt-3\.5", token_limit=16_385, source=src.OPENAI_GUIDE),
        ModelRule(pattern=r"gpt-3\.5-turbo-0613", token_limit=4_096, source=src.OPENAI_GUIDE),
    ),
    tool_use=ToolUse(
        support=ToolSupport.ACCEPTED,
        shape=(
            "Tool definitions in a top-level tools list ({type: function, function: {name, parameters}}), calls in an "
            "assistant message's tool_calls ({id, type: function, function: {name, arguments}}, arguments a JSON "
            "string), results in tool messages carrying the call's tool_call_id."
        ),
        source=src.OPENAI_TOOLS_EXAMPLE,
    ),
    rules=rules.OPENAI,
    base_models=(
        _model("gpt-4o-mini-2024-07-18", 3.00, retires=date(2027, 1, 14)),
        _model("gpt-4o-2024-08-06", retires=date(2027, 1, 14)),
        _model("gpt-4.1-mini-2025-04-14", retires=date(2027, 1, 14)),
        _model("gpt-4.1-2025-04-14", retires=date(2027, 1, 14)),
        _model("gpt-4.1-nano-2025-04-14", retires=date(2026, 10, 23)),
        _model("gpt-3.5-turbo-0125", 8.00, retires=date(2026, 10, 23)),
        _model("gpt-3.5-turbo-1106", retires=date(2026, 10, 23)),
        _model("gpt-3.5-turbo-0613", retires=date(2026, 10, 23)),
    ),
    default_base_model="gpt-4o-mini-2024-07-18",
)

TARGETS = (OPENAI,)
