"""The rules `workbench datasets validate --target bedrock-nova` checks, one per provider check, with sources.

VALIDATOR rules are the checks of AWS's sample validator `nova_ft_dataset_validator.py` (pydantic models
ConverseDatasetSample, Message, ContentItem, SystemMessage, ImageContent, VideoContent, S3Location and
the functions beside them); each is an error where that validator fails the record or file. SERVICE rules
are what the Nova documentation states beyond it (same bucket, one kind of media per dataset, Nova 2's
reasoning content, formats and validation set, tool use); where the docs are stricter we follow them and
say so in `note`. OURS are the workbench's own checks of the Converse tool blocks and advice.
"""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS
VAL = src.NOVA_VALIDATOR
_V = "workbench.domain.validation"
_C = f"{_V}.converse"

_FILE = (
    R(id="nova.jsonl-file", summary="The dataset file's name ends in `.jsonl`.", codes=("file_not_jsonl",),
      origin=VALIDATOR, source=VAL, anchor="check_jsonl_file()", check=f"{_C}.check_nova_file_name",
      note="A rule about the file, not a record: the file check (validate_file_records, run on a job's exported "
           "files) reports it as an error. `workbench datasets export --format bedrock-nova --out PATH` only warns, "
           "since the file may be renamed before it is uploaded; the app's downloads are named '<dataset>-...-"
           "<format>.jsonl'. The test is case-sensitive, as the validator's `endswith`."),
    R(id="nova.file-name-chars", summary="The file name holds only letters, digits, '_', '-', '/' and '.'.",
      codes=("invalid_file_name",), origin=SERVICE, source=src.NOVA_DATA,
      anchor='"These file names can consist of only alphanumeric characters, underscores, hyphens, slashes, and dots"',
      check=f"{_C}.check_nova_file_name",
      note="Docs only; the validator does not check it. The file check (validate_file_records) reports it as an "
           "error; `datasets export --out PATH` only warns, since the file may be renamed before it is uploaded. "
           "The app's downloads replace every other character with '_'."),
    R(id="nova.json-lines", summary="Each line is one JSON object.", codes=("data_type", "invalid_json"),
      origin=VALIDATOR,
      source=VAL, anchor="load_jsonl_data() (json.loads per line); ConverseDatasetSample.model_validate",
      check=f"{_V}.dataset.validate_records",
      note="The file check (workbench.services.validating.validate_file_records, run on a job's exported file "
           "before upload) reads the file as the validator's loader does, UTF-8 text with json.loads per line, and reports as "
           "invalid_json, with the line and what to change: a line that is not JSON, a UTF-8 byte-order mark, a blank "
           "or whitespace-only line (anywhere, a trailing one too; one final newline is fine), a JSON array file, "
           "UTF-16 and gzip. Stricter than the validator in one place: NaN, Infinity and lone-surrogate escapes (\\ud800) "
           "pass Python's json.loads but are refused here, since Bedrock parses strict JSON, which has none of them."),
    R(id="nova.record-count", summary="8 to 20,000 training records.", codes=("too_few_examples", "too_many_examples"),
      origin=VALIDATOR, source=VAL, anchor="MODEL_TO_NUM_SAMPLES_MAP, validate_data_record_bounds()",
      check=f"{_V}.dataset._dataset_findings",
      note="The same bounds for micro, lite and pro; Nova 2 Lite is held to them too. The validator checks the one "
           "file it is given; a validation file has no documented bounds, so we ask only for one record."),
    R(id="nova.recommended-count", summary="At least 100 training records per task recommended (warning).",
      codes=("below_recommended_examples",), severity=W, origin=SERVICE, source=src.NOVA_DATA,
      anchor='"we recommend you have at least 100 samples for each task"', check=f"{_V}.dataset._dataset_findings"),
)

