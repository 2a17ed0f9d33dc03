"""The rules checked for Amazon Nova on Bedrock, one per check of AWS's sample validator, with sources."""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity
from workbench.domain.catalogue.rules.common import _converse

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

NOVA = (
    *_converse(src.NOVA_DATA, src.NOVA_VALIDATOR),
    R(summary="Records with images or video need a base model that takes them (Nova Micro takes none): a warning "
              "until one is chosen.", codes=("media_model_unknown",), source=src.NOVA_CUSTOMIZATION),
    R(summary="No reserved tokens (User:, Bot:, Assistant:, System:, Thought:, [EOS], <image>, <video>...) in "
              "any text.", codes=("reserved_token",), source=src.NOVA_VALIDATOR),
    R(summary="8 to 20,000 training records; at least 100 recommended.",
      codes=("too_few_examples", "too_many_examples", "below_recommended_examples"), source=src.NOVA_VALIDATOR),
    R(summary="Nova 2 ignores a validation set.", codes=("validation_not_supported",), source=src.NOVA2_DATA),
    R(summary="Tool use might make the job fail (warning per tool block).", codes=("tool_use",), source=src.NOVA2_DATA),
    R(summary="`toolConfig` is {tools: [{toolSpec: {name, inputSchema: {json}}}]}.", codes=("invalid_tool_definition",),
      source=src.CONVERSE_TOOL_CONFIG),
    R(summary="`toolUse` {toolUseId, name, input: object} only in assistant turns; `toolResult` {toolUseId, "
              "content} only in user turns.",
      codes=("misplaced_tool_use", "invalid_tool_use", "invalid_tool_result"), source=src.CONVERSE_TOOL_USE),
    R(summary="A `toolResult` answers an earlier `toolUse` by its toolUseId.", codes=("tool_result_without_call",),
      source=src.CONVERSE_TOOL_RESULT),
    R(summary="A used tool is declared in `toolConfig` (warning).", codes=("unknown_tool",), source=src.CONVERSE_TOOL_CONFIG),
)
