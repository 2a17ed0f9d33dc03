"""Check fine-tuning records against one provider's dataset rules before a job is paid for.

Records are checked in the target's own JSON shape (the dicts written to the JSONL), so the same code
checks an export file and a dataset about to be exported. Every rule comes from
`shared/reference/providers.md` (sections 1.2, 1.3, 3.1, 3.2): record counts, keys, roles and their
order, reserved tokens, per-record token limits. A broken rule is reported as a `Finding`; nothing in
here raises on bad data.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from workbench.domain.tokens import (
    HAIKU_ESTIMATE,
    LLAMA_PROXY,
    NOVA_PROXY,
    TITAN_PROXY,
    TokenCounter,
    openai_chat_tokens,
    openai_counter,
)
from workbench.errors import InvalidInput


class Target(StrEnum):
    """A fine-tuning destination whose dataset rules we check.

    `BEDROCK_LLAMA` is Llama 3.1 (8B/70B) on Bedrock, which takes `{"prompt", "completion"}` records.
    Llama 3.2 takes the Converse (Nova) shape instead: check it as `BEDROCK_NOVA` with a
    `meta.llama3-2-...` base model, which swaps in Llama's record caps and one-element `system` limit.
    """

    OPENAI = "openai"
    BEDROCK_CLAUDE_HAIKU = "bedrock-claude-haiku"
    BEDROCK_NOVA = "bedrock-nova"
    BEDROCK_LLAMA = "bedrock-llama"
    BEDROCK_TITAN = "bedrock-titan"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class RecordRef(BaseModel):
    """Point back at where a record came from, so a finding can be fixed at its source."""

    model_config = ConfigDict(frozen=True)

    example_id: int | None = Field(default=None, description="Stored example id, when checking a dataset.")
    source_line: int | None = Field(default=None, description="1-based JSONL line, when checking a file.")


class Finding(BaseModel):
    """One broken rule, located precisely enough for a user to fix the record."""

    code: str = Field(description="Stable snake_case name of the rule, e.g. 'roles_not_alternating'.")
    severity: Severity
    message: str = Field(description="What is wrong and how to fix it, naming the field path.")
    example_id: int | None = Field(default=None, description="None for dataset-level and grouped findings.")
    source_line: int | None = Field(default=None, description="None for dataset-level and grouped findings.")
    record_index: int | None = Field(
        default=None, description="0-based position of the record in the checked sequence; None when dataset-level."
    )
    field: str | None = Field(default=None, description="Path inside the record, e.g. 'messages[2].role'.")
    count: int = Field(default=1, description="Records this finding stands for: more than 1 when repeats are grouped.")
    records: list[RecordRef] = Field(
        default_factory=list, description="Up to 10 of the records a grouped finding stands for."
    )

    def to_json_dict(self) -> dict[str, Any]:
        """Return the plain dict a CLI or API prints for this finding."""
        return self.model_dump(mode="json", exclude={"records", "record_index"})


class ValidationReport(BaseModel):
    """Sum up one check of a split against a target: what blocks the job and what merely looks wrong."""

    target: Target
    split: str = Field(description="'train' or 'validation': which record-count limits applied.")
    base_model: str | None = Field(default=None, description="Base model the limits were chosen for, if given.")
    ok: bool = Field(description="True when there is no error; warnings never block a job.")
    errors: list[Finding] = Field(default_factory=list)
    warnings: list[Finding] = Field(default_factory=list)
    error_count: int = Field(default=0, description="Errors found, counting every record a grouped finding covers.")
    warning_count: int = Field(default=0, description="Warnings found, counting every record a grouped finding covers.")
    counts_by_code: dict[str, int] = Field(default_factory=dict, description="Findings per code, before grouping.")
    record_count: int
    error_positions: list[int] = Field(
        default_factory=list, description="0-based input positions of the records with at least one error."
    )
    token_counts: list[int] = Field(default_factory=list, description="Tokens per record, in input order.")
    total_tokens: int = 0
    total_bytes: int = Field(default=0, description="Size as JSONL: one line per record, newline included.")
    token_limit: int | None = Field(default=None, description="Per-record token limit checked; None when none is stated.")
    tokenizer_label: str = Field(description="How tokens were counted, e.g. 'estimate: chars/3 (AWS sample validator)'.")
    tokens_exact: bool = Field(description="False when counts come from an estimate or a proxy tokenizer.")

    def to_json_dict(self) -> dict[str, Any]:
        """Return the plain dict a CLI or API prints: `ok`, `errors`, `warnings` and the totals."""
        data = self.model_dump(mode="json", exclude={"errors", "warnings", "token_counts", "error_positions"})
        data["errors"] = [f.to_json_dict() for f in self.errors]
        data["warnings"] = [f.to_json_dict() for f in self.warnings]
        data["max_tokens"] = max(self.token_counts, default=0)
        return data


class TargetRules(BaseModel):
    """Hold the limits for one target, split and base model, so a page can show them before a check."""

    model_config = ConfigDict(frozen=True)

    target: Target
    label: str = Field(description="Human name of the target, used in messages.")
    split: str
    min_records: int
    max_records: int | None = None
    recommended_min_records: int | None = Field(default=None, description="Below this a warning, not an error.")
    max_bytes: int | None = Field(default=None, description="Largest JSONL file accepted for this split.")
    token_limit: int | None = None
    token_limit_is_error: bool = Field(
        default=True, description="False where over-long records are truncated (OpenAI) rather than rejected."
    )
    counter: TokenCounter
    model_note: str = Field(default="", description="The base model the token limit belongs to, for messages.")
    check_reserved_tokens: bool = Field(default=False, description="Nova fails jobs whose system/user text has them.")
    max_system_items: int | None = Field(default=None, description="Cap on the Converse `system` list (Llama 3.2: 1).")
    media_supported: bool | None = Field(
        default=None, description="Converse images/video: True accepted, False rejected, None depends on the model."
    )


def rules_for(target: Target | str, *, split: str = "train", base_model: str | None = None) -> TargetRules:
    """Look up the limits for a target and split (providers.md 1.3, 3.1), refined by the base model."""
    target = _coerce_target(target)
    if split not in ("train", "validation"):
        raise InvalidInput(f"split must be 'train' or 'validation', not {split!r}.")
    split = str(split)
    train = split == "train"
    model = (base_model or "").lower()
    if target is Target.OPENAI:
        name = base_model or "gpt-4o-mini-2024-07-18"
        return TargetRules(
            target=target, label="OpenAI", split=split, min_records=10 if train else 1,
            recommended_min_records=50 if train else None, token_limit=_openai_context(name),
            token_limit_is_error=False, counter=openai_counter(name), model_note=name,
        )
    if target is Target.BEDROCK_CLAUDE_HAIKU:
        return TargetRules(
            target=target, label="Claude 3 Haiku", split=split, min_records=32,
            max_records=10_000 if train else 1_000, max_bytes=(10 if train else 1) * 1024**3,
            token_limit=32_000, counter=HAIKU_ESTIMATE,
        )
    if target is Target.BEDROCK_NOVA and model.startswith("meta.llama3-2"):
        return TargetRules(
            target=target, label="Llama 3.2", split=split, min_records=1, max_records=10_000 if train else 1_000,
            counter=LLAMA_PROXY, max_system_items=1, model_note=base_model or "",
            media_supported="11b" in model or "90b" in model,
        )
    if target is Target.BEDROCK_NOVA:
        return TargetRules(
            target=target, label="Amazon Nova", split=split, min_records=8 if train else 1,
            max_records=20_000 if train else None, recommended_min_records=100 if train else None,
            counter=NOVA_PROXY, check_reserved_tokens=True, model_note=base_model or "",
            media_supported=False if "micro" in model else (True if model else None),
        )
    if target is Target.BEDROCK_LLAMA:
        return TargetRules(
            target=target, label="Llama 3.1", split=split, min_records=1, max_records=10_000 if train else 1_000,
            counter=LLAMA_PROXY,
        )
    return TargetRules(
        target=target, label="Titan Text", split=split, min_records=1, token_limit=4_096, counter=TITAN_PROXY
    )


def _openai_context(model: str) -> int:
    """Return an OpenAI base model's training context (providers.md 3.1).

    65,536 is documented for gpt-4o-2024-08-06 and gpt-4o-mini-2024-07-18, and assumed for later models.
    """
    if model.startswith("gpt-3.5-turbo-0613"):
        return 4_096
    if model.startswith("gpt-3.5"):
        return 16_385
    return 65_536


def _coerce_target(target: Target | str) -> Target:
    try:
        return Target(target)
    except ValueError as exc:
        raise InvalidInput(f"Unknown target {target!r}; use one of {', '.join(t.value for t in Target)}.") from exc


# ---------------------------------------------------------------------------------------------------
# Per-record checks: each reads one dict, records findings on `_Out` and returns the record's tokens.

OPENAI_MESSAGE_KEYS = ("role", "content", "name", "function_call", "weight")
OPENAI_ROLES = ("system", "user", "assistant", "function")
NOVA_RESERVED_TOKENS = (
    "System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:", "ASSISTANT:", "Thought:", "[EOS]",
    "<image>", "<video>",
)
_OPENAI_TOP_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")
_RESERVED_RE = re.compile("|".join(re.escape(t) for t in NOVA_RESERVED_TOKENS))
_MEDIA_FORMATS = {"image": ("jpeg", "png", "gif", "webp"), "video": ("mov", "mkv", "mp4", "webm")}
_S3_PATH_RE = re.compile(r"[\w\-/.]+")
_MAX_IMAGES = 10
_CONTENT_KEYS = ("text", "image", "video", "reasoningContent", "toolUse", "toolResult")
_FOREIGN_KEYS = {
    "schemaVersion": "it belongs to the Nova/Converse format",
    "prompt": "it belongs to the prompt/completion format",
    "completion": "it belongs to the prompt/completion format",
    "messages": "it belongs to a chat format",
    "conversations": "it belongs to the ShareGPT format",
    "instruction": "it belongs to the Alpaca format",
    "metadata": "export without metadata to drop it",
    "weight": "only OpenAI reads per-message weights",
    "name": "only OpenAI reads message names",
}
_CHAT_EXAMPLE = '{"role": "user", "content": "..."}'
_CONVERSE_EXAMPLE = '{"role": "user", "content": [{"text": "..."}]}'


class _Out:
    """Collect one record's findings as plain tuples: pydantic models are built only for real problems."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[Severity, str, str | None, str]] = []

    def error(self, code: str, field: str | None, message: str) -> None:
        self.items.append((Severity.ERROR, code, field, message))

    def warn(self, code: str, field: str | None, message: str) -> None:
        self.items.append((Severity.WARNING, code, field, message))


