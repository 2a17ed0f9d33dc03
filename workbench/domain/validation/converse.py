"""The Bedrock Converse record rules: Amazon Nova, and Llama 3.2, which trains on the same shape.

Sources: https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html and
AWS's sample validators (aws-samples/amazon-bedrock-samples `custom-models/bedrock-fine-tuning/nova/
understanding/dataset_validation/nova_ft_dataset_validator.py`, `meta-llama/dataset_validation/`). The rules,
one by one, are listed in `workbench/domain/catalogue/rules/` and docs/validation-rules.md.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from workbench.domain.catalogue import Target, ToolSupport, get_target
from workbench.domain.validation.models import Finding, Severity, TargetRules
from workbench.domain.validation.shape import (
    _chat_turns,
    _check_keys,
    _check_turns,
    _Dataset,
    _kind,
    _messages,
    _objects,
    _Out,
    _show,
)
from workbench.domain.validation.tools import (
    TOOL_BLOCK_KEYS,
    TOOL_MESSAGE_KEYS,
    TOOL_ROLES,
    TOOL_TOP_KEYS,
    _check_converse_tool_block,
    _converse_tool_names,
    _ConverseTools,
    _reject_tool_use,
)

NOVA_RESERVED_TOKENS = (
    "System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:", "ASSISTANT:", "Thought:", "[EOS]",
    "<image>", "<video>",
)
_RESERVED_RE = re.compile("|".join(re.escape(t) for t in NOVA_RESERVED_TOKENS))
_MEDIA_FORMATS = {"image": ("jpeg", "png", "gif", "webp"), "video": ("mov", "mkv", "mp4", "webm")}
_S3_PATH_RE = re.compile(r"[\w\-/.]+")
_MAX_IMAGES = 10
# Nova 2 lists fewer media formats than the Nova 1 validator (nova-2-sft-data-prep, "Supported media formats").
_NOVA2_FORMATS = {"image": ("jpeg", "png", "gif"), "video": ("mov", "mkv", "mp4")}
# The base models the catalogue's Nova model rules name (workbench/domain/catalogue/bedrock.py).
_NOVA1_MODEL = re.compile(r"amazon\.nova-(micro|lite|pro)", re.IGNORECASE)
_NOVA2_MODEL = re.compile(r"amazon\.nova-2", re.IGNORECASE)
_NOVA1_KEYS = ("text", "image", "video")
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_\-/.]+")
_CONTENT_KEYS = ("text", "image", "video", "reasoningContent", "toolUse", "toolResult")
# Llama 3.2 reads text and image blocks (AWS's Llama validator); video is reported as unsupported, tool blocks as tool use.
_LLAMA32_KEYS = ("text", "image", "video", "toolUse", "toolResult")
_CONVERSE_EXAMPLE = '{"role": "user", "content": [{"text": "..."}]}'
_TEXT_OBJECT = 'it must be an object like {"text": "..."}'
_NOVA_SHAPE_HINT = ' A list of {"text": ...} objects is the Nova format.'


def _check_converse(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the Bedrock Converse rules (Nova, Llama 3.2): {text} lists, media, reserved tokens, tool blocks."""
    label = rules.label
    rejected = rules.tool_support is ToolSupport.REJECTED
    if rejected:
        _reject_tool_use(record, out, label)
        tools = _ConverseTools(None)
    else:
        tools = _ConverseTools(_converse_tool_names(record, out))
    allowed = ("schemaVersion", "system", "messages") + (() if rejected else ("toolConfig",))
    _check_keys(record, "", allowed, out, label, strict=False, skip=TOOL_TOP_KEYS if rejected else ())
    if _nova(rules) and "schemaVersion" in record and not isinstance(record["schemaVersion"], str):
        kind = _kind(record["schemaVersion"])
        out.error(
            "invalid_type", "schemaVersion",
            f"schemaVersion is {kind}; it must be a string such as 'bedrock-conversation-2024'.",
        )
    if _llama32(rules) and "system" in record and record["system"] is None:
        out.error(
            "invalid_type", "system",
            'system is null; AWS\'s Llama validator fails it. Remove the key or give [{"text": "..."}].',
        )
    tokens = _check_converse_system(record.get("system"), out, rules)
    messages = _messages(record, out, label)
    if messages is None:
        return tokens
    roles: list[str] = []
    media = {"image": 0, "video": 0, "most_in_message": 0}
    turns = _chat_turns(
        messages, roles, out, label, example=_CONVERSE_EXAMPLE, strict=False, system_home="'system' list",
        skip_keys=TOOL_MESSAGE_KEYS if rejected else (), skip_roles=TOOL_ROLES if rejected else (),
    )
    for path, role, content in turns:
        if isinstance(content, list) and content:
            tokens += _check_converse_content(content, path, role, out, rules, data, media, tools)
        elif isinstance(content, list):
            out.error(
                "empty_content", f"{path}.content",
                f'{path}.content is an empty list; add a {{"text": ...}} item.',
            )
        else:
            hint = ' Wrap the text: [{"text": "..."}].' if isinstance(content, str) else ""
            out.error(
                "invalid_type", f"{path}.content",
                f'{path}.content is {_kind(content)}; {label} takes a list of {{"text": ...}} objects.{hint}',
            )
    _check_turns(messages, roles, out, label)
    _check_record_media(media["image"], media["video"], out, rules, data, most_in_message=media["most_in_message"])
    return tokens


