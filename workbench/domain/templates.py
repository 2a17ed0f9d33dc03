"""Prompt templates: immutable numbered versions, movable labels, and rendering in Jinja2's sandbox.

A version is what a model is called with: a system and a user template, few-shot pairs, an optional
chain-of-thought instruction and the model settings. Templates are text written by users of the
workbench, so they are rendered in `ImmutableSandboxedEnvironment` (no Python internals, no mutating
the variables passed in) with `StrictUndefined` (a missing variable is an error, never an empty
string the model silently sees) and autoescape off (the output goes to a model, not to a browser).
Everything here is pure: the store keeps versions, the service resolves names and datasets.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import operator
import re
from collections.abc import Iterable
from typing import Any

import orjson
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.domain.example import Example, Role
from workbench.errors import InvalidInput

LATEST = "latest"
"""The label the service moves to each new version; nobody else moves it."""
SUGGESTED_LABELS = ("production", "staging")
DEFAULT_MODEL = "amazon.nova-lite-v1:0"
"""The model a new template is set up for: served by Bedrock Converse and priced in the catalogue."""
DEFAULT_TASK = "general"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_TASK = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}")
_VARIABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

MAX_TEMPLATE_CHARS = 100_000
MAX_RENDERED_CHARS = 2_000_000
"""A rendering stops here: a loop or a repeated string cannot fill memory."""
MAX_FEW_SHOT = 50


def check_name(name: str) -> str:
    """Return a template name trimmed, or say what is wrong with it."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"bad template name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (no spaces or '@': a template is named as NAME@VERSION or NAME@LABEL)"
        )
    return name


def check_label(label: str) -> str:
    """Return a label, or say what is wrong with it; `latest` is refused because the service moves it."""
    label = label.strip()
    if not _LABEL.fullmatch(label):
        raise InvalidInput(
            f"bad label {label!r}: use 1 to 40 lower-case letters, digits, '_' or '-', starting with a letter "
            "(e.g. production, staging, experiment-b)"
        )
    if label == LATEST:
        raise InvalidInput("the 'latest' label always points at the newest version and moves by itself; pick another label")
    return label


def check_task(task: str) -> str:
    """Return a task type, or say what is wrong with it."""
    task = task.strip()
    if not _TASK.fullmatch(task):
        raise InvalidInput(f"bad task type {task!r}: use lower-case letters, digits, '_' or '-' (e.g. summarisation, qa)")
    return task


def check_variable(name: str, where: str) -> str:
    """Return a variable name, or say where a bad one was found."""
    if not _VARIABLE.fullmatch(name):
        raise InvalidInput(
            f"bad variable name {name!r} in {where}: a variable starts with a letter, then letters, digits or '_' "
            "(64 at most)"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | str | None]:
    """Split `NAME`, `NAME@3` or `NAME@production` into the name and a version number or label."""
    name, at, selector = ref.strip().rpartition("@")
    if not at:
        return check_name(selector), None
    if selector.isdigit():
        return check_name(name), int(selector)
    return check_name(name), _label_in_ref(selector)


def _label_in_ref(label: str) -> str:
    if label == LATEST:
        return label
    return check_label(label)


# ------------------------------------------------------------------------------------------ the model


