"""The rules checked for Meta Llama 3.1 and 3.2 on Bedrock, one per check of AWS's sample validator, with sources.

AWS's validator (`meta-llama/dataset_validation/dataset_validation.py`, its `constants.py` and `exceptions/`)
fails a file over MAX_TRAIN_RECORDS (10,000) or MAX_VALIDATION_RECORDS (1,000) lines, and a row that is not
JSON, lacks a key it reads (MissingKeyException) or is not the type it indexes (InvalidTypeException). For every
row, 3.1 included, it fails a `system` with more than one element; for 3.1 rows it only looks `prompt` and
`completion` up; for 3.2 rows it requires `messages`, each message's `role` (user or assistant) and `content`,
and in each content item `text`, or `image.source.s3Location.uri` outside assistant turns. It checks no turn
order, no types beyond indexing, no emptiness and no minimum count. Its README lists what it leaves to the
service: image formats (png, jpeg, gif, webp), and at most 16K input tokens per row. Rules marked SERVICE
follow those documents where the service is stricter than the script; rules marked OURS are the workbench's.
Nova's rules that the shared Converse checker knows (reserved tokens, media in one bucket, one media kind per
dataset, URI characters, video) are not Llama's and are not applied to Llama 3.2.
"""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

_V = "workbench.domain.validation"
_PC = f"{_V}.prompt_completion"
_CV = f"{_V}.converse"


def _json_object(prefix: str) -> Rule:
    return R(
        id=f"{prefix}.json-object", summary="Each line is one JSON object.", codes=("data_type", "invalid_json"),
        source=src.LLAMA_VALIDATOR, anchor="main(): json.loads(); InvalidTypeException", check=f"{_V}.dataset.validate_records",
        note="The validator fails a line that is not JSON, and a JSON value that is not an object when it indexes "
             "it. " "The file check (workbench.services.validating.validate_file_records, run on a job's exported file "
             "before upload) reads the file as the validator's loader does, UTF-8 text with json.loads per line, and reports as "
             "invalid_json, with the line and what to change: a line that is not JSON, a UTF-8 byte-order mark, a blank "
             "or whitespace-only line (anywhere, a trailing one too; one final newline is fine), a JSON array file, "
             "UTF-16 and gzip. Stricter than the validator in one place: NaN, Infinity and lone-surrogate escapes (\\ud800) "
             "pass Python's json.loads but are refused here, since Bedrock parses strict JSON, which has none of them.",
    )


def _conversion_loss(prefix: str, shape: str, source: str, anchor: str, example: str) -> Rule:
    return R(
        id=f"{prefix}.conversion-loss",
        summary=f"What the {shape} record cannot hold is dropped, and the model will not see it (advice).",
        codes=("conversion_loss",), severity=W, origin=OURS, source=source, anchor=anchor,
        check="workbench.services.validating.validate_dataset",
        note=f"Checked when a stored dataset is rendered into the {shape} format (a file already in it has nothing "
             f"to lose). Each finding names the field: {example}.",
    )


def _record_count(prefix: str) -> Rule:
    return R(
        id=f"{prefix}.record-count", summary="At most 10,000 training and 1,000 validation records.",
        codes=("too_many_examples",), source=src.LLAMA_VALIDATOR,
        anchor="constants.py MAX_TRAIN_RECORDS = 10000, MAX_VALIDATION_RECORDS = 1000; validate_record_count()",
        check=f"{_V}.dataset._dataset_findings",
        note="The validator fails `count > MAX`, so exactly 10,000 (1,000) passes. It counts lines, blank ones "
             "included; we count records (a blank line is an import error before this).",
    )


def _at_least_one(prefix: str) -> Rule:
    return R(
        id=f"{prefix}.at-least-one", summary="At least one record.", codes=("too_few_examples",), origin=OURS,
        source=src.BEDROCK_TEXT_DATA, anchor="Prepare data for fine-tuning: a training dataset is required",
        check=f"{_V}.dataset._dataset_findings",
        note="The validator passes an empty file; a job with no records trains nothing, so we make it an error.",
    )


