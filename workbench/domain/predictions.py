"""What a production prediction and a piece of feedback may hold, and what the workbench derives on arrival.

The same models check the ingest API's bodies, `workbench.track`, and every imported log line, so a
prediction means one thing wherever it came from. On arrival the workbench normalises the time to
UTC, hashes text it was given (so rows with text and rows without join on the hash), counts
characters for the length-drift checks, files latency into a fixed log-spaced bucket (percentiles
from counts, additive across days and models), and prices the call once from the catalogue unless
the caller sent its own cost, recording which price row was used.

Token convention (Bedrock's and Anthropic's): `tokens_in` excludes `tokens_cached`, the input tokens
read from the provider's prompt cache. OpenAI reports cached tokens inside `prompt_tokens`: send
`prompt_tokens - cached_tokens` as `tokens_in`. The catalogue has no cached-input prices yet, so
cached tokens are priced at the input rate: an upper bound, said in the price row.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from workbench.domain.templates import InferencePrice, inference_prices, price_for

MAX_BATCH = 1000
"""Predictions (or feedback items) one request may carry; more is refused, not truncated."""
MAX_TEXT_CHARS = 100_000
"""Characters in one text field (input, output, ground truth, correction): a long document, not a corpus."""
MAX_SHORT_CHARS = 200
"""Characters in an identifier (model version, task type, unit, experiment, variant, reviewer)."""
MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body the API reads (1,000 predictions of ~16 KB each); larger gets 413."""

LATENCY_BUCKETS = 40
LATENCY_MIN_MS = 10.0
LATENCY_MAX_MS = 600_000.0
"""Latency buckets: 0 below 10 ms, 1..40 log-spaced up to 10 minutes, 41 above."""


class Source(StrEnum):
    API = "api"
    TRACK = "track"
    IMPORT = "import"
    DEMO = "demo"


class CostSource(StrEnum):
    INGESTED = "ingested"
    INFERRED = "inferred"
    UNPRICED = "unpriced"


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""Earlier times are refused as a wrong clock (an unset device clock reads 1970): no model served traffic then."""
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(hours=1)
"""How far past this machine's clock a time may be: a caller's clock may run fast, but a day in 2099 would make
every dashboard window (which ends at the newest day stored) end in 2099."""


def _plausible_time(value: datetime) -> datetime:
    """Keep times a dashboard can place: UTC from 2000 to 2200 (and never one that overflows on conversion)."""
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC): an earlier time is "
                         "surely a wrong clock (an unset clock reads 1970); send the time the call happened")
    latest_allowed = datetime.now(UTC) + MAX_CLOCK_SKEW
    if moment > latest_allowed:
        raise ValueError(f"is in the future (after {latest_allowed.isoformat(timespec='seconds')}, this machine's "
                         f"clock plus {MAX_CLOCK_SKEW.total_seconds() / 3600:g} hour): send the time the call "
                         "happened, with its timezone")
    return moment


def _time_text(value: Any) -> Any:
    """Refuse a number for a time: pydantic would read it as Unix seconds (or milliseconds), a silent guess."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"must be an ISO-8601 string with a timezone, e.g. 2026-01-05T10:00:00Z; got the number "
                         f"{value!r} (Unix time is not read: its unit, seconds or milliseconds, would be a guess)")
    return value


def _numpy_bool(value: Any) -> Any:
    """Let `workbench.track(correct=prediction == label)` work when both are numpy values (a `numpy.bool_`)."""
    kind = type(value)
    return bool(value) if kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_") else value


_CONTROL = re.compile(r"[\x00-\x1f]")


def _no_control_characters(value: str) -> str:
    """Refuse C0 control characters (NUL, newline, tab...) in identifiers: they group, filter and display."""
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(f"holds the control character U+{ord(found.group()):04X} at character {found.start() + 1}: "
                         "identifiers may not hold control characters (free text such as input, output, "
                         "correction and comment may)")
    return value


