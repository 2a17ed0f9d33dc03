"""Clean a dataset: PII (find, scrub) and guardrail rules. Duplicates and leakage: `services.duplicates`.

Scrubs and every change to a rule need `datasets.write` and go to the audit trail; finding PII and
running the rules change nothing, so `datasets.read` is enough for them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.access import Permission
from workbench.domain.checks import prepare
from workbench.domain.example import Example
from workbench.domain.filters import ExampleFilter
from workbench.domain.finding_groups import SAMPLE_ROWS, FindingGroup, GroupCollector
from workbench.domain.guardrails import GuardrailReport, GuardrailRule, run_rules
from workbench.domain.pii import scrub_example
from workbench.domain.progress import Progress
from workbench.domain.rows import encode_messages, encode_pii
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store import revisions as revision_rows
from workbench.store import rules as rule_rows

# --------------------------------------------------------------------------------------------- PII


class PiiSummary(BaseModel):
    examples: int = Field(description="Examples in the dataset.")
    examples_with_pii: int
    by_kind: dict[str, int] = Field(default_factory=dict, description="Findings per kind, most common first.")
    groups: list[FindingGroup] = Field(
        default_factory=list,
        description=f"Findings per kind, most common first: exact counts, the first {SAMPLE_ROWS} findings of each "
        "(`findings - len(rows)` left out).",
    )


def pii_summary(store: Store, dataset: str, *, progress: Progress | None = None) -> PiiSummary:
    """Count PII findings in a dataset by kind, reading the findings stored at import and after each edit.

    Only examples with findings are read, one batch at a time; each kind keeps exact counts and a
    bounded sample, so memory does not grow with the dataset.
    """
    access.require(store, Permission.DATASETS_READ, action="pii.scan", target=f"dataset:{dataset}")
    progress = progress or Progress()
    groups = GroupCollector()
    with_pii = 0
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        total = example_rows.count_examples(db, dataset_id, ExampleFilter())
        flt = ExampleFilter(has_pii=True)
        progress.stage("scanning for PII", example_rows.count_examples(db, dataset_id, flt))
        for example in progress.iterate(example_rows.iter_examples(db, dataset_id, flt)):
            with_pii += 1
            groups.add_pii(example)
    found = groups.groups()
    return PiiSummary(examples=total, examples_with_pii=with_pii, by_kind={g.name: g.findings for g in found}, groups=found)


def scrub(store: Store, example_id: int) -> Example:
    """Replace one example's PII with typed placeholders ([EMAIL], [PHONE]...), in place and in its history.

    Every earlier revision, the search index and any pending undo snapshot lose the original text
    too, so neither the revision history nor an undo can bring it back; the token count is
    recomputed. Frozen versions are not changed (jobs train on them): see `versions_with_pii`.
    """
    access.require(store, Permission.DATASETS_WRITE, action="example.scrub", target=f"example:{example_id}")
    with store.connect() as db:
        example = example_rows.get_example(db, example_id)
        plan = _plan_scrub(db, example)
    if plan is None:
        return example
    with store.write() as db:
        current = example_rows.get_example(db, example_id)
        if _edited_since(plan.example, current):
            plan = _plan_scrub(db, current)  # edited meanwhile: decide on what is there now
            if plan is None:
                return current
        assert current.dataset_id is not None
        _apply_scrubs(db, current.dataset_id, [plan])
        access.audit(db, "example.scrub", f"example:{example_id}", findings=len(current.pii),
                     revisions_scrubbed=len(plan.revisions))
        return example_rows.get_example(db, example_id)


SCRUB_BATCH = 500
"""Examples planned and written at a time inside a scrub's transaction."""


