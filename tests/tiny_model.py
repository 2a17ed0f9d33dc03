"""Build a tiny causal LM and a tokenizer trained on the spot, saved to a folder: no download anywhere.

The model is a 2-layer Llama with a hidden size of 32 (random weights); the tokenizer is a word-level
one trained on the conversations themselves, with the ChatML markers as special tokens and no chat
template, so the training script's default template is what renders them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]

_COLOURS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black", "blood": "red", "sun": "yellow",
            "night": "dark", "cloud": "grey"}


def conversations(count: int = 32, system: bool = True) -> list[dict[str, Any]]:
    """Return OpenAI-format records with a fixed answer per question, so a tiny model learns them fast."""
    items = sorted(_COLOURS.items())
    records = []
    for index in range(count):
        thing, colour = items[index % len(items)]
        messages = [{"role": "system", "content": "answer with one word"}] if system else []
        messages += [{"role": "user", "content": f"what colour is the {thing} ?"},
                     {"role": "assistant", "content": f"the {thing} is {colour}"}]
        records.append({"messages": messages})
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def build_tiny_model(folder: Path, texts: list[str] | None = None, hidden: int = 32, layers: int = 2, init_range: float = 0.2,
                     seed: int = 0) -> Path:
    """Save a random tiny Llama and a word-level tokenizer for `texts` (default: the test conversations)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if texts is None:
        texts = [m["content"] for r in conversations() for m in r["messages"]] + ["system user assistant"]
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, initializer_range=init_range, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
