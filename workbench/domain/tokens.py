"""Count tokens offline, and say for each target how exact the count is.

OpenAI's own BPE encodings ship inside the `bpe-openai` wheel, so counting works with no network
(tiktoken downloads its tables on first use and fails offline). Targets whose tokenizer is not
published get a labelled estimate or proxy instead, so a page never shows a guess as a fact.

The counters are defined here; which one a target (and a base model name) uses is the target
catalogue's call (`workbench.domain.catalogue`, its `tokenizer` and `model_rules`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import InvalidInput

if TYPE_CHECKING:
    import bpe_openai

# bpe-openai refuses one call over 200,000 tokens or 1,000,000 characters. A character is at most
# 4 UTF-8 bytes and a token at least one byte, so 40,000 characters can never exceed the token cap.
_CHUNK_CHARS = 40_000
# Texts up to this long go through a small LRU cache (at most 4,096 entries, a few MB).
_CACHED_CHARS = 2_000

# From openai/openai-cookbook `Chat_finetuning_data_prep.ipynb`, `num_tokens_from_messages`.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMER_TOKENS = 3


@lru_cache(maxsize=8)
def _encoder(encoding: str) -> bpe_openai.Encoding:
    """Load an encoding once per process: building the rank tables takes about 0.1 s.

    bpe_openai is imported here, not at the top: importing it takes seconds, and the target catalogue
    (read by every CLI command for its choices) needs the counters' descriptions, not the tables.
    """
    import bpe_openai

    try:
        return bpe_openai.get_encoding(encoding)
    except KeyError as exc:  # bpe_openai.UnsupportedModelError is a KeyError
        raise InvalidInput(
            f"Unknown token encoding {encoding!r}; use one of {', '.join(bpe_openai.list_encoding_names())}."
        ) from exc


def preload(encoding: str = "cl100k_base") -> None:
    """Build an encoding's tables now, before a worker process is forked.

    The tables load lazily (see `_encoder`); a worker forked before they exist would build its own
    copy, a second or more of CPU per import, while one forked after inherits them for free.
    """
    _encoder(encoding)


def _chunks(text: str) -> Iterable[str]:
    """Yield pieces of at most `_CHUNK_CHARS`, cut before whitespace where possible.

    The BPE pre-tokenizer attaches a leading space to the following word, so a cut just before a
    space is almost always a token boundary: a long text's count stays exact or off by a token.
    """
    start = 0
    while len(text) - start > _CHUNK_CHARS:
        end = start + _CHUNK_CHARS
        cut = max(
            text.rfind(" ", start + _CHUNK_CHARS // 2, end), text.rfind("\n", start + _CHUNK_CHARS // 2, end)
        )
        if cut <= start:
            cut = end
        yield text[start:cut]
        start = cut
    yield text[start:]


def _count(enc: bpe_openai.Encoding, text: str) -> int:
    """Count one piece, through the Rust backend's `count` when this bpe-openai version has it.

    `count` skips building the token list and is about twice as fast; it is not public API, so any
    version without it (or text it refuses) falls back to `encode_ordinary`, and a test checks the
    two agree.
    """
    backend = getattr(enc, "_backend", None)
    if backend is not None and hasattr(backend, "count"):
        try:
            return int(backend.count(text))
        except (UnicodeEncodeError, ValueError, TypeError):
            pass
    return len(enc.encode_ordinary(text))


@lru_cache(maxsize=4096)
def _count_short(text: str, encoding: str) -> int:
    """Remember counts of short texts: roles, names and a dataset's shared system prompt repeat on every record."""
    return _count(_encoder(encoding), text)


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """Count BPE tokens in `text`, treating special-token text like `<|endoftext|>` as plain text.

    Dataset text is data, never control tokens, so special tokens are not honoured (tiktoken's
    `encode` would raise on them instead).
    """
    if not text:
        return 0
    if len(text) <= _CACHED_CHARS:
        return _count_short(text, encoding)
    enc = _encoder(encoding)
    if len(text) <= _CHUNK_CHARS:
        return _count(enc, text)
    return sum(_count(enc, piece) for piece in _chunks(text))


class CountMethod(StrEnum):
    """How a `TokenCounter` turns text into a number."""

    BPE = "bpe"
    CHARS = "chars"


