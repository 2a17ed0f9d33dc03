"""Every Llama 3.1 and 3.2 rule: a record (or dataset) that breaks it and one that narrowly passes.

The rules follow AWS's sample validator (aws-samples/amazon-bedrock-samples, custom-models/bedrock-fine-tuning/
meta-llama/dataset_validation/dataset_validation.py), its README and Bedrock's data pages; see
workbench/domain/catalogue/rules/llama.py for each rule's source and where we differ.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.rule_cases import Dataset, RuleCase, assert_breaks, assert_passes
from tests.service_cases import service_cases
from workbench.domain.validation import RecordRef, validate_records

L31, L32 = "bedrock-llama", "bedrock-llama32"
VISION = "meta.llama3-2-11b-instruct-v1:0:128k"
TEXT_ONLY = "meta.llama3-2-3b-instruct-v1:0:128k"


def pc(**kw: Any) -> dict[str, Any]:
    return {"prompt": "Hi", "completion": "Hello.", **kw}


def text(value: Any) -> dict[str, Any]:
    return {"text": value}


def image(fmt: str = "png", uri: str | None = "s3://bucket/img/a.png") -> dict[str, Any]:
    location = {"uri": uri} if uri is not None else {}
    return {"image": {"format": fmt, "source": {"s3Location": location}}}


def msg(role: Any, *content: Any) -> dict[str, Any]:
    return {"role": role, "content": list(content)}


U, A = msg("user", text("Hi")), msg("assistant", text("Hello."))


def conv(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"schemaVersion": "bedrock-conversation-2024", "messages": list(messages), **top}


def seen(user: dict[str, Any]) -> dict[str, Any]:
    return conv(user, A)


CASES: list[RuleCase] = [
    # --- Llama 3.1: prompt/completion ---------------------------------------------------------------
    RuleCase(L31, "llama31.json-object", ["Hi", "Hello."], pc(), "a list vs an object"),
    RuleCase(L31, "llama31.required-keys", {"completion": "Hello."}, pc(prompt=""), "no prompt vs empty prompt"),
    RuleCase(L31, "llama31.required-keys", {"prompt": "Hi"}, pc(completion="x"), "no completion"),
    RuleCase(L31, "llama31.string-values", pc(completion=5), pc(completion="5"), "number vs digit string"),
    RuleCase(L31, "llama31.string-values", pc(prompt=None), pc(prompt="null"), "null vs 'null'"),
    RuleCase(L31, "llama31.no-system", pc(system="Be"), pc(system="B"), "two characters vs one"),
    RuleCase(L31, "llama31.no-system", pc(system=[text("a"), text("b")]), pc(system=[text("a")]), "two elements vs one"),
    RuleCase(L31, "llama31.no-system", pc(system=None), pc(system=[]), "null vs empty list"),
    RuleCase(L31, "llama31.extra-keys", pc(source="faq"), pc(), "an extra key"),
    RuleCase(L31, "llama31.extra-keys", pc(system="B"), pc(), "a one-character system the validator lets through"),
    RuleCase(L31, "llama31.completion-text", pc(completion=" \n"), pc(completion=" x"), "blank vs one letter"),
    RuleCase(L31, "llama31.prompt-text", pc(prompt=""), pc(prompt=" x"), "empty vs one letter"),
    RuleCase(L31, "llama31.no-tools", pc(tools=[{"type": "function", "function": {"name": "f"}}]), pc(tool="f"),
             "tools vs a plain key named tool"),
    RuleCase(L31, "llama31.record-count", Dataset([pc()] * 10_001), Dataset([pc()] * 10_000), "10,001 vs 10,000"),
    RuleCase(L31, "llama31.record-count", Dataset([pc()] * 1_001), Dataset([pc()] * 1_000), "validation 1,001 vs 1,000",
             split="validation"),
    RuleCase(L31, "llama31.at-least-one", Dataset([]), Dataset([pc()]), "0 vs 1 record"),
    RuleCase(L31, "llama31.token-limit", pc(prompt="word " * 16_100), pc(prompt="word " * 15_900),
             "16,100 vs 15,900 tokens"),
    # --- Llama 3.2: Converse ------------------------------------------------------------------------
    RuleCase(L32, "llama32.json-object", "Hi", conv(U, A), "a string vs an object"),
    RuleCase(L32, "llama32.messages-list", {"schemaVersion": "bedrock-conversation-2024"}, conv(U, A), "no messages"),
    RuleCase(L32, "llama32.messages-list", conv() | {"messages": {}}, conv(U, A),
             "messages {} (the validator iterates nothing and passes it) vs a list"),
    RuleCase(L32, "llama32.messages-list", conv() | {"messages": ""}, conv(U, A), "messages '' vs a list"),
    RuleCase(L32, "llama32.required-keys", conv({"content": [text("Hi")]}, A), conv(U, A), "a message with no role"),
    RuleCase(L32, "llama32.required-keys", seen(msg("user", {"txt": "Hi"})), seen(msg("user", {"text": "Hi", "txt": 1})),
             "no text key vs text beside an extra key"),
    RuleCase(L32, "llama32.required-keys", seen(msg("user", {"reasoningContent": {}})),
             seen(msg("user", {"text": "Hi", "reasoningContent": {}})), "reasoningContent alone vs beside text"),
    RuleCase(L32, "llama32.types", seen({"role": "user", "content": "Hi"}), conv(U, A), "content as a string"),
    RuleCase(L32, "llama32.types", conv(U, A, system=None), conv(U, A, system=[]), "system null vs empty list"),
    RuleCase(L32, "llama32.types", seen(msg("user", text(5))), seen(msg("user", text("5"))), "text as a number"),
    RuleCase(L32, "llama32.types", seen(msg("user", text(5))), conv(U, A, schemaVersion=5),
             "text a number vs schemaVersion a number (the validator never reads it)"),
    RuleCase(L32, "llama32.types", conv(U, A, system=None), conv(U, A, schemaVersion=None), "system null vs schemaVersion null"),
    RuleCase(L32, "llama32.system-items", conv(U, A, system=[text("a"), text("b")]), conv(U, A, system=[text("a")]),
             "two elements vs one"),
    RuleCase(L32, "llama32.roles", conv(msg("User", text("Hi")), A), conv(U, A), "'User' vs 'user'"),
    RuleCase(L32, "llama32.roles", conv(U, msg("system", text("x")), A), conv(U, A), "a system message"),
    RuleCase(L32, "llama32.turn-order", conv(U), conv(U, A), "one message vs two"),
    RuleCase(L32, "llama32.turn-order", conv(A, U, A), conv(U, A, U, A), "assistant first"),
    RuleCase(L32, "llama32.turn-order", conv(U, U, A), conv(U, A, U, A), "two user turns in a row"),
    RuleCase(L32, "llama32.turn-order", conv(U, A, U), conv(U, A), "ends on the user"),
    RuleCase(L32, "llama32.message-text", conv(U, msg("assistant", text(" "))), conv(U, msg("assistant", text(" x"))),
             "blank vs one letter"),
    RuleCase(L32, "llama32.message-text", conv(msg("user"), A), conv(msg("user", text("?")), A), "empty content list"),
    RuleCase(L32, "llama32.image-in-user-turns", conv(U, msg("assistant", text("See"), image())),
             seen(msg("user", text("See"), image())), "image in the assistant vs the user turn", base_model=VISION),
    RuleCase(L32, "llama32.image-source", seen(msg("user", text("x"), image(uri=None))),
             seen(msg("user", text("x"), image())), "no uri", base_model=VISION),
    RuleCase(L32, "llama32.image-source", seen(msg("user", text("x"), {"image": "s3://bucket/a.png"})),
             seen(msg("user", text("x"), image())), "image as a string", base_model=VISION),
    RuleCase(L32, "llama32.image-format", seen(msg("user", text("x"), image("bmp"))),
             seen(msg("user", text("x"), image("webp"))), "bmp vs webp", base_model=VISION),
    RuleCase(L32, "llama32.image-uri", seen(msg("user", text("x"), image(uri="https://bucket/a.png"))),
             seen(msg("user", text("x"), image(uri="s3://bucket/my image+1.png"))),
             "https vs s3 with characters Nova refuses", base_model=VISION),
    RuleCase(L32, "llama32.image-uri", seen(msg("user", text("x"), {"image": {"format": "png", "source": {
             "s3Location": {"uri": 5}}}})), seen(msg("user", text("x"), image(uri="s3://bucket/5"))),
             "uri a number (the validator only looks the key up) vs an s3 string", base_model=VISION),
    RuleCase(L32, "llama32.image-uri", seen(msg("user", text("x"), image(uri="s3://bucket"))),
             seen(msg("user", text("x"), image(uri="s3://bucket/a"))), "no object key", base_model=VISION),
    RuleCase(L32, "llama32.image-models", seen(msg("user", text("x"), image())), seen(msg("user", text("x"))),
             "3B: an image vs text only (11B/90B: test_image_models_pass_for_11b_and_90b)", base_model=TEXT_ONLY),
    RuleCase(L32, "llama32.image-models", seen(msg("user", text("x"), image())), seen(msg("user", text("x"))),
             "no base model chosen: the default 3B"),
    RuleCase(L32, "llama32.many-images", seen(msg("user", text("x"), *[image()] * 11)),
             seen(msg("user", text("x"), *[image()] * 10)), "11 images vs 10", base_model=VISION),
    RuleCase(L32, "llama32.no-video", seen(msg("user", text("x"), {"video": {"format": "mp4"}})),
             seen(msg("user", text("x"), image())), "video vs image", base_model=VISION),
    RuleCase(L32, "llama32.no-video", seen(msg("user", {"text": "x", "video": {}})), seen(msg("user", text("x"))),
             "video beside text, which the validator passes", base_model=VISION),
    RuleCase(L32, "llama32.extra-keys", conv(U, A, id=7), conv(U, A), "a top-level id"),
    RuleCase(L32, "llama32.extra-keys", conv(U, msg("assistant", {"text": "x", "reasoningContent": {}})),
             conv(U, msg("assistant", text("x"))), "Nova 2's reasoningContent"),
    RuleCase(L32, "llama32.no-tools", conv(U, A, toolConfig={"tools": []}), conv(U, A, tool_config_note="none"),
             "toolConfig vs an unrelated key"),
    RuleCase(L32, "llama32.no-tools",
             conv(U, msg("assistant", {"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}),
                  msg("user", {"toolResult": {"toolUseId": "t", "content": [text("1")]}}), A),
             conv(U, msg("assistant", text("Calling f.")), msg("user", text("1")), A), "tool blocks vs text"),
    *(RuleCase(L32, "llama32.no-tools", conv(U, A, **{key: value}), conv(U, A, **{f"{key}_note": value}),
               f"top-level {key} (the validator ignores it) vs an unrelated key")
      for key, value in (("tools", [{"type": "function", "function": {"name": "f"}}]), ("functions", [{"name": "f"}]),
                         ("tool_choice", "auto"), ("parallel_tool_calls", False))),
    RuleCase(L32, "llama32.record-count", Dataset([conv(U, A)] * 10_001), Dataset([conv(U, A)] * 10_000),
             "10,001 vs 10,000"),
    RuleCase(L32, "llama32.record-count", Dataset([conv(U, A)] * 1_001), Dataset([conv(U, A)] * 1_000),
             "validation 1,001 vs 1,000", split="validation"),
    RuleCase(L32, "llama32.at-least-one", Dataset([]), Dataset([conv(U, A)]), "0 vs 1 record"),
    RuleCase(L32, "llama32.token-limit", seen(msg("user", text("word " * 16_100))),
             seen(msg("user", text("word " * 15_900))), "16,100 vs 15,900 tokens"),
]

CASES += service_cases(L31, "llama31.json-object", "llama31.conversion-loss")  # invalid_json, conversion_loss
CASES += service_cases(L32, "llama32.json-object", "llama32.conversion-loss")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_breaks(case: RuleCase) -> None:
    assert_breaks(case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_passes(case: RuleCase) -> None:
    assert_passes(case)


def test_image_models_pass_for_11b_and_90b() -> None:
    record = seen(msg("user", text("x"), image()))
    for model in (VISION, "meta.llama3-2-90b-instruct-v1:0:128k"):
        report = validate_records([(RecordRef(source_line=1), record)], L32, base_model=model)
        assert report.ok, report.errors


def test_nova_only_rules_do_not_apply_to_llama32() -> None:
    """Reserved tokens, one bucket, one media kind per dataset: Nova's validator, not Llama's."""
    records = [
        seen(msg("user", text("User: what is this? Thought: [EOS]"), image(uri="s3://one/a.png"))),
        seen(msg("user", text("x"), image(uri="s3://two/b.png"))),
        conv(U, A, system=[text("System: be terse")]),
    ]
    report = validate_records([(RecordRef(source_line=i + 1), r) for i, r in enumerate(records)], L32, base_model=VISION)
    assert [(f.code, f.severity) for f in report.errors + report.warnings] == []


def test_image_uri_messages_tell_missing_from_wrong_type() -> None:
    """A uri that is there but not text is not 'missing'; each message says what to give."""
    def errors(uri: dict[str, Any]) -> list[tuple[str, str]]:
        record = seen(msg("user", text("x"), {"image": {"format": "png", "source": {"s3Location": uri}}}))
        report = validate_records([(RecordRef(source_line=1), record)], L32, base_model=VISION)
        return [(f.code, f.message) for f in report.errors]

    [(code, message)] = errors({"uri": 5})
    assert code == "invalid_media_uri" and "is a number" in message and "missing" not in message
    assert "as a string like s3://" in message
    [(code, message)] = errors({})
    assert code == "invalid_media" and "uri is missing" in message


def test_system_item_without_text_says_what_to_change() -> None:
    report = validate_records([(RecordRef(source_line=1), conv(U, A, system=[{}]))], L32)
    [finding] = report.errors
    assert finding.code == "missing_key" and 'write it as {"text": "..."}, or remove it' in finding.message


def test_system_messages_say_what_to_change() -> None:
    report = validate_records([(RecordRef(source_line=3), pc(system="Be nice"))], L31)
    [finding] = report.errors
    assert (finding.code, finding.field, finding.source_line) == ("forbidden_key", "system", 3)
    assert "Move the system prompt into the prompt" in finding.message
