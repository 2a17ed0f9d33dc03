"""The hyperparameters of the workbench's own LoRA training script, run locally and on SageMaker.

These are ours, not a provider's: ranges are what the script accepts and what makes sense for LoRA
(Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", https://arxiv.org/abs/2106.09685;
peft's LoraConfig, https://huggingface.co/docs/peft/package_reference/lora).
"""

from __future__ import annotations

from workbench.domain.catalogue.models import Hyperparameter

H = Hyperparameter
_PEFT = "https://huggingface.co/docs/peft/package_reference/lora"
_HF_TRAINING = "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments"

LORA_HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    H(name="epochs", type="int", min=1, max=50, default=3, help="Passes over the training set.", source=_HF_TRAINING),
    H(name="learning_rate", type="float", min=1e-6, max=1e-2, default=2e-4,
      help="AdamW learning rate; LoRA usually takes 1e-4 to 3e-4.", source=_HF_TRAINING),
    H(name="batch_size", type="int", min=1, max=256, default=4, help="Examples per optimizer step.", source=_HF_TRAINING),
    H(name="lora_r", type="int", min=1, max=256, default=8, help="Rank of the low-rank update.", source=_PEFT),
    H(name="lora_alpha", type="int", min=1, max=512, default=16, help="Scale of the update (alpha / r).", source=_PEFT),
    H(name="lora_dropout", type="float", min=0, max=0.5, default=0.05, help="Dropout on the LoRA layers.", source=_PEFT),
    H(name="max_seq_len", type="int", min=16, max=131072, default=1024,
      help="Longest example in tokens; longer ones are cut from the end.", source=_HF_TRAINING),
    H(name="warmup_steps", type="int", min=0, max=100000, default=0, help="Steps the learning rate ramps up over.",
      source=_HF_TRAINING),
    H(name="seed", type="int", min=0, max=2**31 - 1, default=42, help="Random seed, for repeatable runs.",
      source=_HF_TRAINING),
)

_SM_RESOURCES = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html"
_SM_INSTANCES = (
    "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.8xlarge", "ml.g5.12xlarge", "ml.g5.48xlarge",
    "ml.g6.xlarge", "ml.g6.2xlarge", "ml.g6.12xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge",
)

SAGEMAKER_HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    *LORA_HYPERPARAMETERS,
    H(name="instance_type", type="str", choices=_SM_INSTANCES, default="ml.g5.2xlarge",
      help="The GPU instance the training job runs on (not passed to the script).", source=_SM_RESOURCES),
    H(name="instance_count", type="int", min=1, max=16, default=1,
      help="Instances; the script runs data-parallel across them.", source=_SM_RESOURCES),
    H(name="max_runtime_seconds", type="int", min=600, max=2_419_200, default=86400,
      help="SageMaker stops the job after this long.",
      source="https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html"),
)
"""The LoRA script's hyperparameters plus the training job's resources, which the SageMaker backend takes out of
the hyperparameters before they reach the script."""
