"""`workbench users ...` and `workbench audit ...`: roles by email or domain, and the trail of who did what.

The terminal acts as the operator of this machine (WORKBENCH_USER, else the login name) with every
permission: they hold the store file, and someone has to assign the first admin of a signed-in
deployment. What they do is recorded under that name like anyone else's.
"""

from __future__ import annotations

import click

from workbench.cli import command, emit, main, store_of
from workbench.domain.access import ROLE_SUMMARY, Role


@main.group()
def users() -> None:
    """Who may do what when the app is shared: roles by email address or by domain."""


@command(users, "assign")
@click.argument("who")
@click.argument("role", type=click.Choice([r.value for r in Role], case_sensitive=False))
def assign_cmd(ctx: click.Context, who: str, role: str) -> None:
    """Give WHO (ana@acme.com, or @acme.com for everyone at a domain) a ROLE, replacing any they had."""
    from workbench.services import users as svc

    found = svc.assign(store_of(ctx), who, role)
    emit(ctx, {"ok": True, "assignment": found.model_dump()},
         lambda: click.echo(f"{found.pattern} is now {found.role}: {ROLE_SUMMARY[Role(found.role)]}"))


@command(users, "remove")
@click.argument("who")
def remove_cmd(ctx: click.Context, who: str) -> None:
    """Take away the role given to WHO; they are refused from their next page on."""
    from workbench.services import users as svc

    store = store_of(ctx)
    before = svc.remove(store, who)
    now = svc.role_for(store, before.pattern) if not before.pattern.startswith("@") else None
    emit(ctx, {"ok": True, "removed": before.model_dump(), "role_now": now.value if now else None},
         lambda: click.echo(svc.removal_words(store, before)))


@command(users, "list")
def list_cmd(ctx: click.Context) -> None:
    """List every role assignment: addresses and domains."""
    from workbench.services import users as svc

    found = svc.list_assignments(store_of(ctx))

    def human() -> None:
        if not found:
            click.echo("no roles assigned: with sign-in configured nobody can use the app yet "
                       "(workbench users assign you@example.com admin)")
        for a in found:
            click.echo(f"{a.pattern:<40} {a.role:<9} by {a.created_by} at {a.created_at}")

    emit(ctx, {"ok": True, "assignments": [a.model_dump() for a in found]}, human)


@command(users, "whoami")
@click.argument("email", required=False)
def whoami_cmd(ctx: click.Context, email: str | None) -> None:
    """Say who this terminal acts as, or, given EMAIL, which role that person would have."""
    from workbench.services import access
    from workbench.services import users as svc

    actor = svc.actor_for(store_of(ctx), email) if email else access.current()
    role = actor.role.value if actor.role else None
    emit(ctx, {"ok": True, "actor": actor.model_dump(mode="json")}, lambda: click.echo(
        f"{actor.email}: {role or 'no role (refused everywhere)'}"
        + (f" ({ROLE_SUMMARY[actor.role]})" if actor.role else "")))


@main.group()
def audit() -> None:
    """The audit trail: who changed what and when, and what was refused."""


@command(audit, "list")
@click.option("--actor", default=None, help="Only this person's events (email, or the operator's name).")
@click.option("--action", default=None, help="An action (job.launch) or an area (job: every job.* action).")
@click.option("--outcome", type=click.Choice(["ok", "refused"]), default=None)
@click.option("--target", default=None, help="One thing: example:12, dataset:3, job:7, user:ana@acme.com.")
@click.option("--since", default=None, help="From this date or ISO time (UTC unless it says otherwise).")
@click.option("--until", default=None, help="Before this date or ISO time.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def audit_list_cmd(ctx: click.Context, actor: str | None, action: str | None, outcome: str | None,
                   target: str | None, since: str | None, until: str | None, limit: int) -> None:
    """List audit events, newest first."""
    from workbench.services import audit as svc

    store = store_of(ctx)
    filters = {"actor": actor, "action": action, "outcome": outcome, "target": target, "since": since, "until": until}
    found = svc.events(store, **filters, limit=limit)
    total = svc.count(store, **filters)

    def human() -> None:
        for e in found:
            mark = "" if e.outcome == "ok" else "  REFUSED"
            click.echo(f"{e.ts}  {e.actor} ({e.role or 'no role'})  {e.action} {e.target}{mark}")
        click.echo(f"{len(found)} of {total} events" if found else "no events match")

    emit(ctx, {"ok": True, "total": total, "events": [e.model_dump() for e in found]}, human)
