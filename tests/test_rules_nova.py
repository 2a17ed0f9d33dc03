"""Amazon Nova on Bedrock: every rule with a record (or dataset) that breaks it and one that narrowly passes.

The edges follow AWS's sample validator (custom-models/bedrock-fine-tuning/nova/understanding/dataset_validation/
nova_ft_dataset_validator.py): reserved tokens as case-sensitive substrings of every text block, exact lower-case
roles in the order check, raw text length 0 as empty, 10 images per message, 8 to 20,000 records; and the Nova
docs where they are stricter (one video per record, one media kind per dataset, Nova 2's formats).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.rule_cases import Dataset, Findings, RuleCase, assert_breaks, assert_passes, valid_record
from tests.service_cases import file_report, service_cases
from workbench.domain.validation import validate_records
from workbench.domain.validation.converse import check_nova_file_name
from workbench.domain.validation.models import Finding, RecordRef

T = "bedrock-nova"
MICRO, LITE = "amazon.nova-micro-v1:0:128k", "amazon.nova-lite-v1:0:300k"
NOVA2 = "amazon.nova-2-lite-v1:0:256k"


def nm(role: Any, *items: Any) -> dict[str, Any]:
    return {"role": role, "content": list(items)}


def text(value: Any) -> dict[str, Any]:
    return {"text": value}


U, A = nm("user", text("Hi")), nm("assistant", text("Hello."))


def rec(*messages: Any, **top: Any) -> dict[str, Any]:
    """A Nova record with a system prompt; top-level keys given override or add to it."""
    return {"schemaVersion": "bedrock-conversation-2024", "system": [text("You are terse.")], "messages": list(messages),
            **top}


GOOD = rec(U, A)


def media(kind: str = "image", uri: str = "s3://ft-bucket/media/cat_1.png", fmt: str = "png") -> dict[str, Any]:
    return {kind: {"format": fmt, "source": {"s3Location": {"uri": uri}}}}


def video(fmt: str = "mp4") -> dict[str, Any]:
    return media("video", "s3://ft-bucket/media/clip.mp4", fmt)


def asks(*items: Any) -> dict[str, Any]:
    """A record whose user turn carries `items` after its text."""
    return rec(nm("user", text("What is this?"), *items), A)


def alike(record: dict[str, Any], n: int = 8) -> Dataset:
    """A dataset of one record repeated: media records pass only among records of their own kind."""
    return Dataset([record] * n)


CONFIG = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}


def use(name: str = "lookup") -> dict[str, Any]:
    return {"toolUse": {"toolUseId": "t1", "name": name, "input": {"q": "x"}}}


def answer(tool_use_id: str = "t1") -> dict[str, Any]:
    return {"toolResult": {"toolUseId": tool_use_id, "content": [{"json": {"ok": True}}]}}


def tools(call: dict[str, Any], result: dict[str, Any], user_call: bool = False, **top: Any) -> dict[str, Any]:
    """A record with one tool exchange: the call (in an assistant turn, or a user turn) and its result."""
    turns = [nm("user", text("Look it up."), call), A] if user_call else [U, nm("assistant", call), nm("user", result), A]
    return rec(*turns, **{"toolConfig": CONFIG, **top})


def named(name: str) -> Findings:
    return Findings(lambda: check_nova_file_name(name))


def uploaded_as(name: str) -> Findings:
    """The file check a job's upload goes through, on a valid Nova file saved under `name`."""
    def run() -> list[Finding]:
        report = file_report(T, orjson.dumps(GOOD), name)
        return [*report.errors, *report.warnings]

    return Findings(run)


def validation_split(model: str) -> Findings:
    def run() -> list[Finding]:
        report = validate_records([(RecordRef(source_line=1), GOOD)], T, split="validation", base_model=model)
        return [*report.errors, *report.warnings]

    return Findings(run)


def case(rule: str, breaks: Any, passes: Any, why: str, base_model: str | None = None) -> RuleCase:
    return RuleCase(target=T, rule=f"nova.{rule}", breaks=breaks, passes=passes, why=why, base_model=base_model)


REASONING = {"reasoningContent": {"reasoningText": {"text": "Greet back."}}}

