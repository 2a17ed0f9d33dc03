"""Amazon Bedrock's fine-tuning targets: Claude 3 Haiku, Nova, Llama 3.1 and 3.2, Titan Text.

Record limits are the AWS sample validators' values (the official numbers are adjustable service
quotas); hyperparameters are AWS's per-model pages; training prices are second-hand and marked
unverified until read on the pricing page. See docs/providers.md for the same facts in prose.
"""

from __future__ import annotations

from datetime import date

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
from workbench.domain.tokens import HAIKU_ESTIMATE, LLAMA_PROXY, NOVA_PROXY, TITAN_PROXY

GB = 1024**3
H = Hyperparameter


def _training_price(usd_per_1k: float, note: str = "") -> tuple[Price, ...]:
    unit = "1K training tokens" + (f" ({note})" if note else "")
    return (
        Price(usd=usd_per_1k, unit=unit, source=src.BEDROCK_PRICING),
        Price(usd=1.95, unit="custom model per month (storage)", source=src.BEDROCK_PRICING),
    )


ON_DEMAND_MODELS = r"amazon\.nova-(micro|lite|pro)-v1"
"""Base models whose custom models may be deployed for on-demand inference (src.NOVA_ON_DEMAND)."""
ON_DEMAND_SINCE = date(2025, 7, 16)
"""Only models customized on or after this day may (src.BEDROCK_ON_DEMAND_DEPLOY: "on or after 7/16/2025")."""
ON_DEMAND_REGIONS = ("us-east-1", "us-west-2")
"""Where on-demand custom model deployments are offered (src.BEDROCK_ON_DEMAND_DEPLOY)."""
PT_UNIT = "model unit per hour (Provisioned Throughput, {})"
PT_COMMITMENTS = {"none": "no commitment", "1month": "1-month commitment", "6months": "6-month commitment"}
ON_DEMAND_UNIT = "1K {} tokens (on-demand inference: base-model per-token rate)"


def _provisioned_prices(no_commitment: float, one_month: float, six_months: float) -> tuple[Price, ...]:
    """Hourly Provisioned Throughput prices per model unit; for a custom model they are its base model's
    (https://docs.aws.amazon.com/bedrock/latest/userguide/prov-throughput.html). Second-hand: unverified."""
    return tuple(
        Price(usd=usd, unit=PT_UNIT.format(PT_COMMITMENTS[key]), source=src.BEDROCK_PRICING)
        for key, usd in (("none", no_commitment), ("1month", one_month), ("6months", six_months))
    )


def _on_demand_prices(input_per_1k: float, output_per_1k: float) -> tuple[Price, ...]:
    """Per-token on-demand rates a Nova custom model deployment is billed at: the base model's
    (https://docs.aws.amazon.com/nova/latest/userguide/custom-fine-tune-odi.html). Second-hand: unverified."""
    return (
        Price(usd=input_per_1k, unit=ON_DEMAND_UNIT.format("input"), source=src.NOVA_ON_DEMAND),
        Price(usd=output_per_1k, unit=ON_DEMAND_UNIT.format("output"), source=src.NOVA_ON_DEMAND),
    )


# --- Claude 3 Haiku ----------------------------------------------------------------------------------

_HAIKU_HP = (
    H(name="epochCount", type="int", min=1, max=10, default=2, help="Passes over the training set.",
      source=src.HAIKU_HYPERPARAMETERS),
    H(name="batchSize", type="int", min=4, max=256, default=32, help="Records per training step.",
      source=src.HAIKU_HYPERPARAMETERS),
    H(name="learningRateMultiplier", type="float", min=0.1, max=2, default=1,
      help="Scales the base learning rate.", source=src.HAIKU_HYPERPARAMETERS),
    H(name="earlyStoppingThreshold", type="float", min=0, max=0.1, default=0.001,
      help="Smallest drop in validation loss that counts as improvement.", source=src.HAIKU_HYPERPARAMETERS),
    H(name="earlyStoppingPatience", type="int", min=1, max=10, default=2,
      help="Epochs without improvement before training stops.", source=src.HAIKU_HYPERPARAMETERS),
)

HAIKU = TargetSpec(
    id="bedrock-claude-haiku",
    label="Bedrock: Claude 3 Haiku",
    provider=Provider.BEDROCK,
    format=Format.BEDROCK_CLAUDE,
    records=RecordLimits(
        min_train=32, max_train=10_000, min_validation=32, max_validation=1_000, max_combined=10_000,
        max_train_bytes=10 * GB, max_validation_bytes=1 * GB, source=src.HAIKU_VALIDATOR,
    ),
    tokens=TokenLimit(per_record=32_000, is_error=True, source=src.HAIKU_VALIDATOR),
    tokenizer=HAIKU_ESTIMATE,
    tool_use=ToolUse(
        support=ToolSupport.REJECTED,
        shape="None: a record is a system string and user/assistant messages with string content, no other keys.",
        source=src.BEDROCK_TEXT_DATA,
    ),
    rules=rules.HAIKU,
    base_models=(
        BaseModelSpec(
            id="anthropic.claude-3-haiku-20240307-v1:0:200k", label="Claude 3 Haiku", region="us-west-2",
            hyperparameters=_HAIKU_HP, prices=_training_price(0.004, "us-west-2"), source=src.BEDROCK_FT_MODELS,
        ),
    ),
    default_base_model="anthropic.claude-3-haiku-20240307-v1:0:200k",
)