def _nova(rules: TargetRules) -> bool:
    """Tell Nova from Llama 3.2, which shares the record shape but not Nova's validator."""
    return rules.target == Target.BEDROCK_NOVA


def _llama32(rules: TargetRules) -> bool:
    """Llama 3.2 takes text and images only, and none of Nova's media limits (its own validator and docs)."""
    return rules.target == Target.BEDROCK_LLAMA32


def check_nova_file_name(name: str) -> list[Finding]:
    """Check a Nova training or validation file's name, which AWS checks before reading a line.

    AWS's validator refuses a name not ending in `.jsonl` (check_jsonl_file); the Nova docs allow only
    letters, digits, '_', '-', '/' and '.' in it. The workbench's own export names its downloads that way.
    """
    found: list[Finding] = []
    if not name.endswith(".jsonl"):
        found.append(Finding(
            code="file_not_jsonl", severity=Severity.ERROR,
            message=f"The file is named {name!r}; Nova takes JSON Lines files ending in '.jsonl' (lower case). Rename it.",
        ))
    base = PurePosixPath(name.replace("\\", "/")).name
    if not _FILE_NAME_RE.fullmatch(base):
        found.append(Finding(
            code="invalid_file_name", severity=Severity.ERROR,
            message=f"The file name {base!r} has characters Nova does not allow; use only letters, digits, '_', '-' "
                    "and '.' (for example replace spaces with '_').",
        ))
    return found


def _check_converse_system(system: Any, out: _Out, rules: TargetRules) -> int:
    if system is None:
        return 0
    if not isinstance(system, list):
        hint = ' Wrap it: [{"text": "..."}].' if isinstance(system, str) else ""
        out.error(
            "invalid_type", "system",
            f'system is {_kind(system)}; {rules.label} takes a list of {{"text": ...}} objects.{hint}',
        )
        return 0
    if rules.max_system_items is not None and len(system) > rules.max_system_items:
        out.error(
            "too_many_system_items", "system",
            f"system has {len(system)} elements; {rules.label} takes at most {rules.max_system_items}. Merge them.",
        )
    tokens = 0
    for path, item in _objects(system, "system", out, _TEXT_OBJECT):
        _check_keys(item, path, ("text",), out, rules.label, strict=False)
        text = item.get("text")
        if "text" not in item:
            out.error(
                "missing_key", f"{path}.text",
                f'{path} has no \'text\'; write it as {{"text": "..."}}, or remove it from system.',
            )
        elif not isinstance(text, str):
            out.error("invalid_type", f"{path}.text", f"{path}.text is {_kind(text)}; it must be a string.")
        else:
            tokens += rules.counter.count(text)
            _check_reserved(text, f"{path}.text", out, rules)
    return tokens


