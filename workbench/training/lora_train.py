"""LoRA fine-tuning of a causal language model on chat JSONL: one script, run locally or on SageMaker.

It imports only torch, transformers, peft (and safetensors, which transformers needs) and the standard library (never the rest of the workbench),
so the same file runs as `python -m workbench.training.lora_train --run-dir DIR` beside the app and as
the entry point of a SageMaker Hugging Face training container.

Inputs, later sources winning:
1. defaults (`HYPERPARAMETERS`);
2. `<run dir>/config.json`: {"base_model", "train_file", "validation_file", "hyperparameters": {...}}
   (what the local backend writes; relative file paths are read from the run dir);
3. SageMaker: `SM_HPS` (the hyperparameters as a JSON object), else `/opt/ml/input/config/hyperparameters.json`
   (each value JSON-encoded, https://github.com/aws/sagemaker-training-toolkit); `SM_CHANNEL_TRAIN` and
   `SM_CHANNEL_VALIDATION` (folders: the `.jsonl` file inside is read), `SM_MODEL_DIR` (where the adapter goes),
   `SM_OUTPUT_DATA_DIR` (the run dir when none is given);
4. command-line flags: `--run-dir`, `--base-model` (or `--model_id`), `--train-file`, `--validation-file`,
   `--output-dir`, and `--NAME VALUE` for every hyperparameter (SageMaker passes them so; unknown
   `sagemaker_*` flags are ignored).

Data: one `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}` per line (OpenAI chat
format). The tokenizer's chat template renders each conversation; a tokenizer without one gets
`DEFAULT_CHAT_TEMPLATE` (ChatML: `<|im_start|>role\\ncontent<|im_end|>\\n`; the markers are not added to
the vocabulary, so a tokenizer that lacks them spells them in ordinary tokens). Only assistant turns are
learnt: every other token's label is -100 (an assistant message with `"weight": 0` is masked too, as
OpenAI does). Conversations longer than `max_seq_len` tokens are cut from the end.

Outputs in the run dir:
- `status.json`: {"state": starting|running|succeeded|failed|cancelled, "pid", "started", ...}, rewritten
  atomically; the final one adds "finished", "message", "adapter", "trained_tokens", "last_checkpoint";
- `metrics.jsonl`: {"step", "epoch", "train_loss"} every `logging_steps` optimizer steps, and
  {"step", "epoch", "val_loss"} at each evaluation (every epoch end and every `eval_steps`);
- `log.txt`: the run's log; stdout also carries Hugging Face Trainer-style dicts
  (`{'loss': 1.23, 'learning_rate': 0.0002, 'epoch': 0.5, 'step': 10}`, `{'eval_loss': 1.1, 'epoch': 1.0, ...}`)
  that `METRIC_DEFINITIONS` read (SageMaker runs each regex over the container's output,
  https://docs.aws.amazon.com/sagemaker/latest/dg/training-metrics.html);
- `checkpoints/epoch-N/` after each epoch and `checkpoints/step-N/` on cancel: the adapter and
  `training_state.pt` (optimizer, scheduler, step);
- `adapter/` (or `SM_MODEL_DIR`): the final adapter and the tokenizer, chat template included.

Cancel: a file named `cancel` in the run dir (checked before every micro-batch) or SIGTERM (what SageMaker's
StopTrainingJob and the local backend send) stops at the next step with status "cancelled", after saving a
checkpoint; earlier checkpoints are kept.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML, as Qwen and many others write it: used when the base model's tokenizer has no chat template."""

IGNORE_INDEX = -100
"""The label torch's cross-entropy skips (transformers' causal LM loss uses `ignore_index=-100`)."""

METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"Name": "train:loss", "Regex": r"'loss': ([0-9.e+-]+)"},
    {"Name": "validation:loss", "Regex": r"'eval_loss': ([0-9.e+-]+)"},
    {"Name": "train:epoch", "Regex": r"'epoch': ([0-9.e+-]+)"},
)
"""SageMaker MetricDefinitions matching the dicts this script prints (checked in tests)."""

