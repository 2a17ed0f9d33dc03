"""Pydantic models and pure logic: formats, validation, PII, guardrails, statistics. No IO."""
