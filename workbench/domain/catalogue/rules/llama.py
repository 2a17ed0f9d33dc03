"""The rules checked for Meta Llama 3.1 and 3.2 on Bedrock, one per check of AWS's sample validator, with sources."""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity
from workbench.domain.catalogue.rules.common import _converse, _no_tools, _prompt_completion

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

LLAMA32 = (
    *_converse(src.LLAMA_VALIDATOR, src.LLAMA_VALIDATOR),
    R(summary="`system` holds at most one element.", codes=("too_many_system_items",), source=src.LLAMA_VALIDATOR),
    R(summary="At most 10,000 training and 1,000 validation records.", codes=("too_few_examples", "too_many_examples"),
      source=src.LLAMA_VALIDATOR),
    _no_tools("Llama 3.2", src.LLAMA_VALIDATOR),
)



LLAMA31 = (
    *_prompt_completion("Llama 3.1", src.LLAMA_VALIDATOR),
    R(summary="At most 10,000 training and 1,000 validation records.", codes=("too_few_examples", "too_many_examples"),
      source=src.LLAMA_VALIDATOR),
)