CASES: list[RuleCase] = [
    # The file and the dataset.
    case("jsonl-file", named("train.json"), named("train.jsonl"), "'.json' vs '.jsonl'"),
    case("jsonl-file", named("train.JSONL"), named("data/train.jsonl"), "endswith is case-sensitive"),
    case("file-name-chars", named("my train.jsonl"), named("data/my_train-2.v1.jsonl"), "a space vs _ - . /"),
    case("jsonl-file", uploaded_as("train.json"), uploaded_as("train.jsonl"), "the file check: '.json' vs '.jsonl'"),
    case("file-name-chars", uploaded_as("my train.jsonl"), uploaded_as("my_train.jsonl"), "the file check: ' ' vs '_'"),
    case("json-lines", [GOOD], GOOD, "a list holding the object vs the object"),
    case("record-count", Dataset([GOOD] * 7), Dataset([GOOD] * 8), "7 vs 8 records"),
    case("record-count", Dataset([GOOD] * 20_001), Dataset([GOOD] * 20_000), "20,001 vs 20,000 records"),
    case("recommended-count", Dataset([GOOD] * 99), Dataset([GOOD] * 100), "99 vs 100 records"),
    # Record shape, roles and turns.
    case("record-shape", rec(U, A, schemaVersion=2024), rec(U, A, schemaVersion="any string"), "schemaVersion a number"),
    case("record-shape", rec(U, A, system="Be nice"), rec(U, A, system=[text("")]), "system a string vs [{text: ''}]"),
    case("record-shape", rec(nm("user", {}), A), rec(nm("user", text("x")), A), "an item with none of text/image/video"),
    case("record-shape", rec(nm("user", text(5)), A), rec(nm("user", text("5")), A), "text a number vs a string"),
    case("record-shape", rec(U, A) | {"messages": None}, rec(U, A), "no messages list"),
    case("record-shape", rec({"role": "user", "content": "Hi"}, A), GOOD, "content a string, not a list"),
    case("unrecognized-keys", rec(U, A, metadata={"id": 1}), rec(U, A, schemaVersion="x"), "metadata vs schemaVersion"),
    case("roles", rec(nm("User", text("Hi")), A), GOOD, "'User' vs 'user'"),
    case("roles", rec(U, nm("Assistant", text("Hello."))), GOOD, "'Assistant' vs 'assistant'"),
    case("roles", rec(nm("system", text("Be nice")), U, A), GOOD, "a system turn in messages"),
    case("min-messages", rec(U), rec(U, A), "1 vs 2 messages"),
    case("turn-order", rec(A, U, A), rec(U, A, U, A), "first assistant vs alternating"),
    case("turn-order", rec(U, U, A), rec(U, A, U, A), "two user turns in a row"),
    case("last-assistant", rec(U, A, U), rec(U, A), "ends with user vs assistant"),
    case("empty-text", rec(nm("user", text("")), A), rec(nm("user", text(""), text("x")), A), "total length 0 vs 1"),
    case("empty-text", rec(U, nm("assistant")), rec(U, nm("assistant", text(" "))), "empty list vs whitespace"),
    case("blank-text", rec(U, nm("assistant", text(" \n "))), rec(U, nm("assistant", text(" . "))), "whitespace vs '.'"),
    # Reserved tokens: case-sensitive substrings of every text block.
    case("reserved-tokens", rec(U, nm("assistant", text("Thought: easy"))),
         rec(U, nm("assistant", text("Thought about it: easy"))), "assistant 'Thought:' vs 'Thought about it:'"),
    case("reserved-tokens", rec(nm("user", text("User: hi")), A), rec(nm("user", text("user: hi")), A),
         "'User:' vs 'user:'"),
    case("reserved-tokens", rec(U, nm("assistant", text("Assistant: hi"))), rec(U, nm("assistant", text("assistant: hi"))),
         "assistant 'Assistant:' vs 'assistant:'"),
    case("reserved-tokens", rec(U, A, system=[text("Stop at [EOS]")]), rec(U, A, system=[text("Stop at [EOS ]")]),
         "system '[EOS]' vs '[EOS ]'"),
    case("reserved-tokens", rec(nm("user", text("See <video>")), A), rec(nm("user", text("See <Video>")), A),
         "'<video>' vs '<Video>'"),
    case("reserved-tokens", rec(U, nm("assistant", text("BOT: yes"))), rec(U, nm("assistant", text("BOT : yes"))),
         "'BOT:' vs 'BOT :'"),
    # Media.
    case("media-user-only", rec(U, nm("assistant", text("Look"), media())), alike(asks(media())), "assistant vs user",
         base_model=LITE),
    case("micro-no-media", asks(media()), GOOD, "an image vs text only", base_model=MICRO),
    case("media-model-unknown", alike(asks(media())), alike(GOOD), "images vs text, no model chosen"),
    case("one-video", asks(video(), video()), alike(asks(video())), "2 videos vs 1", base_model=LITE),
    case("one-video", rec(nm("user", text("a"), video()), A, nm("user", text("b"), video()), A),
         alike(rec(nm("user", text("a"), video()), A, nm("user", text("b")), A)),
         "2 videos in 2 messages (docs: per record)", base_model=LITE),
    case("no-image-and-video", asks(media(), video()), alike(asks(media(), media())), "image + video vs 2 images",
         base_model=LITE),
    case("max-images", asks(*[media()] * 11), alike(asks(*[media()] * 10)), "11 vs 10 images", base_model=LITE),
    case("max-images-record", alike(rec(nm("user", *[media()] * 6), A, nm("user", *[media()] * 5), A)),
         alike(rec(nm("user", *[media()] * 5), A, nm("user", *[media()] * 5), A)), "11 vs 10 images in 2 messages",
         base_model=LITE),
    case("media-shape", asks({"image": {"format": "png"}}), alike(asks(media())), "no source", base_model=LITE),
    case("media-shape", asks({"image": "s3://ft-bucket/a.png"}), alike(asks(media())), "a bare URI", base_model=LITE),
    case("media-format", asks(media(fmt="bmp")), alike(asks(media(fmt="JPEG"))), "bmp vs JPEG", base_model=LITE),
    case("media-format", asks(media("video", fmt="avi")), alike(asks(video("WebM"))), "avi vs WebM", base_model=LITE),
    case("nova2-media-format", asks(media(fmt="webp")), alike(asks(media(fmt="GIF"))), "Nova 2: webp vs GIF",
         base_model=NOVA2),
    case("nova2-media-format", asks(video("webm")), alike(asks(video("MKV"))), "Nova 2: webm vs MKV", base_model=NOVA2),
    case("s3-uri", asks(media(uri="https://example.com/a.png")), alike(asks(media(uri="s3://ft-bucket/a/b-c_d.e.png"))),
         "https vs s3 with _ - . /", base_model=LITE),
    case("s3-uri", asks(media(uri="s3://ft-bucket/my cat.png")), alike(asks(media(uri="s3://ft-bucket/my_cat.png"))),
         "a space vs _", base_model=LITE),
    case("same-bucket", Dataset([asks(media())] * 4 + [asks(media(uri="s3://other/cat.png"))] * 4),
         alike(asks(media())), "two buckets vs one", base_model=LITE),
    case("homogeneous-media", Dataset([GOOD] * 4 + [asks(media())] * 4), alike(asks(media())),
         "text and image records vs image records only", base_model=LITE),
    # Nova 2, and tool use.
    case("reasoning-assistant-only", rec(nm("user", text("Hi"), REASONING), A),
         rec(U, nm("assistant", REASONING, text("Hello."))), "on a user turn vs an assistant turn", base_model=NOVA2),
    case("nova1-content-blocks", rec(U, nm("assistant", REASONING, text("Hello."))),
         rec(U, nm("assistant", {"text": "Hello.", **REASONING})), "reasoning alone vs beside text", base_model=LITE),
    case("nova1-content-blocks", rec(U, nm("assistant", REASONING, text("Hello."))),
         rec(U, nm("assistant", {"text": "Hello.", **REASONING})), "no model chosen: the default, Lite, is Nova 1"),
    case("validation-ignored", validation_split(NOVA2), validation_split(LITE), "Nova 2 vs Nova Lite"),
    # Tool blocks alone in a content item are Nova 2 shapes (Nova 1, the default Lite included, refuses them).
    case("tool-use-caution", tools(use(), answer()), rec(U, A, toolConfig=CONFIG), "a toolUse vs a toolConfig alone",
         base_model=NOVA2),
    case("tool-config", rec(U, A, toolConfig={"tools": [{"toolSpec": {"name": "lookup"}}]}), rec(U, A, toolConfig=CONFIG),
         "no inputSchema", base_model=NOVA2),
    case("tool-blocks", tools(use(), answer(), user_call=True), tools(use(), answer()), "toolUse in a user turn",
         base_model=NOVA2),
    case("tool-blocks", tools({"toolUse": {"toolUseId": "t1", "name": "lookup", "input": '{"q": 1}'}}, answer()),
         tools(use(), answer()), "input a JSON string vs an object", base_model=NOVA2),
    case("tool-result-call", tools(use(), answer("t2")), tools(use(), answer("t1")), "an unknown toolUseId",
         base_model=NOVA2),
    case("unknown-tool", tools(use("search"), answer()), tools(use("lookup"), answer()), "an undeclared tool",
         base_model=NOVA2),
    case("nova1-content-blocks", tools(use(), answer()), tools({"text": "Looking.", **use()}, answer() | text("ok")),
         "no model chosen (the default, Lite, is Nova 1): toolUse alone vs beside text"),
    # A null text, image or video is absent, as the validator's Optional fields read it.
    case("record-shape", rec(nm("user", text(None)), A), alike(rec(nm("user", {"text": None, **media()}), A)),
         "text null alone vs null beside an image", base_model=LITE),
    case("media-user-only", rec(U, nm("assistant", text("Look"), media())),
         rec(U, nm("assistant", {"text": "Look", "image": None})), "an image vs image null", base_model=LITE),
    case("micro-no-media", asks(media()), rec(nm("user", {"text": "Hi", "image": None, "video": None}), A),
         "an image vs image and video null", base_model=MICRO),
    case("no-image-and-video", asks(media(), video()), alike(asks(media(), {"text": "and", "video": None})),
         "image + video vs image + video null", base_model=LITE),
]

