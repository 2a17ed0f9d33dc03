"""Take production predictions and feedback in: from the API, `workbench.track`, or a log file.

Every way in ends in `ingest`: validated `PredictionIn`s are priced on arrival (the caller's cost
wins; otherwise the catalogue's on-demand rates, with the price row recorded), turned into rows and
written with one `executemany` in one short transaction, which the m015 triggers also add to the
daily rollups. Log imports stream: a file or every object under an S3 prefix is read line by line
and written a batch at a time, so memory stays bounded whatever the size; a bad line is reported
with its file, line and field, and the good lines around it are kept.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import BaseModel, Field, ValidationError

from workbench.domain import invocation_logs
from workbench.domain.predictions import (
    MAX_BATCH,
    FeedbackIn,
    PredictionIn,
    PriceBook,
    Source,
    field_path,
    latency_bucket,
    text_hash,
    utc_text,
)
from workbench.domain.templates import InferencePrice
from workbench.errors import InvalidInput
from workbench.store import Store, utcnow
from workbench.store import predictions as rows

MAX_LISTED_ERRORS = 200
"""Bad lines an import report lists one by one; the rest are counted in `errors_not_listed`."""


class LogFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    BEDROCK = "bedrock-invocation-log"


class LineError(BaseModel):
    file: str
    line: int
    field: str = Field(description="Where on the line: a field name, or '' for the line as a whole.")
    message: str


class ImportReport(BaseModel):
    source: str = Field(description="The file or s3:// prefix read.")
    format: str
    files: int = 0
    read: int = Field(0, description="Records read (non-blank lines).")
    stored: int = 0
    rejected: int = Field(0, description="Records refused; each is listed in `errors` (up to a limit).")
    errors: list[LineError] = Field(default_factory=list)
    errors_not_listed: int = 0
    warnings: list[str] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ ingest


def ingest(store: Store, predictions: Sequence[PredictionIn], *, source: Source | str = Source.API,
           prices: PriceBook | None = None) -> list[int]:
    """Store validated predictions in one transaction and return their ids, in order."""
    if not predictions:
        return []
    book = prices or workspace_prices(store)
    now = datetime.now(UTC)
    created = utcnow()
    source_text = Source(source).value
    prepared = [_row(p, book, now, created, source_text) for p in predictions]
    with store.write() as db:
        return rows.insert_predictions(db, prepared)


PRICES_TTL_S = 30.0
"""How long ingest keeps the price table it read: an edit on the Costs page prices new traffic within this time."""
_read_prices: dict[str, tuple[float, list[InferencePrice]]] = {}


def workspace_prices(store: Store) -> PriceBook:
    """Price on arrival from the workspace's price table (Costs page) in force today, then the catalogue.

    Read at most every `PRICES_TTL_S` per store, not once per request: the API prices every batch.
    """
    from workbench.domain.templates import inference_prices as catalogue_prices
    from workbench.services import cost_prices

    key = str(store.path)
    read = _read_prices.get(key)
    if read is None or time.monotonic() - read[0] > PRICES_TTL_S:
        read = (time.monotonic(), [*cost_prices.inference_prices(store), *catalogue_prices()])
        _read_prices[key] = read
    return PriceBook(read[1])


def _row(p: PredictionIn, book: PriceBook, now: datetime, created: str, source: str) -> tuple[Any, ...]:
    cost, cost_source, price_row = book.price(p)
    return (
        utc_text(p.ts, now), p.model_version, p.template_version, p.task_type, p.input, p.output,
        p.input_hash or (text_hash(p.input) if p.input is not None else None),
        p.output_hash or (text_hash(p.output) if p.output is not None else None),
        None if p.input is None else len(p.input), None if p.output is None else len(p.output),
        p.tokens_in, p.tokens_out, p.tokens_cached, p.latency_ms, latency_bucket(p.latency_ms),
        cost, cost_source.value, price_row, int(p.cache_hit), p.confidence, p.ground_truth,
        None if p.correct is None else int(p.correct), p.rating, p.error, p.unit_id, p.experiment_id, p.variant,
        orjson.dumps(p.tags if p.tags is not None else []).decode(), source, created,
    )


def add_feedback(store: Store, items: Sequence[FeedbackIn], *, source: str = "api") -> list[int]:
    """Store feedback and return its ids; a `prediction_id` that names no prediction refuses the whole batch."""
    if not items:
        return []
    now = datetime.now(UTC)
    prepared = [{
        "prediction_id": f.prediction_id, "unit_id": f.unit_id, "rating": f.rating, "correction": f.correction,
        "categories": f.categories, "comment": f.comment, "reviewer": f.reviewer, "ts": utc_text(f.ts, now), "source": source,
    } for f in items]
    with store.write() as db:
        named = {f.prediction_id for f in items if f.prediction_id is not None}
        missing = named - rows.existing_ids(db, named)
        if missing:
            where = [f"feedback[{i}].prediction_id" for i, f in enumerate(items) if f.prediction_id in missing]
            raise InvalidInput(f"{', '.join(where[:5])}: no prediction with id {', '.join(map(str, sorted(missing)[:5]))}; "
                               "use an id returned by POST /v1/predictions, or send unit_id instead")
        return rows.insert_feedback(db, prepared)


# ------------------------------------------------------------------------------------------ log import


def import_log(store: Store, path: str | Path, fmt: LogFormat | str = LogFormat.JSONL, *, batch_size: int = MAX_BATCH,
               s3_client: Any = None) -> ImportReport:
    """Import a prediction log from a file (plain or gzip) or every object under an `s3://bucket/prefix`."""
    try:
        log_format = LogFormat(fmt)
    except ValueError:
        raise InvalidInput(f"format {fmt!r} is not known; use one of: {', '.join(f.value for f in LogFormat)}") from None
    report = ImportReport(source=str(path), format=log_format.value)
    book = PriceBook()
    batch: list[PredictionIn] = []

    def flush() -> None:
        report.stored += len(ingest(store, batch, source=Source.IMPORT, prices=book))
        batch.clear()

    for name, stream in _streams(str(path), s3_client, report if log_format is LogFormat.BEDROCK else None):
        report.files += 1
        with stream:
            for line, fields, error in _records(name, _decoded(stream), log_format, report):
                report.read += 1
                prediction = _validated(name, line, fields, error, report)
                if prediction is not None:
                    batch.append(prediction)
                    if len(batch) >= batch_size:
                        flush()
    flush()
    return report


def _streams(path: str, s3_client: Any, bedrock: ImportReport | None) -> Iterator[tuple[str, IO[bytes]]]:
    if path.startswith("s3://"):
        yield from _s3_streams(path, s3_client, bedrock)
        return
    local = Path(path)
    if not local.is_file():
        raise InvalidInput(f"{path}: no such file (give a file path or s3://bucket/prefix)")
    with local.open("rb") as raw:
        yield local.name, _maybe_gzip(raw)


BEDROCK_PERMISSION_CHECK = "amazon-bedrock-logs-permission-check"
"""The object Bedrock writes to test it may write to the bucket: not a log."""


def _s3_streams(uri: str, s3_client: Any, bedrock: ImportReport | None) -> Iterator[tuple[str, IO[bytes]]]:
    """Open every object under the prefix; for Bedrock logs, skip the objects that are not records (said in warnings)."""
    from workbench.providers import aws

    s3 = s3_client or aws.make_client("s3")
    bucket, _ = aws.parse_s3_uri(uri)
    keys = aws.list_keys(s3, uri)
    if not keys:
        raise InvalidInput(f"{uri}: no objects under this prefix; check the bucket and prefix Bedrock logs to")
    skipped = [k for k in keys if bedrock is not None and _not_a_bedrock_log(k)]
    if bedrock is not None and skipped:
        bedrock.warnings.append(f"skipped {len(skipped)} object(s) that hold no invocation records (the permission "
                                f"check, or large request/response bodies under data/), e.g. {skipped[0]}")
    for key in keys:
        if key.endswith("/") or key in skipped:
            continue
        with aws.translate_errors(f"reading s3://{bucket}/{key}"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with io.BufferedReader(_RawReader(body)) as raw:
            yield f"s3://{bucket}/{key}", _maybe_gzip(raw)


def _not_a_bedrock_log(key: str) -> bool:
    return key.rsplit("/", 1)[-1] == BEDROCK_PERMISSION_CHECK or "/data/" in f"/{key}"


class _RawReader(io.RawIOBase):
    """Lets an S3 streaming body be buffered (peeked, read by line) without reading it whole."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._body.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._body.close()
        super().close()


