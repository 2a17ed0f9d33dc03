"""Read the audit trail: events filtered by who, what, when, target and outcome, newest first.

Reading it is itself limited to admins (`audit.read`): it says who worked on what and when.
"""

from __future__ import annotations

from datetime import UTC, datetime

from workbench.domain.access import Permission
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.store import Store
from workbench.store import audit as rows
from workbench.store.audit import AuditEvent

MAX_LIMIT = 10_000


def _when(text: str | None, field: str) -> str | None:
    """Accept a date or an ISO timestamp; store timestamps are UTC ISO-8601, so compare in that form."""
    if text is None or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{field} {text!r} is not a date (2026-11-30) or an ISO timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _filters(actor: str | None, action: str | None, outcome: str | None, since: str | None, until: str | None,
             target: str | None) -> dict[str, str | None]:
    if outcome not in (None, "", "ok", "refused"):
        raise InvalidInput(f"outcome {outcome!r} must be 'ok' or 'refused'")
    return {
        "actor": (actor or "").strip().lower() or None,
        "action": (action or "").strip() or None,
        "outcome": outcome or None,
        "since": _when(since, "since"),
        "until": _when(until, "until"),
        "target": (target or "").strip() or None,
    }


def events(store: Store, *, actor: str | None = None, action: str | None = None, outcome: str | None = None,
           since: str | None = None, until: str | None = None, target: str | None = None, limit: int = 200,
           offset: int = 0) -> list[AuditEvent]:
    """Return matching events, newest first. `action` 'job' matches every job.* action."""
    access.require(store, Permission.AUDIT_READ, action="audit.read")
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput(f"limit must be 1-{MAX_LIMIT} and offset at least 0")
    with store.connect() as db:
        return rows.select(db, **_filters(actor, action, outcome, since, until, target), limit=limit, offset=offset)


def count(store: Store, *, actor: str | None = None, action: str | None = None, outcome: str | None = None,
          since: str | None = None, until: str | None = None, target: str | None = None) -> int:
    access.require(store, Permission.AUDIT_READ, action="audit.read")
    with store.connect() as db:
        return rows.count(db, **_filters(actor, action, outcome, since, until, target))


def actors(store: Store) -> list[str]:
    access.require(store, Permission.AUDIT_READ, action="audit.read")
    with store.connect() as db:
        return rows.distinct(db, "actor")


def actions(store: Store) -> list[str]:
    access.require(store, Permission.AUDIT_READ, action="audit.read")
    with store.connect() as db:
        return rows.distinct(db, "action")
