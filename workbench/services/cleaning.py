"""Clean a dataset: PII (find, scrub), duplicates (exact and near, keep one), split leakage, guardrail rules."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.dedup import (
    DuplicateGroup,
    LeakagePair,
    choose_keep,
    keep_score,
    leakage,
    near_duplicate_groups,
    resolve,
)
from workbench.domain.example import Example, Split
from workbench.domain.filters import ExampleFilter
from workbench.domain.guardrails import GuardrailReport, GuardrailRule, run_rules
from workbench.domain.pii import scrub_example
from workbench.errors import InvalidInput
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store import rules as rule_rows

# --------------------------------------------------------------------------------------------- PII


class PiiSummary(BaseModel):
    examples: int = Field(description="Examples in the dataset.")
    examples_with_pii: int
    by_kind: dict[str, int] = Field(default_factory=dict, description="Findings per kind, most common first.")


def pii_summary(store: Store, dataset: str) -> PiiSummary:
    """Count PII findings in a dataset by kind."""
    kinds: Counter[str] = Counter()
    with_pii = 0
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        total = example_rows.count_examples(db, dataset_id, ExampleFilter())
        for example in example_rows.iter_examples(db, dataset_id, ExampleFilter(has_pii=True)):
            with_pii += 1
            kinds.update(f.kind for f in example.pii)
    return PiiSummary(examples=total, examples_with_pii=with_pii, by_kind=dict(kinds.most_common()))


def scrub(store: Store, example_id: int) -> Example:
    """Replace one example's PII with typed placeholders ([EMAIL], [PHONE]...), in place."""
    with store.connect() as db, db.atomic():
        example = example_rows.get_example(db, example_id)
        if not example.pii:
            return example
        clean = scrub_example(example).with_hash()
        _check_no_clash(db, example, clean)
        example_rows.replace_content(db, clean)
        return example_rows.get_example(db, example_id)


def scrub_dataset(store: Store, dataset: str, flt: ExampleFilter | None = None) -> int:
    """Scrub every example with PII in a dataset (or in a filtered selection); return how many changed."""
    flt = (flt or ExampleFilter()).model_copy(update={"has_pii": True})
    changed = 0
    with store.connect() as db, db.atomic():
        dataset_id = dataset_rows.dataset_id(db, dataset)
        for example in list(example_rows.iter_examples(db, dataset_id, flt)):
            clean = scrub_example(example).with_hash()
            _check_no_clash(db, example, clean)
            example_rows.replace_content(db, clean)
            changed += 1
    return changed


def _check_no_clash(db: Database, old: Example, new: Example) -> None:
    # Two examples differing only in an email address become identical once scrubbed; the unique
    # hash would refuse the second, so say which one instead of failing with a constraint error.
    clash = example_rows.find_clash(db, old, new.content_hash)
    if clash is not None:
        raise InvalidInput(f"scrubbing example {old.id} would make it identical to example {clash}; resolve that duplicate first")


# --------------------------------------------------------------------------------------- duplicates


def find_duplicates(store: Store, dataset: str, *, threshold: float = 0.8) -> list[DuplicateGroup]:
    """Group exact and near-duplicate examples, each group with the member worth keeping chosen.

    The keeper is the accepted, best-rated, highest-quality member, the oldest on a tie.
    """
    items: list[tuple[int, str]] = []
    scores = {}
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        for example in example_rows.iter_examples(db, dataset_id):
            assert example.id is not None
            items.append((example.id, example.plain_text()))
            scores[example.id] = keep_score(example)
    return [choose_keep(g, scores) for g in near_duplicate_groups(items, threshold=threshold, scores=scores)]


def resolve_duplicates(store: Store, dataset: str, groups: list[DuplicateGroup]) -> int:
    """Delete every member but the keeper of each group, as one undoable bulk action."""
    from workbench.services.datasets import delete_examples

    doomed = resolve(groups)
    if not doomed:
        return 0
    return delete_examples(store, dataset, doomed, detail=f"duplicates of {len(groups)} groups").affected


def find_leakage(store: Store, dataset: str, *, threshold: float = 0.8) -> list[LeakagePair]:
    """Find examples in one split that (nearly) repeat an example in another split."""
    by_split: dict[str, list[tuple[int, str]]] = {}
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        for example in example_rows.iter_examples(db, dataset_id):
            if example.split is Split.UNASSIGNED:
                continue
            assert example.id is not None
            by_split.setdefault(example.split.value, []).append((example.id, example.plain_text()))
    if len(by_split) < 2:
        return []
    return leakage(by_split, threshold=threshold)


# ------------------------------------------------------------------------------------------ rules


def list_rules(store: Store) -> list[GuardrailRule]:
    """Return every guardrail rule, oldest first."""
    with store.connect() as db:
        return rule_rows.list_rules(db)


def add_rule(
    store: Store,
    *,
    name: str,
    regex: str | None = None,
    words: str | None = None,
    scope: str = "any",
    action: str = "warn",
    message: str = "",
    case_sensitive: bool = False,
) -> GuardrailRule:
    """Add a rule that flags a regex or a word list in the system prompt, one role's turns, or anywhere."""
    if bool(regex) == bool(words):
        raise InvalidInput("give exactly one of a regex or a word list")
    try:
        rule = GuardrailRule(
            name=name.strip(),
            kind="regex" if regex else "words",
            pattern=regex or words or "",
            scope=scope,
            action=action,
            message=message,
            case_sensitive=case_sensitive,
        )
    except ValueError as exc:
        raise InvalidInput(_first_error(exc)) from exc
    if not rule.name:
        raise InvalidInput("a rule needs a name")
    with store.connect() as db:
        return rule_rows.insert_rule(db, rule)


def set_rule_enabled(store: Store, rule_id: int, enabled: bool) -> None:
    """Switch a rule on or off without deleting it."""
    with store.connect() as db:
        rule_rows.set_enabled(db, rule_id, enabled)


def delete_rule(store: Store, rule_id: int) -> None:
    """Delete a rule."""
    with store.connect() as db:
        rule_rows.delete_rule(db, rule_id)


def run_guardrails(store: Store, dataset: str, rule_ids: list[int] | None = None) -> GuardrailReport:
    """Check every example against the enabled rules (or the chosen ones) and report the pass rate."""
    with store.connect() as db:
        rules = [r for r in rule_rows.list_rules(db) if (r.id in rule_ids if rule_ids else r.enabled)]
        dataset_id = dataset_rows.dataset_id(db, dataset)
        return run_rules(rules, example_rows.iter_examples(db, dataset_id))


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)