def scrub_dataset(
    store: Store, dataset: str, flt: ExampleFilter | None = None, *, progress: Progress | None = None
) -> int:
    """Scrub every example with PII in a dataset (or a filtered selection), and its history; return how many changed.

    An example counts when its text or any earlier revision changed. Examples a bulk action
    deleted are scrubbed too, in the undo snapshot that would bring them back, whatever the filter
    (no filter can select a deleted example); each counts as one.

    All or nothing, in one write transaction: the candidates (examples with findings or earlier
    revisions) are read, planned and written `SCRUB_BATCH` at a time under the write lock, so
    memory stays bounded and nobody can edit an example between its plan and its write. A scrub
    that would make two examples identical is refused, and `Cancelled` stops it; either way the
    transaction rolls back and nothing at all is written. The price is that the lock is held for the
    whole scrub (seconds per hundred thousand candidates), and another writer waits for it, up to the
    busy timeout: a half-scrubbed dataset, with some PII gone and the rest refused, would be harder to
    reason about than a wait.
    """
    from workbench.services.datasets import dataset_target, filter_summary

    access.require(store, Permission.DATASETS_WRITE, action="dataset.scrub", target=dataset_target(store, dataset))
    progress = progress or Progress()
    unfiltered = (flt or ExampleFilter()).model_copy(update={"has_pii": None})
    changed = 0
    with store.write() as db:
        revision_rows.erase_on_delete(db)
        dataset_id = dataset_rows.dataset_id(db, dataset)
        progress.stage("scrubbing PII", revision_rows.count_scrub_candidates(db, dataset_id, unfiltered))
        for batch in revision_rows.iter_scrub_candidates(db, dataset_id, unfiltered, batch=SCRUB_BATCH):
            plans = [plan for example in batch if (plan := _plan_scrub(db, example)) is not None]
            if plans:
                _apply_scrubs(db, dataset_id, plans)
            changed += len(plans)
            progress.advance(len(batch))
        progress.check()
        deleted = revision_rows.rewrite_deleted_in_undo_snapshots(db, dataset_id, _scrubbed_content)
        access.audit(db, "dataset.scrub", f"dataset:{dataset_id}", changed=changed, deleted_in_undo=deleted,
                     filter=filter_summary(unfiltered))
    return changed + deleted


def _scrubbed_content(row: dict[str, Any]) -> dict[str, Any] | None:
    """Return the content columns of a stored example row with its PII scrubbed, or None when it has none."""
    example = example_rows.row_to_example(row)
    scrubbed = prepare(scrub_example(example, also=example.pii)).with_hash()
    if (scrubbed.system, scrubbed.messages) == (example.system, example.messages):
        return None
    return {
        "system": scrubbed.system,
        "messages": encode_messages(scrubbed.messages),
        "content_hash": scrubbed.content_hash,
        "pii": encode_pii(scrubbed.pii),
        "pii_count": len(scrubbed.pii),
        "token_count": scrubbed.token_count,
    }


@dataclass(frozen=True)
class _ScrubPlan:
    """What scrubbing one example changes: its current content (None: already clean) and earlier revisions."""

    example: Example
    clean: Example | None
    revisions: list[tuple[int, Example]]


def _plan_scrub(db: Database, example: Example) -> _ScrubPlan | None:
    """Work out an example's scrubbed content and revisions, or None when nothing would change.

    The stored findings are replaced wherever their text appears, in the current text and every
    revision, on top of a fresh scan: a revision holds the text the findings were made on, and a
    finding made under other settings (phone regions) still names something to remove.
    """
    assert example.id is not None
    known = example.pii
    scrubbed = prepare(scrub_example(example, also=known)).with_hash()
    unchanged = (scrubbed.system, scrubbed.messages) == (example.system, example.messages)
    clean = None if unchanged else scrubbed
    revisions: list[tuple[int, Example]] = []
    for row_id, old in revision_rows.revision_examples(db, example.id):
        new = scrub_example(old, also=known)
        if (new.system, new.messages) != (old.system, old.messages):
            revisions.append((row_id, new.with_hash()))
    if clean is None and not revisions:
        return None
    return _ScrubPlan(example, clean, revisions)


def _edited_since(planned: Example, current: Example) -> bool:
    return (planned.content_hash, planned.revision) != (current.content_hash, current.revision)


def _apply_scrubs(db: Database, dataset_id: int, plans: list[_ScrubPlan]) -> None:
    """Write planned scrubs inside the caller's write transaction, then clean the undo snapshots."""
    revision_rows.erase_on_delete(db)
    by = access.current().email
    for plan in plans:
        if plan.clean is not None:
            _check_no_clash(db, plan.example, plan.clean)
            example_rows.replace_content(db, plan.clean, by=by)
        if plan.revisions:
            revision_rows.replace_revisions(db, plan.revisions)
    # Every planned example, not only those whose current text changed: a snapshot taken before a
    # hand edit holds the text that edit replaced, which the scrubbed revision no longer does.
    rows = example_rows.raw_rows(db, [p.example.id for p in plans if p.example.id is not None])
    revision_rows.rewrite_undo_snapshots(db, dataset_id, {row["id"]: row for row in rows})