# --- Amazon Nova (Converse) --------------------------------------------------------------------------


def _nova_hp(warmup_divisor: int) -> tuple[Hyperparameter, ...]:
    return (
        H(name="epochCount", type="int", min=1, max=5, default=2, help="Passes over the training set.",
          source=src.NOVA_HYPERPARAMETERS),
        H(name="learningRate", type="float", min=1e-6, max=1e-4, default=1e-5, help="Learning rate.",
          source=src.NOVA_HYPERPARAMETERS),
        H(name="learningRateWarmupSteps", type="int", min=0, max=100, default=10,
          help=f"Steps the learning rate ramps up over; AWS suggests dataset size / {warmup_divisor}.",
          source=src.NOVA_HYPERPARAMETERS),
    )


NOVA = TargetSpec(
    id="bedrock-nova",
    label="Bedrock: Nova",
    provider=Provider.BEDROCK,
    format=Format.BEDROCK_NOVA,
    records=RecordLimits(min_train=8, max_train=20_000, recommended_min_train=100, source=src.NOVA_VALIDATOR),
    tokens=TokenLimit(),
    tokenizer=NOVA_PROXY,
    model_rules=(
        ModelRule(pattern=r"amazon\.nova-micro", media_supported=False, source=src.NOVA_CUSTOMIZATION),
        ModelRule(pattern=r"amazon\.nova-(lite|pro)", media_supported=True, source=src.NOVA_CUSTOMIZATION),
        ModelRule(pattern=r"amazon\.nova-2", media_supported=True, uses_validation_set=False, source=src.NOVA2_DATA),
    ),
    check_reserved_tokens=True,
    tool_use=ToolUse(
        support=ToolSupport.CAUTION,
        shape=(
            "Converse: tool definitions in a top-level toolConfig {tools: [{toolSpec}]}, calls as toolUse blocks "
            "{toolUseId, name, input} in assistant turns, results as toolResult blocks {toolUseId, content} in user "
            "turns. AWS warns that tool use in fine-tuning data might make the job fail."
        ),
        source=src.NOVA2_DATA,
    ),
    rules=rules.NOVA,
    base_models=(
        BaseModelSpec(
            id="amazon.nova-micro-v1:0:128k", label="Nova Micro", region="us-east-1", hyperparameters=_nova_hp(640),
            prices=_training_price(0.001) + _on_demand_prices(0.000035, 0.00014), note="Text only.", source=src.BEDROCK_FT_MODELS,
        ),
        BaseModelSpec(
            id="amazon.nova-lite-v1:0:300k", label="Nova Lite", region="us-east-1", hyperparameters=_nova_hp(160),
            prices=_training_price(0.002) + _on_demand_prices(0.00006, 0.00024), note="Text, image and video.", source=src.BEDROCK_FT_MODELS,
        ),
        BaseModelSpec(
            id="amazon.nova-pro-v1:0:300k", label="Nova Pro", region="us-east-1", hyperparameters=_nova_hp(320),
            prices=_training_price(0.008) + _on_demand_prices(0.0008, 0.0032), note="Text, image and video.", source=src.BEDROCK_FT_MODELS,
        ),
        BaseModelSpec(
            id="amazon.nova-2-lite-v1:0:256k", label="Nova 2 Lite", region="us-east-1",
            note="Takes no validation set for supervised fine-tuning.", source=src.BEDROCK_FT_MODELS,
        ),
    ),
    default_base_model="amazon.nova-lite-v1:0:300k",
)

# --- Meta Llama --------------------------------------------------------------------------------------


def _llama_hp(source: str) -> tuple[Hyperparameter, ...]:
    return (
        H(name="epochCount", type="int", min=1, max=10, default=5, help="Passes over the training set.", source=source),
        H(name="batchSize", type="int", min=1, max=1, default=1, help="Fixed at 1.", source=source),
        H(name="learningRate", type="float", min=5e-6, max=0.1, default=1e-4, help="Learning rate.", source=source),
    )


_LLAMA_RECORDS = RecordLimits(min_train=1, max_train=10_000, max_validation=1_000, source=src.LLAMA_VALIDATOR)
# "Input token length of each dataset row <= 16K": a limit the validator states but does not check.
_LLAMA_TOKENS = TokenLimit(per_record=16_000, is_error=True, source=src.LLAMA_VALIDATOR_README)

