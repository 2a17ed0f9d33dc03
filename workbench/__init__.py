"""Fine-Tuning Workbench: curate training data, launch fine-tuning jobs, review models in production."""

__version__ = "0.1.0"