def _token_limit(prefix: str, what: str) -> Rule:
    return R(
        id=f"{prefix}.token-limit", summary="At most 16,000 tokens per record.", codes=("too_many_tokens",),
        origin=SERVICE, source=src.LLAMA_VALIDATOR_README,
        anchor='"Limitations Not Validated by the Script": input token length of each dataset row <= 16K',
        check=f"{_V}.dataset.validate_records",
        note=f"The script does not check it; its README states it. We count {what} with cl100k_base, a proxy for "
             "Llama 3's tokenizer, against 16,000 (the stricter reading of '16K').",
    )


def _extra_keys(prefix: str, where: str) -> Rule:
    return R(
        id=f"{prefix}.extra-keys", summary=f"Keys other than {where} are not read (warning).",
        codes=("unrecognized_key",), severity=W, origin=OURS, source=src.LLAMA_VALIDATOR,
        anchor="validate_prompt_completion(), validate_converse(): only the keys they index are read",
        check=f"{_V}.shape._check_keys",
        note="The validator ignores other keys; we warn so data meant for training (a system prompt, metadata) is "
             "not lost without notice.",
    )


LLAMA31 = (
    _json_object("llama31"),
    R(id="llama31.required-keys", summary="Every record has `prompt` and `completion`.", codes=("missing_key",),
      source=src.LLAMA_VALIDATOR, anchor="validate_prompt_completion(): row[Keys.PROMPT], row[Keys.COMPLETION]",
      check=f"{_PC}._check_prompt_completion",
      note="A chat record (`messages`) is told to export as prompt/completion."),
    R(id="llama31.string-values", summary="`prompt` and `completion` are strings.", codes=("invalid_type",),
      origin=SERVICE, source=src.BEDROCK_TEXT_DATA, anchor='{"prompt": "...", "completion": "..."}',
      check=f"{_PC}._check_prompt_completion",
      note="Stricter than the validator, which only looks the keys up (a number or null passes it); Bedrock's "
           "format page defines both as text, and we follow it."),
    R(id="llama31.no-system", summary="No top-level `system`: put the system prompt in the prompt.",
      codes=("forbidden_key",), source=src.LLAMA_VALIDATOR,
      anchor="validate_system_prompt(): len(row[Keys.SYSTEM]) > 1 (run for prompt/completion rows too)",
      check=f"{_PC}._check_system",
      note="The validator fails a `system` whose len() is over 1 (a string counts its characters, so any real "
           "prompt) or that has none (null, a number). A `system` of at most one element passes it and is then "
           "ignored: llama31.extra-keys warns about that one."),
    _extra_keys("llama31", "`prompt` and `completion`"),
    R(id="llama31.completion-text", summary="The completion has text (not empty or only whitespace).",
      codes=("empty_content",), origin=OURS, source=src.BEDROCK_TEXT_DATA, anchor="completion: the expected output",
      check=f"{_PC}._check_text",
      note="The validator accepts an empty completion. It is an error here: the completion is what the model "
           "learns to write, so such a record teaches it to answer with nothing."),
    R(id="llama31.prompt-text", summary="The prompt has text (warning).", codes=("empty_content",), severity=W,
      origin=OURS, source=src.BEDROCK_TEXT_DATA, anchor="prompt: the input", check=f"{_PC}._check_text",
      note="The validator accepts an empty prompt; the model then learns the completion with no context."),
    R(id="llama31.no-tools", summary="No tool use: a record is one prompt string and one completion string.",
      codes=("tool_use_not_supported",), origin=OURS, source=src.LLAMA_MODELS_REGISTRY,
      anchor="InputType.PROMPT_COMPLETION (Llama 3.1 8B, 70B)", check=f"{_V}.tools._reject_tool_use",
      note="The validator ignores tool fields like any other key. An error here: the definitions would be dropped "
           "silently while the completions still hold the calls, so the model learns to call tools it never saw."),
    _record_count("llama31"),
    _at_least_one("llama31"),
    _token_limit("llama31", "prompt plus completion"),
    _conversion_loss("llama31", "prompt/completion", src.BEDROCK_TEXT_DATA, '{"prompt": "...", "completion": "..."}',
                     "a multi-turn chat flattened into one prompt, a system prompt folded into it, an image"),
)


