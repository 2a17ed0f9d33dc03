"""The kinds of PII we detect and the placeholder each is scrubbed to."""

from __future__ import annotations

from enum import StrEnum


class PiiKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CREDIT_CARD = "credit_card"
    SSN = "ssn"
    IP_ADDRESS = "ip_address"
    AWS_KEY = "aws_key"
    API_KEY = "api_key"


PLACEHOLDERS: dict[str, str] = {
    PiiKind.EMAIL.value: "[EMAIL]",
    PiiKind.PHONE.value: "[PHONE]",
    PiiKind.CREDIT_CARD.value: "[CREDIT_CARD]",
    PiiKind.SSN.value: "[SSN]",
    PiiKind.IP_ADDRESS.value: "[IP_ADDRESS]",
    PiiKind.AWS_KEY.value: "[AWS_KEY]",
    PiiKind.API_KEY.value: "[API_KEY]",
}

# (kind, start, end): one detector match, before overlaps are resolved.
_Span = tuple[str, int, int]
