"""The reviewers' queue: outputs arrive (`enqueue`), reviewers judge them one at a time, a share of them
twice so agreement can be measured, corrections become training examples, and enough bad verdicts
or corrections for a task say "retraining recommended".

Comparison, evaluation, prediction and distillation code queue what they produce with `enqueue`;
the Review page and Home read the rest.

Who reviews: in a signed-in deployment the reviewer is the signed-in person's address, never a name
they type, so agreement between two reviewers is agreement between two people. A single local user
still types a name (several people may share the machine's one seat). Rating and correcting needs
`review.work`, reading the queue `review.read`, and its settings and what enters it `review.manage`.
"""

from __future__ import annotations

import getpass
import hashlib
import unicodedata
from collections.abc import Iterable, Sequence

import orjson
import pandas as pd
from pydantic import BaseModel, Field, ValidationError
from sqlite_utils import Database

from workbench.domain import eval_stats
from workbench.domain.access import Permission
from workbench.domain.checks import prepare
from workbench.domain.example import Example, Message, ReviewState, Role
from workbench.errors import Conflict, Forbidden, InvalidInput, NotFound
from workbench.services import access
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store import review as review_rows
from workbench.store.review import QueueFilter, Review, ReviewItem, SourceKind, Verdict

__all__ = ["QueueFilter", "Review", "ReviewItem", "SourceKind", "Verdict"]

ISSUE_CATEGORIES = ("wrong answer", "incomplete", "hallucination", "format", "tone", "safety", "PII", "other")
"""The issue categories a reviewer picks from; anything else they type is kept as a custom category."""
MAX_CATEGORY_LENGTH = 40
MAX_REVIEWER_LENGTH = 64
CORRECTION_TAG = "review-correction"
SIGNED_IN_VIA = frozenset({"oidc", "token"})
"""How an actor with a verified identity arrives: their reviews carry that identity, not a typed name."""


# ------------------------------------------------------------------------------------------ settings


class ReviewSettings(BaseModel):
    """The queue's knobs, stored in the workspace so every reviewer works to the same ones."""

    double_review_share: float = Field(
        0.1, ge=0, le=1, description="Share of items (0 to 1) offered to a second reviewer, so agreement can be measured."
    )
    retrain_corrections: int = Field(
        20, ge=1, description="Corrections for one task, among its latest reviews, that make retraining worth it."
    )
    retrain_bad_share: float = Field(
        0.15, gt=0, le=1, description="Share of 'bad' verdicts (0 to 1) among a task's latest reviews that does too."
    )
    retrain_window: int = Field(100, ge=1, description="How many of a task's latest reviews the two thresholds look at.")
    retrain_min_reviews: int = Field(
        20, ge=1, description="Reviews a task needs before its share of bad verdicts counts (3 bad of 5 says little)."
    )


def get_settings(store: Store) -> ReviewSettings:
    """Return the queue settings: those set in this workspace, defaults for the rest."""
    with store.connect() as db:
        raw = review_rows.read_settings(db)
    values = {key: orjson.loads(value) for key, value in raw.items() if key in ReviewSettings.model_fields}
    try:
        return ReviewSettings(**values)
    except ValidationError:
        return ReviewSettings()  # a value no longer valid under today's bounds falls back to the defaults


def set_settings(store: Store, **values: float | int) -> ReviewSettings:
    """Change queue settings; an unknown name or a value out of bounds is refused, naming it."""
    unknown = sorted(set(values) - set(ReviewSettings.model_fields))
    if unknown:
        raise InvalidInput(f"unknown review setting {unknown[0]!r}; known: {', '.join(ReviewSettings.model_fields)}")
    try:
        settings = ReviewSettings.model_validate(get_settings(store).model_dump() | values)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(f"review setting {error['loc'][0]}: {error['msg']} (got {error['input']!r})") from exc
    access.require(store, Permission.REVIEW_MANAGE, action="review.settings", target="review_queue")
    before = get_settings(store)
    with store.write() as db:
        review_rows.write_settings(db, {key: orjson.dumps(getattr(settings, key)).decode() for key in values})
        access.audit(db, "review.settings", "review_queue", **{
            key: f"{getattr(before, key)} -> {getattr(settings, key)}" for key in values
            if getattr(before, key) != getattr(settings, key)
        })
    return settings


# --------------------------------------------------------------------------------------------- enqueue