class _Dataset:
    """Gather what the dataset-level Converse rules need: each record's media kind, and the S3 buckets."""

    def __init__(self) -> None:
        self.media_kinds: dict[str, int] = defaultdict(int)
        self.buckets: set[str] = set()


def _kind(value: Any) -> str:
    """Name a JSON value's type the way a user reads it in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    for types, name in ((str, "a string"), (int | float, "a number"), (list, "a list"), (dict, "an object")):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    """Render a value from the record as JSON, shortened, so messages quote what the file holds."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _path(parent: str, key: Any) -> str:
    return f"{parent}.{key}" if parent else str(key)


def _check_keys(
    obj: dict[str, Any], parent: str, allowed: tuple[str, ...], out: _Out, label: str, *, strict: bool,
    hints: dict[str, str] | None = None,
) -> None:
    """Report keys outside `allowed`: an error where the target rejects them, otherwise a warning."""
    where = parent or "The record"
    for key in obj:
        if key in allowed:
            continue
        reason = {**_FOREIGN_KEYS, **(hints or {})}.get(key) if isinstance(key, str) else None
        hint = f" ({reason})" if reason else ""
        if strict:
            out.error(
                "forbidden_key", _path(parent, key),
                f"{where} has key {key!r}{hint}, which {label} does not allow. Remove it.",
            )
        else:
            out.warn(
                "unrecognized_key", _path(parent, key),
                f"{where} has key {key!r}{hint}, which {label} does not read. Remove it.",
            )


