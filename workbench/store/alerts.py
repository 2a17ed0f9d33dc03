"""Rows of `alert_rules` and `alert_events` (m016): the rules the watcher evaluates and what they fired."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.errors import Conflict, NotFound
from workbench.store import utcnow


class AlertRule(BaseModel):
    id: int
    name: str
    metric: str = Field(description="accuracy, error_rate, latency_p95_ms, cost_usd, volume, or drift:<signal>.")
    model_version: str | None
    task_type: str | None
    window_days: int
    reference_days: int
    comparison: str
    threshold: float
    enabled: bool
    created_at: str


class AlertEvent(BaseModel):
    id: int
    rule_id: int
    rule_name: str
    fired_at: str
    value: float | None = Field(description="The metric's value when the rule fired.")
    last_value: float | None = Field(description="Its value at the latest check.")
    checked_at: str
    message: str
    resolved_at: str | None


def _rule(row: dict[str, Any]) -> AlertRule:
    return AlertRule(**{**row, "enabled": bool(row["enabled"])})


def create_rule(db: Database, *, name: str, metric: str, model_version: str | None, task_type: str | None,
                window_days: int, reference_days: int, comparison: str, threshold: float, enabled: bool) -> AlertRule:
    if db.execute("SELECT 1 FROM alert_rules WHERE name = ?", [name]).fetchone():
        raise Conflict(f"an alert rule named {name!r} exists; pick another name or delete it first "
                       "(`workbench alerts delete NAME`)")
    cursor = db.execute(
        "INSERT INTO alert_rules (name, metric, model_version, task_type, window_days, reference_days, comparison, "
        "threshold, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [name, metric, model_version, task_type, window_days, reference_days, comparison, threshold, int(enabled),
         utcnow()],
    )
    return get_rule(db, int(cursor.lastrowid or 0))


def get_rule(db: Database, rule: int | str) -> AlertRule:
    text = str(rule).strip()
    number = int(text) if text.isascii() and text.isdigit() and len(text) < 18 else -1
    rows = list(db.query("SELECT * FROM alert_rules WHERE name = ? OR id = ? ORDER BY name = ? DESC LIMIT 1",
                         [text, number, text]))
    if not rows:
        raise NotFound(f"no alert rule {rule!r}; `workbench alerts list` shows the rules there are")
    return _rule(rows[0])


def get_rule_or_none(db: Database, rule_id: int) -> AlertRule | None:
    rows = list(db.query("SELECT * FROM alert_rules WHERE id = ?", [rule_id]))
    return _rule(rows[0]) if rows else None


def list_rules(db: Database, *, enabled_only: bool = False) -> list[AlertRule]:
    sql = "SELECT * FROM alert_rules" + (" WHERE enabled = 1" if enabled_only else "") + " ORDER BY name"
    return [_rule(r) for r in db.query(sql)]


def delete_rule(db: Database, rule_id: int) -> None:
    db.execute("DELETE FROM alert_events WHERE rule_id = ?", [rule_id])
    db.execute("DELETE FROM alert_rules WHERE id = ?", [rule_id])


def set_enabled(db: Database, rule_id: int, enabled: bool) -> None:
    db.execute("UPDATE alert_rules SET enabled = ? WHERE id = ?", [int(enabled), rule_id])


_EVENT = ("SELECT e.id, e.rule_id, r.name AS rule_name, e.fired_at, e.value, e.last_value, e.checked_at, e.message, "
          "e.resolved_at FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id")


def open_event(db: Database, rule_id: int) -> AlertEvent | None:
    rows = list(db.query(f"{_EVENT} WHERE e.rule_id = ? AND e.resolved_at IS NULL", [rule_id]))
    return AlertEvent(**rows[0]) if rows else None


def fire(db: Database, rule_id: int, *, value: float | None, message: str, at: str) -> int:
    cursor = db.execute(
        "INSERT INTO alert_events (rule_id, fired_at, value, last_value, checked_at, message) VALUES (?, ?, ?, ?, ?, ?)",
        [rule_id, at, value, value, at, message],
    )
    return int(cursor.lastrowid or 0)


def touch(db: Database, event_id: int, *, value: float | None, message: str, at: str) -> None:
    db.execute("UPDATE alert_events SET last_value = ?, checked_at = ?, message = ? WHERE id = ?",
               [value, at, message, event_id])


def resolve(db: Database, event_id: int, *, value: float | None, at: str) -> None:
    db.execute("UPDATE alert_events SET resolved_at = ?, last_value = ?, checked_at = ? WHERE id = ?",
               [at, value, at, event_id])


def firing(db: Database) -> list[AlertEvent]:
    return [AlertEvent(**r) for r in db.query(f"{_EVENT} WHERE e.resolved_at IS NULL ORDER BY e.fired_at DESC")]


def recent_events(db: Database, *, limit: int = 50) -> list[AlertEvent]:
    return [AlertEvent(**r) for r in db.query(f"{_EVENT} ORDER BY e.fired_at DESC, e.id DESC LIMIT ?", [limit])]