def _number_as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _refused(model: str, fields: Iterable[str], message: str) -> ValidationError:
    """Build an error that names the fields at fault (a model-level check would otherwise be blamed on the body)."""
    return ValidationError.from_exception_data(model, [
        InitErrorDetails(type=PydanticCustomError("fields_together", message), loc=(name,), input=None) for name in fields])


def _stripped_required(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    return value.strip()


Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Count = Annotated[int, Field(strict=True, ge=0, le=10**9)]
"""A token count: a JSON integer. A string ("12") is refused rather than read, so a caller that sends the wrong
type learns at once; the CSV import turns digit cells into integers itself, since CSV has no types."""
Finite = Annotated[float, Field(allow_inf_nan=False)]
When = Annotated[AwareDatetime, BeforeValidator(_time_text), AfterValidator(_plausible_time)]
Short = Annotated[str, BeforeValidator(_number_as_text), Field(max_length=MAX_SHORT_CHARS),
                  AfterValidator(_no_control_characters)]
Flag = Annotated[bool, Field(strict=True), BeforeValidator(_numpy_bool)]
"""A JSON boolean: "yes", "false" and 1 are refused rather than guessed; the CSV import reads true/false cells itself."""
Hash = Annotated[str, Field(pattern=r"^[A-Za-z0-9:_+/=.-]{8,128}$", description="A hash of text kept out of the store.")]
TagText = Annotated[str, Field(max_length=MAX_TAG_CHARS), AfterValidator(_no_control_characters)]
Tags = Annotated[
    Annotated[Annotated[list[TagText], Field(max_length=MAX_TAGS)], Tag("list")]
    | Annotated[Annotated[dict[TagText, TagText], Field(max_length=MAX_TAGS)], Tag("dict")],
    Discriminator(lambda v: "dict" if isinstance(v, dict) else "list"),
]


class PredictionIn(BaseModel):
    """One call a model in production answered, as the caller reports it."""

    model_config = ConfigDict(extra="forbid")

    ts: When | None = Field(None, description="When the call happened: ISO-8601 with a timezone (default: arrival, UTC).")
    model_version: Annotated[Short, AfterValidator(_stripped_required)] = Field(
        description="The model that answered (a Bedrock model id, an OpenAI fine-tune id, a Models-page id). Required.")
    template_version: Short | None = Field(None, description="The prompt template version used, if any.")
    task_type: Short | None = Field(None, description="The kind of task (classify, extract, summarise...).")
    input: Text | None = Field(None, description="The prompt or input text; leave out and send input_hash to keep text out.")
    output: Text | None = Field(None, description="The model's answer; leave out and send output_hash to keep text out.")
    input_hash: Hash | None = None
    output_hash: Hash | None = None
    tokens_in: Count | None = Field(None, description="Input tokens billed at the input price (cached tokens excluded).")
    tokens_out: Count | None = Field(None, description="Output tokens.")
    tokens_cached: Count | None = Field(None, description="Input tokens read from the provider's prompt cache.")
    latency_ms: Finite | None = Field(None, ge=0, le=86_400_000, description="Time the call took, in milliseconds.")
    cost_usd: Finite | None = Field(None, ge=0, le=1_000_000, description="What the call cost; computed from the price table when absent.")
    cache_hit: Flag = Field(False, description="Answered from the application's own cache: no provider call, not charged.")
    confidence: Finite | None = Field(None, ge=0, le=1, description="The model's confidence in [0, 1], if it gives one.")
    ground_truth: Text | None = Field(None, description="The right answer, when known.")
    correct: Flag | None = Field(None, description="Whether the output was right, when known.")
    rating: int | None = Field(None, ge=1, le=5, description="A 1-5 quality rating.")
    error: Text | None = Field(None, description="The error message when the call failed (counts toward the error rate).")
    unit_id: Short | None = Field(None, description="The unit of an experiment (user, session, request) this call served.")
    experiment_id: Short | None = Field(None, description="The A/B experiment this call belongs to.")
    variant: Short | None = Field(None, description="The experiment arm that served it.")
    tags: Tags | None = Field(None, description="Short labels: a list of strings or a flat object of strings.")

    @model_validator(mode="after")
    def _variant_needs_experiment(self) -> PredictionIn:
        if self.variant is not None and self.experiment_id is None:
            raise _refused("PredictionIn", ["variant"],
                           "variant was given without experiment_id: send both or neither")
        return self


class FeedbackIn(BaseModel):
    """A person's judgement of a prediction (by id) or of what a unit (user, session) was served."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: Annotated[int, Field(strict=True)] | None = Field(None, ge=1, le=2**63 - 1, description="The prediction judged, as returned by POST /v1/predictions.")
    unit_id: Short | None = Field(None, description="Or the unit judged, when the prediction's id is not at hand.")
    rating: int | None = Field(None, ge=1, le=5, description="A 1-5 rating (thumbs up = 5, down = 1).")
    correction: Text | None = Field(None, description="What the output should have been.")
    categories: Annotated[list[TagText], Field(max_length=MAX_TAGS)] = Field(
        default_factory=list, description="Issue categories (wrong label, hallucination, tone...).")
    comment: Annotated[str, Field(max_length=10_000)] = ""
    reviewer: Short | None = None
    ts: When | None = Field(None, description="When it was given: ISO-8601 with a timezone (default: arrival, UTC).")

    @model_validator(mode="after")
    def _names_what_it_judges(self) -> FeedbackIn:
        if self.prediction_id is None and self.unit_id is None:
            raise _refused("FeedbackIn", ["prediction_id", "unit_id"],
                           "feedback needs prediction_id or unit_id to say what it judges")
        return self


def _shape(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict) and set(value) == {"predictions"}:
        return "batch"
    if isinstance(value, dict) and set(value) == {"feedback"}:
        return "feedback_batch"
    return "one"


class PredictionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    predictions: Annotated[list[PredictionIn], Field(max_length=MAX_BATCH)]


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feedback: Annotated[list[FeedbackIn], Field(max_length=MAX_BATCH)]


PredictionsBody = Annotated[
    Annotated[PredictionIn, Tag("one")]
    | Annotated[Annotated[list[PredictionIn], Field(max_length=MAX_BATCH)], Tag("list")]
    | Annotated[PredictionBatch, Tag("batch")],
    Discriminator(_shape),
]
"""What POST /v1/predictions accepts: one prediction, a list, or {"predictions": [...]}."""

FeedbackBody = Annotated[
    Annotated[FeedbackIn, Tag("one")]
    | Annotated[Annotated[list[FeedbackIn], Field(max_length=MAX_BATCH)], Tag("list")]
    | Annotated[FeedbackBatch, Tag("feedback_batch")],
    Discriminator(_shape),
]

SHAPE_TAGS = {"one", "list", "dict", "batch", "feedback_batch"}


def as_list(body: PredictionIn | FeedbackIn | list[Any] | PredictionBatch | FeedbackBatch) -> list[Any]:
    """Return the items of any accepted body shape."""
    if isinstance(body, PredictionBatch):
        return body.predictions
    if isinstance(body, FeedbackBatch):
        return body.feedback
    return body if isinstance(body, list) else [body]


# ----------------------------------------------------------------------------------------- experiments

MAX_LISTED_PLACES = 10
"""Items a warning names one by one; the rest are counted."""
NOT_COUNTED = "it will not count in any analysis"


def experiment_problems(predictions: Iterable[PredictionIn],
                        variants_of: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    """Map each distinct reason a prediction's experiment will not count to the indexes of the items it concerns.

    `variants_of` holds every experiment that exists (its id as text) and its variant names. Such
    predictions are stored all the same (the experiment may be created later, or the caller's ids
    may be off), but an analysis reads only an existing experiment's own variants, so the caller is told.
    """
    problems: dict[str, list[int]] = {}
    for index, p in enumerate(predictions):
        if p.experiment_id is None:
            continue
        variants = variants_of.get(p.experiment_id)
        if variants is None:
            problem = f"experiment {p.experiment_id} does not exist: {NOT_COUNTED}"
        elif p.variant is None:
            problem = (f"experiment {p.experiment_id} named without a variant (its variants: {', '.join(variants)}): "
                       f"{NOT_COUNTED}")
        elif p.variant not in variants:
            problem = (f"experiment {p.experiment_id} has no variant {p.variant!r} (its variants: "
                       f"{', '.join(variants)}): {NOT_COUNTED}")
        else:
            continue
        problems.setdefault(problem, []).append(index)
    return problems


def listed(places: Sequence[str]) -> str:
    """Name the first few places, and count the rest: a warning stays one line whatever the batch."""
    shown = ", ".join(places[:MAX_LISTED_PLACES])
    rest = len(places) - MAX_LISTED_PLACES
    return f"{shown} (and {rest} more)" if rest > 0 else shown


# --------------------------------------------------------------------------------------------- derived


def utc_text(ts: datetime | None, now: datetime | None = None) -> str:
    """Return the time as UTC ISO-8601 with milliseconds: one format, so text order is time order."""
    moment = (ts or now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")


def text_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


_LOG_STEP = math.log(LATENCY_MAX_MS / LATENCY_MIN_MS) / LATENCY_BUCKETS


def latency_bucket(latency_ms: float | None) -> int | None:
    """Return the latency's bucket: 0 below 10 ms, 1..40 log-spaced to 10 min, 41 above."""
    if latency_ms is None:
        return None
    if latency_ms < LATENCY_MIN_MS:
        return 0
    if latency_ms >= LATENCY_MAX_MS:
        return LATENCY_BUCKETS + 1
    return min(LATENCY_BUCKETS, int(math.log(latency_ms / LATENCY_MIN_MS) / _LOG_STEP) + 1)


def latency_bucket_bounds(bucket: int) -> tuple[float, float]:
    """Return the [low, high) milliseconds a bucket covers (what a percentile from counts interpolates in)."""
    if bucket <= 0:
        return 0.0, LATENCY_MIN_MS
    if bucket > LATENCY_BUCKETS:
        return LATENCY_MAX_MS, math.inf
    return LATENCY_MIN_MS * math.exp((bucket - 1) * _LOG_STEP), LATENCY_MIN_MS * math.exp(bucket * _LOG_STEP)


class Priced(NamedTuple):
    cost_usd: float | None
    source: CostSource
    price_row: str | None


CACHE_HIT_ROW = "application cache hit: no provider call, not charged"


class PriceBook:
    """The catalogue's on-demand prices, looked up once per model id for a batch."""

    def __init__(self, prices: Iterable[InferencePrice] | None = None) -> None:
        self._prices = list(prices if prices is not None else inference_prices())
        self._by_model: dict[str, InferencePrice | None] = {}

    def lookup(self, model: str) -> InferencePrice | None:
        if model not in self._by_model:
            self._by_model[model] = price_for(model, self._prices)
        return self._by_model[model]

    def price(self, p: PredictionIn) -> Priced:
        """Price one call: the caller's cost wins; an application cache hit costs nothing; else tokens x rates."""
        if p.cost_usd is not None:
            return Priced(p.cost_usd, CostSource.INGESTED, None)
        if p.cache_hit:
            return Priced(0.0, CostSource.INFERRED, CACHE_HIT_ROW)
        if p.tokens_in is None and p.tokens_out is None and p.tokens_cached is None:
            return Priced(None, CostSource.UNPRICED, None)
        price = self.lookup(p.model_version)
        if price is None:
            return Priced(None, CostSource.UNPRICED, None)
        billed_in = (p.tokens_in or 0) + (p.tokens_cached or 0)
        usd = billed_in * price.input_per_1k / 1000 + (p.tokens_out or 0) * price.output_per_1k / 1000
        row = price.row + ("; cached input at the input rate (no cached price catalogued)" if p.tokens_cached else "")
        return Priced(round(usd, 10), CostSource.INFERRED, row)


def field_path(loc: Iterable[Any], root: str = "") -> str:
    """Write a pydantic error location as a path a person reads: `predictions[3].tokens_in`."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in SHAPE_TAGS:
            shown = _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", str(part))  # a bad key, shown safely
            path += f".{shown}" if path else shown
    return path or "(the whole body)"
