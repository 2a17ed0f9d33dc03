"""Distillation, the pure part: the seed-topic instruction, reading the teacher's list of inputs, and the cost estimate.

A teacher (a strong model) answers inputs through a template, and its answers become training
data. Inputs come from a dataset, or from seed topics: the teacher is first asked to write
`count` distinct, realistic user inputs per topic (`SEED_SYSTEM`, `SEED_USER`), one per line or as
a JSON list, and `parse_inputs` reads whichever it chose (numbering, bullets, quotes and code
fences stripped; a JSON list cut short by the token limit keeps its complete items).

The estimate is made before any call: per call, the prompt's tokens as rendered (exact where the
input is known; in seed mode the answers' prompts are bounded by what the first stage may write),
plus the output: `max_tokens` as the upper bound, and a typical length (the mean reference answer
where there are references). Both are priced at the catalogue's on-demand rate for the teacher.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from workbench.domain.comparison import CLIENTS
from workbench.domain.templates import InferencePrice
from workbench.errors import InvalidInput

SEED_TEMPLATE = "distill-seed-inputs"
"""The template that asks for inputs per topic; created from the text below on first use, then edited like any other."""
SEED_SYSTEM = (
    "You write realistic test inputs for an assistant. Each input is something a real user would type: varied in "
    "length, wording, tone and detail, and never a copy of another. Write only the inputs, with no commentary."
)
SEED_USER = (
    "Topic: {{ topic }}\n\n"
    "Write {{ count }} distinct, realistic user inputs about this topic. Put each input on its own line, with no "
    "numbering, or give them as a JSON list of strings."
)
SEED_SETTINGS = {"temperature": 1.0, "max_tokens": 4096}
"""Varied inputs want sampling; 4096 tokens hold `MAX_PER_TOPIC` inputs of a typical length."""
MAX_PER_TOPIC = 50
MAX_TOPICS = 500
MAX_TOPIC_CHARS = 500
TYPICAL_INPUT_TOKENS = 60
"""The length assumed for one written input before any is written (a short paragraph)."""
MAX_INPUT_CHARS = 20_000

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)
_MARKER = re.compile(r"^\s*(?:(?:\d{1,3}[.):]|[a-z][.)])\s+|[-*•–]\s+|#{1,6}\s+)")
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_QUOTES = {('"', '"'), ("'", "'"), ("“", "”"), ("«", "»")}
_BEDROCK_ID = re.compile(r"^(?:[a-z]{2,4}\.)?(?:amazon|anthropic|meta|cohere|mistral|ai21|deepseek|writer|qwen)\.")
_OPENAI_ID = re.compile(r"^(?:gpt-|chatgpt-|o[1-9](?:-|$)|ft:)")
_PREAMBLE = re.compile(r"^(here\s+(are|is)|sure\b|certainly\b|okay\b|ok\b|below\s+are)", re.IGNORECASE)


# ------------------------------------------------------------------------------------------ seeds


def parse_topics(text: str) -> list[str]:
    """Read seed topics, one per line: blank lines and `#` comments skipped, repeats dropped, each checked."""
    topics: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        topic = " ".join(raw.split())
        if not topic or topic.startswith("#"):
            continue
        if len(topic) > MAX_TOPIC_CHARS:
            raise InvalidInput(f"seed topic on line {number} is {len(topic):,} characters; keep a topic under {MAX_TOPIC_CHARS}")
        if _key(topic) not in seen:
            seen.add(_key(topic))
            topics.append(topic)
    return topics


def check_seeds(topics: Sequence[str], per_topic: int) -> list[str]:
    """Return the topics trimmed and de-duplicated, or say what is wrong with them or with `per_topic`."""
    cleaned = parse_topics("\n".join(topics))
    if not cleaned:
        raise InvalidInput("no seed topics given: write one topic per line (lines starting with # are skipped)")
    if len(cleaned) > MAX_TOPICS:
        raise InvalidInput(f"{len(cleaned):,} seed topics; at most {MAX_TOPICS} per run")
    if isinstance(per_topic, bool) or not 1 <= per_topic <= MAX_PER_TOPIC:
        raise InvalidInput(f"inputs per topic must be 1 to {MAX_PER_TOPIC}, not {per_topic}")
    return cleaned


class ParsedInputs(BaseModel):
    """The inputs read from one reply, and what was wrong with it when something was."""

    inputs: list[str]
    problem: str | None = Field(None, description="Why the reply gave fewer inputs than asked, or none.")


def parse_inputs(reply: str, count: int) -> ParsedInputs:
    """Read up to `count` distinct inputs from a teacher's reply: a JSON list, or one input per line."""
    text = reply.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    problem = None
    found: list[str] | None = None
    if text.startswith(("[", "{")):
        found, problem = _json_items(text)
    if found is None:
        found = _lines(text)
    kept = _distinct(found)
    if not kept:
        return ParsedInputs(inputs=[], problem=problem or "no inputs found in the reply")
    if len(kept) > count:
        kept = kept[:count]
    elif len(kept) < count and problem is None:
        problem = f"asked for {count} inputs, the reply held {len(kept)} distinct ones"
    return ParsedInputs(inputs=kept, problem=problem)


