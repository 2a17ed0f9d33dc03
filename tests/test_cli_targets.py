"""`workbench targets` and the rule each validation finding names, as a user runs them: real subprocesses."""

from __future__ import annotations

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
        ([], "name a target: workbench targets rules TARGET"),
        (["nosuch", "--markdown"], "unknown target 'nosuch'"),
    ],
)
def test_a_bad_target_is_one_json_error(db: Path, args: list[str], error: str) -> None:
    out = run(db, "targets", "rules", *args, code=1)
    assert out.keys() == {"ok", "error"} and out["ok"] is False and out["error"].startswith(error)
    assert error in cli(db, "targets", "rules", *args, code=1).stderr


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
    assert len(found) == len(report["groups"])
    for group, line in zip(report["groups"], found, strict=True):
        assert line.split()[:2] == [group["severity"], group["rule"] or group["code"]]
        assert f"({group['code']})" in line if group["rule"] else group["code"] in line
    checked = get_target("bedrock-nova").rules
    lines = human.split("Rules checked for bedrock-nova:\n", 1)[1].splitlines()[: len(checked)]
    for rule, line in zip(checked, lines, strict=True):
        assert line.strip().startswith(rule.id) and f" {rule.severity.value} " in line and f" {rule.origin.value} " in line
        assert line.endswith(f"{rule.summary} [{rule.source}]")
    assert "workbench targets rules bedrock-nova" in human


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
