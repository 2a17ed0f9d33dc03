"""Split a dataset into train/validation/test: seeded, optionally stratified, stable as data arrives.

A split of any size runs in memory that does not grow with the dataset: the store counts each
stratum, then hands the examples back stratum by stratum in the order the split deals them
(SQLite sorts, spilling to disk), and the new splits are written a batch at a time. Only examples
whose split changes are written.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from functools import partial

from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.access import Permission
from workbench.domain.example import Split
from workbench.domain.progress import Progress
from workbench.domain.splitting import SPLITS, SplitDealer, SplitRatios, split_rank, stratum_counts
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

MAX_STRATA = 10_000
"""A split keeps the balance of at most this many values of the stratify field: past that the field
is nearly unique per example (an id, a timestamp), which leaves nothing to balance."""
WRITE_BATCH = 2000
"""Changed splits written per statement batch (all inside the split's one transaction)."""

_NOTHING_YET = object()
"""The stratum before the first example (None is a stratum of its own)."""

Strata = dict[tuple[str | None, str], int]
"""Examples per (stratum, split), as `examples.split_strata` counts them."""


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
    progress: Progress | None = None,
) -> SplitSummary:
    """Assign every example (or only unassigned ones) a split, and remember the settings for new arrivals.

    The same seed on the same examples always gives the same split; `only_new` never moves an
    example that already has one. Everything happens in one transaction: a split half applied
    would mix old and new assignments (an example could leave test for train while its neighbours
    stay), so a `Cancelled` (or any failure) rolls all of it back and the dataset keeps its old split.
    Needs `datasets.write`; the trail records the settings and how many examples were dealt.
    """
    from workbench.services.datasets import dataset_target

    access.require(store, Permission.DATASETS_WRITE, action="dataset.split", target=dataset_target(store, dataset))
    return _split(store, dataset, ratios, seed=seed, stratify_by=stratify_by, only_new=only_new, progress=progress)


def _split(
    store: Store,
    dataset: str,
    ratios: SplitRatios | tuple[float, float, float],
    *,
    seed: int,
    stratify_by: str | None,
    only_new: bool,
    progress: Progress | None,
) -> SplitSummary:
    progress = progress or Progress()
    ratios = _ratios(ratios)
    stratify_by = (stratify_by or "").strip() or None
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        before = example_rows.split_strata(db, dataset_id, stratify_by)
        _check_strata(before, dataset, stratify_by)
        plan = _plan(before, ratios, seed, only_new)
        todo = sum(sum(counts.values()) for counts in plan.values())
        assigned = _assign(db, dataset_id, stratify_by, seed, only_new, plan, todo, progress) if todo else 0
        if not todo:
            progress.stage("assigning splits", 0)
        dataset_rows.touch_dataset(
            db, dataset_id, split_config={"ratios": ratios.model_dump(), "seed": seed, "stratify_by": stratify_by}
        )
        after = example_rows.split_strata(db, dataset_id, stratify_by)
        access.audit(db, "dataset.split", f"dataset:{dataset_id}", assigned=assigned, ratios=ratios.model_dump(),
                     seed=seed, stratify_by=stratify_by, only_new=only_new)
    progress.finish()
    return _summary(dataset, assigned, after, seed, stratify_by)


def assign_new_examples(store: Store, dataset: str, *, progress: Progress | None = None) -> SplitSummary | None:
    """Give unassigned examples a split using the dataset's last split settings; None if never split.

    No permission of its own: it follows a write the caller was allowed (an import, a reviewer's
    correction) and only places the new arrivals by settings someone who may split chose. Asking for
    `datasets.write` here left a reviewer's corrections outside every split.
    """
    with store.connect() as db:
        config = dataset_rows.get_dataset(db, dataset).split_config
    if not config:
        return None
    return _split(
        store,
        dataset,
        SplitRatios(**config["ratios"]),
        seed=config["seed"],
        stratify_by=config.get("stratify_by"),
        only_new=True,
        progress=progress,
    )


