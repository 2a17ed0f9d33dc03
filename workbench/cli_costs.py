"""`workbench costs ...`: what production, training and serving cost, from a terminal.

`summary` (this month, cache savings, month-end forecast), `prices list|set|delete` (the price table),
`budgets list|set|delete` (with their status), `reprice MODEL` (past traffic at changed prices) and
`whatif --to MODEL` (a cheaper-model routing policy over logged traffic). Registered on the main group
by `workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

from datetime import date

import click

from workbench.cli import command, emit, main, store_of


@main.group()
def costs() -> None:
    """Spend, prices, budgets, re-pricing and what-if routing."""


@costs.group()
def prices() -> None:
    """The price table: per model, USD per 1M tokens and per Provisioned Throughput hour, with effective dates."""


@costs.group()
def budgets() -> None:
    """Monthly budgets over all spend or one model, provider, task or tag, with alerts."""


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day as YYYY-MM-DD", param_hint="--today") from None


_TODAY = click.option("--today", default=None, help="Compute as of this day (YYYY-MM-DD, UTC); default today.")


@command(costs, "summary")
@_TODAY
def summary_cmd(ctx: click.Context, today: str | None) -> None:
    """This month's spend (inference, training, serving), cache savings and the month-end forecast."""
    from workbench.services import costs as svc

    got = svc.summary(store_of(ctx), today=_day(today))
    f = got.forecast
    emit(ctx, {"ok": True, **got.model_dump(mode="json"), "cache_savings_usd": got.savings.total}, lambda: click.echo(
        f"{got.month}: ${got.total_usd:,.2f} so far (inference ${got.inference_usd:,.2f} over {got.requests:,} requests, "
        f"training ${got.training_usd:,.2f}, serving ${got.serving_usd:,.2f})\n"
        f"forecast ${f.point:,.2f} by month end (${f.low:,.2f} to ${f.high:,.2f}); {f.method}\n"
        f"cache saved ${got.savings.total:,.2f}"
    ))


@command(prices, "list")
def prices_list_cmd(ctx: click.Context) -> None:
    """List the price table (the catalogue's rows until you change them)."""
    from workbench.services import cost_prices as prices_svc

    rows = prices_svc.list_prices(store_of(ctx))

    def human() -> None:
        for p in rows:
            dates = f"{p.effective_from or 'always'}..{p.effective_to or 'now'}"
            numbers = ", ".join(f"{k} {v:g}" for k, v in p.model_dump().items() if k in prices_svc.NUMBER_FIELDS and v is not None)
            click.echo(f"#{p.id} {p.model} [{dates}] {numbers} ({p.created_by})")

    emit(ctx, {"ok": True, "prices": [p.model_dump() for p in rows]}, human)


@command(prices, "set")
@click.argument("model")
@click.option("--from", "effective_from", required=True, help="First day the new prices apply (YYYY-MM-DD).")
@click.option("--input", "input_per_1m", type=float, default=None, help="USD per 1M input tokens.")
@click.option("--output", "output_per_1m", type=float, default=None, help="USD per 1M output tokens.")
@click.option("--cached-input", "cached_input_per_1m", type=float, default=None, help="USD per 1M cached input tokens.")
@click.option("--training", "training_per_1m", type=float, default=None, help="USD per 1M training tokens.")
@click.option("--pt-hourly", "pt_hourly", type=float, default=None, help="USD per Provisioned Throughput unit-hour.")
@click.option("--source", "source_url", default=None, help="Where the price was read (an https address).")
@click.option("--note", default=None)
def prices_set_cmd(ctx: click.Context, model: str, effective_from: str, **given: float | str | None) -> None:
    """Change a model's prices from a day on; prices not given carry over from the row in force."""
    from workbench.services import cost_prices as prices_svc

    row = prices_svc.set_price(store_of(ctx), model, effective_from, **{k: v for k, v in given.items() if v is not None})
    emit(ctx, {"ok": True, "price": row.model_dump()}, lambda: click.echo(
        f"#{row.id} {row.model}: new prices from {row.effective_from}"))


@command(prices, "delete")
@click.argument("price_id", type=int)
def prices_delete_cmd(ctx: click.Context, price_id: int) -> None:
    """Delete a price row (the row it replaced stays closed: set its end again if it should apply)."""
    from workbench.services import cost_prices as prices_svc

    prices_svc.delete_price(store_of(ctx), price_id)
    emit(ctx, {"ok": True, "deleted": price_id}, lambda: click.echo(f"price row #{price_id} deleted"))


@command(budgets, "list")
@_TODAY
def budgets_list_cmd(ctx: click.Context, today: str | None) -> None:
    """List budgets with this month's spend, forecast and whether they alert."""
    from workbench.services import costs as svc

    found = svc.budget_statuses(store_of(ctx), today=_day(today))

    def human() -> None:
        for s in found:
            b = s.budget
            scope = b.scope.value + (f" {b.scope_value}" if b.scope_value else "")
            flag = f"  ALERT: {s.reason}" if s.alert else ""
            click.echo(f"{b.name} ({scope}): ${s.spent:,.2f} of ${b.monthly_usd:,.2f} ({s.pct_used:.0f}%), "
                       f"forecast ${s.forecast:,.2f}{flag}")
        if not found:
            click.echo("no budgets; add one with `workbench costs budgets set NAME --monthly USD`")

    emit(ctx, {"ok": True, "budgets": [s.model_dump(mode="json") for s in found]}, human)


