"""`workbench targets` and the rule each validation finding names, as a user runs them: real subprocesses."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain.catalogue import TARGETS, RuleOrigin, Severity, get_target, target_ids
from workbench.domain.catalogue.rules_doc import render_markdown, render_target
from workbench.domain.validation import Finding, RecordRef, validate_records


def cli(db: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(db), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == code, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run(db: Path, *args: str, code: int = 0) -> dict[str, Any]:
    return orjson.loads(cli(db, *args, "--json", code=code).stdout)  # one JSON object: a stream would not parse


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def expected_rule(target: str, code: str, severity: str) -> str | None:
    """The rule id a finding of this code and severity must name: the catalogue's, or None where none lists it."""
    rule = get_target(target).rule_for(code, severity)
    return (rule.id or None) if rule is not None else None


def test_targets_list_names_every_target_with_its_rule_count(db: Path) -> None:
    listed = run(db, "targets", "list")["targets"]
    assert [t["id"] for t in listed] == target_ids()
    for row in listed:
        spec = get_target(row["id"])
        assert (row["label"], row["provider"], row["format"], row["rules"]) == (
            spec.label, spec.provider.value, spec.format.value, len(spec.rules)
        )
    human = cli(db, "targets", "list").stdout
    assert all(spec.id in human and spec.label in human for spec in TARGETS)
    assert "workbench targets rules TARGET" in human


def test_targets_rules_lists_each_rule_with_severity_origin_and_source(db: Path) -> None:
    spec = get_target("bedrock-nova")
    out = run(db, "targets", "rules", "bedrock-nova")
    assert (out["ok"], out["target"], out["label"]) == (True, "bedrock-nova", spec.label)
    assert [r["id"] for r in out["rules"]] == [r.id for r in spec.rules] and out["rules"]
    for rule in out["rules"]:
        assert {"id", "summary", "codes", "severity", "origin", "source", "anchor", "check", "note"} <= set(rule)
        assert rule["severity"] in set(Severity) and rule["origin"] in set(RuleOrigin)
        assert rule["source"].startswith("https://")

    human = cli(db, "targets", "rules", "bedrock-nova").stdout
    assert human.startswith(f"{spec.label} (--target bedrock-nova): {len(spec.rules)} rules")
    assert "error = the provider refuses" in human
    flat = " ".join(human.split())  # long summaries and notes are wrapped
    for rule in spec.rules:
        assert f"\n{rule.id or '(no id)'}  {rule.severity.value}  {rule.origin.value}\n" in human
        assert f"source:     {rule.source}" in human and " ".join(rule.summary.split()) in flat


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nosuch"], "unknown target 'nosuch'; use one of openai, "),
        (["nova.nosuch"], "unknown target 'nova.nosuch'; use one of openai, "),
        ([], "name a target: workbench targets rules TARGET"),
        (["nosuch", "--markdown"], "unknown target 'nosuch'"),
    ],
)
def test_a_bad_target_is_one_json_error(db: Path, args: list[str], error: str) -> None:
    out = run(db, "targets", "rules", *args, code=1)
    assert out.keys() == {"ok", "error"} and out["ok"] is False and out["error"].startswith(error)
    assert error in cli(db, "targets", "rules", *args, code=1).stderr


def test_an_unknown_name_says_what_a_rule_id_looks_like(db: Path) -> None:
    assert "or a rule id such as 'nova.reserved-tokens'" in run(db, "targets", "rules", "nosuch", code=1)["error"]


def test_targets_rules_finds_one_rule_by_its_id(db: Path) -> None:
    rule = next(r for r in get_target("bedrock-nova").rules if r.id == "nova.reserved-tokens")
    out = run(db, "targets", "rules", "nova.reserved-tokens")
    assert (out["target"], [r["id"] for r in out["rules"]]) == ("bedrock-nova", ["nova.reserved-tokens"])
    human = cli(db, "targets", "rules", "nova.reserved-tokens").stdout
    assert human.startswith("nova.reserved-tokens: one of Bedrock: Nova's")
    assert f"\nnova.reserved-tokens  {rule.severity.value}  {rule.origin.value}\n" in human and rule.source in human
    assert human.count("\nnova.") == 1 and "workbench targets rules bedrock-nova" in human