_SHAPE = (
    R(id="nova.record-shape",
      summary="`messages` is a list of {role, content}; `content` a list of objects, each with one of text, image "
              "or video; `schemaVersion` (optional) a string; `system` (optional) a list of {text: string}.",
      codes=("missing_messages_list", "missing_key", "invalid_type"), origin=VALIDATOR, source=VAL,
      anchor="ConverseDatasetSample, SystemMessage, Message, ContentItem.validate_model_fields()",
      check=f"{_C}._check_converse",
      note="One rule, as these checks share their codes with Llama 3.2's. We also refuse a null schemaVersion "
           "(the docs: 'can be any string value'; the validator's Optional lets null through). A null text, image or "
           "video in a content item is absent, as the validator's Optional fields read it: not a wrong type, and "
           "not media (so no media rule counts it); an item whose only keys are null has none of the three. A content item "
           "holding only reasoningContent, toolUse or toolResult counts as having content here: see "
           "nova.nova1-content-blocks and the tool rules."),
    R(id="nova.unrecognized-keys", summary="Keys Nova does not read are reported (warning).",
      codes=("unrecognized_key",), severity=W, origin=OURS, source=src.NOVA_DATA, anchor="Example dataset formats",
      check=f"{_V}.shape._check_keys",
      note="The validator's pydantic models ignore unknown keys, so the job runs; we warn because such a key "
           "(metadata, cachePoint) is dropped from training."),
    R(id="nova.roles", summary="Roles only 'user' and 'assistant', in lower case.", codes=("unrecognized_role",),
      origin=VALIDATOR, source=VAL, anchor="Message.validate_role(), check_roles_order()",
      check=f"{_V}.shape._message_role",
      note="validate_role lower-cases the role, so 'User' passes it, but check_roles_order compares it exactly to "
           "'user' and fails the record; we refuse any other spelling at once and name the two roles."),
    R(id="nova.min-messages", summary="At least two messages (a user turn and the assistant reply).",
      codes=("too_few_messages",), origin=VALIDATOR, source=VAL, anchor="check_roles_order(): len(messages) < 2",
      check=f"{_V}.shape._check_turns"),
    R(id="nova.turn-order", summary="Even-numbered messages are user, odd-numbered assistant (first user, alternating).",
      codes=("first_not_user", "roles_not_alternating"), origin=VALIDATOR, source=VAL,
      anchor="check_roles_order(): i % 2", check=f"{_V}.shape._check_turns"),
    R(id="nova.last-assistant", summary="The last message is the assistant's.", codes=("last_not_assistant",),
      origin=VALIDATOR, source=VAL, anchor="check_roles_order(): messages[-1].role", check=f"{_V}.shape._check_turns"),
    R(id="nova.empty-text", summary="A message without media has text: its text blocks are not all empty.",
      codes=("empty_content",), origin=VALIDATOR, source=VAL,
      anchor='Message.validate_content(): "Invalid content, empty text content"', check=f"{_C}._check_empty_text",
      note="We also refuse an empty content list, which the validator lets through: such a turn has nothing to "
           "train on."),
    R(id="nova.blank-text", summary="A message's text is not only whitespace (warning).", codes=("empty_content",),
      severity=W, origin=OURS, source=VAL, anchor="Message.validate_content(): total_text_length == 0",
      check=f"{_C}._check_empty_text",
      note="The validator counts raw length, so whitespace-only text passes it; we warn, as the turn teaches "
           "nothing."),
    R(id="nova.reserved-tokens",
      summary="No reserved tokens (System:, SYSTEM:, User:, USER:, Bot:, BOT:, Assistant:, ASSISTANT:, Thought:, "
              "[EOS], <image>, <video>) in any system, user or assistant text; case-sensitive.",
      codes=("reserved_token",), origin=VALIDATOR, source=VAL,
      anchor="INVALID_TOKENS_TEXT, validate_invalid_tokens(); ContentItem.validate_text, SystemMessage.validate_text",
      check=f"{_C}._check_reserved",
      note="The docs list seven of the tokens and name system and user prompts only; the validator checks every "
           "text block, the assistant's too, so we follow it: 'Thought:' in an assistant turn is an error, "
           "'Thought about it:' and 'assistant:' are not. reasoningContent text is not checked (the validator "
           "does not read it)."),
)

