"""Rule cases for findings the service layer adds on top of the record checks, for every target.

`invalid_json` comes from the file check (`validate_file_records`: a line that is not JSON, or bytes the
providers' loaders refuse around the records: a BOM, a blank line, a JSON array, UTF-16, gzip) and
`conversion_loss` from the dataset check (`validate_dataset`: rendering a stored example into the target's
format drops something). Both run for real here: a file written to a temporary folder, or a dataset
imported into a temporary store, so the rule cases exercise the same path as `datasets validate`.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tests.rule_cases import Findings, RuleCase, valid_record
from workbench.domain.catalogue import get_target
from workbench.domain.formats import Format
from workbench.domain.validation import Finding, ValidationReport, rules_for
from workbench.services.importing import import_path
from workbench.services.validating import validate_dataset, validate_file_records
from workbench.store import Store

NOVA_SCHEMA = "bedrock-conversation-2024"


def openai_chat(i: int, *extra_turns: dict[str, Any], weight: int | None = None) -> dict[str, Any]:
    """A distinct OpenAI chat (imports drop duplicates); `weight` goes on its first assistant message."""
    reply: dict[str, Any] = {"role": "assistant", "content": f"Answer {i}."}
    if weight is not None:
        reply["weight"] = weight
    return {"messages": [{"role": "user", "content": f"Question {i}?"}, reply, *extra_turns]}


def converse_chat(i: int, *media: dict[str, Any]) -> dict[str, Any]:
    """A distinct Converse (Nova) record whose user turn carries `media` after its text."""
    return {"schemaVersion": NOVA_SCHEMA, "messages": [
        {"role": "user", "content": [{"text": f"What is in clip {i}?"}, *media]},
        {"role": "assistant", "content": [{"text": f"Clip {i} shows a cat."}]},
    ]}


VIDEO = {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://ft-bucket/media/clip.mp4"}}}}
MORE_TURNS = ({"role": "user", "content": "And then?"}, {"role": "assistant", "content": "Then nothing."})

Pair = tuple[dict[str, Any], Callable[[int], dict[str, Any]]]


def lossy_and_whole(target: str) -> tuple[Pair, Pair]:
    """Return (first record, padding builder) for a dataset that loses something in `target`'s format, and one that
    narrowly does not: the same record without the one thing the format has no place for."""
    fmt = get_target(target).format
    if fmt is Format.OPENAI:  # OpenAI's chat has no place for video
        return (converse_chat(0, VIDEO), converse_chat), (converse_chat(0), converse_chat)
    if fmt is Format.PROMPT_COMPLETION:  # one prompt and one completion: later turns are flattened into the prompt
        return (openai_chat(0, *MORE_TURNS), openai_chat), (openai_chat(0), openai_chat)
    # Claude's and the Converse record have no place for OpenAI's per-message training weight.
    return (openai_chat(0, weight=1), openai_chat), (openai_chat(0), openai_chat)


def _minimum(target: str) -> int:
    return max(rules_for(target).min_records, 1)


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def dataset_report(target: str, first: dict[str, Any], pad: Callable[[int], dict[str, Any]]) -> ValidationReport:
    """Import `first` and enough distinct padding records into a fresh store, then validate it for `target`."""
    with tempfile.TemporaryDirectory() as tmp:
        records = [first, *(pad(i) for i in range(1, _minimum(target)))]
        path = _write(Path(tmp) / "data.jsonl", [orjson.dumps(r) for r in records])
        store = Store(Path(tmp) / "workbench.db")
        import_path(store, path, "d")
        return validate_dataset(store, "d", target)


def file_report(target: str, first: bytes, name: str = "train.jsonl") -> ValidationReport:
    """Validate a file in `target`'s format whose line 1 is `first`, padded with valid lines to the minimum."""
    good = orjson.dumps(valid_record(target))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / name, [first] + [good] * (_minimum(target) - 1))
        return validate_file_records(str(path), target)


def _findings(report: Callable[[], ValidationReport]) -> Findings:
    def run() -> list[Finding]:
        done = report()
        return [*done.errors, *done.warnings]

    return Findings(run)


def conversion_loss_case(target: str, rule: str) -> RuleCase:
    """A dataset that loses a field in the target's format vs the same dataset without that field."""
    (lossy, pad), (whole, same_pad) = lossy_and_whole(target)
    return RuleCase(target, rule, _findings(lambda: dataset_report(target, lossy, pad)),
                    _findings(lambda: dataset_report(target, whole, same_pad)),
                    "a stored example that loses a field in the target's format vs one that loses nothing")


def invalid_json_case(target: str, rule: str) -> RuleCase:
    """A file whose line 1 is not JSON vs the same file with line 1 valid."""
    good = orjson.dumps(valid_record(target))
    return RuleCase(target, rule, _findings(lambda: file_report(target, good[:-1])),
                    _findings(lambda: file_report(target, good)), "line 1 cut short (not JSON) vs whole")


def file_bytes_report(target: str, data: bytes, name: str = "train.jsonl") -> ValidationReport:
    """Validate a file holding exactly `data`, for the cases about the bytes around the records."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return validate_file_records(str(path), target)


def valid_body(target: str) -> bytes:
    """The minimum number of valid lines for `target`, each ended by one newline (as export writes them)."""
    return b"".join(orjson.dumps(valid_record(target)) + b"\n" for _ in range(_minimum(target)))


def _bytes_case(target: str, rule: str, bad: bytes, good: bytes, why: str) -> RuleCase:
    return RuleCase(target, rule, _findings(lambda: file_bytes_report(target, bad)),
                    _findings(lambda: file_bytes_report(target, good)), why)


def loader_cases(target: str, rule: str) -> list[RuleCase]:
    """What the providers' loaders (UTF-8 text, json.loads per line) refuse and the importer would read."""
    body = valid_body(target)
    middle = body.index(b"\n") + 1
    return [
        _bytes_case(target, rule, b"\xef\xbb\xbf" + body, body, "a UTF-8 BOM vs the same file without"),
        _bytes_case(target, rule, body + b"\n", body, "a trailing blank line vs one final newline"),
        _bytes_case(target, rule, body[:middle] + b" \t\n" + body[middle:], body,
                    "a whitespace-only line between records vs none"),
        _bytes_case(target, rule, b"[" + body.replace(b"\n", b",\n")[:-2] + b"]\n", body,
                    "a JSON array file vs the same records one per line"),
        _bytes_case(target, rule, body.decode().encode("utf-16"), body, "UTF-16 vs UTF-8"),
        _bytes_case(target, rule, gzip.compress(body), body, "gzip-compressed vs plain"),
    ]


def service_cases(target: str, json_rule: str, loss_rule: str) -> list[RuleCase]:
    """The service-level cases every target has: its JSON-line rule (file check) and its conversion-loss rule."""
    return [invalid_json_case(target, json_rule), *loader_cases(target, json_rule),
            conversion_loss_case(target, loss_rule)]