@pytest.mark.parametrize("prefix", sorted({r.id.split(".", 1)[0] for t in TARGETS for r in t.rules}))
def test_a_rule_id_prefix_names_its_target(db: Path, prefix: str) -> None:
    [spec] = [t for t in TARGETS if any(r.id.startswith(f"{prefix}.") for r in t.rules)]
    out = run(db, "targets", "rules", prefix)
    assert out["target"] == spec.id and len(out["rules"]) == len(spec.rules)


def test_markdown_is_the_generated_rules_page(db: Path) -> None:
    assert cli(db, "targets", "rules", "--markdown").stdout == render_markdown(TARGETS)
    assert cli(db, "targets", "rules", "openai", "--markdown").stdout == render_target(get_target("openai")) + "\n"
    assert run(db, "targets", "rules", "--markdown")["markdown"] == render_markdown(TARGETS)


def test_validate_names_the_rule_of_every_finding(db: Path, write_jsonl: WriteJsonl) -> None:
    # Five records (Nova needs 8), each with a token Nova reserves in user text.
    records = [chat(f"Question {i} [EOS]", f"Answer {i}") for i in range(5)]
    cli(db, "datasets", "import", str(write_jsonl(records)), "--name", "qa", "--json")

    report = run(db, "datasets", "validate", "qa", "--target", "bedrock-nova", code=1)
    ids = {r["id"] for r in report["rules"]}
    assert ids == {r.id for r in get_target("bedrock-nova").rules}
    assert all(r["source"].startswith("https://") and r["origin"] in set(RuleOrigin) for r in report["rules"])
    findings = [*report["errors"], *report["warnings"], *report["groups"]]
    assert findings and all("rule" in f for f in findings)
    for finding in findings:
        assert finding["rule"] == expected_rule("bedrock-nova", finding["code"], finding["severity"])
        assert finding["rule"] is None or finding["rule"] in ids
    assert any(f["rule"] for f in report["errors"]), "the record-count error breaks a rule the catalogue names"

    human = cli(db, "datasets", "validate", "qa", "--target", "bedrock-nova", code=1).stdout
    found = human.split("Rules checked for", 1)[0].splitlines()[1:]
    headers = [line for line in found if not line.startswith("    ")]
    assert len(headers) == len(report["groups"])
    for group, line in zip(report["groups"], headers, strict=True):
        assert line.split()[:2] == [group["severity"], group["rule"] or group["code"]]
        assert f"({group['code']})" in line if group["rule"] else group["code"] in line
        assert line.endswith(f"x{group['count']}")
    checked = get_target("bedrock-nova").rules
    broken = {g["rule"] for g in report["groups"]}
    rules_part = human.split("Rules checked for bedrock-nova (", 1)[1]
    with_findings, without = rules_part.split("  without findings (", 1)
    for rule in checked:
        if rule.id in broken:  # in full, with its source
            assert f"    {rule.id}  {rule.severity.value}  {rule.origin.value}\n" in with_findings
            assert rule.source in with_findings
        else:  # one compact line
            [line] = [x for x in without.splitlines() if x.split()[:1] == [rule.id]]
            assert line.split()[1:] == [rule.severity.value, rule.origin.value]
    assert "workbench targets rules bedrock-nova" in human


