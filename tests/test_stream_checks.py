"""Validate, PII scan and scrub, and guardrails stream a dataset: exact counts, bounded samples, progress,
cancellation that writes nothing, and memory that does not grow with the dataset."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain import finding_groups, tokens
from workbench.domain import guardrails as guardrail_rules
from workbench.domain.filters import ExampleFilter
from workbench.domain.finding_groups import SAMPLE_ROWS, group_findings, group_pii
from workbench.domain.finding_groups import FindingRow as Row
from workbench.domain.guardrails import check_example
from workbench.domain.progress import Cancelled, Progress, ProgressState
from workbench.domain.validation import RecordRef, validate_records
from workbench.errors import InvalidInput
from workbench.services import cleaning, datasets, validating
from workbench.services.importing import import_path
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

REPO = Path(__file__).resolve().parent.parent


def _records(n: int, *, pii_every: int = 10, block_every: int = 7, start: int = 0) -> list[dict[str, Any]]:
    """n chats, every `pii_every`-th with an email, every `block_every`-th with a blocked phrase."""
    out = []
    for i in range(start, start + n):
        user = f"question {i} about the order"
        if i % pii_every == 0:
            user += f" mail me at user{i}@example.org"
        answer = f"answer {i}: " + ("project nightingale is late" if i % block_every == 0 else "it ships soon")
        out.append(chat(user, answer))
    return out


def _loaded(store: Store, write_jsonl: WriteJsonl, n: int, **kwargs: Any) -> Store:
    import_path(store, write_jsonl(_records(n, **kwargs)), "d")
    return store


def _rules(store: Store) -> None:
    cleaning.add_rule(store, name="codename", words="project nightingale", action="block")
    cleaning.add_rule(store, name="soon", regex=r"\bsoon\b", action="warn")


def _all_examples(store: Store) -> list[Any]:
    with store.connect() as db:
        return list(example_rows.iter_examples(db, dataset_rows.dataset_id(db, "d")))


class Recorder:
    """A Progress sink keeping every stage's name and total, and the last count reached in it."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.states: list[ProgressState] = []
        self.cancel_after = cancel_after

    def progress(self) -> Progress:
        return Progress(self.states.append, self._cancelled, every=0)

    def _cancelled(self) -> bool:
        return self.cancel_after is not None and sum(s.done for s in self.states) > self.cancel_after

    def stages(self) -> list[tuple[str, int]]:
        return list(dict.fromkeys((s.stage, s.total) for s in self.states))

    def done(self, stage: str) -> int:
        return max(s.done for s in self.states if s.stage == stage)


# ------------------------------------------------------------------------------------------ results


def test_pii_summary_counts_every_finding_with_capped_samples(store: Store, write_jsonl: WriteJsonl) -> None:
    _loaded(store, write_jsonl, 600, pii_every=2)
    summary = cleaning.pii_summary(store, "d")

    expected = group_pii(e for e in _all_examples(store) if e.pii)
    assert summary.examples_with_pii == 300 and summary.examples == 600
    assert [(g.name, g.findings, g.examples, g.samples) for g in summary.groups] == [
        (g.name, g.findings, g.examples, g.samples) for g in expected
    ]
    [email] = summary.groups
    assert (email.findings, email.examples, len(email.rows)) == (300, 300, SAMPLE_ROWS)
    assert summary.by_kind == {"email": 300}


