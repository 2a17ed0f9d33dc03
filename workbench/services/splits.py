"""Split a dataset into train/validation/test: seeded, optionally stratified, stable as data arrives."""

from __future__ import annotations

from collections import Counter, defaultdict

from pydantic import BaseModel, Field

from workbench.domain.example import Split
from workbench.domain.splitting import SplitRatios, assign_new, assign_splits
from workbench.errors import InvalidInput
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows


class SplitSummary(BaseModel):
    dataset: str
    assigned: int = Field(description="Examples whose split was set by this run.")
    counts: dict[str, int] = Field(description="Examples per split after the run.")
    by_stratum: dict[str, dict[str, int]] = Field(default_factory=dict, description="Per stratum value, examples per split.")
    seed: int
    stratify_by: str | None = None


def split_dataset(
    store: Store,
    dataset: str,
    ratios: SplitRatios | tuple[float, float, float],
    *,
    seed: int = 42,
    stratify_by: str | None = None,
    only_new: bool = False,
) -> SplitSummary:
    """Assign every example (or only unassigned ones) a split, and remember the settings for new arrivals.

    The same seed on the same examples always gives the same split; `only_new` never moves an
    example that already has one.
    """
    if not isinstance(ratios, SplitRatios):
        try:
            ratios = SplitRatios(train=ratios[0], validation=ratios[1], test=ratios[2])
        except ValueError as exc:
            raise InvalidInput(f"split ratios: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}") from exc  # type: ignore[attr-defined]
    stratify_by = (stratify_by or "").strip() or None
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        rows = example_rows.split_inputs(db, dataset_id, stratify_by)
        if not rows:
            raise InvalidInput(f"dataset {dataset!r} has no examples to split")
        if stratify_by and all(value is None for _, _, _, value in rows):
            # A misspelt field would otherwise put every example in one "(none)" group and
            # silently split without stratifying.
            raise InvalidInput(
                f"stratify by {stratify_by!r}: no example of {dataset!r} has this metadata field; "
                "check its spelling (the Browse tab's metadata filter lists the fields)"
            )
        if only_new:
            assignments = _assign_new(rows, ratios, seed)
        else:
            assignments = assign_splits([(i, h, s) for i, h, _, s in rows], ratios, seed)
        example_rows.set_splits(db, {i: Split(s).value for i, s in assignments.items()})
        dataset_rows.touch_dataset(
            db, dataset_id, split_config={"ratios": ratios.model_dump(), "seed": seed, "stratify_by": stratify_by}
        )
        after = example_rows.split_inputs(db, dataset_id, stratify_by)
    return _summary(dataset, len(assignments), after, seed, stratify_by)


def assign_new_examples(store: Store, dataset: str) -> SplitSummary | None:
    """Give unassigned examples a split using the dataset's last split settings; None if never split."""
    with store.connect() as db:
        config = dataset_rows.get_dataset(db, dataset).split_config
    if not config:
        return None
    return split_dataset(
        store,
        dataset,
        SplitRatios(**config["ratios"]),
        seed=config["seed"],
        stratify_by=config.get("stratify_by"),
        only_new=True,
    )


def _assign_new(rows: list[tuple[int, str, str, str | None]], ratios: SplitRatios, seed: int) -> dict[int, Split]:
    existing: dict[str | None, dict[Split, int]] = defaultdict(lambda: dict.fromkeys((Split.TRAIN, Split.VALIDATION, Split.TEST), 0))
    new = []
    for example_id, content_hash, split, stratum in rows:
        if split == Split.UNASSIGNED.value:
            new.append((example_id, content_hash, stratum))
        else:
            existing[stratum][Split(split)] += 1
    if not new:
        return {}
    return assign_new(new, ratios, seed, dict(existing))


def _summary(dataset: str, assigned: int, rows: list[tuple[int, str, str, str | None]], seed: int, stratify_by: str | None) -> SplitSummary:
    counts = Counter(split for _, _, split, _ in rows)
    by_stratum: dict[str, Counter[str]] = defaultdict(Counter)
    if stratify_by:
        for _, _, split, stratum in rows:
            by_stratum[stratum if stratum is not None else "(none)"][split] += 1
    return SplitSummary(
        dataset=dataset,
        assigned=assigned,
        counts=dict(sorted(counts.items())),
        by_stratum={k: dict(v) for k, v in sorted(by_stratum.items())},
        seed=seed,
        stratify_by=stratify_by,
    )
