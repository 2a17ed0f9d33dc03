"""Check fine-tuning records against one target's dataset rules before a job is paid for.

Records are checked in the target's own JSON shape (the dicts written to the JSONL), so the same code
checks an export file and a dataset about to be exported. What each target allows (record counts, token
limits, tokenizer, tool use) comes from the target catalogue (`workbench.domain.catalogue`), which cites
the provider documentation and sample validators each rule is taken from; docs/providers.md says the same
in prose. A broken rule is reported as a `Finding`; nothing in here raises on bad data.
"""

from __future__ import annotations

from workbench.domain.catalogue import Target
from workbench.domain.validation.converse import NOVA_RESERVED_TOKENS
from workbench.domain.validation.dataset import check_combined_counts, validate_records
from workbench.domain.validation.haiku import HAIKU_RESERVED_KEYWORDS
from workbench.domain.validation.limits import rules_for
from workbench.domain.validation.models import (
    Finding,
    FindingGroup,
    RecordRef,
    Severity,
    TargetRules,
    ValidationReport,
)
from workbench.domain.validation.openai import OPENAI_MESSAGE_KEYS, OPENAI_ROLES

__all__ = [
    "HAIKU_RESERVED_KEYWORDS",
    "NOVA_RESERVED_TOKENS",
    "OPENAI_MESSAGE_KEYS",
    "OPENAI_ROLES",
    "Finding",
    "FindingGroup",
    "RecordRef",
    "Severity",
    "Target",
    "TargetRules",
    "ValidationReport",
    "check_combined_counts",
    "rules_for",
    "validate_records",
]
