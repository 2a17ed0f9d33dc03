"""The demo datasets in data/demo/: reproducible from scripts/generate_demo_data.py, valid in their formats,
and seeded with the defects the cleaning tools are meant to find."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate_demo_data.py"
DEMO = ROOT / "data" / "demo"
CLAUDE, ALPACA, NOVA = "optimization_modeling.jsonl", "geo_compliance.jsonl", "stylist_feedback.jsonl"
FILES = [CLAUDE, ALPACA, NOVA]

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\(\d{3}\) \d{3}-\d{4}|\+1[ .-]?\d{3}[ .-]\d{3}[ .-]\d{4}")
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
NOVA_RESERVED = ["System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:", "ASSISTANT:", "Thought:",
                 "[EOS]", "<image>", "<video>"]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_demo_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    script = _load_script()
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    assert script.main(["--out", str(first)]) == 0
    assert script.main(["--out", str(second)]) == 0
    return first, second


def _lines(name: str) -> list[str]:
    return (DEMO / name).read_text(encoding="utf-8").splitlines()


def _records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(name)]


def _strings(value: Any) -> list[str]:
    """Every string inside a parsed record, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _assistant_texts(name: str) -> list[str]:
    texts = []
    for rec in _records(name):
        if "output" in rec:
            texts.append(rec["output"])
        for msg in rec.get("messages", []):
            if msg["role"] == "assistant":
                texts += _strings(msg["content"])
    return texts


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@pytest.mark.parametrize("name", FILES)
def test_generation_is_deterministic(generated: tuple[Path, Path], name: str) -> None:
    first, second = generated
    assert (first / name).read_bytes() == (second / name).read_bytes()


@pytest.mark.parametrize("name", FILES)
def test_committed_files_match_the_generator(generated: tuple[Path, Path], name: str) -> None:
    assert (DEMO / name).is_file(), f"missing {DEMO / name}: run python scripts/generate_demo_data.py"
    assert (generated[0] / name).read_bytes() == (DEMO / name).read_bytes(), (
        f"data/demo/{name} is stale: run python scripts/generate_demo_data.py")


@pytest.mark.parametrize("name", FILES)
def test_counts_size_and_json(name: str) -> None:
    lines = _lines(name)
    assert 220 <= len(lines) <= 300
    assert (DEMO / name).stat().st_size < 1_000_000
    for line in lines:
        assert isinstance(json.loads(line), dict)


def test_claude_haiku_format() -> None:
    records = _records(CLAUDE)
    for rec in records:
        assert set(rec) <= {"system", "messages"} and "messages" in rec
        assert isinstance(rec.get("system", ""), str)
        msgs = rec["messages"]
        assert len(msgs) >= 2 and len(msgs) % 2 == 0
        for i, msg in enumerate(msgs):
            assert set(msg) == {"role", "content"}
            assert msg["role"] == ("user" if i % 2 == 0 else "assistant")
            assert isinstance(msg["content"], str) and msg["content"].strip()
    assert sum(rec.get("system") == "" for rec in records) >= 1
    multi = sum(len(rec["messages"]) > 2 for rec in records)
    assert 0.03 * len(records) <= multi <= 0.08 * len(records)


def test_alpaca_geo_format() -> None:
    records = _records(ALPACA)
    verdicts = set()
    for rec in records:
        assert {"instruction", "input", "output"} <= set(rec) <= {"instruction", "input", "output", "metadata"}
        assert all(isinstance(rec[k], str) and rec[k].strip() for k in ("instruction", "input", "output"))
        if "metadata" in rec:
            assert set(rec["metadata"]) == {"feature_id", "domain"}
        out = json.loads(rec["output"])
        assert list(out) == ["needs_geo_compliance", "regulations", "regions", "reasoning"]
        assert out["needs_geo_compliance"] in (True, False, "uncertain")
        assert isinstance(out["regulations"], list) and isinstance(out["regions"], list)
        verdicts.add(json.dumps(out["needs_geo_compliance"]))
    assert verdicts == {"true", "false", '"uncertain"'}
    assert len({rec["instruction"] for rec in records}) <= 2
    assert any("metadata" in rec for rec in records) and any("metadata" not in rec for rec in records)


def test_nova_format() -> None:
    records = _records(NOVA)
    reserved_users = 0
    for rec in records:
        assert set(rec) == {"schemaVersion", "system", "messages"}
        assert rec["schemaVersion"] == "bedrock-conversation-2024"
        assert all(set(s) == {"text"} and s["text"] for s in rec["system"])
        assert not any(tok in s["text"] for s in rec["system"] for tok in NOVA_RESERVED)
        msgs = rec["messages"]
        assert len(msgs) == 2
        for i, msg in enumerate(msgs):
            assert set(msg) == {"role", "content"}
            assert msg["role"] == ("user" if i % 2 == 0 else "assistant")
            assert [set(c) for c in msg["content"]] == [{"text"}] and msg["content"][0]["text"].strip()
        answer = json.loads(msgs[1]["content"][0]["text"])
        assert list(answer) == ["headline", "pinch_points", "sentiment"]
        assert answer["sentiment"] in ("positive", "mixed", "negative")
        assert all(isinstance(p, str) for p in answer["pinch_points"])
        reserved_users += any(tok in msgs[0]["content"][0]["text"] for tok in NOVA_RESERVED)
    assert 1 <= reserved_users <= 3


@pytest.mark.parametrize("name", FILES)
def test_planted_pii(name: str) -> None:
    text = (DEMO / name).read_text(encoding="utf-8")
    assert EMAIL.search(text)
    assert PHONE.search(text)
    cards = [re.sub(r"\D", "", m.group()) for m in CARD.finditer(text)]
    assert any(_luhn_ok(c) for c in cards if 13 <= len(c) <= 19)
    assert re.search(r"\b\d{3}-\d{2}-\d{4}\b", text)
    assert re.search(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text)
    assert "AKIA" in text and "sk-" in text


@pytest.mark.parametrize("name", FILES)
def test_planted_duplicates(name: str) -> None:
    lines = _lines(name)
    counts: dict[str, int] = defaultdict(int)
    for line in lines:
        counts[line] += 1
    assert sum(n - 1 for n in counts.values()) >= 2, "expected a few exact duplicate lines"
    groups: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        key = re.sub(r"[^a-z0-9]+", "", " ".join(_strings(json.loads(line))).lower())
        groups[key].add(line)
    near = sum(1 for variants in groups.values() if len(variants) > 1)
    assert near >= 3, "expected near-duplicates differing only in whitespace, case or punctuation"


@pytest.mark.parametrize("name", FILES)
def test_planted_guardrail_bait(name: str) -> None:
    text = (DEMO / name).read_text(encoding="utf-8")
    assert re.search(r"\bdamn\b", text, re.IGNORECASE)
    assert re.search(r"\bdamn\b", " ".join(_assistant_texts(name)), re.IGNORECASE)
    assert any("As an AI language model" in t for t in _assistant_texts(name))
    assert "guaranteed returns" in text
