"""The rules `workbench datasets validate --target openai` checks, one per provider check, with sources.

VALIDATOR rules are the OpenAI cookbook's checks (`Chat_finetuning_data_prep.ipynb`): the seven error keys
of its "Format validation" cell, and the warnings of its "Data Warnings and Token Counts" cell. SERVICE
rules are what OpenAI's documentation states beyond that notebook (minimum examples, weights, tool calling,
images, file size). OURS are the workbench's advice.
"""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS
COOKBOOK = src.OPENAI_COOKBOOK_PREP
_V = "workbench.domain.validation"
_FORMAT_CELL = 'cell "Format validation" (format_errors)'
_WARN_CELL = 'cell "Data Warnings and Token Counts"'

_COOKBOOK_RULES = (
    R(id="openai.one-object", summary="Each line is one JSON object.", codes=("data_type", "invalid_json"),
      origin=VALIDATOR, source=COOKBOOK, anchor=f'{_FORMAT_CELL}: "data_type"; loading: json.loads per line',
      check=f"{_V}.dataset.validate_records",
      note="A line that is not JSON makes the notebook's json.loads raise, so the file fails to load. "
           "The file check (workbench.services.validating.validate_file_records, run on a job's exported file "
           "before upload) reads the file as the notebook's loader does, UTF-8 text with json.loads per line, and reports as "
           "invalid_json, with the line and what to change: a line that is not JSON, a UTF-8 byte-order mark, a blank "
           "or whitespace-only line (anywhere, a trailing one too; one final newline is fine), a JSON array file, "
           "UTF-16 and gzip. Stricter than the notebook in one place: NaN, Infinity and lone-surrogate escapes (\\ud800) "
           "pass Python's json.loads but are refused here, since OpenAI's service parses strict JSON, which has none of them."),
    R(id="openai.messages-list", summary="A non-empty `messages` list.", codes=("missing_messages_list",),
      origin=VALIDATOR, source=COOKBOOK, anchor=f'{_FORMAT_CELL}: "missing_messages_list" (`if not messages`)',
      check=f"{_V}.shape._messages",
      note="The cookbook counts a missing, null or empty `messages`; a non-list value (a string, an object) makes "
           "it crash or misread, so we report it here too."),
    R(id="openai.message-object", summary="Every message is a JSON object.", codes=("invalid_type",),
      origin=VALIDATOR, source=COOKBOOK, anchor=f"{_FORMAT_CELL}: `for message in messages`",
      check=f"{_V}.shape._objects",
      note="The cookbook has no key for this: a message that is not an object makes `message.get` raise, so the "
           "notebook fails. We report it as an error naming the message."),
    R(id="openai.message-keys", summary="Every message has `role` and `content`.", codes=("message_missing_key",),
      origin=VALIDATOR, source=COOKBOOK, anchor=f'{_FORMAT_CELL}: "message_missing_key"',
      check=f"{_V}.openai._check_message_keys",
      note="The guide's function-calling examples leave `content` out of an assistant message with `tool_calls` "
           "or `function_call`; we follow the guide there, where the cookbook would count an error."),
    R(id="openai.message-unrecognized-key",
      summary="Message keys only: role, content, name, weight, function_call, tool_calls, tool_call_id.",
      codes=("message_unrecognized_key",), origin=VALIDATOR, source=COOKBOOK,
      anchor=f'{_FORMAT_CELL}: "message_unrecognized_key"', check=f"{_V}.openai._check_message_keys",
      note="The cookbook's list is role, content, name, function_call, weight; tool_calls and tool_call_id are "
           "added from the guide's tool-calling format."),
    R(id="openai.roles", summary="Roles only system, user, assistant, function and tool, in lower case.",
      codes=("unrecognized_role",), origin=VALIDATOR, source=COOKBOOK,
      anchor=f'{_FORMAT_CELL}: "unrecognized_role"', check=f"{_V}.openai._check_openai",
      note="The comparison is exact, so \"System\" fails as in the cookbook. The cookbook's code accepts "
           "\"function\" (its markdown omits it); \"tool\" is added from the guide's tool-calling format. A message "
           "with no role is reported once, as message_missing_key."),
    R(id="openai.content", summary="`content` is a non-empty string (or a list of text/image parts).",
      codes=("missing_content",), origin=VALIDATOR, source=COOKBOOK, anchor=f'{_FORMAT_CELL}: "missing_content"',
      check=f"{_V}.openai._check_openai_content",
      note="The cookbook's test is `(not content and not function_call) or not isinstance(content, str)`: an "
           "empty string passes only beside a function call (tool_calls count too). We also accept null beside a "
           "call (the chat format's tool-call message) and a content list of parts (vision fine-tuning guide); "
           "the cookbook predates both."),
    R(id="openai.assistant-message", summary="At least one assistant message per example.",
      codes=("example_missing_assistant_message",), origin=VALIDATOR, source=COOKBOOK,
      anchor=f'{_FORMAT_CELL}: "example_missing_assistant_message"', check=f"{_V}.openai._check_openai_roles"),
    R(id="openai.system-user-messages", summary="Each example has a system and a user message (advice).",
      codes=("missing_system_message", "missing_user_message"), severity=W, origin=VALIDATOR, source=COOKBOOK,
      anchor=f"{_WARN_CELL}: n_missing_system, n_missing_user", check=f"{_V}.openai._check_openai_roles"),
    R(id="openai.too-many-tokens",
      summary="An example over the base model's training context is truncated from the end (advice).",
      codes=("too_many_tokens",), severity=W, origin=VALIDATOR, source=COOKBOOK,
      anchor=f"{_WARN_CELL}: n_too_long (> 16,385), MAX_TOKENS_PER_EXAMPLE", check=f"{_V}.dataset.validate_records",
      note="The cookbook counts with cl100k_base against a fixed 16,385 (4,096 in older versions); we use the "
           "base model's tokenizer and its context from the guide (65,536 for gpt-4o and gpt-4o-mini, 16,385 "
           "for gpt-3.5-turbo-0125/1106, 4,096 for gpt-3.5-turbo-0613). The service truncates rather than refuses."),
)

