"""The Bedrock Converse record rules: Amazon Nova, and Llama 3.2, which trains on the same shape.

Sources: https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html and
AWS's sample validators (aws-samples/amazon-bedrock-samples `custom-models/bedrock-fine-tuning/nova/
understanding/dataset_validation/nova_ft_dataset_validator.py`, `meta-llama/dataset_validation/`). The rules,
one by one, are listed in `workbench/domain/catalogue/rules/` and docs/validation-rules.md.
"""

from __future__ import annotations

import re
from typing import Any

from workbench.domain.catalogue import ToolSupport
from workbench.domain.validation.models import TargetRules
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
_CONTENT_KEYS = ("text", "image", "video", "reasoningContent", "toolUse", "toolResult")
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
    if "schemaVersion" in record and not isinstance(record["schemaVersion"], str):
        kind = _kind(record["schemaVersion"])
        out.error(
            "invalid_type", "schemaVersion",
            f"schemaVersion is {kind}; it must be a string such as 'bedrock-conversation-2024'.",
        )
    tokens = _check_converse_system(record.get("system"), out, rules)
    messages = _messages(record, out, label)
    if messages is None:
        return tokens
    roles: list[str] = []
    media = {"image": 0, "video": 0}
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
    _check_record_media(media["image"], media["video"], out, rules, data)
    return tokens


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
            out.error("missing_key", f"{path}.text", f"{path} has no 'text'.")
        elif not isinstance(text, str):
            out.error("invalid_type", f"{path}.text", f"{path}.text is {_kind(text)}; it must be a string.")
        else:
            tokens += rules.counter.count(text)
            _check_reserved(text, f"{path}.text", "system", out, rules)
    return tokens


def _check_reserved(text: str, path: str, role: Any, out: _Out, rules: TargetRules) -> None:
    if not rules.check_reserved_tokens or not (found := sorted(set(_RESERVED_RE.findall(text)))):
        return
    listed = ", ".join(repr(t) for t in found)
    if role == "assistant":
        out.warn(
            "reserved_token", path,
            f"{path} contains {listed}, which Nova reserves. AWS documents the failure for system and user text only, "
            "but its sample validator rejects assistant text too; rephrase to be safe.",
        )
    else:
        out.error(
            "reserved_token", path,
            f"{path} contains {listed}, which Nova reserves in system and user text: the job fails. Rephrase it "
            "(for example 'user -' instead of 'User:').",
        )


def _check_converse_content(
    content: list[Any], path: str, role: str | None, out: _Out, rules: TargetRules, data: _Dataset,
    media: dict[str, int], tools: _ConverseTools,
) -> int:
    """Check one message's non-empty content list, counting its media into `media`; return its tokens."""
    tokens = text_chars = other_items = 0
    clean = all(isinstance(item, dict) for item in content)
    for ipath, item in _objects(content, f"{path}.content", out, _TEXT_OBJECT):
        for key in item:
            if key in TOOL_BLOCK_KEYS:
                _check_tool_block(key, item[key], f"{ipath}.{key}", role, out, rules, tools)
            elif key == "reasoningContent" and role != "assistant":
                out.error(
                    "forbidden_key", f"{ipath}.{key}",
                    f"{ipath} has 'reasoningContent', which only assistant turns may carry.",
                )
            elif key not in _CONTENT_KEYS:
                out.warn(
                    "unrecognized_key", f"{ipath}.{key}",
                    f"{ipath} has key {key!r}, which {rules.label} does not read. Remove it.",
                )
        if not any(k in item for k in _CONTENT_KEYS):
            out.error("missing_key", ipath, f"{ipath} needs one of 'text', 'image' or 'video'.")
            clean = False
        if "toolUse" in item or "toolResult" in item:
            other_items += 1  # a tool turn has no text, yet is not empty
        if "text" in item:
            if isinstance(text := item["text"], str):
                tokens += rules.counter.count(text)
                text_chars += len(text.strip())
                _check_reserved(text, f"{ipath}.text", role, out, rules)
            else:
                out.error("invalid_type", f"{ipath}.text", f"{ipath}.text is {_kind(text)}; it must be a string.")
                clean = False
        for kind in ("image", "video"):
            if kind in item:
                media[kind] += 1
                other_items += 1
                clean = _check_media(kind, item[kind], f"{ipath}.{kind}", role, out, rules, data) and clean
    if clean and not text_chars and not other_items:
        out.error(
            "empty_content", f"{path}.content",
            f"{path}.content has no text; every message needs text (or, in a user turn, media).",
        )
    return tokens


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
    source = media.get("source")
    location = source.get("s3Location") if isinstance(source, dict) else None
    uri = location.get("uri") if isinstance(location, dict) else None
    if not isinstance(uri, str):
        out.error(
            "invalid_media", f"{path}.source",
            f"{path}.source.s3Location.uri is missing; give the object's s3:// URI.",
        )
        return False
    bucket = uri.removeprefix("s3://").partition("/")[0]
    if uri.startswith("s3://") and bucket and _S3_PATH_RE.fullmatch(uri[5:]):
        data.buckets.add(bucket)
    else:
        out.error(
            "invalid_media_uri", f"{path}.source.s3Location.uri",
            f"{path}.source.s3Location.uri is {_show(uri)}; it must start with s3:// and use only letters, digits, '_', '-', '/' and '.'.",
        )
    return True


def _check_record_media(images: int, videos: int, out: _Out, rules: TargetRules, data: _Dataset) -> None:
    label = rules.label
    if images > _MAX_IMAGES:
        out.error(
            "too_many_images", "messages",
            f"The record has {images} images; {label} takes at most {_MAX_IMAGES}.",
        )
    if videos > 1:
        out.error("too_many_videos", "messages", f"The record has {videos} videos; {label} takes at most 1.")
    if images and videos:
        out.error(
            "mixed_media", "messages",
            "The record has both images and video; use one kind of media per record.",
        )
    if (images or videos) and rules.media_supported is False:
        out.error(
            "media_not_supported", "messages",
            f"The record has images or video, which {rules.model_note or label} does not accept.",
        )
    data.media_kinds["video" if videos else "image" if images else "text"] += 1