_MEDIA = (
    R(id="nova.media-user-only", summary="Images and video only in user turns.", codes=("media_in_assistant",),
      origin=VALIDATOR, source=VAL, anchor="Message.validate_content_rules()", check=f"{_C}._check_media"),
    R(id="nova.micro-no-media", summary="Nova Micro takes no images or video.", codes=("media_not_supported",),
      origin=VALIDATOR, source=VAL, anchor="Message.validate_content(): is_micro_model",
      check=f"{_C}._check_record_media"),
    R(id="nova.media-model-unknown", summary="Records with media need a base model chosen to check (warning).",
      codes=("media_model_unknown",), severity=W, origin=OURS, source=src.NOVA_CUSTOMIZATION,
      anchor="Nova Micro: text only", check=f"{_V}.dataset._dataset_findings",
      note="Without a base model we cannot tell whether media is accepted (Micro takes none)."),
    R(id="nova.one-video", summary="At most one video per record.", codes=("too_many_videos",), origin=VALIDATOR,
      source=VAL, anchor='Message.validate_content(): "Only one video is allowed per sample"',
      check=f"{_C}._check_record_media",
      note="The validator counts per message; the docs say 'One sample (single record in messages) can have only "
           "1 video', so we count per record."),
    R(id="nova.no-image-and-video", summary="Never images and video in one record.", codes=("mixed_media",),
      origin=VALIDATOR, source=VAL, anchor="Message.validate_content(): has_video and has_image",
      check=f"{_C}._check_record_media",
      note="The validator checks one message; the docs forbid mixing across the whole dataset (and Nova 2's across "
           "turns), so we check the record here and the dataset in nova.homogeneous-media."),
    R(id="nova.max-images", summary="At most 10 images per message.", codes=("too_many_images",), origin=VALIDATOR,
      source=VAL, anchor="MAX_NUM_IMAGES, Message.validate_content()", check=f"{_C}._check_converse_content"),
    R(id="nova.max-images-record", summary="At most 10 images per record, across its messages (warning).",
      codes=("too_many_images",), severity=W, origin=OURS, source=src.NOVA_DATA,
      anchor='"One sample (single record in messages) can have multiple images"', check=f"{_C}._check_record_media",
      note="The validator's cap is per message and the docs give no number per sample; a record under 10 per "
           "message but over 10 in all passes the validator, so this is a warning."),
    R(id="nova.media-shape", summary="Media is {format, source: {s3Location: {uri}}}.", codes=("invalid_media",),
      origin=VALIDATOR, source=VAL, anchor="ImageContent, VideoContent, Source, S3Location",
      check=f"{_C}._check_media"),
    R(id="nova.media-format",
      summary="Image format jpeg, png, gif or webp; video format mov, mkv, mp4 or webm (any case).",
      codes=("invalid_media_format",), origin=VALIDATOR, source=VAL,
      anchor="IMAGE_FORMATS, VIDEO_FORMATS; ImageContent/VideoContent.validate_format()", check=f"{_C}._check_media"),
    R(id="nova.nova2-media-format", summary="Nova 2: image format png, jpeg or gif; video mov, mkv or mp4.",
      codes=("media_format_not_supported",), origin=SERVICE, source=src.NOVA2_DATA,
      anchor='"Supported media formats"', check=f"{_C}._check_media",
      note="Stricter than the (Nova 1) validator, which also takes webp and webm; we follow the Nova 2 docs when "
           "a Nova 2 base model is chosen."),
    R(id="nova.s3-uri",
      summary="A media URI starts with s3:// and its path holds only letters, digits, '_', '-', '/' and '.'.",
      codes=("invalid_media_uri",), origin=VALIDATOR, source=VAL,
      anchor="S3Location.validate_format(), is_valid_path()", check=f"{_C}._check_media",
      note="We match the whole text after the first 's3://' and need a bucket name; the validator removes every "
           "'s3://' first and its `$` lets one trailing newline through."),
    R(id="nova.same-bucket", summary="Media objects are in the dataset's own S3 bucket.",
      codes=("media_bucket_mismatch",), origin=SERVICE, source=src.NOVA_DATA,
      anchor='"The images or videos must be in the same Amazon S3 bucket as your dataset"',
      check=f"{_V}.dataset._dataset_findings",
      note="We cannot see where the dataset will be uploaded, so we refuse media spread over more than one bucket."),
    R(id="nova.homogeneous-media", summary="One kind of record in the dataset: all text, all with images, or all with video.",
      codes=("mixed_dataset_media",), origin=SERVICE, source=src.NOVA_DATA,
      anchor='"Dataset can\'t contain different media modalities"', check=f"{_V}.dataset._dataset_findings"),
)