def _messages(record: dict[str, Any], out: _Out, label: str) -> list[Any] | None:
    messages = record.get("messages")
    if isinstance(messages, list) and messages:
        return messages
    if "messages" not in record:
        what = "has no 'messages' key"
    elif isinstance(messages, list):
        what = "has an empty 'messages' list"
    else:
        what = f"has 'messages' as {_kind(messages)}"
    hint = " It looks like a prompt/completion record." if "prompt" in record or "completion" in record else ""
    out.error(
        "missing_messages_list", "messages",
        f"The record {what}; {label} needs a non-empty list of messages.{hint}",
    )
    return None


def _message_role(message: dict[str, Any], path: str, out: _Out, label: str, system_home: str) -> str | None:
    """Return a message's role when it is 'user' or 'assistant'; report missing keys and other roles."""
    for key in ("role", "content"):
        if key not in message:
            out.error(
                "missing_key", f"{path}.{key}",
                f"{path} has no {key!r}; every message needs 'role' and 'content'.",
            )
    role = message.get("role")
    if isinstance(role, str) and role in ("user", "assistant"):
        return role
    if "role" in message:
        hint = f" Move the system prompt to the top-level {system_home}." if role == "system" else ""
        out.error(
            "unrecognized_role", f"{path}.role",
            f"{path}.role is {_show(role)}; {label} takes only 'user' and 'assistant'.{hint}",
        )
    return None