class ModelSettings(BaseModel):
    """What a model is called with besides the prompt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(DEFAULT_MODEL, min_length=1, max_length=300, description="The model id the call names.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature, 0 (most deterministic) to 2.")
    max_tokens: int = Field(1024, gt=0, le=200_000, description="Most tokens the model may write; what a call's cost assumes.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling cut-off, when set.")
    stop: list[str] = Field(default_factory=list, max_length=4, description="Sequences that end the reply.")


def model_settings(**fields: Any) -> ModelSettings:
    """Build settings from loose values, with a message naming the field and its limits when one is wrong."""
    try:
        return ModelSettings(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"model setting {where}: {first['msg']} (got {first.get('input')!r})") from None


class FewShot(BaseModel):
    """One worked example shown to the model before the real input: its text is copied, not linked."""

    model_config = ConfigDict(frozen=True)

    input: str = Field(min_length=1, description="The user turn of the example.")
    output: str = Field(min_length=1, description="The assistant turn the model should imitate.")
    source: str | None = Field(None, description="Where the pair was copied from, e.g. 'demo-geo-compliance example 12'.")


class VersionContent(BaseModel):
    """Everything a version fixes; two versions with the same content are the same prompt."""

    system_template: str = Field("", max_length=MAX_TEMPLATE_CHARS, description="Jinja2 text rendered as the system prompt.")
    user_template: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS, description="Jinja2 text rendered as the user turn.")
    few_shot: list[FewShot] = Field(default_factory=list, max_length=MAX_FEW_SHOT)
    cot_instruction: str | None = Field(None, description="Appended to the system prompt when set (chain of thought).")
    settings: ModelSettings = Field(default_factory=ModelSettings)

    def digest(self) -> str:
        """Hash what the model would see and how it is called; where a few-shot pair came from is left out."""
        payload = {
            "system": self.system_template,
            "user": self.user_template,
            "few_shot": [[s.input, s.output] for s in self.few_shot],
            "cot": self.cot_instruction or "",
            "settings": self.settings.model_dump(mode="json"),
        }
        return hashlib.blake2b(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


class Template(BaseModel):
    id: int
    name: str
    description: str = ""
    task_type: str = DEFAULT_TASK
    created_at: str
    updated_at: str


class TemplateVersion(VersionContent):
    """One immutable version, as stored."""

    id: int
    template_id: int
    template: str = Field(description="The template's name.")
    version: int = Field(description="1, 2, ... in the order versions were made.")
    variables: list[str] = Field(default_factory=list, description="Variables the templates use, found by jinja2.meta.")
    commit_message: str = ""
    content_hash: str
    created_by: str | None = None
    created_at: str
    labels: list[str] = Field(default_factory=list, description="Labels pointing at this version now.")

    @property
    def ref(self) -> str:
        return f"{self.template}@{self.version}"


class LabelMove(BaseModel):
    """One move of a label, kept so a rollback can be seen and undone."""

    label: str
    from_version: int | None = Field(description="Where the label pointed before; None when it was new.")
    to_version: int
    moved_at: str
    moved_by: str | None = None


# ------------------------------------------------------------------------------------------ the sandbox


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with `*` and `**` checked so `{{ 'x' * 10**12 }}` is refused instead of filling memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 1000 and isinstance(left, int | float) and abs(left) > 1:
                raise SecurityError(f"{left} ** {right} is too large for a template")
            return operator.pow(left, right)
        size = _repeated_size(left, right) or _repeated_size(right, left)
        if size is not None and size > MAX_RENDERED_CHARS:
            raise SecurityError(f"repeating text or a list to {size:,} items is over the limit of {MAX_RENDERED_CHARS:,}")
        return operator.mul(left, right)


def _repeated_size(seq: Any, times: Any) -> int | None:
    if isinstance(seq, str | list | tuple) and isinstance(times, int) and not isinstance(times, bool):
        return len(seq) * times
    return None


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
_GLOBALS = frozenset(_ENV.globals)


def _parse(source: str, part: str) -> nodes.Template:
    try:
        return _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"syntax error in the {part} template, line {exc.lineno}: {exc.message}") from None


def _refuse_internals(tree: nodes.Template, part: str) -> None:
    """Refuse what the sandbox would refuse at render time, now, with the line it is on."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        if isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
            raise InvalidInput(
                f"the {part} template, line {node.lineno}: include, import and extends are not supported; "
                "a template is one self-contained text"
            )
        attr = node.attr if isinstance(node, nodes.Getattr) else _const_text(node.arg)
        if attr is not None and attr.startswith("_"):
            raise InvalidInput(
                f"the {part} template, line {node.lineno}, reaches for Python internals ({attr!r}): refused. "
                "Templates may use variables, filters and tests; the sandbox blocks anything starting with '_'"
            )