def test_validate_prints_each_finding_of_a_group_with_its_own_place_and_message(db: Path, write_jsonl: WriteJsonl) -> None:
    # Eight records with a different reserved token each, in different turns: one group, eight messages.
    tokens = ["Thought:", "[EOS]", "User:", "Bot:", "System:", "ASSISTANT:", "USER:", "<image>"]
    records = [chat(f"Q{i} {t}", f"A{i}") if i % 2 == 0 else chat(f"Q{i}", f"A{i} {t}") for i, t in enumerate(tokens)]
    cli(db, "datasets", "import", str(write_jsonl(records)), "--name", "nv", "--format", "openai", "--json")
    report = run(db, "datasets", "validate", "nv", "--target", "bedrock-nova", code=1)
    listed = [e for e in report["errors"] if e["code"] == "reserved_token"]
    assert len(listed) == 8

    human = cli(db, "datasets", "validate", "nv", "--target", "bedrock-nova", code=1).stdout
    after = human.split("nova.reserved-tokens (reserved_token)  x8\n", 1)[1].splitlines()
    block = list(itertools.takewhile(lambda line: line.startswith("    "), after))
    assert len(block) == 4 and block[3] == "    ... and 5 more (--json lists every one)"
    for line, finding, token in zip(block[:3], listed, tokens, strict=False):
        turn = "turn 1 (user)" if finding["source_line"] % 2 else "turn 2 (assistant)"
        assert line.startswith(f"    line {finding['source_line']} (example #{finding['example_id']}), {turn}: ")
        assert f"contains {token!r}" in line and line.endswith(finding["message"])


def test_validate_judges_record_counts_per_split_as_a_launch_does(db: Path, write_jsonl: WriteJsonl) -> None:
    records = [chat(f"Question {i}", f"Answer {i}", system="Be brief.") for i in range(36)]
    cli(db, "datasets", "import", str(write_jsonl(records)), "--name", "qa", "--json")
    assert run(db, "datasets", "validate", "qa", "--target", "bedrock-claude-haiku")["ok"] is True  # never split: 36 >= 32
    counts = run(db, "datasets", "split", "qa", "--train", "0.8", "--validation", "0.1", "--test", "0.1", "--seed", "1")
    assert counts["counts"] == {"train": 29, "validation": 4, "test": 3}

    report = run(db, "datasets", "validate", "qa", "--target", "bedrock-claude-haiku", code=1)
    assert report["record_count"] == 36  # every example's records are checked
    assert [e["message"] for e in report["errors"]] == [
        "The train split has 29 records; Bedrock: Claude 3 Haiku needs 32 to 10,000. Add 3.",
        "The validation split has 4 records; Bedrock: Claude 3 Haiku needs 32 to 1,000. Add 28.",
    ]
    human = cli(db, "datasets", "validate", "qa", "--target", "bedrock-claude-haiku", code=1).stdout
    assert human.startswith("REJECTED: 36 records for bedrock-claude-haiku, 2 errors")
    assert "    The train split has 29 records; Bedrock: Claude 3 Haiku needs 32 to 10,000. Add 3.\n" in human


def test_findings_added_to_a_built_report_name_their_rule_too() -> None:
    """Services add findings (tool use, conversion losses) after the report is built; they are named when read."""
    spec = get_target("openai")
    rule = spec.rules[0]
    report = validate_records([(RecordRef(source_line=1), chat("hi", "there"))], spec.id)
    report.errors.append(Finding(code=rule.codes[0], severity=rule.severity, message="added later"))
    report.errors.append(Finding(code="no_rule_lists_this", severity=Severity.ERROR, message="unlisted"))

    named = {f["code"]: f["rule"] for f in report.to_json_dict()["errors"]}
    assert named[rule.codes[0]] == (rule.id or None) and named["no_rule_lists_this"] is None
    groups = {g.code: g.rule for g in report.groups()}
    assert groups[rule.codes[0]] == (rule.id or None) and groups["no_rule_lists_this"] is None


def test_a_whole_dataset_validation_says_so_in_json(tmp_path: Path) -> None:
    from workbench.services import importing, validating
    from workbench.store import Store

    store = Store(tmp_path / "w.db")
    path = tmp_path / "d.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from workbench.services.splits import split_dataset

    importing.import_path(store, path, "d")
    assert validating.validate_dataset(store, "d", "openai").split == "all"
    split_dataset(store, "d", (0.5, 0.5, 0.0), seed=1)
    assert validating.validate_dataset(store, "d", "openai", split="train").split == "train"