def _check_reserved(text: str, path: str, out: _Out, rules: TargetRules) -> None:
    """Report Nova's reserved tokens, matched as case-sensitive substrings of any text, as AWS's validator does.

    The Nova docs name system and user prompts only, but the validator rejects every text block, the
    assistant's included, so an assistant turn with 'Thought:' is an error too ('Thought about it:' is not).
    """
    if not rules.check_reserved_tokens or not (found := sorted(set(_RESERVED_RE.findall(text)))):
        return
    listed = ", ".join(repr(t) for t in found)
    out.error(
        "reserved_token", path,
        f"{path} contains {listed}, which Nova reserves in any system, user or assistant text: AWS's validator "
        "rejects the record. Rephrase it (for example 'user -' instead of 'User:', 'Reasoning -' instead of "
        "'Thought:').",
    )


def _check_converse_content(
    content: list[Any], path: str, role: str | None, out: _Out, rules: TargetRules, data: _Dataset,
    media: dict[str, int], tools: _ConverseTools,
) -> int:
    """Check one message's non-empty content list, counting its media into `media`; return its tokens."""
    tokens = text_chars = visible_chars = other_items = images = 0
    clean = all(isinstance(item, dict) for item in content)
    model, chosen = _nova_model(rules)
    nova1 = _nova(rules) and _NOVA1_MODEL.match(model) is not None
    known = _LLAMA32_KEYS if _llama32(rules) else _CONTENT_KEYS
    for ipath, item in _objects(content, f"{path}.content", out, _TEXT_OBJECT):
        if _nova(rules):
            item = _without_nulls(item)
        for key in item:
            if key in TOOL_BLOCK_KEYS:
                _check_tool_block(key, item[key], f"{ipath}.{key}", role, out, rules, tools)
            elif key not in known:
                out.warn(
                    "unrecognized_key", f"{ipath}.{key}",
                    f"{ipath} has key {key!r}, which {rules.label} does not read. Remove it.",
                )
            elif key == "reasoningContent" and role != "assistant":
                out.error(
                    "forbidden_key", f"{ipath}.{key}",
                    f"{ipath} has 'reasoningContent', which only assistant turns may carry.",
                )
        if not any(k in item for k in known):
            out.error("missing_key", ipath, f"{ipath} needs one of {_needs(rules)}.")
            clean = False
        elif nova1 and not any(k in item for k in _NOVA1_KEYS):
            blocks = ", ".join(repr(k) for k in item if k in _CONTENT_KEYS)
            which = model if chosen else f"with no base model chosen, the default {model}"
            out.error(
                "block_not_supported", ipath,
                f"{ipath} holds only {blocks}; {which} (Nova 1) needs 'text', 'image' or 'video' in every content "
                "item, and AWS's validator rejects the record. Write it as text, or choose a Nova 2 base model.",
            )
        if "toolUse" in item or "toolResult" in item:
            other_items += 1  # a tool turn has no text, yet is not empty
        if "text" in item:
            if isinstance(text := item["text"], str):
                tokens += rules.counter.count(text)
                text_chars += len(text)
                visible_chars += len(text.strip())
                _check_reserved(text, f"{ipath}.text", out, rules)
            else:
                out.error("invalid_type", f"{ipath}.text", f"{ipath}.text is {_kind(text)}; it must be a string.")
                clean = False
        for kind in ("image", "video"):
            if kind in item and kind == "video" and _llama32(rules):
                other_items += 1
                out.error(
                    "video_not_supported", f"{ipath}.video",
                    f"{ipath} holds a video; {rules.label} trains on text and images only. Remove the video, or "
                    "describe it in text.",
                )
            elif kind in item:
                media[kind] += 1
                images += kind == "image"
                other_items += 1
                clean = _check_media(kind, item[kind], f"{ipath}.{kind}", role, out, rules, data) and clean
    if clean and not other_items:
        _check_empty_text(text_chars, visible_chars, f"{path}.content", out, rules)
    if _nova(rules) and images > _MAX_IMAGES:
        out.error(
            "too_many_images", f"{path}.content",
            f"{path}.content has {images} images; {rules.label} takes at most {_MAX_IMAGES} per message. Remove "
            f"{images - _MAX_IMAGES} or split the conversation.",
        )
    media["most_in_message"] = max(media["most_in_message"], images)
    return tokens