HYPERPARAMETERS: dict[str, tuple[type, Any, str]] = {
    "epochs": (int, 3, "passes over the training set"),
    "learning_rate": (float, 2e-4, "AdamW peak learning rate"),
    "batch_size": (int, 4, "examples per forward pass"),
    "grad_accum": (int, 1, "forward passes per optimizer step (examples per step = batch_size x grad_accum)"),
    "max_seq_len": (int, 1024, "longest conversation in tokens; longer ones are cut from the end"),
    "seed": (int, 42, "random seed for LoRA init, shuffling and dropout"),
    "warmup_steps": (int, 0, "optimizer steps the learning rate ramps up over, then decays linearly to 0"),
    "weight_decay": (float, 0.0, "AdamW weight decay"),
    "max_grad_norm": (float, 1.0, "gradient clipping; 0 turns it off"),
    "lora_r": (int, 8, "rank of the LoRA update"),
    "lora_alpha": (int, 16, "LoRA scale (alpha / r)"),
    "lora_dropout": (float, 0.05, "dropout on the LoRA input"),
    "target_modules": (str, "", "comma-separated module names or all-linear; empty: peft's list for the architecture, else all-linear"),
    "logging_steps": (int, 1, "optimizer steps between train-loss lines"),
    "eval_steps": (int, 0, "optimizer steps between validation runs besides each epoch end; 0: epoch ends only"),
    "max_steps": (int, 0, "stop after this many optimizer steps; 0: run all epochs"),
    "precision": (str, "auto", "auto (bf16, else fp16, on CUDA; fp32 on CPU), bf16, fp16 or fp32"),
}
"""Every hyperparameter the script reads: type, default, meaning."""

_ALIASES = {"model_id": "base_model", "gradient_accumulation_steps": "grad_accum", "num_train_epochs": "epochs",
            "r": "lora_r", "lr": "learning_rate"}
_FINAL_STATES = ("succeeded", "failed", "cancelled")


class ConfigError(ValueError):
    """The run's inputs are unusable; the message names the source and what to change."""


# --- configuration ---------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything one run needs, resolved from defaults, config.json, SageMaker's environment and flags."""

    run_dir: Path
    base_model: str
    train_file: Path
    validation_file: Path | None = None
    output_dir: Path | None = None
    hp: dict[str, Any] = field(default_factory=lambda: {k: v[1] for k, v in HYPERPARAMETERS.items()})

    @property
    def adapter_dir(self) -> Path:
        return self.output_dir or self.run_dir / "adapter"


def coerce(name: str, value: Any) -> Any:
    """Return `value` as the hyperparameter's type; SageMaker hands strings, sometimes JSON-quoted."""
    kind = HYPERPARAMETERS[name][0]
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = json.loads(text)
        value = text
    if kind is str:
        return ",".join(value) if isinstance(value, list) else str(value)
    try:
        number = float(value)
        if kind is int and number != int(number):
            raise ValueError
        return kind(number)
    except (TypeError, ValueError):
        example = HYPERPARAMETERS[name][1]
        raise ConfigError(f"hyperparameter {name}={value!r} is not {'an integer' if kind is int else 'a number'}; "
                          f"give e.g. {example}") from None


def _merge(target: dict[str, Any], values: dict[str, Any], source: str) -> None:
    for raw_key, value in values.items():
        key = _ALIASES.get(raw_key.replace("-", "_"), raw_key.replace("-", "_"))
        if key in ("base_model", "train_file", "validation_file", "output_dir"):
            quoted = isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"'
            target[key] = json.loads(value) if quoted else value
        elif key in HYPERPARAMETERS:
            target.setdefault("hp", {})[key] = coerce(key, value)
        elif not key.startswith("sagemaker_"):
            raise ConfigError(f"{source}: unknown hyperparameter {raw_key!r}; known: {', '.join(HYPERPARAMETERS)}")


