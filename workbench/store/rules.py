"""Guardrail rules as users wrote them."""

from __future__ import annotations

from sqlite_utils import Database

from workbench.domain.guardrails import GuardrailRule
from workbench.errors import Conflict, NotFound
from workbench.store import utcnow

_FIELDS = ("name", "kind", "pattern", "scope", "action", "message", "case_sensitive", "enabled")


def list_rules(db: Database) -> list[GuardrailRule]:
    """Return every rule, oldest first."""
    return [
        GuardrailRule.model_validate({**row, "case_sensitive": bool(row["case_sensitive"]), "enabled": bool(row["enabled"])})
        for row in db.query(f"SELECT id, {', '.join(_FIELDS)} FROM guardrail_rules ORDER BY id")
    ]


def insert_rule(db: Database, rule: GuardrailRule) -> GuardrailRule:
    """Store a new rule; names are unique so reports can refer to rules by name."""
    values = rule.model_dump(mode="json", include=set(_FIELDS))
    try:
        cursor = db.execute(
            f"INSERT INTO guardrail_rules ({', '.join(_FIELDS)}, created_at) VALUES ({', '.join('?' * len(_FIELDS))}, ?)",
            [values[f] for f in _FIELDS] + [utcnow()],
        )
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise Conflict(f"a rule named {rule.name!r} already exists") from exc
        raise
    return rule.model_copy(update={"id": int(cursor.lastrowid or 0)})


def set_enabled(db: Database, rule_id: int, enabled: bool) -> None:
    """Switch a rule on or off."""
    if db.execute("UPDATE guardrail_rules SET enabled = ? WHERE id = ?", [int(enabled), rule_id]).rowcount == 0:
        raise NotFound(f"no rule with id {rule_id}")


def delete_rule(db: Database, rule_id: int) -> None:
    """Delete a rule."""
    if db.execute("DELETE FROM guardrail_rules WHERE id = ?", [rule_id]).rowcount == 0:
        raise NotFound(f"no rule with id {rule_id}")