def _nova_model(rules: TargetRules) -> tuple[str, bool]:
    """Return the Nova base model to check for, and whether it was chosen: the catalogue's default otherwise.

    The default (Nova Lite) is a Nova 1 model, held to AWS's validator, so a dataset checked with no model
    chosen is not let through with shapes only Nova 2 reads.
    """
    if rules.model_note:
        return rules.model_note, True
    return get_target(rules.target).default_base_model or "", False


def _without_nulls(item: dict[str, Any]) -> dict[str, Any]:
    """Drop a null text, image or video: the validator's ContentItem fields are Optional, so null means absent."""
    return {k: v for k, v in item.items() if not (v is None and k in _NOVA1_KEYS)}


def _check_empty_text(text_chars: int, visible_chars: int, path: str, out: _Out, rules: TargetRules) -> None:
    """Report a message with no text and no media; for Nova, whitespace-only text is a warning.

    AWS's Nova validator fails only a total text length of 0, so whitespace passes it; such a turn trains
    on nothing, so we warn. Llama 3.2 keeps treating whitespace-only text as empty.
    """
    if not text_chars or (visible_chars == 0 and not _nova(rules)):
        out.error(
            "empty_content", path,
            f"{path} has no text; every message needs text (or, in a user turn, media).",
        )
    elif not visible_chars:
        out.warn(
            "empty_content", path,
            f"{path} has only whitespace; AWS's validator accepts it, but the turn teaches nothing. Write the text "
            "or drop the record.",
        )


def _check_tool_block(
    key: str, block: Any, path: str, role: str | None, out: _Out, rules: TargetRules, tools: _ConverseTools
) -> None:
    if rules.tool_support is ToolSupport.REJECTED:
        return  # reported once per block by _reject_tool_use
    if rules.tool_support is ToolSupport.CAUTION:
        out.warn("tool_use", path, f"{path} is a {key} block: AWS warns tool use in fine-tuning data might make the job fail.")
    _check_converse_tool_block(key, block, path, role, out, tools)


def _check_media(kind: str, media: Any, path: str, role: str | None, out: _Out, rules: TargetRules, data: _Dataset) -> bool:
    """Check one image or video object (the Nova validator's formats and S3 URI rule); return False when malformed."""
    if role == "assistant":
        out.error(
            "media_in_assistant", path,
            f"{path} is in an assistant message; {rules.label} takes media in user messages only.",
        )
    if not isinstance(media, dict):
        shape = '{"format": ..., "source": {"s3Location": {"uri": "s3://..."}}}'
        out.error("invalid_media", path, f"{path} is {_kind(media)}; it must be an object like {shape}.")
        return False
    formats = _MEDIA_FORMATS[kind]
    if not isinstance(fmt := media.get("format"), str) or fmt.lower() not in formats:
        out.error(
            "invalid_media_format", f"{path}.format",
            f"{path}.format is {_show(fmt)}; use one of {', '.join(formats)}.",
        )
    elif _nova(rules) and _NOVA2_MODEL.match(rules.model_note) and fmt.lower() not in _NOVA2_FORMATS[kind]:
        out.error(
            "media_format_not_supported", f"{path}.format",
            f"{path}.format is {_show(fmt)}; {rules.model_note} (Nova 2) takes only "
            f"{', '.join(_NOVA2_FORMATS[kind])}. Convert the file.",
        )
    source = media.get("source")
    location = source.get("s3Location") if isinstance(source, dict) else None
    uri = location.get("uri") if isinstance(location, dict) else None
    if not isinstance(uri, str):
        _report_uri_not_text(uri, location, path, out, rules)
        return False
    bucket = uri.removeprefix("s3://").partition("/")[0]
    if _llama32(rules):
        _check_llama_uri(uri, bucket, path, out)
    elif uri.startswith("s3://") and bucket and _S3_PATH_RE.fullmatch(uri[5:]):
        data.buckets.add(bucket)
    else:
        out.error(
            "invalid_media_uri", f"{path}.source.s3Location.uri",
            f"{path}.source.s3Location.uri is {_show(uri)}; it must start with s3:// and use only letters, digits, '_', '-', '/' and '.'.",
        )
    return True


