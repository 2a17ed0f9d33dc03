"""Measure our LoRA trainer against a bare transformers + peft loop: same tiny model, same data, same steps.

Builds a random tiny Llama and a word-level tokenizer in a temporary folder (no download), then times,
in the same process and alternating, `--repeat` times each (the best of each is kept):

- BARE: load tokenizer and model, render each conversation with the chat template, labels = input ids
  (pads masked), `get_peft_model` with the same LoRA config, AdamW, forward/backward/step for N steps,
  save the adapter;
- OURS: `lora_train.run` with the same hyperparameters and `max_steps=N`: prompt masking, linear
  schedule, gradient clipping, a metrics line, a Trainer-style stdout dict and a cancel check every
  step, a checkpoint per epoch, status.json, the adapter and tokenizer saved at the end.

Both count the same tokens (non-pad inputs) and print tokens/s from the best wall time of each; the
line before last gives the CPU-time ratio too (steadier when other processes share the cores), and the
last line is `ratio=<ours / bare wall time>` (target: under 1.10).

    .venv/bin/python benchmarks/train_bench.py [--steps 200] [--examples 400] [--hidden 64] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # as the local backend runs the trainer: no hub look-ups on save

from tests.tiny_model import build_tiny_model, conversations, write_jsonl  # noqa: E402
from workbench.training import lora_train as lt  # noqa: E402

HP = {"learning_rate": 0.01, "batch_size": 4, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
      "target_modules": "all-linear", "max_seq_len": 256}


def bare(model_dir: Path, train: Path, out: Path, steps: int) -> tuple[float, int]:
    """The least a LoRA loop can do: return (seconds, tokens)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.chat_template = tokenizer.chat_template or lt.DEFAULT_CHAT_TEMPLATE
    rows = [tokenizer.apply_chat_template(m, tokenize=False) for m in lt.read_chat_jsonl(train)]
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    model = get_peft_model(model, LoraConfig(r=HP["lora_r"], lora_alpha=HP["lora_alpha"], lora_dropout=HP["lora_dropout"],
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=HP["learning_rate"])
    size, tokens, step = HP["batch_size"], 0, 0
    while step < steps:
        for i in range(0, len(rows), size):
            if step >= steps:
                break
            batch = tokenizer(rows[i : i + size], return_tensors="pt", padding=True, add_special_tokens=False,
                              truncation=True, max_length=HP["max_seq_len"])
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            tokens += int(batch["attention_mask"].sum())
            model(**batch, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
    model.save_pretrained(str(out))
    return time.perf_counter() - start, tokens


def ours(model_dir: Path, train: Path, run_dir: Path, steps: int) -> tuple[float, int]:
    """Our trainer end to end: return (seconds, tokens)."""
    args = ["--run-dir", str(run_dir), "--base-model", str(model_dir), "--train-file", str(train),
            "--epochs", "1000", "--max_steps", str(steps)]
    for name, value in HP.items():
        args += [f"--{name}", str(value)]
    start = time.perf_counter()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = lt.run(lt.resolve_config(args, environ={}), lt.Stopper(run_dir))
    seconds = time.perf_counter() - start
    status = (run_dir / "status.json").read_text()
    if code != 0:
        raise SystemExit(f"our trainer failed: {status}")
    return seconds, int(json.loads(status)["trained_tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 keeps timings steady on a busy box)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="train_bench_"))
    model_dir = build_tiny_model(root / "model", hidden=args.hidden)
    train = write_jsonl(root / "train.jsonl", conversations(args.examples))
    device = "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"
    print(f"tiny llama hidden={args.hidden} layers=2, {args.examples} examples, {args.steps} steps of "
          f"{HP['batch_size']}, device {device}")

    best: dict[str, tuple[float, int]] = {}
    best_cpu: dict[str, float] = {}
    for round_ in range(args.repeat):
        for name in ("bare", "ours"):
            target = root / f"{name}-{round_}"
            cpu = time.process_time()
            result = bare(model_dir, train, target, args.steps) if name == "bare" else ours(model_dir, train, target, args.steps)
            cpu = time.process_time() - cpu
            print(f"  {name:4} round {round_ + 1}: {result[0]:.3f} s wall, {cpu:.3f} s cpu, {result[1]} tokens")
            if name not in best or result[0] < best[name][0]:
                best[name] = result
            best_cpu[name] = min(cpu, best_cpu.get(name, cpu))
    for name, (seconds, tokens) in best.items():
        print(f"{name:4} {seconds:.3f} s  {tokens / seconds:,.0f} tokens/s")
    print(f"cpu-time ratio={best_cpu['ours'] / best_cpu['bare']:.3f} (steadier than wall time on a busy machine)")
    print(f"ratio={best['ours'][0] / best['bare'][0]:.3f}")


if __name__ == "__main__":
    main()
