"""A local model, base or fine-tuned (a LoRA adapter folder), answering through transformers in this process.

The request's `model` is a folder: either a full model (config.json, weights, tokenizer) or a PEFT adapter
(adapter_config.json, as the local trainer writes to `runs/<job>/adapter/`), whose base model is read from
`base_model_name_or_path` unless `base_model=` overrides it. Nothing is ever downloaded: every load is
`local_files_only=True`, so a base model must be a local folder or already in the Hugging Face cache.

The conversation is rendered with the tokenizer's chat template; a tokenizer without one gets the ChatML
template the local trainer uses (`lora_train.DEFAULT_CHAT_TEMPLATE`), so an adapter is asked in the format
it learnt. Token counts are the tokenizer's own (exact: they are what the model read and wrote). Greedy
decoding when the request's temperature is None or 0, sampling otherwise. Generation stops at the
request's `timeout_s` (`max_time`); an answer cut that way is reported as TimedOut.

Models are loaded once per folder and kept; one generation runs at a time per client, since several at
once on the same CPU or GPU only slow each other down. Needs the `train` extra (torch, transformers, peft).
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.providers.base import BackendError
from workbench.providers.inference import (
    ClientError,
    ClientKind,
    ClientStatus,
    InferenceRequest,
    InferenceResponse,
    NotConfigured,
    TimedOut,
    describe_failure,
    elapsed_ms,
)
from workbench.providers.local import has_tokenizer, resolve_base_model
from workbench.training.lora_train import DEFAULT_CHAT_TEMPLATE

KIND = ClientKind.LOCAL
EXTRA_SETTING = "pip install -e '.[train]'"
REQUIRED = ("torch", "transformers")
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")
"""Tokens that end an assistant turn in common chat templates (ChatML, Llama 3, Phi-3, Gemma), besides EOS."""


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    stop_ids: list[int]


def missing_packages(names: tuple[str, ...] | None = None) -> list[str]:
    """The packages among `names` (default REQUIRED) that are not installed, found without importing them."""
    return [name for name in (REQUIRED if names is None else names) if importlib.util.find_spec(name) is None]


class LocalClient:
    """Generate with local transformers models, loaded on first use and kept for later requests."""

    kind = KIND

    def __init__(self, *, base_model: str | None = None, device: str = "cpu") -> None:
        self.base_model = base_model
        self.device = device
        self._loaded: dict[str, Loaded] = {}
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    @classmethod
    def from_environment(cls, *, base_model: str | None = None, device: str = "cpu") -> LocalClient:
        """Refuse now, naming the extra to install, when torch or transformers are missing."""
        missing = missing_packages()
        if missing:
            raise NotConfigured(f"Local models need {' and '.join(missing)}: {EXTRA_SETTING}", setting=EXTRA_SETTING, kind=KIND)
        return cls(base_model=base_model, device=device)

    def load(self, folder: str) -> Loaded:
        """Load (once) the model and tokenizer in `folder`: a full model, or an adapter over its base."""
        with self._load_lock:
            if folder not in self._loaded:
                self._loaded[folder] = self._load(folder)
            return self._loaded[folder]

    def _load(self, folder: str) -> Loaded:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(folder)
        if not path.is_dir():
            raise _refused(folder, f"{folder} is not a folder; give a local model folder or a LoRA adapter folder")
        adapter = (path / "adapter_config.json").is_file()
        try:  # checked before transformers sees it: given an id it does not have, it would look online
            base = resolve_base_model(self.base_model or (_adapter_base(path) if adapter else str(path)))
        except BackendError as exc:
            raise _refused(folder, str(exc)) from exc
        try:
            model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
            if adapter:
                if missing_packages(("peft",)):
                    raise NotConfigured(f"{folder} is a LoRA adapter, which needs peft: {EXTRA_SETTING}",
                                        setting=EXTRA_SETTING, kind=KIND, model=folder)
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(path))
            tokenizer = AutoTokenizer.from_pretrained(str(path) if has_tokenizer(path) else base, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise _refused(folder, f"could not load {base if adapter else folder} from local files ({exc}); "
                                   "nothing is downloaded: give a folder, or an id already in the Hugging Face cache") from exc
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        model.to(self.device).eval()
        return Loaded(model, tokenizer, _stop_ids(tokenizer))

    def complete(self, request: InferenceRequest) -> InferenceResponse:
        """Render the conversation, generate once, and report the tokenizer's counts."""
        import torch

        started = time.perf_counter()
        loaded = self.load(request.model)
        tokenizer = loaded.tokenizer
        prompt = render(tokenizer, request)
        inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(self.device)
        prompt_length = int(inputs["input_ids"].shape[1])
        with self._generate_lock, torch.inference_mode():
            output = loaded.model.generate(**inputs, **generation_settings(request, loaded, time.perf_counter() - started))
        generated = [int(token) for token in output[0][prompt_length:]]
        latency = elapsed_ms(started)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        text, stop_reason = finish(text, generated, request, loaded.stop_ids)
        if stop_reason is None:
            if latency / 1000 >= request.timeout_s:
                raise TimedOut(describe_failure(KIND, request.model, f"generation stopped at the {request.timeout_s} s timeout "
                                                f"after {len(generated)} tokens"), kind=KIND, model=request.model)
            stop_reason = "end_turn"
        return InferenceResponse(kind=KIND, text=text, input_tokens=prompt_length, output_tokens=len(generated),
                                 latency_ms=latency, model=request.model, stop_reason=stop_reason)