def _sagemaker_hyperparameters(environ: dict[str, str]) -> dict[str, Any]:
    if environ.get("SM_HPS"):
        return dict(json.loads(environ["SM_HPS"]))
    path = Path("/opt/ml/input/config/hyperparameters.json")
    if not path.is_file():
        return {}
    out: dict[str, Any] = {}
    for key, value in json.loads(path.read_text()).items():
        try:
            out[key] = json.loads(value)
        except (TypeError, ValueError):
            out[key] = value
    return out


def _jsonl_in(folder: str) -> str:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix == ".jsonl")
    if not files:
        raise ConfigError(f"channel folder {folder} holds no .jsonl file; upload the exported training file there")
    return str(files[0])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="LoRA fine-tuning on chat JSONL (see the module docstring).",
                                     allow_abbrev=False)
    for name in ("run_dir", "base_model", "train_file", "validation_file", "output_dir", "model_id"):
        parser.add_argument(f"--{name.replace('_', '-')}", f"--{name}", dest=name, default=None)
    for name, (_, _, help_text) in HYPERPARAMETERS.items():
        flags = {f"--{name}", f"--{name.replace('_', '-')}"}
        parser.add_argument(*sorted(flags), dest=name, default=None, help=help_text)
    return parser


def resolve_config(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> TrainConfig:
    """Build the run's config from defaults, the run dir's config.json, SageMaker's environment and flags."""
    env = dict(os.environ if environ is None else environ)
    args, unknown = _parser().parse_known_args(argv)
    flags = [a for a in unknown if a.startswith("--") and not a.startswith("--sagemaker_")]
    if flags:
        raise ConfigError(f"command line: unknown flag {flags[0]}; hyperparameters: {', '.join(HYPERPARAMETERS)}")
    run_dir_text = args.run_dir or env.get("SM_OUTPUT_DATA_DIR")
    if not run_dir_text:
        raise ConfigError("no run folder: pass --run-dir DIR (or run inside SageMaker, which sets SM_OUTPUT_DATA_DIR)")
    run_dir = Path(run_dir_text)
    merged: dict[str, Any] = {"hp": {k: v[1] for k, v in HYPERPARAMETERS.items()}}
    config_path = run_dir / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        _merge(merged, {k: v for k, v in config.items() if k != "hyperparameters" and v is not None}, str(config_path))
        _merge(merged, config.get("hyperparameters") or {}, f"{config_path} hyperparameters")
    _merge(merged, _sagemaker_hyperparameters(env), "SageMaker hyperparameters")
    for channel, key in (("SM_CHANNEL_TRAIN", "train_file"), ("SM_CHANNEL_VALIDATION", "validation_file")):
        if env.get(channel) and Path(env[channel]).is_dir():
            merged[key] = _jsonl_in(env[channel])
    if env.get("SM_MODEL_DIR"):
        merged["output_dir"] = env["SM_MODEL_DIR"]
    flags = {k: v for k, v in vars(args).items() if v is not None and k != "run_dir"}
    _merge(merged, flags, "command line")
    if not merged.get("base_model"):
        raise ConfigError("no base model: give --base-model (a local folder or a Hugging Face id already cached)")
    if not merged.get("train_file"):
        raise ConfigError("no training file: give --train-file, or a train channel on SageMaker")

    def in_run_dir(path: str | None) -> Path | None:
        return None if not path else (run_dir / path if not Path(path).is_absolute() else Path(path))

    return TrainConfig(
        run_dir=run_dir, base_model=str(merged["base_model"]), train_file=in_run_dir(merged["train_file"]),  # type: ignore[arg-type]
        validation_file=in_run_dir(merged.get("validation_file")), output_dir=in_run_dir(merged.get("output_dir")),
        hp=merged["hp"],
    )


# --- run folder ------------------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_status(run_dir: Path, **fields: Any) -> None:
    """Replace status.json in one rename, so a reader never sees half of it."""
    path = run_dir / "status.json"
    current: dict[str, Any] = {}
    if path.is_file():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            current = {}
    current.update(fields, updated=now_iso())
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current))
    os.replace(tmp, path)