def _const_text(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def check_content(content: VersionContent) -> list[str]:
    """Parse both templates, refuse what a template may not do, and return the variables they use."""
    found: set[str] = set()
    for part, source in (("system", content.system_template), ("user", content.user_template)):
        tree = _parse(source, part)
        _refuse_internals(tree, part)
        for name in meta.find_undeclared_variables(tree) - _GLOBALS:
            found.add(check_variable(name, f"the {part} template"))
    return sorted(found)


EXAMPLE_VARIABLES = ("input", "reference", "system", "messages")
"""What a dataset example offers a template besides its metadata keys (which never override these)."""


def example_variables(example: Example) -> dict[str, Any]:
    """Return the variables a dataset example offers: its last user turn as `input`, its last assistant
    turn as `reference`, `system`, the turns before the last user turn as `messages`, and each metadata
    key that is a valid variable name. A part the example lacks is left out, so a template using it
    fails naming it rather than rendering an empty string."""
    out: dict[str, Any] = {
        key: value for key, value in example.metadata.items()
        if isinstance(key, str) and _VARIABLE.fullmatch(key) and key not in EXAMPLE_VARIABLES
    }
    users = [i for i, m in enumerate(example.messages) if m.role is Role.USER]
    last_user = users[-1] if users else len(example.messages)
    if users:
        out["input"] = example.messages[last_user].content
    answers = [m.content for m in example.messages if m.role is Role.ASSISTANT]
    if answers:
        out["reference"] = answers[-1]
    if example.system is not None:
        out["system"] = example.system
    out["messages"] = [{"role": m.role.value, "content": m.content} for m in example.messages[:last_user]]
    return out


def few_shot_of(example: Example, source: str) -> FewShot:
    """Copy an example's last user turn and last assistant turn as a few-shot pair."""
    found = example_variables(example)
    missing = [word for key, word in (("input", "user turn"), ("reference", "assistant turn")) if not found.get(key)]
    if missing:
        raise InvalidInput(f"{source} has no {' or '.join(missing)} to use as a few-shot pair")
    return FewShot(input=found["input"], output=found["reference"], source=source)


# ------------------------------------------------------------------------------------------ rendering


class ChatTurn(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str
    content: str


class TokenCount(BaseModel):
    system: int
    messages: list[int] = Field(description="Tokens in each turn's text, in order.")
    total: int = Field(description="The whole prompt with the chat format's per-turn overhead: what input is billed on.")
    counter: str = Field(description="Which tokenizer counted, and how far to trust it for other models.")


class CallCost(BaseModel):
    """What one call costs on one model, with the price row that produced it; `usd` None where none is known."""

    model: str
    label: str
    input_tokens: int
    output_tokens: int = Field(description="max_tokens, or the expected output length when one was given.")
    usd: float | None
    input_usd_per_1k: float | None = None
    output_usd_per_1k: float | None = None
    price_row: str | None = Field(None, description="The catalogue row used: base model id and price unit.")
    source: str | None = None
    effective: str | None = Field(None, description="The date the price took effect, when its source gives one.")
    verified: bool = False
    template_model: bool = Field(False, description="True for the model the version is set up for.")
    note: str = ""


class RenderedPrompt(BaseModel):
    """Exactly what the model is sent: the system text and the chat turns, with their size and cost."""

    template: str
    version: int
    version_id: int
    system: str | None = Field(description="The system prompt (chain of thought appended); None when there is none.")
    messages: list[ChatTurn] = Field(description="Few-shot pairs as user/assistant turns, then the rendered user turn.")
    variables: dict[str, Any] = Field(description="The variables the rendering was given.")
    settings: ModelSettings
    tokens: TokenCount
    costs: list[CallCost]


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    """Compile a template's text once: compiling costs 1 ms, most of rendering it, and a comparison renders
    each version for every input (a rendered Jinja2 template is safe to share between threads)."""
    return _ENV.from_string(source)


def _render_part(source: str, part: str, ref: str, variables: dict[str, Any]) -> str:
    try:
        compiled = _compiled(source)
        pieces: list[str] = []
        size = 0
        for piece in compiled.generate(**variables):
            size += len(piece)
            if size > MAX_RENDERED_CHARS:
                raise InvalidInput(f"{ref}: the {part} template renders to more than {MAX_RENDERED_CHARS:,} characters")
            pieces.append(piece)
    except UndefinedError as exc:
        raise InvalidInput(_undefined_message(exc, part, ref, variables)) from None
    except SecurityError as exc:
        raise InvalidInput(
            f"{ref}: the {part} template was refused by the sandbox ({exc}). Templates may use variables, filters "
            "and tests; Python internals and changing the variables are off limits"
        ) from None
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"{ref}: syntax error in the {part} template, line {exc.lineno}: {exc.message}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise InvalidInput(f"{ref}: the {part} template failed to render: {exc}") from None
    return "".join(pieces).strip()


def _undefined_message(exc: UndefinedError, part: str, ref: str, variables: dict[str, Any]) -> str:
    given = ", ".join(sorted(variables)) or "none"
    missing = re.fullmatch(r"'([^']+)' is undefined", str(exc))
    if missing:
        return (
            f"{ref}: variable {missing.group(1)!r} used in the {part} template is not defined (given: {given}); "
            f"pass it with --var {missing.group(1)}=... or render on a dataset example that has it"
        )
    return f"{ref}: the {part} template uses something that is not defined: {exc} (given: {given})"


def render_messages(version: TemplateVersion, variables: dict[str, Any]) -> tuple[str | None, list[ChatTurn]]:
    """Render a version: the system text (chain of thought appended) and the turns the model sees."""
    for name in variables:
        check_variable(name, "the variables given")
    system = _render_part(version.system_template, "system", version.ref, variables)
    if version.cot_instruction:
        system = f"{system}\n\n{version.cot_instruction.strip()}" if system else version.cot_instruction.strip()
    turns: list[ChatTurn] = []
    for shot in version.few_shot:
        turns += [ChatTurn(role="user", content=shot.input), ChatTurn(role="assistant", content=shot.output)]
    turns.append(ChatTurn(role="user", content=_render_part(version.user_template, "user", version.ref, variables)))
    return (system or None), turns


def render_prompt(version: TemplateVersion, variables: dict[str, Any], *, expected_output_tokens: int | None = None) -> RenderedPrompt:
    """Render a version and count and cost what it sends."""
    system, turns = render_messages(version, variables)
    tokens = count_prompt(system, turns)
    output_tokens = expected_output_tokens if expected_output_tokens is not None else version.settings.max_tokens
    if output_tokens < 0:
        raise InvalidInput(f"the expected output length must be 0 or more tokens, not {output_tokens}")
    return RenderedPrompt(
        template=version.template, version=version.version, version_id=version.id, system=system, messages=turns,
        variables=variables, settings=version.settings, tokens=tokens,
        costs=call_costs(tokens.total, output_tokens, version.settings.model),
    )


COUNTER_WORDS = (
    "cl100k_base via bpe-openai: exact for gpt-4 and gpt-3.5, an estimate for Nova, Claude and Llama "
    "(their tokenizers are not published; Llama 3's is close)"
)


def count_prompt(system: str | None, turns: list[ChatTurn]) -> TokenCount:
    """Count a prompt's tokens per part and in all, as the OpenAI cookbook counts a chat request."""
    from workbench.domain.tokens import count_tokens, openai_chat_tokens

    chat = ([{"role": "system", "content": system}] if system else []) + [t.model_dump() for t in turns]
    return TokenCount(
        system=count_tokens(system or ""), messages=[count_tokens(t.content) for t in turns],
        total=openai_chat_tokens(chat), counter=COUNTER_WORDS,
    )


# ------------------------------------------------------------------------------------------ cost


class InferencePrice(BaseModel):
    """An on-demand per-token price row from the catalogue."""

    model: str = Field(description="The id a call names, e.g. amazon.nova-lite-v1:0.")
    label: str
    input_per_1k: float
    output_per_1k: float
    row: str
    source: str
    effective: str | None
    verified: bool


def inference_prices() -> list[InferencePrice]:
    """Return every model the catalogue has on-demand input and output prices for."""
    from workbench.domain.catalogue import TARGETS
    from workbench.domain.pricing import on_demand_prices

    rows: list[InferencePrice] = []
    for target in TARGETS:
        for spec in target.base_models:
            rates = on_demand_prices(spec)
            if rates is None:
                continue
            price_in, price_out = rates
            rows.append(InferencePrice(
                model=_CONTEXT_SUFFIX.sub("", spec.id), label=spec.label, input_per_1k=price_in.usd,
                output_per_1k=price_out.usd, row=f"{target.id}/{spec.id}: on-demand inference, input and output per 1K tokens",
                source=price_in.source, effective=price_in.effective.isoformat() if price_in.effective else None,
                verified=price_in.verified and price_out.verified,
            ))
    return rows


_CONTEXT_SUFFIX = re.compile(r":\d+k$", re.IGNORECASE)
_REGION_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|ca|jp|au)\.", re.IGNORECASE)


def comparable_model_id(model: str) -> str:
    """Reduce a model id to what decides its price: no cross-region prefix, context suffix or ':0' revision."""
    model = _REGION_PREFIX.sub("", model.strip().lower())
    return re.sub(r"(:\d+)?$", "", _CONTEXT_SUFFIX.sub("", model))


def price_for(model: str, prices: Iterable[InferencePrice] | None = None) -> InferencePrice | None:
    """Return the price row for a model id (`us.amazon.nova-lite-v1:0` finds Nova Lite), or None."""
    wanted = comparable_model_id(model)
    return next((p for p in (prices if prices is not None else inference_prices()) if comparable_model_id(p.model) == wanted), None)


def call_costs(input_tokens: int, output_tokens: int, model: str) -> list[CallCost]:
    """Cost one call on the version's model and on every priced model, saying which price row was used.

    cost = input tokens x input price + output tokens x output price. The version's own model comes
    first; when the catalogue has no price for it, its line says so and carries no number.
    """
    prices = inference_prices()
    own = price_for(model, prices)
    costs = [_cost(own, input_tokens, output_tokens, template_model=True) if own else CallCost(
        model=model, label=model, input_tokens=input_tokens, output_tokens=output_tokens, usd=None, template_model=True,
        note=f"no on-demand price in the catalogue for {model!r}: cost not computed (priced: "
             f"{', '.join(p.model for p in prices)})",
    )]
    costs += [_cost(p, input_tokens, output_tokens, template_model=False) for p in prices if p is not own]
    return costs


def _cost(price: InferencePrice, input_tokens: int, output_tokens: int, *, template_model: bool) -> CallCost:
    usd = input_tokens * price.input_per_1k / 1000 + output_tokens * price.output_per_1k / 1000
    return CallCost(
        model=price.model, label=price.label, input_tokens=input_tokens, output_tokens=output_tokens, usd=round(usd, 8),
        input_usd_per_1k=price.input_per_1k, output_usd_per_1k=price.output_per_1k, price_row=price.row,
        source=price.source, effective=price.effective, verified=price.verified, template_model=template_model,
        note="" if price.verified else "second-hand price: confirm it on the source page",
    )


# ------------------------------------------------------------------------------------------ diff


class PartDiff(BaseModel):
    part: str = Field(description="'system' or 'messages[i] (role)'.")
    a: str | None
    b: str | None
    changed: bool
    diff: list[str] = Field(description="Unified diff lines (difflib), empty when the part is the same.")


class TemplateDiff(BaseModel):
    a: RenderedPrompt
    b: RenderedPrompt
    parts: list[PartDiff]
    settings: dict[str, list[Any]] = Field(description="Each model setting that differs: [in a, in b].")


def diff_renderings(a: RenderedPrompt, b: RenderedPrompt) -> TemplateDiff:
    """Line-diff two renderings part by part: the system text, then each turn at the same position."""
    ref_a, ref_b = f"{a.template}@{a.version}", f"{b.template}@{b.version}"
    parts = [_part_diff("system", a.system, b.system, ref_a, ref_b)]
    for i in range(max(len(a.messages), len(b.messages))):
        turn_a = a.messages[i] if i < len(a.messages) else None
        turn_b = b.messages[i] if i < len(b.messages) else None
        role = (turn_a or turn_b).role  # type: ignore[union-attr]  # one of them exists within the range
        parts.append(_part_diff(f"messages[{i}] ({role})", turn_a and turn_a.content, turn_b and turn_b.content, ref_a, ref_b))
    dumped_a, dumped_b = a.settings.model_dump(mode="json"), b.settings.model_dump(mode="json")
    settings = {k: [dumped_a[k], dumped_b[k]] for k in dumped_a if dumped_a[k] != dumped_b[k]}
    return TemplateDiff(a=a, b=b, parts=parts, settings=settings)


def _part_diff(part: str, a: str | None, b: str | None, ref_a: str, ref_b: str) -> PartDiff:
    lines = list(difflib.unified_diff(
        (a or "").splitlines(), (b or "").splitlines(), fromfile=f"{ref_a} {part}", tofile=f"{ref_b} {part}", lineterm="",
    ))
    return PartDiff(part=part, a=a, b=b, changed=a != b, diff=lines)
