"""The workspace's price table: the catalogue's prices copied on first use, a person's rows over them, by day.

Per model: USD per 1M input, output and cached-input tokens, per 1M training tokens, and per Provisioned
Throughput model unit-hour, each row in force from `effective_from` until `effective_to`. A model id matches a
row when both reduce to the same id (no region prefix, ':0' or context suffix) or the row's pattern matches it;
of several, a person's row wins over the catalogue's, then the newest start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.domain.templates import comparable_model_id as comparable_model
from workbench.errors import InvalidInput, NotFound
from workbench.services import access
from workbench.store import Store
from workbench.store import costs as rows

if TYPE_CHECKING:
    from workbench.domain.templates import InferencePrice

CATALOGUE = "catalogue"
"""`created_by` of the rows copied from the catalogue on first use."""
TOKENS_PER_PRICE = 1_000_000
MAX_PRICE = 1_000_000.0
"""No per-1M or hourly price is above this: a bigger number is a typo (a price per token pasted as per 1M, say)."""
EARLIEST_DAY = date(2000, 1, 1)
"""No price row starts or ends before this: an earlier day is a typo (1900), and would re-price nothing real."""
DAYS_AHEAD = 366
"""A price row may start or end at most this many days after today: prices are announced weeks ahead, not decades."""


# ------------------------------------------------------------------------------------------ price table


class PriceRow(BaseModel):
    """One row of the workspace's price table: a model's prices from one day until another."""

    id: int
    model: str = Field(description="The model id a prediction names (region prefix, ':0' and context suffix ignored).")
    provider: str | None = Field(None, description="openai, bedrock, anthropic...; guessed from the model id when empty.")
    match_pattern: str | None = Field(None, description="A regex that also matches model ids (fine-tuned ids, ARNs).")
    input_per_1m: float | None = Field(None, description="USD per 1M input tokens.")
    output_per_1m: float | None = Field(None, description="USD per 1M output tokens.")
    cached_input_per_1m: float | None = Field(None, description="USD per 1M input tokens read from the provider's cache.")
    training_per_1m: float | None = Field(None, description="USD per 1M training tokens (tokens x epochs).")
    pt_hourly: float | None = Field(None, description="USD per model unit per hour of Provisioned Throughput, no commitment.")
    effective_from: str | None = Field(None, description="First day (YYYY-MM-DD) the row applies; empty: since always.")
    effective_to: str | None = Field(None, description="First day it no longer applies; empty: still in force.")
    source_url: str | None = None
    note: str = ""
    created_by: str
    created_at: str

    def applies_on(self, day: str) -> bool:
        return (self.effective_from or "") <= day and (self.effective_to is None or day < self.effective_to)

    def inference_usd(self, tokens_in: float, tokens_out: float, tokens_cached: float) -> float | None:
        """Cost of some tokens; cached input at the cached price, or the input price when none is set."""
        if self.input_per_1m is None or self.output_per_1m is None:
            return None
        cached = self.cached_input_per_1m if self.cached_input_per_1m is not None else self.input_per_1m
        return (tokens_in * self.input_per_1m + tokens_out * self.output_per_1m + tokens_cached * cached) / TOKENS_PER_PRICE


def list_prices(store: Store) -> list[PriceRow]:
    """Return the price table, copying the catalogue's prices into it the first time it is read."""
    access.require(store, Permission.COSTS_READ, action="costs.view", target="prices")
    return _load_prices(store)


def _load_prices(store: Store) -> list[PriceRow]:
    """The price table for pricing itself (ingest, spend, the forecast): not a read a role is refused."""
    with store.connect() as db:
        found = rows.price_rows(db)
    if not found:
        seed_prices(store)
        with store.connect() as db:
            found = rows.price_rows(db)
    return [PriceRow.model_validate(r) for r in found]


def seed_prices(store: Store) -> int:
    """Copy the catalogue's prices into an empty price table; returns the rows written (0 when not empty)."""
    seeded = catalogue_prices()
    with store.write() as db:
        if rows.price_count(db):
            return 0
        for values in seeded:
            rows.insert_price(db, values, created_by=CATALOGUE)
    return len(seeded)


