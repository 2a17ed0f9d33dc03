"""Where the catalogue's facts come from: one constant per page or file, cited by every fact read there.

docs/providers.md lists the same sources per target, in prose.
"""

from __future__ import annotations

_AWS_SAMPLES = "https://github.com/aws-samples/amazon-bedrock-samples/blob/main/custom-models/bedrock-fine-tuning"

# OpenAI
OPENAI_GUIDE = "https://platform.openai.com/docs/guides/fine-tuning"
OPENAI_DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"
OPENAI_COOKBOOK_PREP = "https://github.com/openai/openai-cookbook/blob/main/examples/Chat_finetuning_data_prep.ipynb"
OPENAI_TOOLS_EXAMPLE = "https://learn.microsoft.com/en-us/azure/ai-services/openai/how-to/fine-tuning-functions"
OPENAI_JOBS_API = "https://github.com/openai/openai-python/blob/main/src/openai/types/fine_tuning/job_create_params.py"
TIKTOKEN_MODELS = "https://github.com/openai/tiktoken/blob/main/tiktoken/model.py"
OPENAI_CHAT_API = "https://platform.openai.com/docs/api-reference/chat/create"
OPENAI_VISION_GUIDE = "https://platform.openai.com/docs/guides/vision-fine-tuning"
OPENAI_UPLOADS_API = "https://platform.openai.com/docs/api-reference/uploads"

# Amazon Bedrock, general
BEDROCK_FT_MODELS = "https://docs.aws.amazon.com/bedrock/latest/userguide/custom-model-fine-tuning.html"
BEDROCK_TEXT_DATA = "https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html"
BEDROCK_PRICING = "https://aws.amazon.com/bedrock/pricing/"
BEDROCK_PROVISIONED = "https://docs.aws.amazon.com/bedrock/latest/userguide/prov-throughput.html"
NOVA_ON_DEMAND = "https://docs.aws.amazon.com/nova/latest/userguide/custom-fine-tune-odi.html"
BEDROCK_ON_DEMAND_DEPLOY = "https://docs.aws.amazon.com/bedrock/latest/userguide/deploy-custom-model-on-demand.html"
CONVERSE_TOOL_USE = "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolUseBlock.html"
CONVERSE_TOOL_RESULT = "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolResultBlock.html"
CONVERSE_TOOL_CONFIG = "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolConfiguration.html"

# Claude 3 Haiku on Bedrock
HAIKU_VALIDATOR = f"{_AWS_SAMPLES}/claude-haiku/DataValidation/data_validation.py"
HAIKU_COOKBOOK = "https://platform.claude.com/cookbook/finetuning-finetuning-on-bedrock"
HAIKU_HYPERPARAMETERS = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-anth-claude-3.html"

# Amazon Nova
NOVA_DATA = "https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html"
NOVA2_DATA = "https://docs.aws.amazon.com/bedrock/latest/userguide/nova-2-sft-data-prep.html"
NOVA2_SFT_TOOLS = "https://docs.aws.amazon.com/nova/latest/nova2-userguide/nova-data-prep-sft-2.html"
NOVA_VALIDATOR = f"{_AWS_SAMPLES}/nova/understanding/dataset_validation/nova_ft_dataset_validator.py"
NOVA_CUSTOMIZATION = "https://docs.aws.amazon.com/nova/latest/userguide/customization.html"
NOVA_HYPERPARAMETERS = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html"

# Meta Llama on Bedrock
LLAMA_VALIDATOR = f"{_AWS_SAMPLES}/meta-llama/dataset_validation/dataset_validation.py"
LLAMA_MODELS_REGISTRY = f"{_AWS_SAMPLES}/meta-llama/dataset_validation/model_config/models_registry.py"
LLAMA_VALIDATOR_README = f"{_AWS_SAMPLES}/meta-llama/dataset_validation/README.md"
BEDROCK_IMAGE_TEXT_DATA = "https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-image-text-data.html"
LLAMA31_HYPERPARAMETERS = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama31.html"
LLAMA32_HYPERPARAMETERS = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama32.html"

# Amazon Titan Text
TITAN_TOKEN_LIMIT = "https://github.com/aws-samples/amazon-bedrock-workshop/issues/224"
TITAN_HYPERPARAMETERS = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-titan-text.html"
