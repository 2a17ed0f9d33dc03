"""Roles, what each may do, and who is acting: the rules a shared workbench enforces, with no IO.

A role is a fixed set of permissions rather than a list of pages, so the page gate, the service
layer and the API ask one question ("may this actor do X?") and cannot disagree. Roles come from the
store only (assigned by email or domain); nothing a sign-in token claims about a role is believed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    ENGINEER = "engineer"
    REVIEWER = "reviewer"
    PM = "pm"
    ADMIN = "admin"


class Permission(StrEnum):
    DATASETS_READ = "datasets.read"
    DATASETS_WRITE = "datasets.write"
    """Import, edit turns, clean, split, freeze, export, delete; guardrail rules."""
    LABELS_WRITE = "labels.write"
    """Labels, tags, notes and corrections on single examples: what a reviewer fixes while reading."""
    REVIEW_READ = "review.read"
    REVIEW_WORK = "review.work"
    """Rate and correct items in the review queue."""
    REVIEW_MANAGE = "review.manage"
    """Queue settings, enqueueing outputs, pushing corrections into a dataset in bulk."""
    JOBS_READ = "jobs.read"
    JOBS_WRITE = "jobs.write"
    """Launch, cancel, import jobs; sweeps."""
    MODELS_READ = "models.read"
    MODELS_WRITE = "models.write"
    """Register, activate, deploy, evaluate models."""
    TEMPLATES_READ = "templates.read"
    TEMPLATES_WRITE = "templates.write"
    """Write templates; run comparisons and distillations (they spend money on model calls)."""
    MONITORING_READ = "monitoring.read"
    ALERTS_WRITE = "alerts.write"
    COSTS_READ = "costs.read"
    COSTS_WRITE = "costs.write"
    """Price table and budgets."""
    EXPERIMENTS_READ = "experiments.read"
    EXPERIMENTS_WRITE = "experiments.write"
    """Define, start, stop and decide A/B tests (shipping activates the winner)."""
    PREDICTIONS_WRITE = "predictions.write"
    """Send predictions and feedback, import prediction logs."""
    USERS_MANAGE = "users.manage"
    """Assign roles; create, list and revoke API tokens."""
    AUDIT_READ = "audit.read"


_READS = frozenset(p for p in Permission if p.value.endswith(".read"))
_ADMIN_ONLY = frozenset({Permission.USERS_MANAGE, Permission.AUDIT_READ})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ENGINEER: frozenset(Permission) - _ADMIN_ONLY,
    Role.REVIEWER: frozenset({
        Permission.DATASETS_READ, Permission.LABELS_WRITE, Permission.REVIEW_READ, Permission.REVIEW_WORK,
    }),
    Role.PM: (_READS - {Permission.AUDIT_READ}) | {
        Permission.COSTS_WRITE, Permission.EXPERIMENTS_WRITE, Permission.ALERTS_WRITE,
    },
}

ROLE_SUMMARY: dict[Role, str] = {
    Role.ENGINEER: "everything but roles and the audit trail: data, jobs, models, templates, dashboards",
    Role.REVIEWER: "the review queue (ratings and corrections), labels, tags and notes on examples, and reading datasets",
    Role.PM: "dashboards, costs and experiments; read-only elsewhere",
    Role.ADMIN: "everything, including roles, API tokens and the audit trail",
}

Via = Literal["local", "oidc", "token", "cli"]


class Actor(BaseModel):
    """Whoever a change is attributed to: a signed-in person, an API token, or the local operator."""

    model_config = ConfigDict(frozen=True)

    email: str
    name: str = ""
    role: Role | None = None
    via: Via = "local"

    def can(self, permission: Permission) -> bool:
        return self.role is not None and permission in ROLE_PERMISSIONS[self.role]

    @property
    def label(self) -> str:
        """How the audit trail and conflict messages name them: 'ana@acme.com (reviewer)'."""
        return f"{self.email} ({self.role.value if self.role else 'no role'})"



NOBODY = Actor(email="anonymous", name="Not signed in", role=None, via="oidc")
"""Who code runs as in a signed-in deployment when no actor was set: refused everything (fail closed)."""

PAGES: dict[str, Permission | None] = {
    "Home.py": None,
    "pages/1_Datasets.py": Permission.DATASETS_READ,
    "pages/2_Jobs.py": Permission.JOBS_READ,
    "pages/3_Models.py": Permission.MODELS_READ,
    "pages/4_Review.py": Permission.REVIEW_READ,
    "pages/5_Templates.py": Permission.TEMPLATES_READ,
    "pages/6_Monitoring.py": Permission.MONITORING_READ,
    "pages/7_Costs.py": Permission.COSTS_READ,
    "pages/8_Experiments.py": Permission.EXPERIMENTS_READ,
    "pages/9_Settings.py": None,
    "pages/10_Audit.py": Permission.AUDIT_READ,
}
"""The permission each page needs to open (None: every signed-in role). Write actions on a page need more."""


def may_open(actor: Actor, page: str) -> bool:
    """Say whether `actor` may open the page script `page` (a path as in PAGES); unknown pages need a role."""
    if actor.role is None:
        return False
    needed = PAGES.get(page)
    return needed is None or actor.can(needed)


def parse_role(text: str) -> Role:
    """Read a role name as typed ('PM', ' reviewer'); the error lists the roles there are."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {text!r}: use one of {', '.join(r.value for r in Role)}") from None
