"""OpenAI's supervised chat fine-tuning target.

Token limits per model come from the fine-tuning guide (65,536 is documented for gpt-4o-2024-08-06 and
gpt-4o-mini-2024-07-18 and assumed for later models); the encoding per model name is tiktoken's own table.
"""

from __future__ import annotations

from workbench.domain.catalogue import rules
from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import (
    BaseModelSpec,
    Hyperparameter,
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
    Hyperparameter(name="n_epochs", type="int", min=1, default="auto", auto=True,
                   help="Passes over the training set; 'auto' follows the cookbook rule (3, more for small sets).",
                   source=src.OPENAI_JOBS_API),
    Hyperparameter(name="batch_size", type="int", min=1, default="auto", auto=True,
                   help="Examples per training step.", source=src.OPENAI_JOBS_API),
    Hyperparameter(name="learning_rate_multiplier", type="float", default="auto", auto=True,
                   help="Scales the base learning rate.", source=src.OPENAI_JOBS_API),
)


def _model(model_id: str, price_per_1m: float | None = None) -> BaseModelSpec:
    prices = (Price(usd=price_per_1m, unit="1M training tokens", source=src.OPENAI_GUIDE),) if price_per_1m else ()
    return BaseModelSpec(id=model_id, label=model_id, hyperparameters=_HP, prices=prices, source=src.OPENAI_GUIDE)


OPENAI = TargetSpec(
    id="openai",
    label="OpenAI chat fine-tuning",
    provider=Provider.OPENAI,
    format=Format.OPENAI,
    records=RecordLimits(min_train=10, recommended_min_train=50, min_validation=1, source=src.OPENAI_GUIDE),
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
        _model("gpt-4o-mini-2024-07-18", 3.00),
        _model("gpt-4o-2024-08-06"),
        _model("gpt-3.5-turbo-0125", 8.00),
        _model("gpt-3.5-turbo-1106"),
        _model("gpt-3.5-turbo-0613"),
    ),
    default_base_model="gpt-4o-mini-2024-07-18",
)

TARGETS = (OPENAI,)