def catalogue_prices() -> list[dict[str, Any]]:
    """The catalogue's prices as price-table rows: on-demand input and output, training and Provisioned Throughput."""
    from workbench.domain import pricing
    from workbench.domain.catalogue import TARGETS

    found: list[dict[str, Any]] = []
    for target in TARGETS:
        for spec in target.base_models:
            values: dict[str, Any] = {"model": re.sub(r":\d+k$", "", spec.id), "provider": str(target.provider)}
            used = []
            if rates := pricing.on_demand_prices(spec):
                values["input_per_1m"], values["output_per_1m"] = (round(r.usd * 1000, 6) for r in rates)
                used += rates
            if (train := pricing.training_price(spec)) is not None:
                per = pricing.per_token(train)
                if per is not None:
                    values["training_per_1m"] = round(per * TOKENS_PER_PRICE, 6)
                    used.append(train)
            if (pt := pricing.provisioned_price(spec, "none")) is not None:
                values["pt_hourly"] = pt.usd
                used.append(pt)
            if not used:
                continue
            dates = [p.effective for p in used if p.effective]
            values["effective_from"] = min(dates).isoformat() if dates else None
            values["source_url"] = used[0].source
            values["note"] = "from the catalogue" + ("" if all(p.verified for p in used)
                                                     else "; second-hand: confirm on the provider's pricing page")
            found.append(values)
    return found


NUMBER_FIELDS = ("input_per_1m", "output_per_1m", "cached_input_per_1m", "training_per_1m", "pt_hourly")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def validate_price(raw: dict[str, Any], where: str, *, today: date | None = None) -> dict[str, Any]:
    """Check one price row a person typed; InvalidInput names the row (`where`) and the field. A price that is
    not a number (NaN, infinity) is refused, never read as blank: a blank is None or an empty string."""
    values: dict[str, Any] = {}
    model = clean_text(raw.get("model"))
    if not model:
        raise InvalidInput(f"{where}: model is empty; give the model id predictions name, e.g. amazon.nova-lite-v1:0")
    values["model"] = model
    where = f"{where} ({model})"
    values["provider"] = clean_text(raw.get("provider")) or None
    pattern = clean_text(raw.get("match_pattern")) or None
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidInput(f"{where}: match_pattern is not a valid regular expression ({exc})") from None
    values["match_pattern"] = pattern
    for field in NUMBER_FIELDS:
        values[field] = usd_number(raw.get(field), field, where)
    for field in ("effective_from", "effective_to"):
        values[field] = _dayclean_text(raw.get(field), field, where)
        _check_day_range(values[field], field, where, today)
    if values["effective_from"] and values["effective_to"] and values["effective_to"] <= values["effective_from"]:
        raise InvalidInput(f"{where}: effective_to ({values['effective_to']}) must be after effective_from "
                           f"({values['effective_from']})")
    url = clean_text(raw.get("source_url")) or None
    if url and not re.match(r"^https?://\S+$", url):
        raise InvalidInput(f"{where}: source_url must be an http(s) address, got {url!r}")
    values["source_url"] = url
    values["note"] = clean_text(raw.get("note"))
    return values


def clean_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def usd_number(value: Any, field: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{where}: {field} must be a number of USD, got {value!r}") from None
    if math.isnan(number):
        raise InvalidInput(f"{where}: {field} must be a number of USD, got NaN; leave it out to keep the price in force")
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"{where}: {field} must be 0 or more USD, got {number!r}")
    if number > MAX_PRICE:
        raise InvalidInput(f"{where}: {field} is {number:,.0f} USD, above {MAX_PRICE:,.0f}; prices are per 1M tokens "
                           "or per model unit per hour")
    return number


def _dayclean_text(value: Any, field: str, where: str) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = clean_text(value)
    if not text or text.lower() in ("nat", "none"):
        return None
    text = text[:10] if re.match(r"^\d{4}-\d{2}-\d{2}[T ]00:00(:00)?$", text) else text
    if not _DAY.match(text):
        raise InvalidInput(f"{where}: {field} must be a day as YYYY-MM-DD, got {text!r}")
    try:
        date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{where}: {field} {text!r} is not a real day") from None
    return text