LLAMA32 = (
    _json_object("llama32"),
    R(id="llama32.messages-list", summary="`messages` is a non-empty list.", codes=("missing_messages_list",),
      origin=OURS, source=src.LLAMA_VALIDATOR, anchor="validate_converse(): for message in row[Keys.MESSAGES]",
      check=f"{_V}.shape._messages",
      note="Ours, an error: the validator fails a missing or null `messages` (KeyError, TypeError) but iterates "
           "whatever is there, so an empty list, {} or '' passes it with nothing read. Such a record holds no "
           "conversation, so the job could train on nothing from it; we refuse every `messages` that is not a "
           "non-empty list."),
    R(id="llama32.required-keys",
      summary="Each message has `role` and `content`; each content item has `text` or `image`.",
      codes=("missing_key",), source=src.LLAMA_VALIDATOR,
      anchor="validate_converse(): message[Keys.ROLE], message[Keys.CONTENT], content[Keys.TEXT]; MissingKeyException",
      check=f"{_CV}._check_converse",
      note="Stricter than the validator in one place: a lone `system` item without `text` (it reads system[0].text "
           "only when there are two or more)."),
    R(id="llama32.types", summary="`system` and each `content` are lists of objects; `text` is a string "
      "(`schemaVersion` is not read).",
      codes=("invalid_type",), source=src.LLAMA_VALIDATOR,
      anchor="validate_system_prompt(), validate_converse(): InvalidTypeException", check=f"{_CV}._check_converse",
      note="The validator fails what it cannot index (content as a string, system as null). Where it does not "
           "index (a one-element system, the value of text, an empty content string) we follow the Converse "
           "shape AWS documents, so those are errors too. `schemaVersion` is never read by the validator, so any "
           "value (a number, null) passes here too; Nova's rules check it."),
    R(id="llama32.system-items", summary="`system` holds at most one element.", codes=("too_many_system_items",),
      source=src.LLAMA_VALIDATOR, anchor="validate_system_prompt(): len(row[Keys.SYSTEM]) > 1",
      check=f"{_CV}._check_converse_system", note="One element passes; two fail, as in the validator."),
    R(id="llama32.roles", summary="Roles are exactly 'user' or 'assistant' (lower case).", codes=("unrecognized_role",),
      source=src.LLAMA_VALIDATOR, anchor="constants.py Roles; validate_converse(): role not in supported_roles",
      check=f"{_V}.shape._message_role", note="A case-sensitive comparison, as in the validator: 'User' fails."),
    R(id="llama32.turn-order",
      summary="At least two messages: first user, then alternating, last assistant.",
      codes=("too_few_messages", "first_not_user", "roles_not_alternating", "last_not_assistant"), origin=SERVICE,
      source=src.BEDROCK_IMAGE_TEXT_DATA, anchor="messages array, consisting of alternating JSON objects",
      check=f"{_V}.shape._check_turns",
      note="The validator checks no order; AWS's data page describes alternating user and assistant turns, and a "
           "conversation that does not end with the assistant has no reply to learn."),
    R(id="llama32.message-text", summary="Every message has text (or, in a user turn, an image).",
      codes=("empty_content",), origin=OURS, source=src.BEDROCK_IMAGE_TEXT_DATA,
      anchor="user inputs can include both text and images, while assistant responses are always textual",
      check=f"{_CV}._check_empty_text",
      note="The validator accepts empty content and empty or blank text. An error here: an empty reply teaches "
           "the model to say nothing, and an empty question gives it nothing to answer."),
    R(id="llama32.image-in-user-turns", summary="Images only in user turns.", codes=("media_in_assistant",),
      source=src.LLAMA_VALIDATOR, anchor="validate_converse(): image in a message with role assistant",
      check=f"{_CV}._check_media"),
    R(id="llama32.image-source", summary="An image is {format, source: {s3Location: {uri}}}.", codes=("invalid_media",),
      source=src.LLAMA_VALIDATOR, anchor="validate_converse(): content[image][source][s3Location][uri]",
      check=f"{_CV}._check_media"),
    R(id="llama32.image-format", summary="Image format is png, jpeg, gif or webp.", codes=("invalid_media_format",),
      origin=SERVICE, source=src.BEDROCK_IMAGE_TEXT_DATA,
      anchor="Supported image formats for Meta Llama-3.2 11B/90B Vision Instruct: gif, jpeg, png, and webp",
      check=f"{_CV}._check_media",
      note="The validator's README lists the formats as a limit it does not check. Image size (10 MB) and "
           "dimensions (8192 px) are limits too, which we cannot check without reading the objects."),
    R(id="llama32.image-uri", summary="The image URI is an S3 object: s3://bucket/path.", codes=("invalid_media_uri",),
      origin=SERVICE, source=src.BEDROCK_IMAGE_TEXT_DATA, anchor="uri ... s3://<bucket-name>/<path-to-file>",
      check=f"{_CV}._check_llama_uri",
      note="The validator only requires the key, so a number or null passes it; the docs' URI is an s3:// string, "
           "and the service cannot read an image from anything else, so that is an error here too. Nova's rules on URI characters and one bucket per dataset are "
           "not Llama's (its docs ask only that the role may read the paths), so they are not applied."),
    R(id="llama32.image-models", summary="Images only for Llama 3.2 11B and 90B (1B and 3B are text-only).",
      codes=("media_not_supported",), origin=SERVICE, source=src.LLAMA_MODELS_REGISTRY,
      anchor="MODELS: ModelType.TEXT (1b, 3b), ModelType.MULTIMODAL (11b, 90b)", check=f"{_CV}._check_llama_media",
      note="The validator declares the model types but does not check them. With no base model chosen we check "
           "for the default, 3B."),
    R(id="llama32.many-images", summary="At most 10 images per record (warning).", codes=("too_many_images",),
      severity=W, origin=OURS, source=src.LLAMA_VALIDATOR_README, anchor="input token length of each row <= 16K",
      check=f"{_CV}._check_llama_media",
      note="No image cap is stated for Llama; Nova's limit of 10 is kept as a warning since images count toward "
           "the 16K-token row limit and we cannot count their tokens. Nova's one-kind-of-media-per-dataset rule "
           "is not applied."),
    R(id="llama32.no-video", summary="No video: Llama 3.2 trains on text and images.", codes=("video_not_supported",),
      origin=SERVICE, source=src.BEDROCK_IMAGE_TEXT_DATA,
      anchor="user inputs can include both text and images", check=f"{_CV}._check_converse_content",
      note="The validator fails a video-only content item (no `text`) and passes one beside text; Llama takes "
           "no video either way, so both are errors."),
    _extra_keys("llama32", "schemaVersion, system and messages (and role/content, text/image)"),
    R(id="llama32.no-tools",
      summary="No tool use: no toolUse or toolResult items, no top-level toolConfig, tools, functions, tool_choice "
              "or parallel_tool_calls.",
      codes=("tool_use_not_supported",), origin=OURS, source=src.BEDROCK_IMAGE_TEXT_DATA,
      anchor="user inputs can include both text and images, while assistant responses are always textual",
      check=f"{_V}.tools._reject_tool_use",
      note="Ours, an error: the validator fails a toolUse or toolResult item (it has no `text`) but ignores the "
           "top-level keys. Llama 3.2 fine-tuning cannot train on tool use: the definitions would be dropped while "
           "the turns still answer from tool results, so the model would learn calls and answers it never saw."),
    _record_count("llama32"),
    _at_least_one("llama32"),
    _token_limit("llama32", "the text of system and messages (images are not counted)"),
    _conversion_loss("llama32", "Converse", src.BEDROCK_IMAGE_TEXT_DATA, "schemaVersion, system, messages",
                     "a training weight, a speaker name, an image given by URL"),
)
