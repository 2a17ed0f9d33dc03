"""The LoRA training script, for real on a tiny model built on the spot (no download)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_model import build_tiny_model, conversations, write_jsonl
from workbench.training import lora_train as lt

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

FAST = ["--learning_rate", "0.01", "--batch_size", "4", "--lora_r", "16", "--lora_alpha", "32", "--lora_dropout", "0",
        "--target_modules", "all-linear", "--warmup_steps", "2", "--seed", "1"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """A tiny model gains nothing from threads, and on a busy machine OpenMP spinning makes steps 30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    return {"train": write_jsonl(folder / "train.jsonl", conversations(32)),
            "validation": write_jsonl(folder / "validation.jsonl", conversations(8))}


def config(run_dir: Path, tiny: Path, data: dict[str, Path], *extra: str, validation: bool = True) -> lt.TrainConfig:
    args = ["--run-dir", str(run_dir), "--base-model", str(tiny), "--train-file", str(data["train"]), *FAST, *extra]
    if validation:
        args += ["--validation-file", str(data["validation"])]
    return lt.resolve_config(args, environ={})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny: Path, data: dict[str, Path]) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("run")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = lt.run(config(run_dir, tiny, data, "--epochs", "4"), lt.Stopper(run_dir))
    return {"code": code, "run_dir": run_dir, "tiny": tiny, "stdout": stdout.getvalue(),
            "status": json.loads((run_dir / "status.json").read_text()),
            "metrics": list(lt.iter_metrics(run_dir / "metrics.jsonl"))}


# --- labels ----------------------------------------------------------------------------------------------


def test_only_assistant_tokens_are_learnt(tiny: Path) -> None:
    tokenizer = lt.load_tokenizer(str(tiny))
    messages = conversations(1)[0]["messages"]
    ids, labels = lt.build_example(tokenizer, messages, 200)
    learnt = [tokenizer.convert_ids_to_tokens(t) for t, label in zip(ids, labels, strict=True) if label != lt.IGNORE_INDEX]
    assert learnt == ["the", "blood", "is", "red", "<|im_end|>"]
    masked = tokenizer.convert_ids_to_tokens([t for t, label in zip(ids, labels, strict=True) if label == lt.IGNORE_INDEX])
    assert "answer" in masked and "colour" in masked and masked.count("<|im_start|>") == 3


def test_every_assistant_turn_is_learnt_unless_weight_zero(tiny: Path) -> None:
    tokenizer = lt.load_tokenizer(str(tiny))
    messages = [{"role": "user", "content": "what colour is the sky ?"}, {"role": "assistant", "content": "blue", "weight": 0},
                {"role": "user", "content": "what colour is the snow ?"}, {"role": "assistant", "content": "white"}]
    ids, labels = lt.build_example(tokenizer, messages, 200)
    learnt = [tokenizer.convert_ids_to_tokens(t) for t, label in zip(ids, labels, strict=True) if label != lt.IGNORE_INDEX]
    assert learnt == ["white", "<|im_end|>"]


class SlowTokenizer:
    """A tokenizer without offsets, as the Python-only ("slow") ones are."""

    is_fast = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.apply_chat_template(*args, **kwargs)

    def __call__(self, text: str, add_special_tokens: bool) -> Any:
        return self.inner(text, add_special_tokens=add_special_tokens)


def test_slow_tokenizer_gets_the_same_labels(tiny: Path) -> None:
    tokenizer = lt.load_tokenizer(str(tiny))
    messages = conversations(2)[1]["messages"]
    assert lt.build_example(SlowTokenizer(tokenizer), messages, 200) == lt.build_example(tokenizer, messages, 200)


def test_truncation_cuts_from_the_end(tiny: Path) -> None:
    tokenizer = lt.load_tokenizer(str(tiny))
    ids, labels = lt.build_example(tokenizer, conversations(1)[0]["messages"], 5)
    assert len(ids) == len(labels) == 5 and set(labels) == {lt.IGNORE_INDEX}
    with pytest.raises(lt.ConfigError, match="max_seq_len=5; raise max_seq_len"):
        lt.tokenize_all(tokenizer, [conversations(1)[0]["messages"]], 5)