_SERVICE_RULES = (
    R(id="openai.min-examples", summary="At least 10 training examples.", codes=("too_few_examples",),
      origin=SERVICE, source=src.OPENAI_GUIDE, anchor='"Example count recommendations": at least 10 examples',
      check=f"{_V}.dataset._dataset_findings"),
    R(id="openai.recommended-examples", summary="50 or more training examples recommended (advice).",
      codes=("below_recommended_examples",), severity=W, origin=SERVICE, source=src.OPENAI_GUIDE,
      anchor='"Example count recommendations": clear improvements from 50 to 100 examples',
      check=f"{_V}.dataset._dataset_findings"),
    R(id="openai.file-size", summary="A training or validation file of at most 8 GB.", codes=("file_too_large",),
      origin=SERVICE, source=src.OPENAI_UPLOADS_API, anchor="Create upload: bytes (at most 8 GB)",
      check=f"{_V}.dataset._dataset_findings",
      note="The Files API takes at most 512 MB in one request; a larger file goes through the Uploads API in parts, "
           "up to 8 GB, so only 8 GB is an error."),
    R(id="openai.weight", summary="`weight` is 0 or 1.", codes=("invalid_weight",), origin=SERVICE,
      source=src.OPENAI_GUIDE, anchor='"Multi-turn chat examples": "The allowed values for weight are currently 0 or 1"',
      check=f"{_V}.openai._check_weight",
      note="The cookbook accepts the key but never checks its value (and its token count crashes on a number)."),
    R(id="openai.name", summary="A message `name` is a string.", codes=("invalid_name",), origin=SERVICE,
      source=src.OPENAI_CHAT_API, anchor="messages[].name (string)", check=f"{_V}.openai._check_openai",
      note="The cookbook allows the key without checking its type; the chat format types it as a string."),
    R(id="openai.content-parts",
      summary='A content list holds only {"type": "text", "text"} and {"type": "image_url", "image_url": {"url"}} parts.',
      codes=("invalid_content_part",), origin=SERVICE, source=src.OPENAI_VISION_GUIDE, anchor="Data format",
      check=f"{_V}.openai._check_parts"),
    R(id="openai.images", summary="Images only in user or system messages, at most 10 per example.",
      codes=("image_in_assistant", "too_many_images"), origin=SERVICE, source=src.OPENAI_VISION_GUIDE,
      anchor="Image dataset requirements", check=f"{_V}.openai._check_parts"),
    R(id="openai.tool-definitions",
      summary="`tools` is a list of {type: function, function: {name, parameters}}; a name uses a-z, A-Z, 0-9, _ and - "
              "(at most 64).",
      codes=("invalid_tool_definition",), origin=SERVICE, source=src.OPENAI_TOOLS_EXAMPLE,
      anchor="Constructing a training file", check=f"{_V}.tools._openai_tool_names",
      note="The name pattern is the chat API's (tools[].function.name)."),
    R(id="openai.tool-calls",
      summary="`tool_calls` (and legacy `function_call`) only on assistant messages, each {id, type: function, "
              "function: {name, arguments}}.",
      codes=("misplaced_tool_calls", "invalid_tool_call"), origin=SERVICE, source=src.OPENAI_TOOLS_EXAMPLE,
      anchor="Constructing a training file", check=f"{_V}.tools._check_openai_calls"),
    R(id="openai.tool-arguments", summary="Function `arguments` is a string holding a JSON object, not an object.",
      codes=("tool_arguments_not_json_string",), origin=SERVICE, source=src.OPENAI_TOOLS_EXAMPLE,
      anchor='"arguments": "{\\"location\\": ...}"', check=f"{_V}.tools._check_arguments"),
    R(id="openai.tool-results", summary="A tool message carries the `tool_call_id` of an earlier assistant tool call.",
      codes=("missing_tool_call_id", "tool_result_without_call"), origin=SERVICE, source=src.OPENAI_CHAT_API,
      anchor="messages[].tool_call_id (tool message)", check=f"{_V}.tools._check_openai_tools"),
)