def _check_day_range(day: str | None, field: str, where: str, today: date | None) -> None:
    """Refuse a day before 2000 or more than a year ahead: such a row is a typo that would outrank real ones."""
    if day is None:
        return
    latest = (today or datetime.now(UTC).date()) + timedelta(days=DAYS_AHEAD)
    if not EARLIEST_DAY.isoformat() <= day <= latest.isoformat():
        raise InvalidInput(f"{where}: {field} {day} is out of range; give a day from {EARLIEST_DAY.isoformat()} "
                           f"to {latest.isoformat()} (a year ahead)")


def editor_name(by: str | None) -> str:
    """Who a price row is `created_by`: a signed-in person by email; the local user and the CLI as 'user'."""
    if by is not None:
        return by
    actor = access.current()
    return actor.email if actor.via in ("oidc", "token") else "user"


def save_prices(store: Store, edits: Sequence[dict[str, Any]], *, by: str | None = None,
                today: date | None = None) -> list[PriceRow]:
    """Apply edited and new price rows at once (all or none). A new row takes effect from its `effective_from`,
    ends the row in force that day, and ends where the model's next row starts, so a model's rows never overlap
    and "the newest start wins" never has to break a tie; a new row on a day that already starts a row of the same
    model replaces that row. A blank price (None) keeps the price it had (an edited row's own, or the price in force
    on a new row's first day): the page's grid hands an emptied cell over as blank, and a silently stored None
    would show no price while ingest goes on charging the old one. A row with an `id` that changed becomes `by`'s;
    when its prices changed but its days did not, the change applies from `today` as `set_price` does (the old row
    ends today, a new one starts), so past days keep the price they were priced at; a person who edits the days
    means the correction to reach back, and the row is corrected in place. Unchanged rows are left as they are.
    Each row that changes is one `price.set` in the audit trail, with the old and new prices and the day."""
    access.require(store, Permission.COSTS_WRITE, action="price.set", target="prices")
    by = editor_name(by)
    _load_prices(store)
    on = today or datetime.now(UTC).date()
    checked = [(e.get("id"), validate_price(e, f"price row {i}", today=on)) for i, e in enumerate(edits, start=1)]
    with store.write() as db:
        known = {r["id"]: r for r in rows.price_rows(db)}
        touched: set[str] = set()
        for i, (price_id, values) in enumerate(checked, start=1):
            if price_id is not None and not _missing(price_id):
                if int(price_id) not in known:
                    raise NotFound(f"price row {i}: no price row with id {price_id}; reload the table")
                current = known[int(price_id)]
                _apply_edit(db, current, _carry_over(values, current), by=by, day=on.isoformat())
                touched |= {current["model"], values["model"]}
            else:
                _insert_new(db, values, by=by)
                touched.add(values["model"])
        _check_no_overlap(db, touched)
    return _load_prices(store)


def _carry_over(values: dict[str, Any], source: dict[str, Any] | None) -> dict[str, Any]:
    """Fill the blank prices of `values` from `source` (the row it edits or takes over from)."""
    if source is None:
        return values
    return {**values, **{k: source[k] for k in NUMBER_FIELDS if values.get(k) is None and source.get(k) is not None}}


def _covers(row: dict[str, Any], day: str) -> bool:
    return (row.get("effective_from") or "") <= day and (row.get("effective_to") is None or day < row["effective_to"])


def _check_no_overlap(db: Any, models: set[str]) -> None:
    """Refuse a save that leaves two rows of one model in force on the same day (rolls the whole save back)."""
    for model in sorted(models):
        same = sorted((r for r in rows.price_rows(db) if r["model"] == model),
                      key=lambda r: (r.get("effective_from") or "", r["id"]))
        for before, after in zip(same, same[1:], strict=False):
            start = after.get("effective_from") or ""
            if before.get("effective_to") is None or before["effective_to"] > start:
                raise InvalidInput(
                    f"price rows #{before['id']} and #{after['id']} of {model} overlap: #{before['id']} runs "
                    f"{_span(before)} and #{after['id']} {_span(after)}; end #{before['id']} on or before "
                    f"{start or 'its start'}, or delete one")