CASES += service_cases(T, "nova.json-lines", "nova.conversion-loss")  # invalid_json, conversion_loss


def test_padding_record_is_valid():
    assert valid_record(T)["messages"][0]["role"] == "user"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_breaks(case):
    assert_breaks(case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_passes(case):
    assert_passes(case)


def test_file_check_names_the_rule_of_a_refused_file_name():
    """A job's upload is checked by validate_file_records: a name Nova refuses is an error naming its rule."""
    report = file_report(T, orjson.dumps(GOOD), "my train.json")
    assert not report.ok
    named = {f.code: f.rule for f in report.errors}
    assert named == {"file_not_jsonl": "nova.jsonl-file", "invalid_file_name": "nova.file-name-chars"}
    assert report.counts_by_code["file_not_jsonl"] == 1 and report.error_count == 2
    assert file_report("bedrock-llama32", orjson.dumps(GOOD), "my train.json").ok  # Llama's validator has no such rule


def _messages(record: dict[str, Any], base_model: str | None = None) -> list[str]:
    report = validate_records([(RecordRef(source_line=1), record)], T, base_model=base_model)
    return [f.message for f in report.errors if f.source_line == 1]


def test_messages_say_what_to_change():
    """A refused record's message names the change: the system item's shape, another model, the default model."""
    assert any('write it as {"text": "..."}, or remove it' in m for m in _messages(rec(U, A, system=[{}])))
    assert any("choose Nova Lite or Nova Pro" in m for m in _messages(asks(media()), MICRO))
    assert any("with no base model chosen, the default amazon.nova-lite" in m and "choose a Nova 2 base model" in m
               for m in _messages(rec(U, nm("assistant", REASONING, text("Hello.")))))


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr + proc.stdout
    return proc


def test_export_warns_when_bedrock_would_refuse_the_file_name(tmp_path: Path) -> None:
    """Export only warns (the file may be renamed before upload); the rule id says which rule it breaks."""
    db, data = tmp_path / "cli.db", tmp_path / "data.jsonl"
    data.write_bytes(b"".join(orjson.dumps(valid_record(T) | {"system": [text(f"Rule {i}.")]}) + b"\n" for i in range(3)))
    _cli(db, "datasets", "import", str(data), "--name", "qa", "--json")

    bad = _cli(db, "datasets", "export", "qa", "--format", "bedrock-nova", "--out", str(tmp_path / "my train.json"), "--json")
    warned = orjson.loads(bad.stdout)
    assert warned["ok"] is True and warned["written"] == 3 and (tmp_path / "my train.json").exists()
    assert [(w["code"], w["rule"], w["severity"]) for w in warned["warnings"]] == [
        ("file_not_jsonl", "nova.jsonl-file", "error"), ("invalid_file_name", "nova.file-name-chars", "error")]
    human = _cli(db, "datasets", "export", "qa", "--format", "bedrock-nova", "--out", str(tmp_path / "my train.json"))
    assert "warning (nova.jsonl-file, before uploading to Bedrock): The file is named 'my train.json'" in human.stderr
    assert "nova.file-name-chars" in human.stderr

    good = _cli(db, "datasets", "export", "qa", "--format", "bedrock-nova", "--out", str(tmp_path / "train.jsonl"), "--json")
    assert orjson.loads(good.stdout)["warnings"] == []
    other = _cli(db, "datasets", "export", "qa", "--format", "openai", "--out", str(tmp_path / "my train.json"), "--json")
    assert orjson.loads(other.stdout)["warnings"] == []  # only Nova's rules name the file