class TokenCounter(BaseModel):
    """Describe how tokens are counted for one target, and how far to trust the number."""

    model_config = ConfigDict(frozen=True)

    method: CountMethod
    encoding: str | None = Field(
        default=None, description="BPE encoding name (cl100k_base, o200k_base) when method is 'bpe'."
    )
    chars_per_token: int | None = Field(
        default=None, description="Characters per token when method is 'chars' (count = len(text) // this)."
    )
    exact: bool = Field(
        description="True when this is the target model's own tokenizer; False for estimates and proxies."
    )
    label: str = Field(description="Short text to show next to a count, e.g. 'cl100k_base (exact)'.")
    basis: str = Field(
        description="Why this counter stands for the target's tokenizer, and where that comes from."
    )

    def count(self, text: str) -> int:
        """Count one piece of text the way this target's limit is checked."""
        if self.method is CountMethod.CHARS:
            return len(text) // (self.chars_per_token or 1)
        return count_tokens(text, self.encoding or "cl100k_base")


O200K_EXACT = TokenCounter(
    method=CountMethod.BPE,
    encoding="o200k_base",
    exact=True,
    label="o200k_base (exact)",
    basis="gpt-4o, gpt-4o-mini and later OpenAI models use o200k_base (tiktoken's model table).",
)
CL100K_EXACT = TokenCounter(
    method=CountMethod.BPE,
    encoding="cl100k_base",
    exact=True,
    label="cl100k_base (exact)",
    basis="gpt-3.5-turbo and gpt-4 use cl100k_base.",
)
HAIKU_ESTIMATE = TokenCounter(
    method=CountMethod.CHARS,
    chars_per_token=3,
    exact=False,
    label="estimate: chars/3 (AWS sample validator)",
    basis=(
        "Claude's tokenizer is not published. The AWS sample validator for Claude 3 Haiku fine-tuning "
        "checks its 32,000-token limit as the sum of len(text) // 3 over the system prompt and every "
        "message, so the same estimate predicts what that check will say."
    ),
)
# Llama, Titan and Nova: AWS's text-data guide suggests ~6 characters per token, but that estimate
# counts about a third fewer tokens than a real BPE tokenizer does on English text, so a record the
# estimate passes can still overrun Titan's 4,096-token limit, which fails the job only after it starts
# (aws-samples/amazon-bedrock-workshop#224). cl100k_base errs the other way, and for Llama 3 it is
# close to exact: Llama 3's 128k vocabulary is built on tiktoken's 100k one.
LLAMA_PROXY = TokenCounter(
    method=CountMethod.BPE,
    encoding="cl100k_base",
    exact=False,
    label="cl100k_base (proxy for the Llama 3 tokenizer)",
    basis=(
        "Llama 3's tokenizer extends tiktoken's 100k vocabulary to 128k, so cl100k_base counts are close; "
        "chosen over AWS's ~6 chars/token rule, which undercounts."
    ),
)
TITAN_PROXY = TokenCounter(
    method=CountMethod.BPE,
    encoding="cl100k_base",
    exact=False,
    label="cl100k_base (proxy; Titan's tokenizer is not published)",
    basis=(
        "Titan's tokenizer is not published. cl100k_base counts more tokens than AWS's ~6 chars/token rule, "
        "so records near the 4,096-token limit are caught before a job fails mid-run."
    ),
)
NOVA_PROXY = TokenCounter(
    method=CountMethod.BPE,
    encoding="cl100k_base",
    exact=False,
    label="cl100k_base (proxy; Nova's tokenizer is not published)",
    basis="Nova's tokenizer is not published and no per-record limit is stated; counts are for sizing and cost only.",
)


def _value_text(value: Any) -> str:
    """Return the text of a message value that reaches the model; numbers such as `weight` do not."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list):
        # function_call is an object the model reads as JSON text.
        try:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            return str(value)
    return ""


def openai_chat_tokens(messages: list[dict[str, Any]], encoding: str = "cl100k_base") -> int:
    """Count a chat example's tokens the way the OpenAI cookbook's `num_tokens_from_messages` does.

    3 tokens per message, the tokens of every value (role included), 1 more when a `name` is set, and
    3 for the reply primer. Non-text values (`weight`) are skipped where the cookbook would crash on
    them; objects (`function_call`) count as their JSON text. Entries that are not objects are ignored.
    """
    total = _REPLY_PRIMER_TOKENS
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        total += _TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += count_tokens(_value_text(value), encoding)
            if key == "name":
                total += _TOKENS_PER_NAME
    return total