def _report_uri_not_text(uri: Any, location: Any, path: str, out: _Out, rules: TargetRules) -> None:
    """Report a media URI that is missing, or there but not text (Llama's validator only looks the key up)."""
    upath = f"{path}.source.s3Location.uri"
    if not (isinstance(location, dict) and "uri" in location):
        out.error("invalid_media", f"{path}.source", f"{upath} is missing; give the object's s3:// URI.")
    elif _llama32(rules):
        out.error(
            "invalid_media_uri", upath,
            f"{upath} is {_kind(uri)}; give the image's S3 URI as a string like s3://bucket/path/image.png.",
        )
    else:
        out.error(
            "invalid_media", upath,
            f"{upath} is {_kind(uri)}; give the object's S3 URI as a string like s3://bucket/path/file.",
        )


def _check_record_media(
    images: int, videos: int, out: _Out, rules: TargetRules, data: _Dataset, *, most_in_message: int = 0
) -> None:
    """Check a record's media totals; Nova's image cap is per message (checked there), so here only a warning."""
    label = rules.label
    if _llama32(rules):
        _check_llama_media(images, out, rules)
        return
    if images > _MAX_IMAGES and not _nova(rules):
        out.error(
            "too_many_images", "messages",
            f"The record has {images} images; {label} takes at most {_MAX_IMAGES}.",
        )
    elif images > _MAX_IMAGES and most_in_message <= _MAX_IMAGES:
        out.warn(
            "too_many_images", "messages",
            f"The record has {images} images across its messages; AWS's validator allows {_MAX_IMAGES} per message, "
            f"but its docs count images per sample (record). Keep to {_MAX_IMAGES} per record to be safe.",
        )
    if videos > 1:
        out.error(
            "too_many_videos", "messages",
            f"The record has {videos} videos; {label} takes at most 1 per record. Keep one, or split the record.",
        )
    if images and videos:
        out.error(
            "mixed_media", "messages",
            "The record has both images and video; use one kind of media per record.",
        )
    if (images or videos) and rules.media_supported is False:
        out.error(
            "media_not_supported", "messages",
            f"The record has images or video, which {rules.model_note or label} does not accept (text only). Remove "
            "the media, or choose Nova Lite or Nova Pro as the base model.",
        )
    data.media_kinds["video" if videos else "image" if images else "text"] += 1



def _needs(rules: TargetRules) -> str:
    return "'text' or 'image'" if _llama32(rules) else "'text', 'image' or 'video'"


def _check_llama_uri(uri: str, bucket: str, path: str, out: _Out) -> None:
    """Llama 3.2 images are read from S3 (preparing-image-text-data: s3://<bucket-name>/<path-to-file>)."""
    if uri.startswith("s3://") and bucket and uri.partition("//")[2].partition("/")[2]:
        return
    out.error(
        "invalid_media_uri", f"{path}.source.s3Location.uri",
        f"{path}.source.s3Location.uri is {_show(uri)}; it must be an S3 object URI like s3://bucket/path/image.png.",
    )


def _check_llama_media(images: int, out: _Out, rules: TargetRules) -> None:
    """Llama 3.2: images only for 11B/90B; more than 10 in a record is our warning (images count toward 16K tokens)."""
    if images and rules.media_supported is False:
        out.error(
            "media_not_supported", "messages",
            f"The record has images, which {rules.model_note or rules.label + ' 1B/3B'} does not accept; choose "
            "Llama 3.2 11B or 90B Vision, or remove the images.",
        )
    if images > _MAX_IMAGES:
        out.warn(
            "too_many_images", "messages",
            f"The record has {images} images; AWS states no cap for Llama 3.2, but every image adds many tokens "
            f"toward the 16,000-token row limit, which we cannot count for images. Keep to {_MAX_IMAGES} or fewer.",
        )