def test_template_that_rewrites_earlier_turns_falls_back_to_the_content() -> None:
    def render(messages: list[dict[str, Any]], generation: bool) -> str:
        # Marks the last message differently, so a prefix never renders as the start of the whole.
        body = "".join(f"[{m['role']}{'*' if i == len(messages) - 1 else ''}]{m['content']}" for i, m in enumerate(messages))
        return body + ("[assistant]" if generation else "")

    text, spans = lt.trainable_spans(render, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    assert [text[a:b] for a, b in spans] == ["yo"]


def test_tokenizer_without_template_gets_the_default(tiny: Path) -> None:
    tokenizer = lt.load_tokenizer(str(tiny))
    assert tokenizer.chat_template == lt.DEFAULT_CHAT_TEMPLATE
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# --- configuration ---------------------------------------------------------------------------------------


def test_sagemaker_environment_and_flags(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    write_jsonl(train / "data.jsonl", conversations(2))
    env = {"SM_CHANNEL_TRAIN": str(train), "SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "out"),
           "SM_HPS": json.dumps({"model_id": "org/base", "epochs": 2, "lora_r": "16"})}
    # SageMaker passes every hyperparameter as a flag too, strings JSON-quoted, plus its own sagemaker_* keys.
    cfg = lt.resolve_config(["--learning_rate", "0.001", "--target_modules", '"q_proj,v_proj"',
                             "--sagemaker_program", '"train.py"'], environ=env)
    assert cfg.base_model == "org/base" and cfg.train_file == train / "data.jsonl" and cfg.validation_file is None
    assert cfg.run_dir == tmp_path / "out" and cfg.adapter_dir == tmp_path / "model"
    assert (cfg.hp["epochs"], cfg.hp["lora_r"], cfg.hp["learning_rate"]) == (2, 16, 0.001)
    assert cfg.hp["target_modules"] == "q_proj,v_proj"


def test_run_dir_config_json_is_read_and_flags_win(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"base_model": "/m", "train_file": "data/train.jsonl",
                                                      "hyperparameters": {"epochs": 5, "batch_size": 2}}))
    cfg = lt.resolve_config(["--run-dir", str(tmp_path), "--epochs", "1"], environ={})
    assert cfg.train_file == tmp_path / "data" / "train.jsonl" and cfg.adapter_dir == tmp_path / "adapter"
    assert (cfg.hp["epochs"], cfg.hp["batch_size"], cfg.hp["seed"]) == (1, 2, 42)


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "two"], r"epochs='two' is not an integer; give e.g. 3"),
    (["--epochs", "1.5"], r"epochs='1.5' is not an integer"),
])
def test_bad_hyperparameter_is_refused_with_an_example(tmp_path: Path, args: list[str], message: str) -> None:
    with pytest.raises(lt.ConfigError, match=message):
        lt.resolve_config(["--run-dir", str(tmp_path), "--base-model", "m", "--train-file", "t", *args], environ={})


def test_unknown_flag_is_refused_but_sagemaker_keys_pass(tmp_path: Path) -> None:
    base = ["--run-dir", str(tmp_path), "--base-model", "m", "--train-file", "t", "--sagemaker_region", '"us-east-1"']
    assert lt.resolve_config(base, environ={}).hp["epochs"] == 3
    with pytest.raises(lt.ConfigError, match="command line: unknown flag --epoch; hyperparameters: epochs"):
        lt.resolve_config([*base, "--epoch", "2"], environ={})


def test_unknown_hyperparameter_in_config_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"base_model": "m", "train_file": "t", "hyperparameters": {"lora_rank": 4}}))
    with pytest.raises(lt.ConfigError, match="unknown hyperparameter 'lora_rank'; known: epochs"):
        lt.resolve_config(["--run-dir", str(tmp_path)], environ={})


def test_precision_is_fp32_on_cpu_whatever_asked() -> None:
    assert lt.pick_precision("bf16", cuda=False, bf16_ok=False) == "fp32"
    assert lt.pick_precision("auto", cuda=True, bf16_ok=True) == "bf16"
    assert lt.pick_precision("auto", cuda=True, bf16_ok=False) == "fp16"


