from __future__ import annotations

import bpe_openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain.catalogue import get_target
from workbench.domain.tokens import (
    CL100K_EXACT,
    HAIKU_ESTIMATE,
    LLAMA_PROXY,
    NOVA_PROXY,
    O200K_EXACT,
    TITAN_PROXY,
    count_tokens,
    openai_chat_tokens,
)
from workbench.errors import InvalidInput


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
@pytest.mark.parametrize(
    "text",
    ["hello world", "Fine-tune me, 3 times!", "naïve café 東京 🤖", "def f(x):\n    return x * 2\n"],
)
def test_count_tokens_matches_the_encoding(text, encoding):
    assert count_tokens(text, encoding) == len(bpe_openai.get_encoding(encoding).encode_ordinary(text))


def test_count_tokens_of_empty_text_is_zero():
    assert count_tokens("") == 0


def test_count_tokens_defaults_to_cl100k():
    text = "The quick brown fox jumps over the lazy dog."
    assert count_tokens(text) == count_tokens(text, "cl100k_base")


def test_special_token_text_is_counted_as_plain_text():
    # tiktoken's encode() raises on this; dataset text is data, never a control token.
    assert count_tokens("<|endoftext|>") == 7


def test_lone_surrogate_does_not_raise():
    assert count_tokens("abc\ud800def") > 0


def test_long_text_is_counted_in_chunks_without_drift():
    text = "The model learns from every example. " * 3_000  # ~111k chars, past one chunk
    assert count_tokens(text) == len(bpe_openai.get_encoding("cl100k_base").encode_ordinary(text))


def test_text_past_the_library_limit_is_still_counted():
    # bpe-openai refuses a single call with 1,000,000 characters or more.
    # "word", then 249,999 x " word", then the trailing space on its own.
    assert count_tokens("word " * 250_000) == 250_001


def test_unknown_encoding_is_invalid_input():
    with pytest.raises(InvalidInput, match="Unknown token encoding 'p99k'"):
        count_tokens("hi", "p99k")


@pytest.mark.parametrize(
    ("counter", "exact", "label"),
    [
        (O200K_EXACT, True, "o200k_base (exact)"),
        (CL100K_EXACT, True, "cl100k_base (exact)"),
        (HAIKU_ESTIMATE, False, "estimate: chars/3 (AWS sample validator)"),
        (LLAMA_PROXY, False, "cl100k_base (proxy for the Llama 3 tokenizer)"),
        (TITAN_PROXY, False, "cl100k_base (proxy; Titan's tokenizer is not published)"),
        (NOVA_PROXY, False, "cl100k_base (proxy; Nova's tokenizer is not published)"),
    ],
)
def test_counters_say_how_exact_they_are(counter, exact, label):
    assert counter.exact is exact
    assert counter.label == label
    assert counter.basis


@pytest.mark.parametrize(("text", "expected"), [("", 0), ("ab", 0), ("abc", 1), ("abcdefg", 2)])
def test_haiku_estimate_is_chars_floor_divided_by_three(text, expected):
    assert HAIKU_ESTIMATE.count(text) == expected


def test_bpe_counters_use_their_encoding():
    text = "Proxy counts for Bedrock models."
    assert TITAN_PROXY.count(text) == count_tokens(text, "cl100k_base")
    assert O200K_EXACT.count(text) == count_tokens(text, "o200k_base")


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        (None, "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4.1-mini-2025-04-14", "o200k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4", "cl100k_base"),
        ("davinci-002", "cl100k_base"),
        ("GPT-3.5-TURBO-0613", "cl100k_base"),
        ("gpt-4o", "o200k_base"),
    ],
)
def test_the_catalogue_picks_the_openai_model_encoding(model, encoding):
    # The chooser by model-name prefix lives in the target catalogue's model rules.
    counter = get_target("openai").facts(model).tokenizer
    assert counter.encoding == encoding
    assert counter.exact


def test_openai_chat_tokens_follows_the_cookbook_formula():
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi there", "name": "bob"},
        {"role": "assistant", "content": "Hello."},
    ]
    values = ["system", "You are terse.", "user", "Hi there", "bob", "assistant", "Hello."]
    expected = 3 * 3 + sum(count_tokens(v) for v in values) + 1 + 3
    assert openai_chat_tokens(messages) == expected


def test_openai_chat_tokens_of_no_messages_is_the_reply_primer():
    assert openai_chat_tokens([]) == 3


def test_openai_chat_tokens_skips_weights_and_non_objects():
    base = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    weighted = [base[0], {**base[1], "weight": 1}, "not a message"]
    assert openai_chat_tokens(weighted) == openai_chat_tokens(base)


def test_openai_chat_tokens_counts_function_calls_as_json():
    call = {"name": "lookup", "arguments": '{"q": "x"}'}
    with_call = [{"role": "assistant", "content": "", "function_call": call}]
    assert openai_chat_tokens(with_call) > openai_chat_tokens([{"role": "assistant", "content": ""}])


def test_openai_chat_tokens_uses_the_given_encoding():
    messages = [{"role": "user", "content": "naïve café 東京 🤖 " * 20}]
    assert openai_chat_tokens(messages, "o200k_base") != openai_chat_tokens(messages, "cl100k_base")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=3000))
def test_fast_count_agrees_with_encoding(text: str) -> None:
    for name in ("cl100k_base", "o200k_base"):
        assert count_tokens(text, name) == len(bpe_openai.get_encoding(name).encode_ordinary(text))