class NewItem(BaseModel):
    """An output to queue for review, as the code that produced it describes it."""

    source_kind: SourceKind
    source_id: str = Field(description="The output's id in its source; the same kind and id are queued once.")
    output: str = Field(description="What the model answered.")
    system: str | None = None
    messages: list[Message] = Field(default_factory=list, description="The input turns (no final assistant turn).")
    prompt: str | None = Field(None, description="The rendered prompt, when the model was given one string.")
    reference: str | None = Field(None, description="The expected answer, when there is one.")
    model_id: str = ""
    template_version_id: int | None = None
    task_type: str = ""
    dataset: str | None = Field(None, description="The dataset the input came from, by name.")
    example_id: int | None = None


def sample_key(source_kind: SourceKind | str, source_id: str) -> float:
    """Return a stable number in [0, 1) for an output: below the double-review share, it is reviewed twice.

    A hash rather than the item id, so the sample does not follow queue order (the first variant
    of every comparison, say) and does not change when the same output is queued again.
    """
    digest = hashlib.blake2b(f"{SourceKind(source_kind).value}:{source_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def enqueue(store: Store, items: Iterable[NewItem]) -> list[int]:
    """Queue outputs for review; return their item ids, the existing id for an output already queued."""
    access.require(store, Permission.REVIEW_MANAGE, action="review.enqueue", target="review_queue")
    checked = [_checked(i, item) for i, item in enumerate(items)]
    with store.write() as db:
        names = {item.dataset for item in checked if item.dataset}
        dataset_ids = {name: dataset_rows.dataset_id(db, name) for name in names}
        rows = [
            review_rows.ItemRow(
                **item.model_dump(exclude={"dataset"}),
                dataset_id=dataset_ids.get(item.dataset or ""),
                sample_key=sample_key(item.source_kind, item.source_id),
            )
            for item in checked
        ]
        ids, added = review_rows.insert_items(db, rows)
        if added:
            access.audit(db, "review.enqueue", "review_queue", added=added, offered=len(rows),
                         sources=sorted({row.source_kind.value for row in rows}))
    return ids


def _checked(index: int, item: NewItem) -> NewItem:
    where = f"item {index + 1} ({item.source_kind.value} {item.source_id!r})"
    if not item.source_id.strip():
        raise InvalidInput(f"item {index + 1}: source_id is empty; give the output's id in its {item.source_kind.value}")
    if not item.messages and not (item.prompt or "").strip():
        raise InvalidInput(f"{where}: no input; give the messages the model answered or the rendered prompt")
    if item.messages and item.messages[-1].role is not Role.USER:
        raise InvalidInput(f"{where}: the input must end with a user turn, not {item.messages[-1].role.value}")
    return item.model_copy(update={"task_type": item.task_type.strip(), "model_id": item.model_id.strip()})


def input_turns(item: ReviewItem) -> list[Message]:
    """Return the turns the model answered: the item's messages, or its rendered prompt as one user turn."""
    return list(item.messages) if item.messages else [Message(role=Role.USER, content=item.prompt or "")]


# ----------------------------------------------------------------------------------------------- queue


class QueueView(BaseModel):
    """What the Review page shows: the item in hand, the reviewer's earlier review of it, their progress."""

    item: ReviewItem | None
    review: Review | None = Field(None, description="This reviewer's earlier review of the item, when reopened.")
    double: bool = Field(False, description="The item is in the double-review sample.")
    done: int = Field(description="Items this reviewer reviewed or skipped under the filter.")
    total: int = Field(description="Those plus the items still open to them under the filter.")


def default_reviewer() -> str:
    """Return the OS user's name, the reviewer a page starts with."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER variable and no passwd entry (some containers)
        return "reviewer"


def signed_in_reviewer() -> str | None:
    """Return the signed-in actor's address when reviews must carry it, else None (a local user types a name)."""
    actor = access.current()
    return actor.email if actor.via in SIGNED_IN_VIA else None


def reviewer_for(store: Store, reviewer: str | None, *, action: str, target: str = "") -> str:
    """Return who a review is by: the signed-in actor's address, or the typed name in local use.

    A signed-in actor naming someone else is refused (and the refusal is on the trail): reviewing as
    another person would make the agreement measures and the attribution of corrections untrue.
    """
    actor = access.current()
    if actor.via not in SIGNED_IN_VIA:
        return check_reviewer(reviewer or "")
    given = (reviewer or "").strip()
    if given and given.lower() != actor.email.lower():
        access.refuse(store, action, target, reason=f"reviewer {given[:MAX_REVIEWER_LENGTH]!r} is not {actor.email}")
        raise Forbidden(f"{actor.label} may not review as {given[:MAX_REVIEWER_LENGTH]!r}: signed in, your reviews "
                        "carry your own address; leave the reviewer out or give yours")
    return actor.email


def _reader(store: Store, reviewer: str | None) -> str:
    access.require(store, Permission.REVIEW_READ, action="review.read", target="review_queue")
    return reviewer_for(store, reviewer, action="review.read", target="review_queue")


def check_reviewer(name: str) -> str:
    """Return a reviewer name trimmed, or say what is wrong with it."""
    name = name.strip()
    if not name:
        raise InvalidInput("a reviewer name is required: type yours in the sidebar")
    if len(name) > MAX_REVIEWER_LENGTH:
        raise InvalidInput(f"a reviewer name may be at most {MAX_REVIEWER_LENGTH} characters, not {len(name)}")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidInput(f"a reviewer name may not contain control characters: {name!r}")
    return name


def queue_view(store: Store, reviewer: str | None, flt: QueueFilter | None = None, *,
               item_id: int | None = None) -> QueueView:
    """Return the next item for a reviewer under a filter (or item `item_id`, reopened), with their progress.

    `reviewer` None: the signed-in actor (see `reviewer_for`).
    """
    reviewer = _reader(store, reviewer)
    flt = flt or QueueFilter()
    share = get_settings(store).double_review_share
    with store.connect() as db:
        if item_id is not None:
            item: ReviewItem | None = review_rows.get_item(db, item_id)
            review = review_rows.get_review(db, item_id, reviewer)
        else:
            item, review = review_rows.next_item(db, reviewer, flt, share), None
        done, left = review_rows.queue_counts(db, reviewer, flt, share)
    double = item is not None and item.sample_key < share
    return QueueView(item=item, review=review, double=double, done=done, total=done + left)


def next_item(store: Store, reviewer: str | None, flt: QueueFilter | None = None) -> ReviewItem | None:
    """Return the item a reviewer should look at next, or None when nothing under the filter is left for them."""
    return queue_view(store, reviewer, flt).item


def queue_facets(store: Store) -> dict[str, list[str]]:
    """Return the source kinds, task types and models in the queue, for the filters."""
    access.require(store, Permission.REVIEW_READ, action="review.read", target="review_queue")
    with store.connect() as db:
        return review_rows.facets(db)


def my_reviews(store: Store, reviewer: str | None, *, limit: int = 50) -> list[Review]:
    """Return a reviewer's latest reviews and skips, to reopen one and change it."""
    reviewer = _reader(store, reviewer)
    with store.connect() as db:
        return review_rows.reviewer_reviews(db, reviewer, limit=limit)


# --------------------------------------------------------------------------------------------- reviews


class Landing(BaseModel):
    """Where a correction went as a training example."""

    dataset: str
    example_id: int
    new: bool = Field(description="False when the same correction was already there (nothing was added).")
    revised: bool = Field(False, description="The reviewer's earlier correction was revised to this one.")


class SavedReview(BaseModel):
    review: Review
    landing: Landing | None = None

    def summary(self) -> str:
        """Say what happened in one line, for the page's message."""
        text = f"Saved your review of item #{self.review.item_id}"
        if self.landing is not None:
            where = f"{self.landing.dataset!r} as example #{self.landing.example_id}"
            verb = "added to" if self.landing.new else "updated in" if self.landing.revised else "already in"
            text += f"; correction {verb} {where}"
        return text + "."


def clean_categories(categories: Sequence[str]) -> list[str]:
    """Return issue categories trimmed and de-duplicated: the fixed ones by their own spelling, custom ones as typed."""
    known = {c.lower(): c for c in ISSUE_CATEGORIES}
    out: list[str] = []
    for raw in categories:
        category = " ".join(raw.split())
        if not category:
            continue
        if len(category) > MAX_CATEGORY_LENGTH:
            raise InvalidInput(f"issue category {category[:20]!r}... is longer than {MAX_CATEGORY_LENGTH} characters")
        category = known.get(category.lower(), category)
        if category not in out:
            out.append(category)
    return out


def save_review(
    store: Store,
    item_id: int,
    reviewer: str | None,
    *,
    verdict: Verdict | str,
    rating: int | None = None,
    categories: Sequence[str] = (),
    correction: str | None = None,
    comment: str = "",
    dataset: str | None = None,
) -> SavedReview:
    """Record a reviewer's verdict, rating, issue categories, correction and comment on an item.

    A correction (text that differs from the output) lands in `dataset` (created when new) as a
    chat example: the item's system prompt and input turns with the corrected answer, its
    provenance in the metadata. Saving again replaces the reviewer's review; a changed correction
    revises the example it landed as, and the same correction twice adds nothing.
    `reviewer` None: the signed-in actor (see `reviewer_for`).
    """
    target_item = f"review_item:{item_id}"
    access.require(store, Permission.REVIEW_WORK, action="review.save", target=target_item)
    reviewer = reviewer_for(store, reviewer, action="review.save", target=target_item)
    try:
        verdict = Verdict(verdict)
    except ValueError as exc:
        raise InvalidInput(f"verdict must be 'good' or 'bad', not {verdict!r}") from exc
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
        raise InvalidInput(f"rating must be 1 to 5, not {rating!r}")
    cleaned = clean_categories(categories)
    with store.connect() as db:
        item = review_rows.get_item(db, item_id)
    text = correction if correction is not None and correction.strip() and correction != item.output else None
    example = _correction_example(item, reviewer, text) if text is not None else None
    target = _check_target(dataset) if example is not None else None
    if target is not None:
        _may_create(store, target, item, target_item)
    with store.write() as db:
        before = review_rows.get_review(db, item_id, reviewer)
        saved = review_rows.upsert_review(
            db, item_id, reviewer, skipped=False, verdict=verdict, rating=rating, categories=cleaned,
            correction=text, comment=comment.strip(),
        )
        landing = None
        if example is not None and target is not None:
            landing = _land(db, example, target, before, by=reviewer)
            review_rows.set_landing(db, saved.id, *_ids(db, landing))
        elif before is not None and before.example_id is not None:
            review_rows.set_landing(db, saved.id, None, None)  # the example stays; the review no longer claims it
        saved = review_rows.get_review(db, item_id, reviewer) or saved
        access.audit(db, "review.save", target_item, reviewer=reviewer, verdict=verdict.value, rating=rating,
                     corrected=text is not None, replaced=before is not None and not before.skipped)
        if landing is not None and (landing.new or landing.revised):
            access.audit(db, "correction.apply", f"example:{landing.example_id}", dataset=landing.dataset,
                         example_id=landing.example_id, review_item=item_id,
                         change="added" if landing.new else "revised")
    if landing is not None and landing.new:
        _place_in_split(store, landing.dataset)
    return SavedReview(review=saved, landing=landing)


def _place_in_split(store: Store, dataset: str) -> None:
    """Give a new correction a split when its dataset was split, so new arrivals keep to the dataset's ratios."""
    from workbench.services.splits import assign_new_examples

    assign_new_examples(store, dataset)


def skip(store: Store, item_id: int, reviewer: str | None) -> Review:
    """Pass on an item: it leaves this reviewer's queue and stays in everyone else's."""
    target_item = f"review_item:{item_id}"
    access.require(store, Permission.REVIEW_WORK, action="review.skip", target=target_item)
    reviewer = reviewer_for(store, reviewer, action="review.skip", target=target_item)
    with store.write() as db:
        review_rows.get_item(db, item_id)
        skipped = review_rows.upsert_review(db, item_id, reviewer, skipped=True)
        access.audit(db, "review.skip", target_item, reviewer=reviewer)
    return skipped


def correction_targets(store: Store, item: ReviewItem) -> list[str]:
    """Return the datasets a correction of this item could land in: a corrections dataset for its task first, then the rest.

    Not the item's own dataset first: its input may be a test example, and a correction of it
    trained on would leak the test set into training.
    """
    access.require(store, Permission.REVIEW_READ, action="review.read", target="review_queue")
    with store.connect() as db:
        names = [d.name for d in dataset_rows.list_datasets(db)]
    suggested = corrections_dataset(item)
    return [suggested, *(name for name in names if name != suggested)]


def corrections_dataset(item: ReviewItem) -> str:
    """The dataset a correction of `item` lands in by default: one per task, created by the first correction."""
    return f"{item.task_type}-corrections" if item.task_type else "review-corrections"


def _may_create(store: Store, target: str, item: ReviewItem, target_item: str) -> None:
    """A correction may create its task's corrections dataset; any other new dataset needs `datasets.write`.

    Otherwise the Review form's "new dataset" box would let a reviewer create datasets at will.
    """
    if target == corrections_dataset(item):
        return
    with store.connect() as db:
        exists = dataset_rows.find_dataset(db, target) is not None
    if not exists:
        access.require(store, Permission.DATASETS_WRITE, action="dataset.create", target=f"dataset:{target}")


def _check_target(dataset: str | None) -> str:
    from workbench.services.importing import check_dataset_name

    if dataset is None or not dataset.strip():
        raise InvalidInput("a correction needs a dataset to land in: pick one or type a new name")
    return check_dataset_name(dataset)


def _correction_example(item: ReviewItem, reviewer: str, correction: str) -> Example:
    """Build the training example a correction becomes (hashed and checked, outside the write lock)."""
    metadata = {
        "source": "review",
        "review_item_id": item.id,
        "reviewer": reviewer,
        "model_id": item.model_id,
        "template_version_id": item.template_version_id,
        "original_output": item.output,
        "review_source": f"{item.source_kind.value}:{item.source_id}",
    }
    if item.task_type:
        metadata["task_type"] = item.task_type
    messages = [*input_turns(item), Message(role=Role.ASSISTANT, content=correction)]
    return prepare(
        Example(system=item.system, messages=messages, metadata=metadata, review_state=ReviewState.ACCEPTED,
                tags=[CORRECTION_TAG])
    )


def _land(db: Database, example: Example, dataset: str, before: Review | None, *, by: str) -> Landing:
    """Put a correction in a dataset under the caller's write lock: revise the reviewer's earlier one, or add it.

    A revision goes through the store's `save_revision`, which bumps the revision and records `by` as
    `updated_by`, so someone editing that example at the same time is told who changed it.
    """
    found = dataset_rows.find_dataset(db, dataset)
    dataset_id = found.id if found else dataset_rows.create_dataset(
        db, dataset, description="Corrections written by reviewers on the Review page."
    ).id
    # `find_clash` skips the example with the given id; 0 is no example's, so it finds any copy.
    clash = example_rows.find_clash(db, example.model_copy(update={"dataset_id": dataset_id, "id": 0}), example.content_hash)
    if clash is not None:
        return Landing(dataset=dataset, example_id=clash, new=False)
    if (before is not None and before.example_id is not None and before.dataset_id == dataset_id
            and not review_rows.shares_landing(db, before.id, before.example_id)):
        try:
            old = example_rows.get_example(db, before.example_id)
        except NotFound:  # deleted from the dataset since: add the correction afresh
            old = None
        if old is not None and old.dataset_id == dataset_id:
            new = old.model_copy(update={"system": example.system, "messages": example.messages,
                                         "metadata": example.metadata, "pii": example.pii,
                                         "token_count": example.token_count,
                                         "validation_status": example.validation_status,
                                         "validation_messages": example.validation_messages,
                                         "content_hash": example.content_hash})
            try:
                example_rows.save_revision(db, old, new, by=by)
                return Landing(dataset=dataset, example_id=old.id or 0, new=False, revised=True)
            except Conflict:
                pass
    ids, _ = example_rows.insert_examples(db, dataset_id, [example])
    return Landing(dataset=dataset, example_id=ids[0], new=True)


def _ids(db: Database, landing: Landing) -> tuple[int, int]:
    return dataset_rows.dataset_id(db, landing.dataset), landing.example_id


# ------------------------------------------------------------------------------------------- agreement


class Disagreement(BaseModel):
    item_id: int
    task_type: str
    first_reviewer: str
    first_verdict: str
    first_rating: int | None
    second_reviewer: str
    second_verdict: str
    second_rating: int | None


class Agreement(BaseModel):
    """How far two reviewers of the same items agree, over every double-reviewed item."""

    items: int = Field(description="Items with two reviews (skips not counted).")
    verdict_agreement: float | None = Field(None, description="Share of those items whose two verdicts match.")
    verdict_kappa: float | None = Field(None, description="Cohen's kappa on good/bad verdicts; None when undefined.")
    rating_pairs: int = Field(0, description="Items where both reviewers gave a rating.")
    rating_kappa: float | None = Field(None, description="Quadratic-weighted kappa on 1-5 ratings; None when undefined.")
    disagreements: list[Disagreement] = Field(default_factory=list, description="Verdicts differ or ratings 2+ apart.")
    notes: list[str] = Field(default_factory=list, description="Why a kappa is missing.")


def agreement(store: Store, *, task_type: str | None = None) -> Agreement:
    """Measure agreement on the double-reviewed items: the first two reviews of each, by the order they were made."""
    access.require(store, Permission.REVIEW_READ, action="review.read", target="review_queue")
    with store.connect() as db:
        pairs = [(item, reviews[:2]) for item, reviews in review_rows.double_reviewed(db)
                 if task_type is None or item.task_type == task_type]
    first = {item.id: a for item, (a, _) in pairs}
    second = {item.id: b for item, (_, b) in pairs}
    verdicts = eval_stats.cohens_kappa(
        {i: r.verdict.value if r.verdict else None for i, r in first.items()},
        {i: r.verdict.value if r.verdict else None for i, r in second.items()},
        categories=[v.value for v in Verdict],
    )
    ratings = eval_stats.cohens_kappa(
        {i: r.rating for i, r in first.items()}, {i: r.rating for i, r in second.items()},
        categories=[1, 2, 3, 4, 5], weights="quadratic",
    )
    result = Agreement(items=len(pairs), rating_pairs=ratings.items, verdict_agreement=verdicts.observed,
                       verdict_kappa=verdicts.kappa, rating_kappa=ratings.kappa)
    if pairs:
        result.notes = [f"{what}: {kappa.reason}" for what, kappa in (("verdicts", verdicts), ("ratings", ratings))
                        if kappa.reason]
    result.disagreements = [
        Disagreement(
            item_id=item.id, task_type=item.task_type, first_reviewer=a.reviewer,
            first_verdict=a.verdict.value if a.verdict else "", first_rating=a.rating, second_reviewer=b.reviewer,
            second_verdict=b.verdict.value if b.verdict else "", second_rating=b.rating,
        )
        for item, (a, b) in pairs
        if a.verdict != b.verdict or (a.rating is not None and b.rating is not None and abs(a.rating - b.rating) >= 2)
    ]
    return result


def disagreements_frame(result: Agreement) -> pd.DataFrame:
    """Return the disagreements as a table for display."""
    return pd.DataFrame([d.model_dump() for d in result.disagreements],
                        columns=list(Disagreement.model_fields)).rename(columns=lambda c: c.replace("_", " "))


def reviews_frame(reviews: Sequence[Review]) -> pd.DataFrame:
    """Return a reviewer's reviews as a table for display, with where each correction landed."""
    return pd.DataFrame(
        [
            {
                "item": r.item_id,
                "verdict": "skipped" if r.skipped else (r.verdict.value if r.verdict else ""),
                "rating": r.rating,
                "categories": ", ".join(r.categories),
                "correction in": f"{r.dataset} #{r.example_id}" if r.dataset and r.example_id else "",
                "updated": r.updated_at,
            }
            for r in reviews
        ],
        columns=["item", "verdict", "rating", "categories", "correction in", "updated"],
    )


# ------------------------------------------------------------------------------------------ retraining


class RetrainingAdvice(BaseModel):
    """A task whose latest reviews say its model should be retrained, and on what."""

    task_type: str
    reviews: int = Field(description="Reviews counted: the task's latest, up to the window.")
    bad: int
    corrections: int
    dataset: str | None = Field(None, description="Where its latest correction landed, else where its inputs came from.")
    reasons: list[str]

    @property
    def bad_share(self) -> float:
        return self.bad / self.reviews if self.reviews else 0.0

    def launch_params(self) -> dict[str, str]:
        """Return the Jobs page query parameters that open its launch form on the dataset to train on."""
        return {"tab": "launch", **({"dataset": self.dataset} if self.dataset else {})}


def retraining_advice(store: Store) -> list[RetrainingAdvice]:
    """Return every task whose latest reviews pass a retraining threshold (corrections, or share of bad verdicts)."""
    settings = get_settings(store)
    with store.connect() as db:
        rows = review_rows.recent_by_task(db, settings.retrain_window)
    advice = []
    for row in rows:
        reviews, bad, corrections = int(row["reviews"]), int(row["bad"] or 0), int(row["corrections"] or 0)
        reasons = []
        if corrections >= settings.retrain_corrections:
            reasons.append(f"{corrections} corrections")
        if reviews >= settings.retrain_min_reviews and bad / reviews >= settings.retrain_bad_share:
            reasons.append(f"{bad} of {reviews} reviews bad ({bad / reviews:.0%})")
        if reasons:
            advice.append(RetrainingAdvice(task_type=row["task_type"], reviews=reviews, bad=bad, corrections=corrections,
                                           dataset=row["landed_dataset"] or row["source_dataset"], reasons=reasons))
    return advice
