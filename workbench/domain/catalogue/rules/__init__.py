"""The rules the validators check, per target: one entry per rule of the provider's own validator or docs,
plus the workbench's own, each with its finding codes, severity, origin, source and implementing function.

docs/validation-rules.md is generated from these lists (`workbench targets rules --markdown`), and tests hold
every rule to a record that breaks it and one that narrowly passes.
"""

from __future__ import annotations

from workbench.domain.catalogue.rules.haiku import HAIKU
from workbench.domain.catalogue.rules.llama import LLAMA31, LLAMA32
from workbench.domain.catalogue.rules.nova import NOVA
from workbench.domain.catalogue.rules.openai import OPENAI
from workbench.domain.catalogue.rules.titan import TITAN

__all__ = ["HAIKU", "LLAMA31", "LLAMA32", "NOVA", "OPENAI", "TITAN"]