_OUR_RULES = (
    R(id="openai.top-level-keys", summary="Top-level keys only messages, tools, functions, parallel_tool_calls (advice).",
      codes=("unrecognized_key",), severity=W, origin=OURS, source=src.OPENAI_GUIDE, check=f"{_V}.shape._check_keys",
      note="Neither the cookbook nor the guide says other keys are refused; we warn because they are not trained on."),
    R(id="openai.whitespace-content", summary="Content that is only whitespace (advice).", codes=("empty_content",),
      severity=W, origin=OURS, source=COOKBOOK, anchor=f'{_FORMAT_CELL}: "missing_content"',
      check=f"{_V}.openai._check_openai_content", note="The cookbook passes \" \" (a non-empty string); we warn."),
    R(id="openai.ends-on-assistant", summary="An example ends on an assistant message (advice).",
      codes=("last_not_assistant",), severity=W, origin=OURS, source=src.OPENAI_GUIDE,
      check=f"{_V}.openai._check_openai_roles", note="Messages after the last assistant reply are never trained on."),
    R(id="openai.weight-placement", summary="`weight` only on assistant messages (advice).", codes=("misplaced_weight",),
      severity=W, origin=OURS, source=src.OPENAI_GUIDE, check=f"{_V}.openai._check_weight",
      note="The guide sets weight on assistant messages only; it does not say a weight elsewhere is refused."),
    R(id="openai.all-weights-zero", summary="Not every assistant message at weight 0 (advice).",
      codes=("all_weights_zero",), severity=W, origin=OURS, source=src.OPENAI_GUIDE,
      check=f"{_V}.openai._check_openai_roles", note="Such an example trains on nothing."),
    R(id="openai.unknown-tool", summary="A called function is one of the example's `tools` (advice).",
      codes=("unknown_tool",), severity=W, origin=OURS, source=src.OPENAI_TOOLS_EXAMPLE,
      check=f"{_V}.tools._check_openai_calls"),
    R(id="openai.conversion-loss",
      summary="What OpenAI's chat format cannot hold is dropped, and the model will not see it (advice).",
      codes=("conversion_loss",), severity=W, origin=OURS, source=src.OPENAI_GUIDE,
      anchor='"Preparing your dataset": the chat format', check="workbench.services.validating.validate_dataset",
      note="Checked when a stored dataset is rendered into OpenAI's format (a file already in it has nothing to "
           "lose). Each finding names the field: a video or an S3 image from a Converse record, for example."),
)

OPENAI = (*_COOKBOOK_RULES, *_SERVICE_RULES, *_OUR_RULES)