_NOVA2_AND_TOOLS = (
    R(id="nova.reasoning-assistant-only", summary="`reasoningContent` (Nova 2) only in assistant turns.",
      codes=("forbidden_key",), origin=SERVICE, source=src.NOVA2_DATA,
      anchor='"Assistant content – Text-only responses and reasoning content"', check=f"{_C}._check_converse_content"),
    R(id="nova.nova1-content-blocks",
      summary="Nova 1 (Micro, Lite, Pro): every content item has text, image or video; reasoningContent or tool "
              "blocks alone are Nova 2 / Converse shapes.",
      codes=("block_not_supported",), origin=VALIDATOR, source=VAL,
      anchor="ContentItem.validate_model_fields()", check=f"{_C}._check_converse_content",
      note="Checked for Nova 1 base models: the validator (written for micro, lite and pro) fails an item with none "
           "of text, image, video. With no base model chosen we check for the catalogue's default, Nova Lite (a Nova "
           "1 model), as Llama 3.2 is checked for its default; choose a Nova 2 base model to pass its shapes."),
    R(id="nova.validation-ignored", summary="Nova 2 ignores a validation set (warning).",
      codes=("validation_not_supported",), severity=W, origin=SERVICE, source=src.NOVA2_DATA,
      anchor='"Validation sets ... will not be supported during SFT training"', check=f"{_V}.dataset._dataset_findings"),
    R(id="nova.tool-use-caution", summary="Tool use might make the job fail (warning per tool block).",
      codes=("tool_use",), severity=W, origin=SERVICE, source=src.NOVA2_DATA,
      anchor='"Tool usage ... Adding tool sections might cause your job to fail"', check=f"{_C}._check_tool_block"),
    R(id="nova.tool-config", summary="`toolConfig` is {tools: [{toolSpec: {name, inputSchema: {json}}}]}.",
      codes=("invalid_tool_definition",), origin=OURS, source=src.CONVERSE_TOOL_CONFIG,
      anchor="ToolConfiguration, ToolSpecification", check=f"{_V}.tools._converse_tool_names",
      note="The Nova validator ignores toolConfig. An error because a malformed one is not the Converse shape the "
           "docs say Nova reads."),
    R(id="nova.tool-blocks",
      summary="`toolUse` {toolUseId, name, input: object} only in assistant turns; `toolResult` {toolUseId, "
              "content} only in user turns.",
      codes=("misplaced_tool_use", "invalid_tool_use", "invalid_tool_result"), origin=OURS,
      source=src.CONVERSE_TOOL_USE, anchor="ToolUseBlock, ToolResultBlock", check=f"{_V}.tools._check_converse_tool_block",
      note="The Nova validator does not read tool blocks. An error because a block out of the Converse shape "
           "cannot be read as a tool call."),
    R(id="nova.tool-result-call", summary="A `toolResult` answers an earlier `toolUse` by its toolUseId.",
      codes=("tool_result_without_call",), origin=OURS, source=src.CONVERSE_TOOL_RESULT, anchor="toolUseId",
      check=f"{_V}.tools._check_converse_tool_block",
      note="An error because a result tied to no call teaches a conversation the model can never have."),
    R(id="nova.unknown-tool", summary="A used tool is declared in `toolConfig` (warning).", codes=("unknown_tool",),
      severity=W, origin=OURS, source=src.CONVERSE_TOOL_CONFIG, anchor="ToolConfiguration.tools",
      check=f"{_V}.tools._check_converse_tool_block"),
    R(id="nova.conversion-loss",
      summary="What the Converse record cannot hold is dropped, and the model will not see it (advice).",
      codes=("conversion_loss",), severity=W, origin=OURS, source=src.NOVA_DATA,
      anchor="bedrock-conversation-2024: schemaVersion, system, messages",
      check="workbench.services.validating.validate_dataset",
      note="Checked when a stored dataset is rendered into the Converse format (a file already in it has nothing to "
           "lose). Each finding names the field: a training weight, a speaker name, an image given by URL."),
)

NOVA = (*_FILE, *_SHAPE, *_MEDIA, *_NOVA2_AND_TOOLS)