def _maybe_gzip(stream: IO[bytes]) -> IO[bytes]:
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type]
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
    return buffered


def _decoded(stream: IO[bytes]) -> Iterator[str]:
    """Yield text lines, decoding UTF-8 (with or without a BOM); undecodable bytes become U+FFFD, never a crash."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending = ""
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        yield from (line + "\n" for line in complete)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


Record = tuple[int, dict[str, Any] | None, LineError | None]


def _records(name: str, lines: Iterator[str], fmt: LogFormat, report: ImportReport) -> Iterator[Record]:
    if fmt is LogFormat.CSV:
        yield from _csv_records(name, lines, report)
        return
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield number, None, LineError(file=name, line=number, field="", message=f"not valid JSON: {exc}")
            continue
        if fmt is LogFormat.BEDROCK:
            try:
                yield number, invocation_logs.prediction_fields(value), None
            except invocation_logs.RecordError as exc:
                yield number, None, LineError(file=name, line=number, field=exc.field, message=str(exc))
        elif isinstance(value, dict):
            yield number, value, None
        else:
            yield number, None, LineError(file=name, line=number, field="",
                                          message=f"expected a JSON object, got {type(value).__name__}")


def _csv_records(name: str, lines: Iterator[str], report: ImportReport) -> Iterator[Record]:
    reader = csv.DictReader(lines)
    known = set(PredictionIn.model_fields)
    unknown = [h for h in reader.fieldnames or [] if h not in known]
    if unknown:
        report.warnings.append(f"{name}: columns ignored (not prediction fields): {', '.join(unknown)}")
    for record in reader:
        fields: dict[str, Any] = {k: v for k, v in record.items() if k in known and v not in (None, "")}
        if None in record:
            yield reader.line_num, None, LineError(file=name, line=reader.line_num, field="",
                                                   message="more values than the header has columns")
            continue
        if isinstance(fields.get("tags"), str):
            fields["tags"] = _csv_tags(fields["tags"])
        yield reader.line_num, fields, None


def _csv_tags(text: str) -> Any:
    if text.lstrip()[:1] in ("[", "{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text  # validation names the field
    return [t.strip() for t in text.split(",") if t.strip()]


def _validated(name: str, line: int, fields: dict[str, Any] | None, error: LineError | None,
               report: ImportReport) -> PredictionIn | None:
    errors = [error] if error is not None else []
    prediction = None
    if fields is not None:
        try:
            prediction = PredictionIn.model_validate(fields)
        except ValidationError as exc:
            errors = [LineError(file=name, line=line, field=field_path(e["loc"]), message=e["msg"]) for e in exc.errors()]
    if errors:
        report.rejected += 1
        room = MAX_LISTED_ERRORS - len(report.errors)
        report.errors += errors[:max(0, room)]
        report.errors_not_listed += max(0, len(errors) - max(0, room))
    return prediction


# --------------------------------------------------------------------------------------------- track


def track_one(store: Store, **fields: Any) -> int:
    """Validate and store one prediction from code on this machine; return its id."""
    try:
        prediction = PredictionIn.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    return ingest(store, [prediction], source=Source.TRACK)[0]

