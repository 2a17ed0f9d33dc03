"""The rules checked for Claude 3 Haiku on Bedrock: every check of AWS's sample validator, then what
Anthropic's cookbook and AWS's docs add, then the workbench's own, each with the function that checks it.

The validator (`data_validation.py`) is a pydantic model, `DataEntry(system: Optional[str], messages:
List[Message], min_items=2)` with `Message(role: str, pattern "^(user|assistant)$", content: str)`, a
`check_message_structure` validator for turn order and RESERVED_KEYWORDS, then `validate_file` for JSON per
line, the chars/3 token estimate, line counts and file sizes, and `validate_data` for the combined total.
"""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

_V = "workbench.domain.validation"
_HAIKU, _SHAPE, _DATASET = f"{_V}.haiku", f"{_V}.shape", f"{_V}.dataset"

_VALIDATOR_RULES = (
    R(id="haiku.json-object", summary="Each line is one JSON object.", codes=("data_type", "invalid_json"),
      origin=VALIDATOR, source=src.HAIKU_VALIDATOR, anchor="validate_file(): json.loads, then DataEntry(**entry)",
      check=f"{_DATASET}.validate_records",
      note="The validator reports a line that is not JSON as 'Invalid JSON' and fails on a JSON value that is not "
           "an object. " "The file check (workbench.services.validating.validate_file_records, run on a job's exported file "
           "before upload) reads the file as the validator's loader does, UTF-8 text with json.loads per line, and reports as "
           "invalid_json, with the line and what to change: a line that is not JSON, a UTF-8 byte-order mark, a blank "
           "or whitespace-only line (anywhere, a trailing one too; one final newline is fine), a JSON array file, "
           "UTF-16 and gzip. Stricter than the validator in one place: NaN, Infinity and lone-surrogate escapes (\\ud800) "
           "pass Python's json.loads but are refused here, since Bedrock parses strict JSON, which has none of them."),
    R(id="haiku.messages-list", summary="`messages` is present and a non-empty list.",
      codes=("missing_messages_list",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="DataEntry.messages: List[Message] = Field(..., min_items=2)", check=f"{_SHAPE}._messages"),
    R(id="haiku.two-messages", summary="At least two messages (a user message and the assistant reply).",
      codes=("too_few_messages",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="DataEntry.messages: Field(..., min_items=2)", check=f"{_SHAPE}._check_turns"),
    R(id="haiku.field-types",
      summary="Every message is an object with `role` and `content`; `content` is a plain string; `system` is "
              "optional but, when present, a plain string.",
      codes=("missing_key", "invalid_type"), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="Message.role: str, Message.content: str; DataEntry.system: Optional[str] = None",
      check=f"{_HAIKU}._check_haiku",
      note="A missing `system` or an empty string passes, as in the validator. An explicit null passes its pydantic "
           "model, but its token count then takes len(None) and the run stops, so null is refused too (leave the "
           "key out)."),
    R(id="haiku.roles", summary="`role` is exactly 'user' or 'assistant' (lower case; the system prompt goes in "
                                "the top-level `system`).",
      codes=("unrecognized_role",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor='Message.role: Field(..., pattern="^(user|assistant)$")', check=f"{_SHAPE}._message_role",
      note="Case-sensitive, as the validator's pattern: 'User' and 'Assistant' are refused."),
    R(id="haiku.turn-order", summary="The first message is from the user and the last from the assistant.",
      codes=("first_not_user", "last_not_assistant"), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="DataEntry.check_message_structure(): 'Messages must start with user and end with assistant'",
      check=f"{_SHAPE}._check_turns"),
    R(id="haiku.alternating", summary="User and assistant messages alternate: no two in a row from the same role.",
      codes=("roles_not_alternating",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="DataEntry.check_message_structure(): 'Messages must alternate between user and assistant'",
      check=f"{_SHAPE}._check_turns"),
    R(id="haiku.reserved-keywords",
      summary="No '\\nHuman:' or '\\nAssistant:' (a line break, then the speaker name and colon) in `system` or "
              "any message's `content`.",
      codes=("reserved_keyword",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="RESERVED_KEYWORDS, DataEntry.check_message_structure()", check=f"{_HAIKU}._check_haiku_keywords",
      note="Matched as the validator does: case-sensitive substrings, so 'Human:' at the very start, '\\nhuman:' "
           "and '\\nHuman :' pass, while '\\r\\nHuman:' and '\\n\\nAssistant:' are refused."),
    R(id="haiku.too-many-tokens",
      summary="At most 32,000 tokens per record, estimated as len(text) // 3 for `system` plus each message's "
              "`content`.",
      codes=("too_many_tokens",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="MAX_TOKENS, CHARS_PER_TOKEN, count_tokens(), validate_file()", check=f"{_HAIKU}._record_tokens",
      note="Each field is rounded down on its own and roles and keys are not counted, as in the validator; "
           "`workbench.domain.validation.dataset.validate_records` compares the sum with the limit."),
    R(id="haiku.record-counts",
      summary="32 to 10,000 training records; 32 to 1,000 validation records.",
      codes=("too_few_examples", "too_many_examples"), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="MIN_LINES, MAX_TRAINING_LINES, MAX_VALIDATION_LINES, validate_file()",
      check=f"{_DATASET}._dataset_findings",
      note="The validator's validate_data() checks the validation file with is_training left True, so in practice "
           "it holds validation data to the training limits; we apply its MAX_VALIDATION_LINES (1,000) as meant."),
    R(id="haiku.combined-count", summary="At most 10,000 training and validation records together.",
      codes=("too_many_total_examples",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="MAX_TOTAL_LINES, validate_data()", check=f"{_DATASET}.check_combined_counts"),
    R(id="haiku.file-size", summary="Training file at most 10 GB, validation file at most 1 GB (GB = 1,073,741,824 bytes).",
      codes=("file_too_large",), origin=VALIDATOR, source=src.HAIKU_VALIDATOR,
      anchor="MAX_TRAINING_SIZE_GB, MAX_VALIDATION_SIZE_GB, validate_file()", check=f"{_DATASET}._dataset_findings",
      note="The size is that of the JSONL the export writes (compact JSON, one line per record)."),
)

_SERVICE_RULES = (
    R(id="haiku.no-extra-keys",
      summary="Only `system` and `messages` at the top of a record, only `role` and `content` in a message.",
      codes=("forbidden_key",), origin=SERVICE, source=src.HAIKU_COOKBOOK,
      anchor="Prep a Dataset: 'No extraneous keys are allowed.'", check=f"{_SHAPE}._check_keys",
      note="Stricter than the validator, whose pydantic models ignore extra keys: Anthropic's cookbook for this "
           "service says none are allowed, so we follow it."),
    R(id="haiku.no-tool-use",
      summary="No tool use: Claude 3 Haiku training data has no place for tool definitions, calls or results.",
      codes=("tool_use_not_supported",), origin=SERVICE, source=src.HAIKU_COOKBOOK,
      anchor="Prep a Dataset: the record structure; 'No extraneous keys are allowed.'",
      check="workbench.domain.validation.tools._reject_tool_use",
      note="The validator already fails tool roles and content blocks and ignores `tools`; we name every tool "
           "field, `tools` included, since the documented record has no place for any of them."),
    R(id="haiku.multi-turn", summary="Multi-turn records are accepted with a warning.",
      codes=("multi_turn_warning",), severity=W, origin=SERVICE, source=src.BEDROCK_TEXT_DATA,
      anchor="Anthropic Claude 3 Haiku only: single-turn conversations", check=f"{_HAIKU}._warn_multi_turn",
      note="AWS's guide shows Claude 3 Haiku data as single-turn, but its sample validator and Anthropic's cookbook "
           "accept alternating multi-turn records, so this is advice rather than an error."),
)

_OUR_RULES = (
    R(id="haiku.empty-content", summary="Every message's `content` has text (not empty or only whitespace).",
      codes=("empty_content",), origin=OURS, source=src.HAIKU_COOKBOOK,
      anchor="Prep a Dataset: 'user message', 'assistant response'", check=f"{_HAIKU}._check_content",
      note="The validator accepts an empty string. An error here all the same: an empty user turn or reply trains "
           "on nothing (an empty reply teaches the model to say nothing), and Claude's Messages API refuses empty "
           "text; it is almost always a data bug."),
    R(id="haiku.conversion-loss",
      summary="What the Claude record (a system string and text turns) cannot hold is dropped, and the model will "
              "not see it (advice).",
      codes=("conversion_loss",), severity=W, origin=OURS, source=src.BEDROCK_TEXT_DATA,
      anchor="Anthropic Claude 3 Haiku: {system, messages: [{role, content}]}",
      check="workbench.services.validating.validate_dataset",
      note="Checked when a stored dataset is rendered into the Claude format (a file already in it has nothing to "
           "lose). Each finding names the field: a training weight, a speaker name, an image. Tool use is not "
           "listed as a loss but refused (haiku.no-tool-use): the replies would keep answers built on results the "
           "model never saw."),
)

HAIKU = (*_VALIDATOR_RULES, *_SERVICE_RULES, *_OUR_RULES)
