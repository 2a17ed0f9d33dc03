"""The demo workspace's review queue: test inputs of the demo datasets with generated outputs, some wrong.

Kept apart from the queue itself because it is sample data, not a use case: `workbench demo load`
calls it once, and loading again adds nothing.
"""

from __future__ import annotations

import orjson

from workbench.domain.example import Example, Role, Split
from workbench.domain.filters import ExampleFilter
from workbench.services import datasets
from workbench.services.review import NewItem, enqueue
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import review as review_rows
from workbench.store.review import SourceKind

DEMO_QUEUE: list[tuple[str, str, str]] = [
    ("demo-geo-compliance", "geo-compliance", "demo-geo-gpt4o-mini"),
    ("demo-stylist-feedback", "stylist-feedback", "demo-stylist-nova-lr5e-5"),
]
"""(dataset, task type, model) the demo queue is drawn from: test-split inputs with generated outputs."""
DEMO_ITEMS_PER_DATASET = 12


def load_demo_queue(store: Store) -> int:
    """Queue generated outputs for some demo test inputs (a third of them wrong), and return how many were new.

    Each output is queued under its example's content hash, so loading twice adds nothing.
    """
    with store.connect() as db:
        before = review_rows.count_items(db)
        present = {d.name for d in dataset_rows.list_datasets(db)}
    for name, task, model in DEMO_QUEUE:
        if name not in present:
            continue
        page = datasets.browse(store, name, ExampleFilter(split=Split.TEST), page_size=DEMO_ITEMS_PER_DATASET)
        items = [
            NewItem(
                source_kind=SourceKind.DEMO, source_id=f"{name}:{example.content_hash}", output=_demo_output(example, i),
                system=example.system, messages=example.messages[:-1], reference=example.messages[-1].content,
                model_id=model, task_type=task, dataset=name, example_id=example.id,
            )
            for i, example in enumerate(page.examples)
            if len(example.messages) >= 2 and example.messages[-1].role is Role.ASSISTANT
            and example.messages[-2].role is Role.USER
        ]
        enqueue(store, items)
    with store.connect() as db:
        return review_rows.count_items(db) - before


def _demo_output(example: Example, i: int) -> str:
    """Return the reference answer, or every third time a plausible mistake in it for a reviewer to catch."""
    reference = example.messages[-1].content
    if i % 3 != 1:
        return reference
    try:
        answer = orjson.loads(reference)
    except orjson.JSONDecodeError:
        return reference[: len(reference) // 2]
    if isinstance(answer, dict) and isinstance(answer.get("needs_geo_compliance"), bool):
        answer["needs_geo_compliance"] = not answer["needs_geo_compliance"]
    elif isinstance(answer, dict) and "sentiment" in answer:
        answer["sentiment"] = {"positive": "negative", "negative": "positive"}.get(str(answer["sentiment"]), "positive")
        answer["pinch_points"] = []
    else:
        return reference[: len(reference) // 2]
    return orjson.dumps(answer).decode()