@command(budgets, "set")
@click.argument("name")
@click.option("--monthly", "monthly_usd", type=float, required=True, help="USD a calendar month may spend.")
@click.option("--scope", type=click.Choice(["all", "model", "provider", "task", "tag"]), default="all", show_default=True)
@click.option("--value", "scope_value", default=None, help="The model, provider, task or tag (not for --scope all).")
@click.option("--alert-pct", type=float, default=80.0, show_default=True,
              help="Alert when spend or the forecast passes this % of the budget.")
def budgets_set_cmd(ctx: click.Context, name: str, monthly_usd: float, scope: str, scope_value: str | None,
                    alert_pct: float) -> None:
    """Create a budget, or change the one with this name."""
    from workbench.services import costs as svc

    store = store_of(ctx)
    exists = any(b.name == name for b in svc.list_budgets(store))
    budget = svc.save_budget(store, {"name": name, "scope": scope, "scope_value": scope_value, "monthly_usd": monthly_usd,
                                     "alert_pct": alert_pct}, replace=name if exists else None)
    warning = svc.scope_warning(store, budget.scope, budget.scope_value)

    def human() -> None:
        click.echo(f"budget {budget.name!r} {'changed' if exists else 'created'}: ${budget.monthly_usd:,.2f} a month")
        if warning:
            click.echo(f"warning: {warning}", err=True)

    emit(ctx, {"ok": True, "budget": budget.model_dump(mode="json"), **({"warning": warning} if warning else {})}, human)


@command(budgets, "delete")
@click.argument("name")
def budgets_delete_cmd(ctx: click.Context, name: str) -> None:
    """Delete a budget."""
    from workbench.services import costs as svc

    svc.delete_budget(store_of(ctx), name)
    emit(ctx, {"ok": True, "deleted": name}, lambda: click.echo(f"budget {name!r} deleted"))


@command(costs, "reprice")
@click.argument("model")
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True, help="Past days of traffic.")
@click.option("--input", "input_per_1m", type=float, default=None, help="New USD per 1M input tokens.")
@click.option("--output", "output_per_1m", type=float, default=None, help="New USD per 1M output tokens.")
@click.option("--cached-input", "cached_input_per_1m", type=float, default=None, help="New USD per 1M cached input tokens.")
@_TODAY
def reprice_cmd(ctx: click.Context, model: str, days: int, today: str | None, **new: float | None) -> None:
    """What the model's past traffic would have cost at changed prices, against the prices in force."""
    from workbench.services import cost_whatif as whatif_svc

    got = whatif_svc.reprice(store_of(ctx), model, days=days, today=_day(today), **new)
    old = "unknown" if got.old_usd is None else f"${got.old_usd:,.4f}"
    emit(ctx, {"ok": True, **got.model_dump(mode="json")}, lambda: click.echo(
        f"{model}, last {days} days ({', '.join(got.models_matched) or 'no traffic'}): {old} at the prices in force, "
        f"${got.new_usd:,.4f} at the new ones (recorded at arrival: ${got.stored_usd:,.4f})"))


@command(costs, "whatif")
@click.option("--to", "to_model", required=True, help="The cheaper model matching requests would go to.")
@click.option("--max-input-chars", type=click.IntRange(1), default=None, help="Route requests with shorter input.")
@click.option("--task", "task_type", default=None, help="Route requests of this task type.")
@click.option("--from-model", "from_models", multiple=True, help="Only requests now served by this model (repeatable).")
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True)
@_TODAY
def whatif_cmd(ctx: click.Context, to_model: str, max_input_chars: int | None, task_type: str | None,
               from_models: tuple[str, ...], days: int, today: str | None) -> None:
    """Re-price logged traffic as if a policy had sent simple requests to a cheaper model; and the accuracy cost."""
    from workbench.services import cost_whatif as whatif_svc

    policy = whatif_svc.RouterPolicy(to_model=to_model, max_input_chars=max_input_chars, task_type=task_type,
                              from_models=list(from_models))
    got = whatif_svc.what_if(store_of(ctx), policy, days=days, today=_day(today))

    def human() -> None:
        click.echo(f"about {got.routed_window_rows:,} of {got.window_rows:,} requests in the window routed to "
                   f"{to_model}, saving about ${got.saving_window_usd:,.2f} (from a sample of {got.sample_rows:,}: "
                   f"{got.routed_rows:,} routed, ${got.routed_old_usd:,.4f} -> ${got.routed_new_usd:,.4f})")
        if got.accuracy_before is not None:
            after = "unknown" if got.accuracy_after is None else f"{got.accuracy_after:.1%}"
            click.echo(f"accuracy {got.accuracy_before:.1%} -> {after}")
        for line in got.assumptions:
            click.echo(f"assumes: {line}")

    emit(ctx, {"ok": True, **got.model_dump(mode="json")}, human)