def test_group_counts_each_example_once_when_its_findings_come_together() -> None:
    rows = [("k", None, Row(example_id=i // 3, where="system", text=str(i))) for i in range(30)]
    [group] = group_findings(rows)
    assert (group.findings, group.examples) == (30, 10)


def test_guardrails_count_every_example_and_list_a_bounded_sample(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guardrail_rules, "LISTED_EXAMPLES", 20)
    _loaded(store, write_jsonl, 350)
    _rules(store)
    report = cleaning.run_guardrails(store, "d")

    examples = _all_examples(store)
    rules = cleaning.list_rules(store)
    found = [(e, check_example(rules, e)) for e in examples]
    blocked = [e.id for e, v in found if any(x.action.value == "block" for x in v)]
    warned = [e.id for e, v in found if v and e.id not in blocked]
    assert (report.checked, report.passed) == (350, 350 - len(blocked))
    assert (report.failing_count, report.warning_count) == (len(blocked), len(warned))
    assert [f.example_id for f in report.failing] == blocked[:20] and report.failing_left_out == len(blocked) - 20
    assert [w.example_id for w in report.warnings] == warned[:20] and report.warnings_left_out == len(warned) - 20
    expected = group_findings(
        (v.rule_name, v.action.value, Row(example_id=e.id, where=v.where, text=v.text)) for e, vs in found for v in vs
    )
    assert [g.model_dump() for g in report.groups] == [g.model_dump() for g in expected]
    by_rule = {c.rule_name: c for c in report.rule_counts}
    assert all((g.findings, g.examples) == (by_rule[g.name].matches, by_rule[g.name].examples) for g in report.groups)


def test_validate_dataset_keeps_exact_counts_and_bounded_samples(
    store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch
) -> None:
    _loaded(store, write_jsonl, 300)
    whole = validating.validate_dataset(store, "d", "openai")
    monkeypatch.setattr(validating, "KEEP_PER_RECORD", 40)
    capped = validating.validate_dataset(store, "d", "openai")

    [missing] = [f for f in capped.warnings if f.code == "missing_system_message"]
    assert missing.count == 300 and len(missing.records) == 10
    assert missing.message.startswith("300 of 300 records have no system message (e.g. line 1, line 2, line 3, ...)")
    assert [f.model_dump() for f in capped.warnings] == [f.model_dump() for f in whole.warnings]
    assert (capped.error_count, capped.warning_count, capped.counts_by_code) == (
        whole.error_count, whole.warning_count, whole.counts_by_code)
    assert (capped.total_tokens, capped.max_tokens) == (whole.total_tokens, max(whole.token_counts))
    assert len(whole.token_counts) == 300 and whole.token_counts_left_out == 0
    assert len(capped.token_counts) == 40 and capped.token_counts_left_out == 260
    assert set(capped.token_counts) <= set(whole.token_counts)
    assert capped.to_json_dict()["max_tokens"] == whole.to_json_dict()["max_tokens"]


def test_validate_records_folds_repeats_into_a_count_and_ten_records() -> None:
    records = ((RecordRef(example_id=i), {"messages": [{"role": "user", "content": "hi"}]}) for i in range(120))
    report = validate_records(records, "openai", keep_per_record=5)

    folded = [f for f in [*report.errors, *report.warnings] if f.count > 1]
    assert folded and all(len(f.records) == 10 for f in folded)
    assert report.error_positions == [0, 1, 2, 3, 4] and report.error_positions_left_out == 115
    assert report.record_count == 120 and len(report.token_counts) == 5 and report.token_counts_left_out == 115


# ----------------------------------------------------------------------------------------- progress


def test_each_action_reports_its_stage_and_total(store: Store, write_jsonl: WriteJsonl) -> None:
    _loaded(store, write_jsonl, 120)
    _rules(store)
    for call, stage, total in (
        (lambda p: validating.validate_dataset(store, "d", "openai", progress=p), "checking rules", 120),
        (lambda p: validating.validate_dataset(store, "d", "openai", split="train", progress=p), "checking rules", 0),
        (lambda p: cleaning.pii_summary(store, "d", progress=p), "scanning for PII", 12),
        (lambda p: cleaning.run_guardrails(store, "d", progress=p), "checking guardrail rules", 120),
    ):
        recorder = Recorder()
        with contextlib.suppress(InvalidInput):  # an empty split is refused; its stage was still reported
            call(recorder.progress())
        assert recorder.stages() == [(stage, total)]
        assert recorder.done(stage) == total
    recorder = Recorder()
    assert cleaning.scrub_dataset(store, "d", progress=recorder.progress()) == 12
    assert recorder.stages() == [("scrubbing PII", 12)] and recorder.done("scrubbing PII") == 12


# ------------------------------------------------------------------------------------- cancellation


def _contents(store: Store) -> list[tuple[Any, ...]]:
    with store.connect() as db:
        return db.execute("SELECT id, messages, content_hash, pii FROM examples ORDER BY id").fetchall()


def test_reading_actions_stop_when_cancelled(store: Store, write_jsonl: WriteJsonl) -> None:
    _loaded(store, write_jsonl, 100)
    _rules(store)
    for call in (
        lambda p: validating.validate_dataset(store, "d", "openai", progress=p),
        lambda p: cleaning.pii_summary(store, "d", progress=p),
        lambda p: cleaning.run_guardrails(store, "d", progress=p),
    ):
        with pytest.raises(Cancelled):
            call(Recorder(cancel_after=3).progress())


def test_a_cancelled_scrub_writes_nothing(store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleaning, "SCRUB_BATCH", 5)
    _loaded(store, write_jsonl, 200)
    before = _contents(store)
    recorder = Recorder(cancel_after=12)  # past the first two batches, which were written in the transaction
    with pytest.raises(Cancelled):
        cleaning.scrub_dataset(store, "d", progress=recorder.progress())
    assert recorder.done("scrubbing PII") >= 10
    assert _contents(store) == before
    assert cleaning.pii_summary(store, "d").examples_with_pii == 20


def test_a_clash_in_a_late_batch_writes_nothing(store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleaning, "SCRUB_BATCH", 5)
    records = _records(100) + [chat("mail a@x.com", "ok"), chat("mail b@y.com", "ok")]
    import_path(store, write_jsonl(records), "d")
    before = _contents(store)
    with pytest.raises(Exception, match="would make it identical to example"):
        cleaning.scrub_dataset(store, "d")
    assert _contents(store) == before
    assert cleaning.pii_summary(store, "d").examples_with_pii == 12


def test_a_filtered_scrub_still_cleans_revisions_of_matching_examples(store: Store, write_jsonl: WriteJsonl) -> None:
    _loaded(store, write_jsonl, 30)
    first = datasets.browse(store, "d", ExampleFilter(search="question 0")).examples[0]
    assert first.id is not None and first.pii
    turns = [m.model_copy(update={"content": "clean now"}) if i == 0 else m for i, m in enumerate(first.messages)]
    datasets.edit_turns(store, first.id, None, turns)
    assert cleaning.scrub_dataset(store, "d", ExampleFilter(search="user10")) == 1  # question 10's address
    assert cleaning.scrub_dataset(store, "d") == 2  # question 0's revision, question 20's text
    assert "user0@example.org" not in str(datasets.revisions(store, first.id))


# ---------------------------------------------------------------------------------------------- CLI


def _cli(db: Path, *args: str, progress: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_PROGRESS": "1" if progress else "0"}
    return subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_cli_shows_progress_on_stderr_and_none_under_json(store: Store, write_jsonl: WriteJsonl) -> None:
    _loaded(store, write_jsonl, 50)
    _rules(store)
    commands = {
        ("datasets", "validate", "d", "--target", "openai"): "checking rules: ",
        ("datasets", "pii", "d"): "scanning for PII: ",
        ("datasets", "guardrails", "d"): "checking guardrail rules: ",
        ("datasets", "pii", "d", "--scrub"): "scrubbing PII: ",
    }
    for args, line in commands.items():
        shown = _cli(store.path, *args, progress=True)
        assert line in shown.stderr and " examples (" in shown.stderr, shown.stderr
        assert line not in shown.stdout
    for args in commands:
        quiet = _cli(store.path, "--json", *args, progress=True)
        assert quiet.stderr == "", quiet.stderr
        assert isinstance(orjson.loads(quiet.stdout), dict)


# ------------------------------------------------------------------------------------------- memory


def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every bound small, so N examples already fill it and 10N show any growth."""
    monkeypatch.setattr(example_rows, "iter_examples", functools.partial(example_rows.iter_examples, batch=50))
    monkeypatch.setattr(validating, "KEEP_PER_RECORD", 50)
    monkeypatch.setattr(guardrail_rules, "LISTED_EXAMPLES", 10)
    monkeypatch.setattr(cleaning, "SCRUB_BATCH", 20)
    monkeypatch.setattr(finding_groups, "SAMPLE_ROWS", 5)
    monkeypatch.setattr(re, "_MAXCACHE", 8)  # a scrub compiles each example's known findings; re caches 512
    monkeypatch.setattr(tokens, "_count_short", functools.lru_cache(maxsize=64)(tokens._count_short.__wrapped__))


SLACK_BYTES = 256 * 1024


def _peak(call: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def sizes(tmp_path: Path, write_jsonl: WriteJsonl) -> dict[str, Store]:
    stores = {}
    for name, n in (("warm", 20), ("small", 200), ("large", 2000)):
        stores[name] = Store(tmp_path / f"{name}.db")
        import_path(stores[name], write_jsonl(_records(n, pii_every=2)), "d")  # PII batches fill at 200 too
        _rules(stores[name])
    return stores


def test_peak_memory_does_not_grow_tenfold_with_the_dataset(
    sizes: dict[str, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_batches(monkeypatch)
    actions: dict[str, Callable[[Store], object]] = {
        "validate": lambda s: validating.validate_dataset(s, "d", "openai"),
        "pii": lambda s: cleaning.pii_summary(s, "d"),
        "guardrails": lambda s: cleaning.run_guardrails(s, "d"),
        "scrub": lambda s: cleaning.scrub_dataset(s, "d"),  # last: it changes the stores
    }
    for name, action in actions.items():
        action(sizes["warm"])  # lazy imports, the tokenizer, compiled rules
        low, high = _peak(functools.partial(action, sizes["small"])), _peak(functools.partial(action, sizes["large"]))
        # 256 KiB of slack for what is not per example (cyclic garbage awaiting the collector, lazily loaded
        # phone metadata): growth with the data would be about tenfold here, far past either bound.
        assert high <= 1.5 * low + SLACK_BYTES, f"{name}: {low:,} B at 200 examples, {high:,} B at 2,000"
