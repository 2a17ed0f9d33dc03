"""The rules checked for Amazon Titan Text on Bedrock, with sources."""

from __future__ import annotations

from workbench.domain.catalogue import sources as src
from workbench.domain.catalogue.models import Rule, RuleOrigin, Severity
from workbench.domain.catalogue.rules.common import _prompt_completion

R = Rule
E, W = Severity.ERROR, Severity.WARNING
VALIDATOR, SERVICE, OURS = RuleOrigin.VALIDATOR, RuleOrigin.SERVICE, RuleOrigin.OURS

TITAN = (
    *_prompt_completion("Titan Text", src.BEDROCK_TEXT_DATA),
    R(summary="At least one record.", codes=("too_few_examples",), source=src.BEDROCK_TEXT_DATA),
    R(summary="At most 4,096 input tokens per record: the job fails mid-run on a longer one.",
      codes=("too_many_tokens",), source=src.TITAN_TOKEN_LIMIT),
)
