"""The demo workspace a new user lands in: the sample datasets shipped under data/demo, split and ready to clean.

Everything it creates says it is demo data, so nobody mistakes it for their own.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from workbench.domain.progress import Progress
from workbench.errors import Conflict
from workbench.services import cleaning, datasets, importing, splits
from workbench.store import Store
from workbench.store import datasets as dataset_rows

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo"

DEMO_DATASETS: list[tuple[str, str, str, str | None]] = [
    (
        "demo-optimization-modeling",
        "optimization_modeling.jsonl",
        "Demo: business optimisation problems turned into mathematical models (Bedrock Claude 3 Haiku format).",
        None,
    ),
    (
        "demo-geo-compliance",
        "geo_compliance.jsonl",
        "Demo: software features flagged for geo-specific compliance with a JSON verdict (instruction/input/output).",
        "domain",
    ),
    (
        "demo-stylist-feedback",
        "stylist_feedback.jsonl",
        "Demo: client feedback on stylists summarised as a headline and pinch points (Bedrock Nova format).",
        None,
    ),
]

DEMO_RULES: list[dict[str, str]] = [
    {
        "name": "No AI self-reference",
        "regex": r"\bas an ai( language)? model\b",
        "scope": "assistant",
        "action": "block",
        "message": "Assistant turns should answer, not talk about being an AI.",
    },
    {
        "name": "No promised returns",
        "words": "guaranteed returns, risk-free profit, can't lose",
        "scope": "any",
        "action": "block",
        "message": "Financial promises are not allowed in training data.",
    },
    {
        "name": "Mild profanity",
        "words": "damn, hell, crap",
        "scope": "assistant",
        "action": "warn",
        "message": "Keep assistant replies professional.",
    },
]


class DemoLoad(BaseModel):
    skipped: bool = Field(default=False, description="True when the store already held data and --if-empty was given.")
    datasets: dict[str, int] = Field(default_factory=dict, description="Dataset name -> examples imported.")
    rules: int = 0
    jobs: int = Field(default=0, description="Demo jobs added to the job history (generated, marked as demo).")
    review_items: int = Field(default=0, description="Demo outputs added to the reviewers' queue.")
    predictions: int = Field(default=0, description="Generated production predictions added (90 days of history).")
    feedback: int = Field(default=0, description="Generated reviewer feedback rows added with them.")


def load_demo(store: Store, *, if_empty: bool = False, demo_dir: Path = DEMO_DIR, history: int = 0,
              progress: Progress | None = None) -> DemoLoad:
    """Import the demo datasets, split them 80/10/10 and add sample guardrail rules.

    `history` is how many generated production predictions to add (with the demo A/B test): the
    CLI asks for a million, as `make run` wants; callers that need none (most tests) leave it 0.
    Loading twice adds nothing: imports dedupe by content and existing rules are left alone.
    """
    if if_empty and datasets.list_datasets(store):
        return DemoLoad(skipped=True)
    result = DemoLoad()
    for name, filename, description, stratify in DEMO_DATASETS:
        imported = importing.import_path(store, demo_dir / filename, name)
        result.datasets[name] = imported.imported
        with store.write() as db:
            dataset = dataset_rows.get_dataset(db, name)
            dataset_rows.touch_dataset(db, dataset.id, description=description)
        if dataset.split_config is None:
            splits.split_dataset(store, name, (0.8, 0.1, 0.1), seed=42, stratify_by=stratify)
    for rule in DEMO_RULES:
        try:
            cleaning.add_rule(store, **rule)
            result.rules += 1
        except Conflict:
            pass
    from workbench.services.templates import install_starters

    install_starters(store)  # the starter template library; names already taken are left alone
    from workbench.services.demo_jobs import load_demo_jobs

    result.jobs = load_demo_jobs(store)
    from workbench.services.demo_review import load_demo_queue

    result.review_items = load_demo_queue(store)
    if history > 0:
        from workbench.services.demo_predictions import load_demo_history

        added = load_demo_history(store, total=history, progress=progress)
        result.predictions, result.feedback = added.predictions, added.feedback
    return result