def render(tokenizer: Any, request: InferenceRequest) -> str:
    """The prompt exactly as the model reads it: the chat template over system and turns, ready for the answer."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [{"role": m.role.value, "content": m.content} for m in request.messages]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def generation_settings(request: InferenceRequest, loaded: Loaded, spent_s: float) -> dict[str, Any]:
    """`generate` keyword arguments for the request; the time limit is what is left of its timeout."""
    settings: dict[str, Any] = {
        "max_new_tokens": request.max_tokens,
        "max_time": max(request.timeout_s - spent_s, 0.001),
        "eos_token_id": loaded.stop_ids or None,
        "pad_token_id": loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else
        (loaded.stop_ids[0] if loaded.stop_ids else 0),
    }
    if request.temperature:
        settings.update(do_sample=True, temperature=request.temperature, top_p=request.top_p or 1.0)
    else:
        settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return settings


def finish(text: str, generated: list[int], request: InferenceRequest, stop_ids: list[int]) -> tuple[str, str | None]:
    """Cut the text at the first stop sequence and name why generation ended (None: it ran out of time)."""
    cuts = [text.index(stop) for stop in request.stop if stop and stop in text]
    if cuts:
        return text[: min(cuts)], "stop_sequence"
    if generated and generated[-1] in stop_ids:
        return text, "end_turn"
    if len(generated) >= request.max_tokens:
        return text, "max_tokens"
    return text, None


def _stop_ids(tokenizer: Any) -> list[int]:
    """EOS and the end-of-turn markers this vocabulary knows: the model stops at whichever it writes first."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    vocabulary = tokenizer.get_vocab()
    ids += [vocabulary[token] for token in END_OF_TURN_TOKENS if token in vocabulary]
    return list(dict.fromkeys(ids))


def _adapter_base(folder: Path) -> str:
    try:
        base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise _refused(str(folder), f"{folder}/adapter_config.json cannot be read ({exc})") from exc
    if not base:
        raise _refused(str(folder), f"{folder}/adapter_config.json names no base_model_name_or_path; pass base_model=")
    return str(base)


def _refused(model: str, why: str) -> ClientError:
    return ClientError(describe_failure(KIND, model, why), kind=KIND, model=model, provider_message=why)


def from_environment(**options: Any) -> LocalClient:
    return LocalClient.from_environment(**options)


def status() -> ClientStatus:
    """Configured when torch and transformers are installed; the model is a folder named per request."""
    missing = missing_packages()
    if missing:
        return ClientStatus(kind=KIND, configured=False, setting=EXTRA_SETTING,
                            detail=f"local models need {' and '.join(missing)}: {EXTRA_SETTING}")
    return ClientStatus(kind=KIND, configured=True,
                        detail="transformers is installed; give a local model folder or a LoRA adapter folder as the model")