LLAMA31 = TargetSpec(
    id="bedrock-llama",
    label="Bedrock: Llama 3.1",
    provider=Provider.BEDROCK,
    format=Format.PROMPT_COMPLETION,
    records=_LLAMA_RECORDS,
    tokens=_LLAMA_TOKENS,
    tokenizer=LLAMA_PROXY,
    max_system_items=1,
    tool_use=ToolUse(
        support=ToolSupport.REJECTED, shape="None: a record is one prompt string and one completion string.",
        source=src.LLAMA_MODELS_REGISTRY,
    ),
    rules=rules.LLAMA31,
    base_models=tuple(
        BaseModelSpec(
            id=f"meta.llama3-1-{size}-instruct-v1:0:128k", label=f"Llama 3.1 {size.upper()} Instruct", region="us-west-2",
            hyperparameters=_llama_hp(src.LLAMA31_HYPERPARAMETERS), prices=_training_price(usd),
            source=src.BEDROCK_FT_MODELS,
        )
        for size, usd in (("8b", 0.0015), ("70b", 0.008))
    ),
    default_base_model="meta.llama3-1-8b-instruct-v1:0:128k",
)

LLAMA32 = TargetSpec(
    id="bedrock-llama32",
    label="Bedrock: Llama 3.2",
    provider=Provider.BEDROCK,
    format=Format.BEDROCK_NOVA,
    records=_LLAMA_RECORDS,
    tokens=_LLAMA_TOKENS,
    tokenizer=LLAMA_PROXY,
    model_rules=(ModelRule(pattern=r"meta\.llama3-2-(11b|90b)", media_supported=True, source=src.LLAMA_MODELS_REGISTRY),),
    media_supported=False,
    max_system_items=1,
    tool_use=ToolUse(
        support=ToolSupport.REJECTED,
        shape="None: the Converse shape with text (and, for 11B/90B, image) blocks only.",
        source=src.LLAMA_VALIDATOR,
    ),
    rules=rules.LLAMA32,
    base_models=tuple(
        BaseModelSpec(
            id=f"meta.llama3-2-{size}-instruct-v1:0:128k", label=f"Llama 3.2 {size.upper()} Instruct", region="us-west-2",
            hyperparameters=_llama_hp(src.LLAMA32_HYPERPARAMETERS),
            note="Text and image." if size in ("11b", "90b") else "Text only.", source=src.BEDROCK_FT_MODELS,
        )
        for size in ("1b", "3b", "11b", "90b")
    ),
    default_base_model="meta.llama3-2-3b-instruct-v1:0:128k",
)

# --- Amazon Titan Text -------------------------------------------------------------------------------


def _titan_hp(premier: bool) -> tuple[Hyperparameter, ...]:
    s = src.TITAN_HYPERPARAMETERS
    if premier:
        return (
            H(name="epochCount", type="int", min=1, max=5, default=2, help="Passes over the training set.", source=s),
            H(name="batchSize", type="int", min=1, max=1, default=1, help="Fixed at 1.", source=s),
            H(name="learningRate", type="float", min=1e-7, max=1e-5, default=1e-6, help="Learning rate.", source=s),
            H(name="learningRateWarmupSteps", type="int", min=0, max=20, default=5, help="Warm-up steps.", source=s),
        )
    return (
        H(name="epochCount", type="int", min=1, max=10, default=5, help="Passes over the training set.", source=s),
        H(name="batchSize", type="int", min=1, max=64, default=1, help="Records per training step.", source=s),
        H(name="learningRate", type="float", min=0.0, max=1, default=1e-5, help="Learning rate.", source=s),
        H(name="learningRateWarmupSteps", type="int", min=0, max=250, default=5, help="Warm-up steps.", source=s),
    )


_TITAN_ID_NOTE = "Id from public sample code; absent from AWS's table of fine-tunable models."

TITAN = TargetSpec(
    id="bedrock-titan",
    label="Bedrock: Titan Text",
    provider=Provider.BEDROCK,
    format=Format.PROMPT_COMPLETION,
    records=RecordLimits(min_train=1, source=src.BEDROCK_TEXT_DATA),
    tokens=TokenLimit(per_record=4_096, is_error=True, source=src.TITAN_TOKEN_LIMIT),
    tokenizer=TITAN_PROXY,
    tool_use=ToolUse(
        support=ToolSupport.REJECTED, shape="None: a record is one prompt string and one completion string.",
        source=src.BEDROCK_TEXT_DATA,
    ),
    rules=rules.TITAN,
    base_models=(
        BaseModelSpec(id="amazon.titan-text-express-v1:0:8k", label="Titan Text G1 Express",
                      hyperparameters=_titan_hp(False), prices=_provisioned_prices(20.50, 18.40, 14.80),
                      note=_TITAN_ID_NOTE, source=src.BEDROCK_FT_MODELS),
        BaseModelSpec(id="amazon.titan-text-lite-v1:0:4k", label="Titan Text G1 Lite",
                      hyperparameters=_titan_hp(False), prices=_provisioned_prices(7.10, 6.40, 5.10),
                      note=_TITAN_ID_NOTE, source=src.BEDROCK_FT_MODELS),
        BaseModelSpec(id="amazon.titan-text-premier-v1:0:32k", label="Titan Text G1 Premier",
                      hyperparameters=_titan_hp(True), note=_TITAN_ID_NOTE, source=src.BEDROCK_FT_MODELS),
    ),
    default_base_model="amazon.titan-text-express-v1:0:8k",
)

TARGETS = (HAIKU, NOVA, LLAMA31, LLAMA32, TITAN)