def _span(row: dict[str, Any]) -> str:
    return f"from {row.get('effective_from') or 'always'} to {row.get('effective_to') or 'now'}"


def _prices_of(row: dict[str, Any] | None) -> dict[str, float]:
    """The prices a row sets, for the audit trail (blank ones left out)."""
    return {k: row[k] for k in NUMBER_FIELDS if row and row.get(k) is not None}


def _audit_price(db: Any, row_id: int, model: str, old: dict[str, Any] | None, new: dict[str, Any],
                 effective_from: str | None) -> None:
    access.audit(db, "price.set", f"price:{row_id}", model=model, old=_prices_of(old), new=_prices_of(new),
                 effective_from=effective_from)


def _insert_new(db: Any, values: dict[str, Any], *, by: str) -> int:
    model, start = values["model"], values["effective_from"]
    same = [r for r in rows.price_rows(db) if r["model"] == model]
    replaced = next((r for r in same if _covers(r, start or "")), None)
    values = _carry_over(values, replaced)
    twin = next((r for r in same if r.get("effective_from") == start), None)
    if twin is not None:
        # Two rows starting the same day would leave "the newest start wins" a coin toss: the new one replaces it.
        end = values["effective_to"] if values["effective_to"] is not None else twin.get("effective_to")
        rows.update_price(db, twin["id"], {**values, "effective_to": end})
        rows.set_created_by(db, twin["id"], by)
        _audit_price(db, twin["id"], model, twin, values, start)
        return int(twin["id"])
    later = sorted(r["effective_from"] for r in same if r.get("effective_from") and r["effective_from"] > (start or ""))
    end = values["effective_to"]
    if later and (end is None or end > later[0]):
        end = later[0]  # the model's next row takes over on its own day
    new_id = rows.insert_price(db, {**values, "effective_to": end}, created_by=by)
    if start:
        for row in same:
            if (row.get("effective_from") or "") < start and _covers(row, start):
                rows.update_price(db, row["id"], {"effective_to": start})
    _audit_price(db, new_id, model, replaced, values, start)
    return new_id


def _apply_edit(db: Any, current: dict[str, Any], values: dict[str, Any], *, by: str, day: str) -> None:
    changed = {k for k in rows.PRICE_FIELDS if values.get(k) != current.get(k)}
    if not changed:
        return
    dates_edited = bool(changed & {"effective_from", "effective_to"})
    prices_changed = bool(changed & set(NUMBER_FIELDS))
    started_before_today = (current.get("effective_from") or "") < day
    in_force_today = current.get("effective_to") is None or day < current["effective_to"]
    if prices_changed and not dates_edited and started_before_today and in_force_today:
        # From today on: the old row keeps the past, a new row (the person's) carries the change until the old
        # row's own end, where the model's next row starts.
        rows.update_price(db, current["id"], {"effective_to": day})
        new_id = rows.insert_price(db, {**values, "effective_from": day, "effective_to": current.get("effective_to")},
                                   created_by=by)
        _audit_price(db, new_id, values["model"], current, values, day)
        return
    rows.update_price(db, current["id"], values)
    rows.set_created_by(db, current["id"], by)
    _audit_price(db, current["id"], values["model"], current, values, values.get("effective_from"))


def set_price(store: Store, model: str, effective_from: str | date, *, by: str | None = None,
              **prices: Any) -> PriceRow:
    """Change a model's prices from a day on: the fields not given are carried over from the row in force then."""
    day = _dayclean_text(effective_from, "effective_from", f"the new price of {model}")
    assert day is not None
    access.require(store, Permission.COSTS_WRITE, action="price.set", target=f"model:{model}")
    current = PriceBook(_load_prices(store)).row_for(model, day)
    base = current.model_dump() if current else {}
    unknown = set(prices) - set(rows.PRICE_FIELDS)
    if unknown:
        raise InvalidInput(f"the new price of {model}: unknown field {sorted(unknown)[0]!r}; use {', '.join(NUMBER_FIELDS)}")
    values = {**{k: base.get(k) for k in rows.PRICE_FIELDS}, "model": current.model if current else model,
              "effective_to": None, **prices, "effective_from": day}
    saved = save_prices(store, [values], by=by)
    return next(p for p in reversed(saved) if p.model == values["model"] and p.effective_from == day)


