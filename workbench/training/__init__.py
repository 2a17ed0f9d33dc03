"""The workbench's own LoRA training script (`lora_train`), run locally and inside SageMaker's HF container.

Nothing here is imported eagerly: `lora_train` loads torch, transformers and peft only when it trains,
so the app can read its constants (hyperparameters, metric regexes, the default chat template)
without the optional `train` extra installed.
"""
