"""The rules checked for Amazon Titan Text on Bedrock, with sources.

AWS publishes no sample validator for Titan, so every rule comes from Bedrock's documentation (SERVICE) or is
the workbench's own (OURS). The record shape is Bedrock's prompt/completion text format.
"""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

_V = "workbench.domain.validation"
_PC = f"{_V}.prompt_completion"
_FORMAT = '{"prompt": "...", "completion": "..."}'

TITAN = (
    R(id="titan.json-object", summary="Each line is one JSON object (JSONL).", codes=("data_type", "invalid_json"),
      origin=SERVICE, source=src.BEDROCK_TEXT_DATA, anchor="a JSONL file, each line a JSON object",
      check=f"{_V}.dataset.validate_records",
      note="The file check (workbench.services.validating.validate_file_records, run on a job's exported file "
           "before upload) reads the file as Bedrock's loader does, UTF-8 text with json.loads per line, and reports as "
           "invalid_json, with the line and what to change: a line that is not JSON, a UTF-8 byte-order mark, a blank "
           "or whitespace-only line (anywhere, a trailing one too; one final newline is fine), a JSON array file, "
           "UTF-16 and gzip. Stricter than a json.loads reader in one place: NaN, Infinity and lone-surrogate escapes (\\ud800) "
           "pass Python's json.loads but are refused here, since Bedrock parses strict JSON, which has none of them."),
    R(id="titan.required-keys", summary="Every record has `prompt` and `completion`.", codes=("missing_key",),
      origin=SERVICE, source=src.BEDROCK_TEXT_DATA, anchor=_FORMAT, check=f"{_PC}._check_prompt_completion",
      note="A chat record (`messages`) is told to export as prompt/completion."),
    R(id="titan.string-values", summary="`prompt` and `completion` are strings.", codes=("invalid_type",),
      origin=SERVICE, source=src.BEDROCK_TEXT_DATA, anchor=_FORMAT, check=f"{_PC}._check_prompt_completion"),
    R(id="titan.extra-keys", summary="Keys other than `prompt` and `completion` are not read (warning).",
      codes=("unrecognized_key",), severity=W, origin=OURS, source=src.BEDROCK_TEXT_DATA, anchor=_FORMAT,
      check=f"{_V}.shape._check_keys",
      note="Titan has no system prompt: a `system` key is warned about with the advice to fold it into the prompt. "
           "(Llama 3.1's validator fails most `system` values; Titan has no validator, so it stays a warning.)"),
    R(id="titan.completion-text", summary="The completion has text (not empty or only whitespace).",
      codes=("empty_content",), origin=OURS, source=src.BEDROCK_TEXT_DATA, anchor="completion: the expected output",
      check=f"{_PC}._check_text",
      note="An error here: the completion is what the model learns to write, so an empty one teaches it to answer "
           "with nothing."),
    R(id="titan.prompt-text", summary="The prompt has text (warning).", codes=("empty_content",), severity=W,
      origin=OURS, source=src.BEDROCK_TEXT_DATA, anchor="prompt: the input", check=f"{_PC}._check_text",
      note="The model then learns the completion with no context."),
    R(id="titan.no-tools", summary="No tool use: a record is one prompt string and one completion string.",
      codes=("tool_use_not_supported",), origin=OURS, source=src.BEDROCK_TEXT_DATA, anchor=_FORMAT,
      check=f"{_V}.tools._reject_tool_use",
      note="An error here: the shape has no place for tool definitions, so they would be dropped silently while "
           "the completions still hold the calls."),
    R(id="titan.at-least-one", summary="At least one record.", codes=("too_few_examples",), origin=OURS,
      source=src.BEDROCK_TEXT_DATA, anchor="Prepare data for fine-tuning: a training dataset is required",
      check=f"{_V}.dataset._dataset_findings", note="A job with no records trains nothing."),
    R(id="titan.token-limit", summary="At most 4,096 tokens per record: the job fails mid-run on a longer one.",
      codes=("too_many_tokens",), origin=SERVICE, source=src.TITAN_TOKEN_LIMIT,
      anchor='"Maximum input token count 4919 exceeds limit of 4096 for train data"',
      check=f"{_V}.dataset.validate_records",
      note="Reported by the service only after the job has started. Titan's tokenizer is not published: we count "
           "prompt plus completion with cl100k_base, which counts more than AWS's ~6 characters per token. AWS's "
           "model requirements list 2,048 tokens for Titan Express and Lite at larger batch sizes, which we do not "
           "check (the batch size is chosen with the job, after validation)."),
    R(id="titan.conversion-loss",
      summary="What the prompt/completion record cannot hold is dropped, and the model will not see it (advice).",
      codes=("conversion_loss",), severity=W, origin=OURS, source=src.BEDROCK_TEXT_DATA, anchor=_FORMAT,
      check="workbench.services.validating.validate_dataset",
      note="Checked when a stored dataset is rendered into prompt/completion (a file already in it has nothing to "
           "lose). Each finding names the field: a multi-turn chat flattened into one prompt, a system prompt "
           "folded into it, an image."),
)