def _check_turns(messages: list[Any], roles: list[str], out: _Out, label: str) -> bool:
    """Check the turn order (first user, alternating, last assistant); return True when it is valid."""
    if len(messages) < 2:
        out.error(
            "too_few_messages", "messages",
            f"messages has {len(messages)} message; {label} needs at least a user message and the assistant reply.",
        )
        return False
    if len(roles) != len(messages):  # a role is already reported as broken
        return False
    before = len(out.items)
    if roles[0] != "user":
        out.error(
            "first_not_user", "messages[0].role",
            f"messages[0].role is {_show(roles[0])}; {label} conversations must start with a user message.",
        )
    for i in range(1, len(roles)):
        if roles[i] == roles[i - 1]:
            out.error(
                "roles_not_alternating", f"messages[{i}].role",
                f"messages[{i - 1}] and messages[{i}] are both {_show(roles[i])}; {label} needs user and assistant turns to "
                "alternate. Merge the two messages or add the missing turn between them.",
            )
            break
    if roles[-1] != "assistant":
        last = len(roles) - 1
        out.error(
            "last_not_assistant", f"messages[{last}].role",
            f"messages[{last}].role is {_show(roles[-1])}; {label} conversations must end with the assistant reply to train on.",
        )
    return len(out.items) == before