def versions_with_pii(store: Store, dataset: str) -> dict[str, int]:
    """Return, per frozen version of a dataset, how many examples with PII it holds (versions without: left out).

    A scrub never changes a frozen version: jobs train on versions and must be reproducible. A
    version's PII is scrubbed when it is exported (the default), and the way to a clean version
    is to scrub the dataset and freeze a new one.
    """
    with store.connect() as db:
        return revision_rows.versions_with_pii(db, dataset_rows.dataset_id(db, dataset))


def _check_no_clash(db: Database, old: Example, new: Example) -> None:
    # Two examples differing only in an email address become identical once scrubbed; the unique
    # hash would refuse the second, so say which one instead of failing with a constraint error.
    clash = example_rows.find_clash(db, old, new.content_hash)
    if clash is not None:
        raise InvalidInput(f"scrubbing example {old.id} would make it identical to example {clash}; resolve that duplicate first")


# ------------------------------------------------------------------------------------------ rules


def list_rules(store: Store) -> list[GuardrailRule]:
    """Return every guardrail rule, oldest first."""
    access.require(store, Permission.DATASETS_READ, action="rules.list")
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
    access.require(store, Permission.DATASETS_WRITE, action="rule.create", target=f"rule:{name.strip()}")
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
    with store.write() as db:
        added = rule_rows.insert_rule(db, rule)
        access.audit(db, "rule.create", f"rule:{added.id}", name=added.name, kind=added.kind.value,
                     scope=added.scope.value, on_match=added.action.value)
        return added


def set_rule_enabled(store: Store, rule_id: int, enabled: bool) -> None:
    """Switch a rule on or off without deleting it."""
    access.require(store, Permission.DATASETS_WRITE, action="rule.enable", target=f"rule:{rule_id}")
    with store.write() as db:
        rule_rows.set_enabled(db, rule_id, enabled)
        access.audit(db, "rule.enable", f"rule:{rule_id}", enabled=enabled)


def delete_rule(store: Store, rule_id: int) -> None:
    """Delete a rule."""
    access.require(store, Permission.DATASETS_WRITE, action="rule.delete", target=f"rule:{rule_id}")
    with store.write() as db:
        name = next((r.name for r in rule_rows.list_rules(db) if r.id == rule_id), None)
        rule_rows.delete_rule(db, rule_id)
        access.audit(db, "rule.delete", f"rule:{rule_id}", name=name)


def run_guardrails(
    store: Store, dataset: str, rule_ids: list[int] | None = None, *, progress: Progress | None = None
) -> GuardrailReport:
    """Check every example against the enabled rules (or the chosen ones) and report the pass rate.

    Examples stream through one batch at a time; the report counts every one and lists a bounded
    sample (see `GuardrailReport`).
    """
    access.require(store, Permission.DATASETS_READ, action="rules.run", target=f"dataset:{dataset}")
    progress = progress or Progress()
    with store.connect() as db:
        rules = [r for r in rule_rows.list_rules(db) if (r.id in rule_ids if rule_ids else r.enabled)]
        missing = sorted(set(rule_ids or ()) - {r.id for r in rules})
        if missing:
            raise InvalidInput(f"no guardrail rule with id {', '.join(map(str, missing))}; `workbench rules list` shows them")
        dataset_id = dataset_rows.dataset_id(db, dataset)
        progress.stage("checking guardrail rules", example_rows.count_examples(db, dataset_id, ExampleFilter()))
        return run_rules(rules, example_rows.iter_examples(db, dataset_id), progress=progress)


def rules_fingerprint(rules: list[GuardrailRule]) -> str:
    """Return a short digest of rules as defined now, so a kept result of other rules (an id reused, a pattern edited) is not shown as theirs."""
    payload = orjson.dumps([r.model_dump(mode="json", exclude={"enabled"}) for r in sorted(rules, key=lambda r: r.id or 0)])
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)