def test_bad_line_fails_the_run_naming_it(tmp_path: Path, tiny: Path, data: dict[str, Path]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(conversations(1)[0]) + "\n" + '{"messages": [{"role": "user", "content": "hi"}]}\n')
    run_dir = tmp_path / "run"
    code = lt.run(config(run_dir, tiny, {**data, "train": bad}, validation=False), lt.Stopper(run_dir))
    status = json.loads((run_dir / "status.json").read_text())
    assert code == 1 and status["state"] == "failed"
    assert status["message"] == f"{bad} line 2: no assistant message, so nothing to learn; add the answer"


# --- training --------------------------------------------------------------------------------------------


def test_loss_falls(trained: dict[str, Any]) -> None:
    assert trained["code"] == 0 and trained["status"]["state"] == "succeeded"
    losses = [m["train_loss"] for m in trained["metrics"] if "train_loss" in m]
    assert len(losses) == 32
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first * 0.6, losses


def test_metrics_stream_train_and_validation_loss(trained: dict[str, Any]) -> None:
    train = [m for m in trained["metrics"] if "train_loss" in m]
    val = [m for m in trained["metrics"] if "val_loss" in m]
    assert [m["step"] for m in train] == list(range(1, 33))
    assert [(m["step"], m["epoch"]) for m in val] == [(8, 1.0), (16, 2.0), (24, 3.0), (32, 4.0)]
    assert val[-1]["val_loss"] < val[0]["val_loss"]
    assert trained["status"]["trained_tokens"] > 0 and trained["status"]["total_steps"] == 32


def test_stdout_matches_the_sagemaker_metric_regexes(trained: dict[str, Any]) -> None:
    found = {d["Name"]: re.findall(d["Regex"], trained["stdout"]) for d in lt.METRIC_DEFINITIONS}
    assert len(found["train:loss"]) == 32 and len(found["validation:loss"]) == 4
    assert float(found["train:epoch"][-1]) == 4.0
    assert float(found["validation:loss"][-1]) == pytest.approx(trained["metrics"][-1]["val_loss"], abs=1e-4)


def test_checkpoint_per_epoch(trained: dict[str, Any]) -> None:
    checkpoints = trained["run_dir"] / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-1", "epoch-2", "epoch-3", "epoch-4"]
    state = torch.load(checkpoints / "epoch-2" / "training_state.pt", weights_only=False)
    assert state["step"] == 16 and state["optimizer"]["state"]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(trained["tiny"])), str(checkpoints / "epoch-2"))


def test_adapter_loads_back_and_generates(trained: dict[str, Any], tiny: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = Path(trained["status"]["adapter"])
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny)), str(adapter)).eval()
    prompt = conversations(1)[0]["messages"][:2]
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
    # Four epochs teach the answer's shape; which colour goes with which thing takes longer.
    assert re.match(r"the \w+ is \w+", answer), answer


class StopAfter(lt.Stopper):
    """Drops the cancel file after `checks` checks, as `LocalBackend.cancel` would mid-run."""

    def __init__(self, run_dir: Path, checks: int) -> None:
        super().__init__(run_dir)
        self.left = checks

    @property
    def requested(self) -> bool:
        self.left -= 1
        if self.left == 0:
            Path(self.cancel_file).touch()
        return super().requested


def test_cancel_file_stops_mid_run_with_a_checkpoint(tmp_path: Path, tiny: Path, data: dict[str, Path]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        code = lt.run(config(tmp_path, tiny, data, "--epochs", "2", validation=False), StopAfter(tmp_path, 12))
    status = json.loads((tmp_path / "status.json").read_text())
    assert code == 0 and status["state"] == "cancelled" and status["message"] == "cancelled at step 11 of 16"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch-1", "step-11"]
    assert (tmp_path / "checkpoints" / "step-11" / "training_state.pt").is_file()
    assert not (tmp_path / "adapter").exists()


def test_sigterm_sets_the_stop_flag(tmp_path: Path) -> None:
    stopper = lt.Stopper(tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    try:
        stopper.install()
        assert not stopper.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stopper.requested
    finally:
        signal.signal(signal.SIGTERM, before)


def test_script_imports_only_torch_transformers_peft_and_the_standard_library() -> None:
    """SageMaker runs the file alone, without the rest of the workbench installed."""
    import ast

    tree = ast.parse(Path(lt.__file__).read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {r for r in roots if r not in sys.stdlib_module_names} - {"torch", "transformers", "peft", "safetensors"}