def _ratios(ratios: SplitRatios | tuple[float, float, float]) -> SplitRatios:
    if isinstance(ratios, SplitRatios):
        return ratios
    try:
        return SplitRatios(train=ratios[0], validation=ratios[1], test=ratios[2])
    except ValueError as exc:
        raise InvalidInput(f"split ratios: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}") from exc  # type: ignore[attr-defined]


def _check_strata(strata: Strata, dataset: str, stratify_by: str | None) -> None:
    if not strata:
        raise InvalidInput(f"dataset {dataset!r} has no examples to split")
    if not stratify_by:
        return
    values = {stratum for stratum, _ in strata}
    if values == {None}:
        # A misspelt field would otherwise put every example in one "(none)" group and
        # silently split without stratifying.
        raise InvalidInput(
            f"stratify by {stratify_by!r}: no example of {dataset!r} has this metadata field; "
            "check its spelling (the Browse tab's metadata filter lists the fields)"
        )
    if len(values) > MAX_STRATA:
        raise InvalidInput(
            f"stratify by {stratify_by!r}: {dataset!r} has {len(values):,} different values of it, more than the "
            f"{MAX_STRATA:,} a split can keep in balance; stratify by a field with fewer values (a label, a category)"
        )


def _plan(strata: Strata, ratios: SplitRatios, seed: int, only_new: bool) -> dict[str | None, dict[Split, int]]:
    """Say, per stratum, how many of the examples to (re)assign go to each split."""
    old: dict[str | None, dict[Split, int]] = defaultdict(dict)
    new: dict[str | None, int] = defaultdict(int)
    for (stratum, split), count in strata.items():
        if not only_new or split == Split.UNASSIGNED.value:
            new[stratum] += count
        elif split in {s.value for s in SPLITS}:
            old[stratum][Split(split)] = count
    return {stratum: stratum_counts(ratios, seed, stratum, old[stratum], n) for stratum, n in new.items() if n}


def _assign(
    db: Database,
    dataset_id: int,
    stratify_by: str | None,
    seed: int,
    only_new: bool,
    plan: dict[str | None, dict[Split, int]],
    todo: int,
    progress: Progress,
) -> int:
    """Deal out splits stratum by stratum in rank order, writing the changed ones; return how many were dealt."""
    progress.stage("ranking examples", todo)
    inputs = example_rows.split_inputs(
        db, dataset_id, stratify_by, partial(split_rank, seed), only_unassigned=only_new, on_ranked=progress.advance
    )
    by = access.current().email
    dealer = SplitDealer({})
    current: object = _NOTHING_YET
    changed: dict[int, str] = {}
    dealt = 0
    with contextlib.closing(inputs):
        for example_id, split, stratum in inputs:
            if dealt == 0:
                progress.stage("assigning splits", todo)
            if stratum != current:
                current, dealer = stratum, SplitDealer(plan[stratum])
            chosen = dealer.next().value
            if chosen != split:
                changed[example_id] = chosen
                if len(changed) >= WRITE_BATCH:
                    example_rows.set_splits(db, changed, by=by)
                    changed = {}
            dealt += 1
            progress.advance()
    if changed:
        example_rows.set_splits(db, changed, by=by)
    return dealt


def _summary(dataset: str, assigned: int, strata: Strata, seed: int, stratify_by: str | None) -> SplitSummary:
    counts: dict[str, int] = defaultdict(int)
    by_stratum: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (stratum, split), n in strata.items():
        counts[split] += n
        if stratify_by:
            by_stratum[stratum if stratum is not None else "(none)"][split] += n
    return SplitSummary(
        dataset=dataset,
        assigned=assigned,
        counts=dict(sorted(counts.items())),
        by_stratum={k: dict(v) for k, v in sorted(by_stratum.items())},
        seed=seed,
        stratify_by=stratify_by,
    )
