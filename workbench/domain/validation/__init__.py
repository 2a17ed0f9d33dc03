"""Check fine-tuning records against one provider's dataset rules before a job is paid for.

Records are checked in the target's own JSON shape (the dicts written to the JSONL), so the same code
checks an export file and a dataset about to be exported. Every rule comes from
`shared/reference/providers.md` (sections 1.2, 1.3, 3.1, 3.2): record counts, keys, roles and their
order, reserved tokens, per-record token limits. A broken rule is reported as a `Finding`; nothing in
here raises on bad data.
"""

from __future__ import annotations

from workbench.domain.validation.bedrock import NOVA_RESERVED_TOKENS
from workbench.domain.validation.dataset import check_combined_counts, validate_records
from workbench.domain.validation.limits import rules_for
from workbench.domain.validation.models import (
    Finding,
    RecordRef,
    Severity,
    Target,
    TargetRules,
    ValidationReport,
)
from workbench.domain.validation.openai import OPENAI_MESSAGE_KEYS, OPENAI_ROLES

__all__ = [
    "NOVA_RESERVED_TOKENS",
    "OPENAI_MESSAGE_KEYS",
    "OPENAI_ROLES",
    "Finding",
    "RecordRef",
    "Severity",
    "Target",
    "TargetRules",
    "ValidationReport",
    "check_combined_counts",
    "rules_for",
    "validate_records",
]