def _check_openai(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the OpenAI cookbook's format checks (providers.md 3.2) and the guide's weight rule (3.1)."""
    hints = {"system": 'OpenAI takes the system prompt as a {"role": "system"} message'}
    _check_keys(record, "", _OPENAI_TOP_KEYS, out, "OpenAI's chat format", strict=False, hints=hints)
    messages = _messages(record, out, "OpenAI")
    if messages is None:
        return 0
    dicts: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            out.error(
                "invalid_type", path,
                f"{path} is {_kind(message)}; each message must be an object like {_CHAT_EXAMPLE}.",
            )
            continue
        dicts.append(message)
        if missing := [k for k in ("role", "content") if k not in message]:
            names = " or ".join(repr(k) for k in missing)
            out.error(
                "message_missing_key", path,
                f"{path} has no {names}; every message needs 'role' and 'content'.",
            )
        if unknown := [k for k in message if k not in OPENAI_MESSAGE_KEYS]:
            out.error(
                "message_unrecognized_key", _path(path, unknown[0]),
                f"{path} has key(s) {', '.join(repr(k) for k in unknown)}, which OpenAI does not accept; "
                f"allowed: {', '.join(OPENAI_MESSAGE_KEYS)}.",
            )
        role = message.get("role")
        if "role" in message and (not isinstance(role, str) or role not in OPENAI_ROLES):
            out.error(
                "unrecognized_role", f"{path}.role",
                f'{path}.role is {_show(role)}; use "system", "user" or "assistant" ("function" for legacy function calls).',
            )
        if "content" in message:
            _check_openai_content(message, path, out)
        if "name" in message and not isinstance(message["name"], str):
            out.error(
                "invalid_type", f"{path}.name",
                f"{path}.name is {_kind(message['name'])}; it must be a string.",
            )
        if "weight" in message:
            _check_weight(message["weight"], role, f"{path}.weight", out)
    _check_openai_roles(dicts, len(messages), out)
    return openai_chat_tokens(dicts, rules.counter.encoding or "cl100k_base")


def _check_openai_content(message: dict[str, Any], path: str, out: _Out) -> None:
    # The cookbook's test: `(not content and not function_call) or not isinstance(content, str)`.
    content = message["content"]
    if not isinstance(content, str):
        out.error(
            "missing_content", f"{path}.content",
            f"{path}.content is {_kind(content)}; it must be the message text as a string.",
        )
    elif not content and not message.get("function_call"):
        out.error(
            "missing_content", f"{path}.content",
            f"{path}.content is empty; give the message text (or a function_call).",
        )
    elif not content.strip() and not message.get("function_call"):
        out.warn("empty_content", f"{path}.content", f"{path}.content is only whitespace; give the message text.")


def _check_weight(weight: Any, role: Any, path: str, out: _Out) -> None:
    if role != "assistant":
        out.error(
            "misplaced_weight", path,
            f"{path} is set on a {_show(role)} message; OpenAI reads weight only on assistant messages. Remove it.",
        )
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight not in (0, 1):
        out.error(
            "invalid_weight", path,
            f"{path} is {_show(weight)}; OpenAI accepts only 0 (skip this turn) or 1 (train on it).",
        )


def _check_openai_roles(dicts: list[dict[str, Any]], n_messages: int, out: _Out) -> None:
    roles = [m.get("role") for m in dicts]
    if "assistant" not in roles:
        out.error(
            "example_missing_assistant_message", "messages",
            "The example has no assistant message; OpenAI trains on assistant turns, so add at least one.",
        )
    else:
        weights = [m.get("weight", 1) for m in dicts if m.get("role") == "assistant"]
        if all(isinstance(w, int | float) and not isinstance(w, bool) and w == 0 for w in weights):
            out.warn(
                "all_weights_zero", "messages",
                "Every assistant message has weight 0, so the example teaches nothing; set weight 1 on the turns to learn.",
            )
        if roles[-1] not in ("assistant", "function"):
            out.warn(
                "last_not_assistant", f"messages[{n_messages - 1}].role",
                f"The example ends with a {_show(roles[-1])} message after the last assistant reply; it is never trained on.",
            )
    if "system" not in roles:
        out.warn("missing_system_message", "messages", "The example has no system message.")
    if "user" not in roles:
        out.warn("missing_user_message", "messages", "The example has no user message.")


def _check_haiku(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the Claude 3 Haiku rules (providers.md 1.2, 1.3): plain strings, no extra keys, alternating turns."""
    label = rules.label
    _check_keys(record, "", ("system", "messages"), out, label, strict=True)
    tokens = 0
    system = record.get("system")
    if isinstance(system, str):
        tokens += rules.counter.count(system)
    elif system is not None:
        hint = ' A list of {"text": ...} objects is the Nova format.' if isinstance(system, list) else ""
        out.error(
            "invalid_type", "system",
            f"system is {_kind(system)}; {label} takes the system prompt as a plain string.{hint}",
        )
    messages = _messages(record, out, label)
    if messages is None:
        return tokens
    roles: list[str] = []
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            out.error(
                "invalid_type", path,
                f"{path} is {_kind(message)}; each message must be an object like {_CHAT_EXAMPLE}.",
            )
            continue
        _check_keys(message, path, ("role", "content"), out, label, strict=True)
        if role := _message_role(message, path, out, label, "'system' string"):
            roles.append(role)
        if "content" not in message:
            continue
        content = message["content"]
        if not isinstance(content, str):
            hint = ' A list of {"text": ...} objects is the Nova format.' if isinstance(content, list) else ""
            out.error(
                "invalid_type", f"{path}.content",
                f"{path}.content is {_kind(content)}; {label} takes plain-string content.{hint}",
            )
            continue
        tokens += rules.counter.count(content)
        if not content.strip():
            out.error("empty_content", f"{path}.content", f"{path}.content is empty; every message needs text.")
    if _check_turns(messages, roles, out, label) and len(messages) > 2:
        out.warn("multi_turn_warning", "messages", "The record is multi-turn.")
    return tokens


def _check_converse(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the Bedrock Converse rules (Nova; Llama 3.2 by base model): {text} lists, media, reserved tokens."""
    label = rules.label
    _check_keys(record, "", ("schemaVersion", "system", "messages"), out, label, strict=False)
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
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            out.error(
                "invalid_type", path,
                f"{path} is {_kind(message)}; each message must be an object like {_CONVERSE_EXAMPLE}.",
            )
            continue
        _check_keys(message, path, ("role", "content"), out, label, strict=False)
        role = _message_role(message, path, out, label, "'system' list")
        if role:
            roles.append(role)
        if "content" not in message:
            continue
        content = message["content"]
        if isinstance(content, list) and content:
            tokens += _check_converse_content(content, path, role, out, rules, data, media)
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
    for j, item in enumerate(system):
        path = f"system[{j}]"
        if not isinstance(item, dict):
            out.error(
                "invalid_type", path,
                f'{path} is {_kind(item)}; it must be an object like {{"text": "..."}}.',
            )
            continue
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
    content: list[Any], path: str, role: str | None, out: _Out, rules: TargetRules, data: _Dataset, media: dict[str, int]
) -> int:
    """Check one message's non-empty content list, counting its media into `media`; return its tokens."""
    tokens = text_chars = other_items = 0
    clean = True
    for j, item in enumerate(content):
        ipath = f"{path}.content[{j}]"
        if not isinstance(item, dict):
            out.error(
                "invalid_type", ipath,
                f'{ipath} is {_kind(item)}; it must be an object like {{"text": "..."}}.',
            )
            clean = False
            continue
        for key in item:
            if key in ("toolUse", "toolResult"):
                out.warn(
                    "tool_use", f"{ipath}.{key}",
                    f"{ipath} has {key!r}: tool use in fine-tuning data might make the job fail.",
                )
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


def _check_media(kind: str, media: Any, path: str, role: str | None, out: _Out, rules: TargetRules, data: _Dataset) -> bool:
    """Check one image or video object (providers.md 1.2); return False when it is malformed."""
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


def _check_prompt_completion(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the prompt/completion rules (Llama 3.1, Titan): two strings, nothing else is read."""
    label = rules.label
    hints = {"system": "fold the system prompt into the prompt"}
    _check_keys(record, "", ("prompt", "completion"), out, f"{label}'s prompt/completion format", strict=False, hints=hints)
    tokens = 0
    for key in ("prompt", "completion"):
        if key not in record:
            hint = " This is a chat record: export it as prompt/completion." if "messages" in record else ""
            out.error(
                "missing_key", key,
                f'The record has no {key!r}; {label} records are {{"prompt": ..., "completion": ...}}.{hint}',
            )
            continue
        if not isinstance(value := record[key], str):
            out.error("invalid_type", key, f"{key} is {_kind(value)}; it must be a string.")
            continue
        tokens += rules.counter.count(value)
        if value.strip():
            continue
        if key == "completion":
            out.error("empty_content", key, "completion is empty; it is the text the model learns to produce.")
        else:
            out.warn("empty_content", key, "prompt is empty; the model learns the completion with no context.")
    return tokens


_CHECKERS: dict[Target, Callable[[dict[str, Any], _Out, TargetRules, _Dataset], int]] = {
    Target.OPENAI: _check_openai,
    Target.BEDROCK_CLAUDE_HAIKU: _check_haiku,
    Target.BEDROCK_NOVA: _check_converse,
    Target.BEDROCK_LLAMA: _check_prompt_completion,
    Target.BEDROCK_TITAN: _check_prompt_completion,
}


def _too_long(tokens: int, rules: TargetRules) -> str:
    about = "" if rules.counter.exact else "about "
    counted = f"{about}{tokens:,} tokens (counted with {rules.counter.label})"
    limit = f"{rules.token_limit:,}"
    if rules.target is Target.OPENAI:
        return (
            f"The example is {counted}, over the {limit}-token training context of {rules.model_note}; OpenAI "
            "truncates it from the end, so the last assistant reply may be cut. Shorten or split it."
        )
    if rules.target is Target.BEDROCK_TITAN:
        return (
            f"The record is {counted}, over Titan's {limit}-token input limit; the job fails when it reaches this "
            "record. Shorten the prompt or completion."
        )
    return f"The record is {counted}; {rules.label} allows {limit} per record. Shorten it or split the conversation."


# ---------------------------------------------------------------------------------------------------
# Dataset-level checks and grouping.

# Warnings about the dataset's shape rather than one broken record: always one finding each.
_GROUPED = {
    "missing_system_message": (
        "have no system message",
        "A system prompt is optional, but the same one in training and at inference usually helps.",
    ),
    "missing_user_message": ("have no user message", "The model sees no user input in them."),
    "multi_turn_warning": (
        "are multi-turn",
        "AWS documents Claude 3 Haiku fine-tuning as single-turn, though its sample validator accepts "
        "alternating multi-turn data; try a small job first.",
    ),
}
_SAMPLE_REFS = 10


def _json_size(record: Any) -> int:
    try:
        return len(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)) + 1
    except TypeError:  # orjson.JSONEncodeError included; not JSON-serialisable, a rough size will do
        return len(repr(record).encode("utf-8", "replace")) + 1


def _describe(refs: list[tuple[int, RecordRef]]) -> str:
    names = []
    for index, ref in refs[:3]:
        if ref.source_line is not None:
            names.append(f"line {ref.source_line}")
        elif ref.example_id is not None:
            names.append(f"example {ref.example_id}")
        else:
            names.append(f"record {index + 1}")
    more = ", ..." if len(refs) > 3 else ""
    return f" (e.g. {', '.join(names)}{more})"


def _dataset_findings(
    n: int, total_bytes: int, rules: TargetRules, data: _Dataset, base_model: str | None
) -> list[Finding]:
    found: list[Finding] = []

    def add(code: str, severity: Severity, message: str) -> None:
        found.append(Finding(code=code, severity=severity, message=message))

    label, split, low, high = rules.label, rules.split, rules.min_records, rules.max_records
    bounds = f"{low:,} to {high:,}" if high is not None else f"at least {low:,}"
    if n < low:
        add("too_few_examples", Severity.ERROR, f"The {split} set has {n:,} records; {label} needs {bounds}.")
    elif high is not None and n > high:
        add(
            "too_many_examples", Severity.ERROR,
            f"The {split} set has {n:,} records; {label} takes {bounds}. Remove {n - high:,}.",
        )
    elif rules.recommended_min_records and n < rules.recommended_min_records:
        add(
            "below_recommended_examples", Severity.WARNING,
            f"The {split} set has {n:,} records; {label} recommends at least {rules.recommended_min_records:,} "
            "for a visible improvement.",
        )
    if rules.max_bytes is not None and total_bytes > rules.max_bytes:
        size, cap = total_bytes / 1024**3, rules.max_bytes / 1024**3
        add(
            "file_too_large", Severity.ERROR,
            f"The {split} file would be {size:.2f} GB; {label} takes at most {cap:.0f} GB.",
        )
    kinds = {k: v for k, v in data.media_kinds.items() if v}
    if len(kinds) > 1:
        mix = ", ".join(f"{v:,} {k}" for k, v in sorted(kinds.items()))
        add(
            "mixed_dataset_media", Severity.ERROR,
            f"The dataset mixes record kinds ({mix}); {label} needs all records text-only, all with images, or all with video.",
        )
    if kinds.keys() & {"image", "video"} and rules.media_supported is None:
        add(
            "media_model_unknown", Severity.WARNING,
            "Records contain images or video: Nova Micro accepts none; use Nova Lite or Pro.",
        )
    if len(data.buckets) > 1:
        buckets = ", ".join(sorted(data.buckets)[:3])
        add(
            "media_bucket_mismatch", Severity.ERROR,
            f"Media objects live in {len(data.buckets)} S3 buckets ({buckets}); each must be in the dataset's own "
            "bucket, so move them into one.",
        )
    if split == "validation" and rules.target is Target.BEDROCK_NOVA and "nova-2" in (base_model or "").lower():
        add(
            "validation_not_supported", Severity.WARNING,
            "Nova 2 supervised fine-tuning does not use a validation set.",
        )
    return found


def validate_records(
    records: Iterable[tuple[RecordRef, dict[str, Any]]],
    target: Target | str,
    *,
    split: str = "train",
    base_model: str | None = None,
    max_findings_per_code: int | None = 50,
) -> ValidationReport:
    """Check records in the target's JSON shape against its rules, so a job never fails on its data.

    `split` ("train" or "validation") picks the record-count limits. `base_model` refines them where the
    model matters: OpenAI's tokenizer and context (default gpt-4o-mini), Nova Micro's ban on media,
    Llama 3.2 in the Converse shape. Only the first `max_findings_per_code` findings of a code are listed
    one by one; the rest fold into one finding with a `count`, so a systematic problem in 100,000
    records stays readable (None lists every one). Never raises on malformed records.
    """
    rules = rules_for(target, split=split, base_model=base_model)
    check = _CHECKERS[rules.target]
    data = _Dataset()
    token_counts: list[int] = []
    total_bytes = 0
    error_positions: list[int] = []
    counts: dict[str, int] = defaultdict(int)
    listed: list[Finding] = []
    folded: dict[tuple[str, Severity], list[tuple[int, RecordRef]]] = defaultdict(list)

    for index, (ref, record) in enumerate(records):
        out = _Out()
        if isinstance(record, dict):
            tokens = check(record, out, rules, data)
        else:
            tokens = 0
            out.error("data_type", None, f"The record is {_kind(record)}; each line must be one JSON object.")
        if rules.token_limit is not None and tokens > rules.token_limit:
            severity = Severity.ERROR if rules.token_limit_is_error else Severity.WARNING
            out.items.append((severity, "too_many_tokens", None, _too_long(tokens, rules)))
        token_counts.append(tokens)
        total_bytes += _json_size(record)
        if any(item[0] is Severity.ERROR for item in out.items):
            error_positions.append(index)
        for severity, code, field, message in out.items:
            counts[code] += 1
            if code in _GROUPED or (max_findings_per_code is not None and counts[code] > max_findings_per_code):
                folded[(code, severity)].append((index, ref))
                continue
            listed.append(
                Finding(
                    code=code, severity=severity, message=message, example_id=ref.example_id,
                    source_line=ref.source_line, record_index=index, field=field,
                )
            )

    n = len(token_counts)
    findings = _dataset_findings(n, total_bytes, rules, data, base_model) + listed
    for (code, severity), refs in folded.items():
        if code in _GROUPED:
            what, advice = _GROUPED[code]
            message = f"{len(refs):,} of {n:,} records {what}{_describe(refs)}. {advice}"
        else:
            message = (
                f"{len(refs):,} more records have the same problem ({code}){_describe(refs)}; "
                f"only the first {max_findings_per_code} are listed."
            )
        sample = [ref for _, ref in refs[:_SAMPLE_REFS]]
        findings.append(Finding(code=code, severity=severity, message=message, count=len(refs), records=sample))
    for finding in findings:
        counts.setdefault(finding.code, finding.count)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    return ValidationReport(
        target=rules.target, split=rules.split, base_model=base_model, ok=not errors, errors=errors,
        warnings=warnings, error_count=sum(f.count for f in errors), warning_count=sum(f.count for f in warnings),
        counts_by_code=dict(counts), record_count=n, error_positions=error_positions, token_counts=token_counts,
        total_tokens=sum(token_counts), total_bytes=total_bytes, token_limit=rules.token_limit,
        tokenizer_label=rules.counter.label, tokens_exact=rules.counter.exact,
    )


def check_combined_counts(target: Target | str, train_count: int, validation_count: int) -> list[Finding]:
    """Check the train + validation total, the one limit neither split sees alone (Haiku: 10,000)."""
    total = train_count + validation_count
    if _coerce_target(target) is not Target.BEDROCK_CLAUDE_HAIKU or total <= 10_000:
        return []
    message = (
        f"Train ({train_count:,}) and validation ({validation_count:,}) records add up to {total:,}; "
        "Claude 3 Haiku takes at most 10,000 in total."
    )
    return [Finding(code="too_many_total_examples", severity=Severity.ERROR, message=message)]