def _json_items(text: str) -> tuple[list[str] | None, str | None]:
    """The strings of a JSON list (or of the first list in an object); a list cut short keeps its complete strings."""
    try:
        value = json.loads(text)
    except ValueError:
        if not text.startswith("["):
            return None, None
        salvaged = [_unescape(m.group(1)) for m in _STRING.finditer(text)]
        return salvaged, "the JSON list was cut short (the token limit?); its complete items were kept"
    if isinstance(value, dict):
        value = next((v for v in value.values() if isinstance(v, list)), None)
    if not isinstance(value, list):
        return None, None
    items: list[str] = []
    for item in value:
        if isinstance(item, str):
            items.append(item)
        elif isinstance(item, dict):
            text_value = next((item[k] for k in ("input", "text", "question", "prompt", "message") if isinstance(item.get(k), str)), None)
            if text_value is not None:
                items.append(text_value)
    return items, None


def _unescape(body: str) -> str:
    try:
        return str(json.loads(f'"{body}"'))
    except ValueError:
        return body


def _lines(text: str) -> list[str]:
    out: list[str] = []
    lines = [line for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        stripped = line.strip()
        if index == 0 and len(lines) > 1 and _PREAMBLE.match(stripped) and stripped.endswith(":"):
            continue  # "Here are 5 inputs:" introduces the list, it is not one of them
        stripped = _MARKER.sub("", stripped, count=1).strip()
        if len(stripped) >= 2 and (stripped[0], stripped[-1]) in _QUOTES:
            stripped = stripped[1:-1].strip()
        if stripped:
            out.append(stripped)
    return out


def _distinct(items: Iterable[str], seen: set[str] | None = None) -> list[str]:
    seen = set() if seen is None else seen
    out: list[str] = []
    for item in items:
        text = item.strip()[:MAX_INPUT_CHARS]
        key = _key(text)
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def _key(text: str) -> str:
    """What makes two inputs the same: their words, ignoring case, spacing and end punctuation."""
    return " ".join(text.casefold().split()).rstrip(".!?")


def dedupe_across(per_topic: Sequence[Sequence[str]]) -> list[list[str]]:
    """Drop inputs already written for an earlier topic, keeping each topic's order."""
    seen: set[str] = set()
    return [_distinct(items, seen) for items in per_topic]


# ------------------------------------------------------------------------------------------ estimate


class StageEstimate(BaseModel):
    """The calls of one stage and their tokens, before any call is made."""

    stage: str = Field(description="answers (the teacher answers the inputs) or inputs (seed mode: the teacher writes them).")
    calls: int
    input_tokens: int = Field(description="Prompt tokens over all calls, as rendered (typical where the input is not written yet).")
    input_tokens_high: int = Field(description="The most prompt tokens the calls can take; equal to input_tokens when exact.")
    exact_input: bool = Field(description="True when every prompt was rendered from its real input.")
    output_tokens_typical: int = Field(description="Expected output tokens over all calls.")
    output_tokens_bound: int = Field(description="max_tokens x calls: the most the calls can write.")
    typical_from: str = Field(description="How the typical output length was measured.")
    unrenderable: int = Field(0, description="Inputs the template cannot render on: they fail without a call, at no cost.")
    first_error: str | None = None


def stage_estimate(stage: str, prompt_tokens: Sequence[int], *, max_tokens: int, typical_output: float | None,
                   typical_from: str, extra_input_typical: int = 0, extra_input_high: int = 0, unrenderable: int = 0,
                   first_error: str | None = None) -> StageEstimate:
    """Sum one stage's calls: the prompts' own tokens (plus, per call, text not written yet), and their output.

    With no typical length to go by, the typical output is taken at the bound, so the low figure
    never undercounts what nobody measured.
    """
    calls = len(prompt_tokens)
    typical = max_tokens if typical_output is None else min(max_tokens, max(0, round(typical_output)))
    return StageEstimate(
        stage=stage, calls=calls, input_tokens=sum(prompt_tokens) + extra_input_typical * calls,
        input_tokens_high=sum(prompt_tokens) + extra_input_high * calls, exact_input=extra_input_high == 0,
        output_tokens_typical=typical * calls, output_tokens_bound=max_tokens * calls,
        typical_from=typical_from if typical_output is not None else "no reference answers to measure: taken at max_tokens",
        unrenderable=unrenderable, first_error=first_error,
    )


class CostEstimate(BaseModel):
    """What a distillation will call and cost, low (typical output) to high (every call writes max_tokens)."""

    teacher: str
    model: str
    stages: list[StageEstimate]
    calls: int
    input_tokens: int
    input_tokens_high: int
    output_tokens_typical: int
    output_tokens_bound: int
    cost_low_usd: float | None = Field(description="Typical prompts and typical output at the teacher's price; None when unpriced.")
    cost_high_usd: float | None = Field(description="The most the run can cost; None when unpriced.")
    price_row: str | None = Field(None, description="The catalogue row used: base model id and price unit.")
    price_source: str | None = None
    price_verified: bool = False
    note: str = ""


def cost_estimate(teacher: str, model: str, stages: Sequence[StageEstimate], price: InferencePrice | None) -> CostEstimate:
    """Price the stages at the teacher's on-demand rate: low = typical tokens, high = the bounds."""
    input_typical = sum(s.input_tokens for s in stages)
    input_high = sum(s.input_tokens_high for s in stages)
    output_typical = sum(s.output_tokens_typical for s in stages)
    output_bound = sum(s.output_tokens_bound for s in stages)
    low = high = None
    note = ""
    if price is None:
        note = (f"no on-demand price in the catalogue for {model!r}: tokens are counted, the cost is not "
                "(a local or self-hosted model, or one the catalogue does not list)")
    else:
        low = round((input_typical * price.input_per_1k + output_typical * price.output_per_1k) / 1000, 6)
        high = round((input_high * price.input_per_1k + output_bound * price.output_per_1k) / 1000, 6)
        if not price.verified:
            note = "second-hand price: confirm it on the source page"
    return CostEstimate(
        teacher=teacher, model=model, stages=list(stages), calls=sum(s.calls for s in stages), input_tokens=input_typical,
        input_tokens_high=input_high, output_tokens_typical=output_typical, output_tokens_bound=output_bound,
        cost_low_usd=low, cost_high_usd=high, price_row=price.row if price else None, price_source=price.source if price else None,
        price_verified=bool(price and price.verified), note=note,
    )


def format_usd(amount: float | None) -> str:
    """Dollars to a precision that shows a small run's cost: a few hundred tokens cost fractions of a cent."""
    if amount is None:
        return "unknown"
    return f"${amount:,.6f}" if 0 < abs(amount) < 0.01 else f"${amount:,.4f}"


def parse_teacher(text: str) -> tuple[str, str]:
    """Read `CLIENT:MODEL`, saying what the form is when it is not that."""
    client, _, model = text.strip().partition(":")
    if client not in CLIENTS or not model.strip():
        raise InvalidInput(
            f"teacher {text!r}: write it as CLIENT:MODEL, with CLIENT one of {', '.join(CLIENTS)} "
            "(e.g. anthropic:claude-sonnet-4-5 or openai:gpt-4o)"
        )
    return client, model.strip()


def client_for_model(model: str) -> str | None:
    """The client that serves a model id by its form, or None when the form does not say (a local model, say).

    Bedrock ids name their provider (`amazon.nova-lite-v1:0`, `us.anthropic.claude-...`); Anthropic's
    own API takes `claude-*`; OpenAI's takes `gpt-*`, the `o1`/`o3` families and fine-tunes (`ft:`).
    """
    text = model.strip().lower()
    if _BEDROCK_ID.match(text):
        return "bedrock"
    if text.startswith("claude-"):
        return "anthropic"
    if _OPENAI_ID.match(text):
        return "openai"
    return None


def client_mismatch(client: str, model: str) -> str | None:
    """Say why `client` cannot serve `model` (its id belongs to another provider), or None when it may."""
    wanted = client_for_model(model)
    if wanted is None or wanted == client or client == "local":  # a local server answers to any name it was given
        return None
    return (f"{model!r} is a {wanted} model id, but the teacher client is {client}: {client} cannot serve it, and its "
            f"price would be {wanted}'s. Pick the {wanted} client, or a model {client} serves")
