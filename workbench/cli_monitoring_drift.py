"""`workbench drift` and `workbench alerts ...`: drift of a model's signals, and alert rules, from a terminal.

Registered on the main group by `workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

import click

from workbench.cli import command, emit, main, store_of


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@command(main, "drift")
@click.option("--model", "model_version", required=True, help="The model version whose predictions to compare.")
@click.option("--reference-days", type=click.IntRange(1, 365), default=7, show_default=True,
              help="Days just before the current window that form the reference.")
@click.option("--current-days", type=click.IntRange(1, 365), default=7, show_default=True,
              help="Days in the current window, ending on --until (default: the model's newest day).")
@click.option("--task", "task_type", default=None, help="Only this task type ('' for predictions without one).")
@click.option("--until", "until_day", default=None, help="Last day of the current window (YYYY-MM-DD).")
@click.option("--reference-from", "reference_since", default=None, help="Reference start day instead of --reference-days.")
@click.option("--reference-to", "reference_until", default=None, help="Reference end day (inclusive).")
@click.option("--reference-training", is_flag=True,
              help="Compare with the registered model's training data (lengths and label mix).")
@click.option("--label-tag", default=None, help="Read the label mix from this tag key instead of ground_truth.")
def drift_cmd(ctx: click.Context, model_version: str, reference_days: int, current_days: int, task_type: str | None,
              until_day: str | None, reference_since: str | None, reference_until: str | None,
              reference_training: bool, label_tag: str | None) -> None:
    """Compare each monitored signal of a model version between a reference window and the current one."""
    from workbench.services.monitoring import drift

    report = drift(store_of(ctx), model_version=model_version, task_type=task_type, current_days=current_days,
                   reference_days=reference_days, until_day=until_day, reference_since=reference_since,
                   reference_until=reference_until, reference_training=reference_training, label_tag=label_tag)

    def human() -> None:
        click.echo(f"{model_version}: reference {report.reference.label}, current {report.current.label}"
                   + (" (demo data)" if report.demo else ""))
        for signal in report.signals:
            r = signal.result
            click.echo(f"  {r.signal:<22} {r.verdict.value:<16} {r.method.value:<17} statistic {_number(r.statistic)} "
                       f"({r.rule}; n {r.reference_size}/{r.current_size})")
        click.echo(f"overall: {report.overall.verdict.value} ({report.overall.drifted} of {report.overall.judged} "
                   "signals drifted)")
        for note in report.notes:
            click.echo(f"  note: {note}")

    emit(ctx, {"ok": True, **report.payload()}, human)


@main.group()
def alerts() -> None:
    """Alert rules on monitoring metrics, evaluated by the watcher (`workbench jobs watch`)."""


@command(alerts, "list")
def alerts_list_cmd(ctx: click.Context) -> None:
    """List the rules, and the alerts firing now."""
    from workbench.services import alerts as svc

    store = store_of(ctx)
    rules, firing = svc.list_rules(store), svc.firing(store)
    emit(ctx, {"ok": True, "rules": [r.model_dump() for r in rules], "firing": [e.model_dump() for e in firing]},
         lambda: click.echo("\n".join([*(svc.describe(r) for r in rules)] or ["no alert rules"])
                            + "".join(f"\nFIRING {e.rule_name} since {e.fired_at}: {e.message}" for e in firing)))


@command(alerts, "create")
@click.option("--name", required=True)
@click.option("--metric", required=True,
              help="accuracy, error_rate, latency_p95_ms, cost_usd (per day), volume (per day), or drift:<signal>.")
@click.option("--threshold", type=float, default=None, help="The value that trips the rule (not needed for drift).")
@click.option("--comparison", type=click.Choice([">", ">=", "<", "<="]), default=None,
              help="Default: '<' for accuracy, '>' for the others.")
@click.option("--model", "model_version", default=None, help="Only this model version.")
@click.option("--task", "task_type", default=None, help="Only this task type.")
@click.option("--window-days", type=int, default=1, show_default=True)
@click.option("--reference-days", type=int, default=7, show_default=True, help="For drift rules: the reference span.")
@click.option("--disabled", is_flag=True, help="Store the rule switched off.")
def alerts_create_cmd(ctx: click.Context, name: str, metric: str, threshold: float | None, comparison: str | None,
                      model_version: str | None, task_type: str | None, window_days: int, reference_days: int,
                      disabled: bool) -> None:
    """Create an alert rule."""
    from workbench.services import alerts as svc

    rule = svc.create_rule(store_of(ctx), name=name, metric=metric, threshold=threshold, comparison=comparison,
                           model_version=model_version, task_type=task_type, window_days=window_days,
                           reference_days=reference_days, enabled=not disabled)
    emit(ctx, {"ok": True, "rule": rule.model_dump()}, lambda: click.echo(f"created {svc.describe(rule)}"))


@command(alerts, "delete")
@click.argument("rule")
def alerts_delete_cmd(ctx: click.Context, rule: str) -> None:
    """Delete a rule (by name or id) and its history."""
    from workbench.services import alerts as svc

    deleted = svc.delete_rule(store_of(ctx), rule)
    emit(ctx, {"ok": True, "deleted": deleted.model_dump()}, lambda: click.echo(f"deleted {deleted.name}"))


@command(alerts, "check")
def alerts_check_cmd(ctx: click.Context) -> None:
    """Evaluate every enabled rule now, as the watcher does each minute."""
    from workbench.services import alerts as svc

    store = store_of(ctx)
    result = svc.evaluate_rules(store)
    firing = svc.firing(store)
    emit(ctx, {"ok": True, **result.model_dump(), "firing": [e.model_dump() for e in firing]}, lambda: click.echo(
        f"checked {result.checked} rule(s): fired {', '.join(result.fired) or 'none'}; "
        f"resolved {', '.join(result.resolved) or 'none'}; firing now: {', '.join(e.rule_name for e in firing) or 'none'}"
        + "".join(f"\nerror: {line}" for line in result.errors)
    ))