def delete_price(store: Store, price_id: int) -> None:
    access.require(store, Permission.COSTS_WRITE, action="price.delete", target=f"price:{price_id}")
    with store.write() as db:
        found = next((r for r in rows.price_rows(db) if r["id"] == price_id), None)
        if found is None or not rows.delete_price(db, price_id):
            raise NotFound(f"no price row with id {price_id}; `workbench costs prices` lists them")
        access.audit(db, "price.delete", f"price:{price_id}", model=found["model"], old=_prices_of(found),
                     effective_from=found.get("effective_from"))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_OPENAI = re.compile(r"^(ft:)?(gpt-|o\d|chatgpt-|davinci|babbage|text-embedding)", re.IGNORECASE)
_BEDROCK = re.compile(r"^(arn:aws[\w-]*:(bedrock|sagemaker)|(amazon|anthropic|meta|cohere|mistral|ai21|deepseek|qwen|"
                      r"writer|stability)\.)", re.IGNORECASE)
_ANTHROPIC = re.compile(r"^claude-", re.IGNORECASE)


class PriceBook:
    """The price table, looked up by model id and day; the rows found for a model id are kept for the next call."""

    def __init__(self, prices: Iterable[PriceRow]) -> None:
        self.prices = list(prices)
        self._candidates: dict[str, list[PriceRow]] = {}

    def candidates(self, model: str) -> list[PriceRow]:
        if model not in self._candidates:
            key = comparable_model(model)
            found = [p for p in self.prices
                     if comparable_model(p.model) == key or (p.match_pattern and re.search(p.match_pattern, model, re.I))]
            # A person's row over the catalogue's, then the newest start.
            found.sort(key=lambda p: (p.created_by != CATALOGUE, p.effective_from or "", p.id), reverse=True)
            self._candidates[model] = found
        return self._candidates[model]

    def row_for(self, model: str, day: str) -> PriceRow | None:
        return next((p for p in self.candidates(model) if p.applies_on(day)), None)

    def provider(self, model: str) -> str:
        """Who serves a model: the price table's word, else guessed from the id's shape."""
        named = next((p.provider for p in self.candidates(model) if p.provider), None)
        if named:
            return named
        bare = re.sub(r"^(us|eu|apac|global|us-gov|ca|jp|au)\.", "", model.strip(), flags=re.IGNORECASE)
        for pattern, provider in ((_OPENAI, "openai"), (_BEDROCK, "bedrock"), (_ANTHROPIC, "anthropic")):
            if pattern.match(bare):
                return provider
        return "other"


def price_book(store: Store) -> PriceBook:
    return PriceBook(_load_prices(store))



def inference_prices(store: Store, day: date | None = None) -> list[InferencePrice]:
    """The price table's rows in force on a day as the on-arrival pricer's rows, so ingest can price from the
    workspace's table instead of the bare catalogue: `PriceBook(costs.inference_prices(store))`."""
    from workbench.domain.templates import InferencePrice

    wanted = (day or datetime.now(UTC).date()).isoformat()
    found: dict[str, PriceRow] = {}
    book = price_book(store)
    for row in book.prices:
        if row.input_per_1m is None or row.output_per_1m is None or row.model in found:
            continue
        chosen = book.row_for(row.model, wanted)
        if chosen is not None and chosen.input_per_1m is not None and chosen.output_per_1m is not None:
            found[row.model] = chosen
    return [InferencePrice(
        model=model, label=model, input_per_1k=r.input_per_1m / 1000, output_per_1k=(r.output_per_1m or 0.0) / 1000,
        row=f"price table row {r.id}: {r.model}, input and output per 1M tokens from {r.effective_from or 'always'}",
        source=r.source_url or "", effective=r.effective_from, verified=r.created_by != CATALOGUE,
    ) for model, r in sorted(found.items()) if r.input_per_1m is not None]
