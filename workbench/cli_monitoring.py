"""`workbench api`, `workbench tokens ...` and `workbench predictions import`: production data in.

`api` serves the ingest API (loopback unless told otherwise, as `make run` does); `tokens` creates,
lists and revokes its bearer tokens (a new token is printed once, under `token`; each belongs to a
person or a service account and carries a role, and managing them is an admin's); `predictions
import` reads a JSONL, CSV or Bedrock invocation log from a file or an S3 prefix. Registered on
the main group by `workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

import click

from workbench.cli import LISTED, command, emit, fail, main, store_of
from workbench.domain.access import Role


@main.group()
def tokens() -> None:
    """Bearer tokens for the ingest API: create (shown once), list, revoke."""


@main.group()
def predictions() -> None:
    """Production predictions: import logs (the API and `workbench.track` send them live)."""


@command(main, "api")
@click.option("--host", default=None, help="Address to bind (default: $WORKBENCH_HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: $WORKBENCH_API_PORT or 8765).")
def api_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the ingest API (POST /v1/predictions, /v1/feedback; spec at /openapi.json) until Ctrl-C."""
    from workbench import serving
    from workbench.api import serve

    bind = serving.resolve_host(host)
    warning = None if serving.is_loopback(bind) else (
        f"NOTE: the ingest API is listening on {bind}, reachable from other machines; every request needs a token "
        "(workbench tokens list): serve it behind HTTPS so tokens do not travel in clear.")
    if warning:
        click.echo(warning, err=True)
    chosen = port if port is not None else serving.api_port()
    store = store_of(ctx)
    click.echo(f"workbench ingest API on http://{bind}:{chosen} (docs at /docs)", err=True)
    serve(store, bind, chosen)


@command(tokens, "create")
@click.option("--name", required=True, help="What the token is for (a service, a team); unique among active tokens.")
@click.option("--role", type=click.Choice([r.value for r in Role], case_sensitive=False), default=Role.ENGINEER.value,
              show_default=True, help="What requests carrying it may do: engineer or admin to send predictions, "
                                      "pm to read experiment assignments.")
@click.option("--owner", default=None, help="Who it acts as: a person's email, or service:NAME for a service account "
                                            "(default: you, $WORKBENCH_USER or your login name).")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None,
              help="Refuse it from this many days on (default: it does not expire).")
def tokens_create_cmd(ctx: click.Context, name: str, role: str, owner: str | None, expires_days: int | None) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from workbench.services import api_tokens

    new = api_tokens.create(store_of(ctx), name, role=role, owner=owner, expires_days=expires_days)
    expiry = f", expires {new.expires_at}" if new.expires_at else ""
    emit(ctx, {"ok": True, **new.model_dump()}, lambda: click.echo(
        f"token {new.name!r} created for {new.owner} (role {new.role}{expiry}); copy it now, it will not be shown "
        f"again:\n{new.token}"
    ))


@command(tokens, "list")
@click.option("--active", is_flag=True, help="Only tokens not revoked.")
def tokens_list_cmd(ctx: click.Context, active: bool) -> None:
    """List tokens: owner, role, expiry, last use and state (active, expired, revoked); never the tokens themselves."""
    from workbench.services import api_tokens

    found = api_tokens.list_tokens(store_of(ctx), include_revoked=not active)
    states = [api_tokens.state(t) for t in found]
    if active:  # --active means usable: an expired token is no more usable than a revoked one
        found, states = [t for t, s in zip(found, states, strict=True) if s == "active"], [s for s in states if s == "active"]

    def human() -> None:
        for t, state in zip(found, states, strict=True):
            when = {"revoked": f" {t.revoked_at}", "expired": f" {t.expires_at}"}.get(state, "")
            expiry = f"  expires {t.expires_at}" if state == "active" and t.expires_at else ""
            click.echo(f"{t.name}  {t.prefix}...  owner {t.owner or '-'}  role {t.role}  {state}{when}{expiry}  "
                       f"last used {t.last_used_at or 'never'}  created {t.created_at} by {t.created_by or '-'}")
        if not found:
            click.echo("no tokens (create one with `workbench tokens create --name NAME`)")

    emit(ctx, {"ok": True, "tokens": [{**t.model_dump(), "state": s} for t, s in zip(found, states, strict=True)]},
         human)


@command(tokens, "revoke")
@click.argument("name")
def tokens_revoke_cmd(ctx: click.Context, name: str) -> None:
    """Revoke the active token NAME: requests carrying it get 401 from now on."""
    from workbench.services import api_tokens

    revoked = api_tokens.revoke(store_of(ctx), name)
    emit(ctx, {"ok": True, "revoked": revoked.model_dump()}, lambda: click.echo(f"token {name!r} revoked"))


@command(predictions, "import")
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "bedrock-invocation-log"]), default="jsonl",
              show_default=True, help="jsonl/csv: one prediction per line (the API's fields); bedrock-invocation-log: "
                                      "the records Bedrock's model invocation logging writes.")
@click.option("--force", is_flag=True, help="Import a file again even though its content was imported before "
                                            "(its predictions are then stored twice).")
def predictions_import_cmd(ctx: click.Context, path: str, fmt: str, force: bool) -> None:
    """Import a prediction log from PATH: a file (plain or .gz) or s3://bucket/prefix (every object under it).

    Bad lines are reported with file, line and field; good lines are kept. Exits 1 when lines were
    read and none was stored, or when a file broke off before its end (truncated).
    """
    from workbench.services.predictions import import_log

    report = import_log(store_of(ctx), path, fmt, force=force)
    payload = {"ok": (report.stored > 0 or report.read == 0) and not report.incomplete, **report.model_dump()}

    def human() -> None:
        click.echo(f"{report.source}: read {report.read:,} from {report.files} file(s), stored {report.stored:,}, "
                   f"rejected {report.rejected:,}")
        for error in report.errors[:LISTED]:
            where = f"{error.file}:{error.line}" + (f" {error.field}" if error.field else "")
            click.echo(f"  {where}: {error.message}")
        hidden = len(report.errors) - LISTED + report.errors_not_listed
        if hidden > 0:
            click.echo(f"  ... and {hidden:,} more (use --json for the list)")
        for warning in report.warnings:
            click.echo(f"  warning: {warning}")
        for broken in report.incomplete:
            click.echo(f"  {broken.file}:{broken.line}: {broken.message}")

    if not payload["ok"]:
        if not ctx.obj["json"]:
            human()
        if report.incomplete:
            first = report.incomplete[0]
            fail(ctx, f"{first.file} broke off at line {first.line} (truncated or corrupt): read {report.read:,}, "
                      f"stored {report.stored:,}; lines after it were not read", report.model_dump())
        fail(ctx, f"no line of {report.source} could be stored ({report.rejected:,} rejected)", report.model_dump())
    emit(ctx, payload, human)
