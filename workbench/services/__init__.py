"""Use cases, one module per area. Plain functions taking a Store and pydantic models."""