class Stopper:
    """Answers "stop now?" cheaply each step: a SIGTERM received, or a `cancel` file in the run dir."""

    def __init__(self, run_dir: Path) -> None:
        self.cancel_file = str(run_dir / "cancel")
        self.signalled = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signalled = True

    @property
    def requested(self) -> bool:
        return self.signalled or os.path.exists(self.cancel_file)


class RunLog:
    """log.txt plus stdout; and metrics.jsonl, one flushed line per point so a watcher sees it at once."""

    def __init__(self, run_dir: Path) -> None:
        self._log = open(run_dir / "log.txt", "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives for the run
        self._metrics = open(run_dir / "metrics.jsonl", "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def info(self, message: str, level: str = "INFO") -> None:
        line = f"{now_iso()} {level} {message}"
        self._log.write(line + "\n")
        print(line, file=sys.stderr, flush=True)

    def metric(self, point: dict[str, Any], trainer_style: dict[str, Any]) -> None:
        self._metrics.write(json.dumps(point) + "\n")
        print(trainer_style, flush=True)

    def close(self) -> None:
        self._log.close()
        self._metrics.close()


# --- data ------------------------------------------------------------------------------------------------


def read_chat_jsonl(path: Path) -> list[list[dict[str, Any]]]:
    """Return each line's messages; a bad line fails with its number and what to fix."""
    conversations: list[list[dict[str, Any]]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{path} line {number}: not JSON ({exc}); each line must be one JSON object") from None
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or not messages:
                raise ConfigError(f"{path} line {number}: no 'messages' list; export the dataset in OpenAI chat format")
            for index, message in enumerate(messages):
                if not isinstance(message, dict) or not isinstance(message.get("content"), str) or "role" not in message:
                    raise ConfigError(f"{path} line {number}: messages[{index}] needs a 'role' and a string 'content'")
            if not any(m["role"] == "assistant" for m in messages):
                raise ConfigError(f"{path} line {number}: no assistant message, so nothing to learn; add the answer")
            conversations.append(messages)
    if not conversations:
        raise ConfigError(f"{path} holds no examples")
    return conversations


Render = Callable[[list[dict[str, Any]], bool], str]


def trainable_spans(render: Render, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """Return the rendered conversation and the character spans of its learnt assistant turns.

    A turn's span runs from the end of the prompt that asks for it (rendered with the generation prompt)
    to the end of the turn, end-of-turn marker included, so the model learns to stop. Templates that
    do not render a conversation as an extension of its prefixes (some rewrite earlier turns) fall back
    to the assistant's content alone, found in order in the whole text.
    """
    text = render(messages, False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(messages[:i], True)
        turn = render(messages[: i + 1], False)
        if turn.startswith(prompt) and text.startswith(turn):
            span = (len(prompt), len(turn))
        else:
            start = text.find(message["content"], spans[-1][1] if spans else 0)
            if start < 0:
                continue
            span = (start, start + len(message["content"]))
        if message.get("weight", 1) != 0:
            spans.append(span)
    return text, spans


def label_tokens(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[bool]:
    """Mark each token whose first character lies inside a learnt span."""
    marks: list[bool] = []
    for start, end in offsets:
        marks.append(end > start and any(a <= start < b for a, b in spans))
    return marks


def build_example(tokenizer: Any, messages: list[dict[str, Any]], max_seq_len: int) -> tuple[list[int], list[int]]:
    """Tokenize one conversation; labels copy the ids of assistant tokens and are -100 elsewhere."""

    def render(msgs: list[dict[str, Any]], generation: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation)

    text, spans = trainable_spans(render, messages)
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        marks = label_tokens(encoded["offset_mapping"], spans)
    else:  # slow tokenizers have no offsets: tokenize the pieces between span edges one by one
        ids, marks = [], []
        edges = sorted({0, len(text), *(edge for span in spans for edge in span)})
        for a, b in zip(edges, edges[1:], strict=False):
            piece = tokenizer(text[a:b], add_special_tokens=False)["input_ids"]
            ids += piece
            marks += [any(x <= a < y for x, y in spans)] * len(piece)
    ids, marks = ids[:max_seq_len], marks[:max_seq_len]
    return ids, [t if m else IGNORE_INDEX for t, m in zip(ids, marks, strict=True)]


def tokenize_all(tokenizer: Any, conversations: list[list[dict[str, Any]]], max_seq_len: int,
                 log: RunLog | None = None) -> list[tuple[list[int], list[int]]]:
    """Tokenize every conversation, dropping those whose assistant turns were cut off entirely."""
    examples = []
    for index, messages in enumerate(conversations):
        ids, labels = build_example(tokenizer, messages, max_seq_len)
        if any(label != IGNORE_INDEX for label in labels[1:]):
            examples.append((ids, labels))
        elif log:
            log.info(f"example {index + 1}: no assistant token within max_seq_len={max_seq_len}; skipped", "WARNING")
    if not examples:
        raise ConfigError(f"no example keeps an assistant token within max_seq_len={max_seq_len}; raise max_seq_len")
    return examples


def batches(count: int, batch_size: int, rng: random.Random | None) -> list[list[int]]:
    order = list(range(count))
    if rng is not None:
        rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


def collate(examples: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch; padding is masked from attention and from the loss."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


# --- model -----------------------------------------------------------------------------------------------


def pick_precision(requested: str, cuda: bool, bf16_ok: bool) -> str:
    """bf16 or fp16 only on CUDA; `auto` takes bf16 where the GPU has it."""
    if not cuda:
        return "fp32"
    if requested == "auto":
        return "bf16" if bf16_ok else "fp16"
    if requested not in ("bf16", "fp16", "fp32"):
        raise ConfigError(f"precision={requested!r}: give auto, bf16, fp16 or fp32")
    return requested


def load_tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_lora_model(base_model: str, hp: dict[str, Any], device: str, precision: str) -> Any:
    """Load the base model frozen, and wrap it with a LoRA adapter (fp32 adapter weights)."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        # transformers 4.56 renamed torch_dtype to dtype; older SageMaker images only know the old name.
        new_name = tuple(int(p) for p in transformers.__version__.split(".")[:2]) >= (4, 56)
        kwargs["dtype" if new_name else "torch_dtype"] = dtype
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs).to(device)
    config = LoraConfig(r=hp["lora_r"], lora_alpha=hp["lora_alpha"], lora_dropout=hp["lora_dropout"],
                        target_modules=target_modules(model, hp["target_modules"]), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def target_modules(model: Any, given: str) -> list[str] | str:
    """The modules given, else peft's list for this architecture, else every linear layer but the head."""
    if given.strip() == "all-linear":
        return "all-linear"
    if given.strip():
        return [name.strip() for name in given.split(",") if name.strip()]
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    return KNOWN.get(getattr(model.config, "model_type", ""), "all-linear")


# --- training loop ---------------------------------------------------------------------------------------


@dataclass
class Progress:
    step: int = 0
    epoch: float = 0.0
    tokens: int = 0
    last_checkpoint: str | None = None


def save_checkpoint(model: Any, optimizer: Any, scheduler: Any, progress: Progress, folder: Path) -> None:
    """Write the adapter and the optimizer state beside it, renamed into place so a kill leaves none half-written."""
    import shutil

    import torch
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file  # a dependency of transformers, so in every image that has it

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # What PeftModel.save_pretrained writes, less the model card: rendering it takes ~0.1 s a checkpoint.
    model.peft_config["default"].save_pretrained(str(tmp))
    save_file(get_peft_model_state_dict(model), str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": progress.step,
                "epoch": progress.epoch}, tmp / "training_state.pt")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    progress.last_checkpoint = str(folder)


def evaluate(model: Any, examples: list[tuple[list[int], list[int]]], batch_size: int, pad_id: int,
             device: str, autocast: Any) -> float:
    """Mean loss per learnt token over the validation set."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for index in batches(len(examples), batch_size, None):
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in index], pad_id).items()}
            with autocast():
                loss = model(**batch).loss
            tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(loss) * tokens
            count += tokens
    model.train()
    return total / max(count, 1)


def train(cfg: TrainConfig, stopper: Stopper, log: RunLog) -> dict[str, Any]:
    """Run the training loop; return the final status fields (state, message, adapter...)."""
    import contextlib

    import torch

    hp = cfg.hp
    random.seed(hp["seed"])
    torch.manual_seed(hp["seed"])
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    precision = pick_precision(str(hp["precision"]), cuda, cuda and torch.cuda.is_bf16_supported())
    log.info(f"device={device} precision={precision} base_model={cfg.base_model}")

    tokenizer = load_tokenizer(cfg.base_model)
    train_set = tokenize_all(tokenizer, read_chat_jsonl(cfg.train_file), hp["max_seq_len"], log)
    val_set = tokenize_all(tokenizer, read_chat_jsonl(cfg.validation_file), hp["max_seq_len"], log) \
        if cfg.validation_file else []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model = load_lora_model(cfg.base_model, hp, device, precision)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=hp["learning_rate"], weight_decay=hp["weight_decay"])

    per_epoch = math.ceil(math.ceil(len(train_set) / hp["batch_size"]) / hp["grad_accum"])
    total = per_epoch * hp["epochs"]
    if hp["max_steps"] > 0:
        total = min(total, hp["max_steps"])
    warmup = hp["warmup_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def autocast() -> Any:
        return torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()

    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    write_status(cfg.run_dir, state="running", total_steps=total, device=device, precision=precision,
                 train_examples=len(train_set), validation_examples=len(val_set))
    log.info(f"{len(train_set)} training examples, {len(val_set)} validation; {total} steps of "
             f"{hp['batch_size']}x{hp['grad_accum']}")

    progress = Progress()
    checkpoints = cfg.run_dir / "checkpoints"
    checkpoints.mkdir(exist_ok=True)

    def eval_and_log() -> None:
        val_loss = evaluate(model, val_set, hp["batch_size"], pad_id, device, autocast)
        epoch = round(progress.epoch, 4)
        log.metric({"step": progress.step, "epoch": epoch, "val_loss": val_loss},
                   {"eval_loss": round(val_loss, 4), "epoch": epoch, "step": progress.step})

    running_loss = torch.zeros((), device=device)
    logged_steps = 0
    for epoch_index in range(hp["epochs"]):
        rng = random.Random(hp["seed"] + epoch_index)
        groups = batches(len(train_set), hp["batch_size"], rng)
        for start in range(0, len(groups), hp["grad_accum"]):
            if progress.step >= total:
                break
            window = groups[start : start + hp["grad_accum"]]
            for index in window:
                if stopper.requested:
                    return _cancelled(cfg, model, optimizer, scheduler, progress, checkpoints, total, log)
                examples = [train_set[i] for i in index]
                progress.tokens += sum(len(ids) for ids, _ in examples)
                batch = {k: v.to(device, non_blocking=True) for k, v in collate(examples, pad_id).items()}
                with autocast():
                    loss = model(**batch).loss / len(window)
                (scaler.scale(loss) if scaler else loss).backward()
                running_loss += loss.detach()
            if scaler:
                scaler.unscale_(optimizer)
            if hp["max_grad_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(trainable, hp["max_grad_norm"])
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            progress.epoch = epoch_index + min(1.0, (start // hp["grad_accum"] + 1) / per_epoch)
            logged_steps += 1
            if progress.step % hp["logging_steps"] == 0 or progress.step == total:
                train_loss = float(running_loss) / logged_steps
                running_loss.zero_()
                logged_steps = 0
                epoch = round(progress.epoch, 4)
                lr = scheduler.get_last_lr()[0]
                log.metric({"step": progress.step, "epoch": epoch, "train_loss": train_loss},
                           {"loss": round(train_loss, 4), "learning_rate": lr, "epoch": epoch, "step": progress.step})
            if val_set and hp["eval_steps"] > 0 and progress.step % hp["eval_steps"] == 0:
                eval_and_log()
        if val_set and not (hp["eval_steps"] > 0 and progress.step % hp["eval_steps"] == 0):
            eval_and_log()
        save_checkpoint(model, optimizer, scheduler, progress, checkpoints / f"epoch-{epoch_index + 1}")
        log.info(f"epoch {epoch_index + 1} done at step {progress.step}; checkpoint {progress.last_checkpoint}")
        if progress.step >= total:
            break

    cfg.adapter_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(cfg.adapter_dir))
    tokenizer.save_pretrained(str(cfg.adapter_dir))
    return {"state": "succeeded", "message": f"trained {progress.step} steps; adapter saved to {cfg.adapter_dir}",
            "adapter": str(cfg.adapter_dir), "trained_tokens": progress.tokens, "step": progress.step,
            "last_checkpoint": progress.last_checkpoint}


def _cancelled(cfg: TrainConfig, model: Any, optimizer: Any, scheduler: Any, progress: Progress,
               checkpoints: Path, total: int, log: RunLog) -> dict[str, Any]:
    optimizer.zero_grad(set_to_none=True)
    save_checkpoint(model, optimizer, scheduler, progress, checkpoints / f"step-{progress.step}")
    log.info(f"cancelled at step {progress.step} of {total}; checkpoint {progress.last_checkpoint}")
    return {"state": "cancelled", "message": f"cancelled at step {progress.step} of {total}",
            "trained_tokens": progress.tokens, "step": progress.step, "last_checkpoint": progress.last_checkpoint}


def run(cfg: TrainConfig, stopper: Stopper) -> int:
    """Train with status.json and logs kept; return the process exit code (0 unless the run failed)."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(cfg.run_dir)
    started = time.monotonic()
    try:
        outcome = train(cfg, stopper, log)
    except Exception as exc:  # every failure ends in status.json, with the traceback in log.txt
        log.info(traceback.format_exc().rstrip(), "ERROR")
        message = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
        outcome = {"state": "failed", "message": message}
    outcome["seconds"] = round(time.monotonic() - started, 3)
    write_status(cfg.run_dir, finished=now_iso(), **outcome)
    log.info(f"{outcome['state']}: {outcome['message']}")
    log.close()
    return 1 if outcome["state"] == "failed" else 0


def main(argv: Sequence[str] | None = None) -> int:
    stopper_dir: Path | None = None
    try:
        cfg = resolve_config(argv)
    except (ConfigError, ValueError, OSError) as exc:
        args, _ = _parser().parse_known_args(argv)
        stopper_dir = Path(args.run_dir) if args.run_dir else None
        if stopper_dir and stopper_dir.is_dir():
            write_status(stopper_dir, state="failed", pid=os.getpid(), finished=now_iso(), message=str(exc))
        print(f"lora_train: {exc}", file=sys.stderr)
        return 2
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    stopper = Stopper(cfg.run_dir)
    stopper.install()
    write_status(cfg.run_dir, state="starting", pid=os.getpid(), started=now_iso())
    return run(cfg, stopper)


def iter_metrics(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the points of a finished run's metrics.jsonl (tests and the benchmark read it so)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


if __name__ == "__main__":
    sys.exit(main())
