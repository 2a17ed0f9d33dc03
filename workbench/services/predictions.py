"""Take production predictions and feedback in: from the API, `workbench.track`, or a log file.

Every way in ends in `ingest`: validated `PredictionIn`s are priced on arrival (the caller's cost
wins; otherwise the catalogue's on-demand rates, with the price row recorded), turned into rows and
written with one `executemany` in one short transaction, which the m015 triggers also add to the
daily rollups. Log imports stream: a file or every object under an S3 prefix is read line by line
and written a batch at a time, so memory stays bounded whatever the size; a bad line is reported
with its file, line and field, and the good lines around it are kept.

Sending predictions and feedback, and importing logs, need `predictions.write` (engineer and admin;
the CLI and `workbench.track` act as the local operator). No audit event is written per request,
which would double every write of a busy API; a token's `last_used_at` says who is sending, and an
import, a person's one-off act, is recorded per file.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import re
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import BaseModel, Field, ValidationError

from workbench.domain import invocation_logs
from workbench.domain.access import Permission
from workbench.domain.predictions import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    FeedbackIn,
    PredictionIn,
    PriceBook,
    Source,
    experiment_problems,
    field_path,
    latency_bucket,
    listed,
    text_hash,
    utc_text,
)
from workbench.domain.templates import InferencePrice
from workbench.errors import Conflict, InvalidInput
from workbench.services import access
from workbench.store import Store, utcnow
from workbench.store import experiments as experiment_rows
from workbench.store import prediction_imports as imports
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
    incomplete: list[LineError] = Field(default_factory=list, description=(
        "Files that broke off before their end (truncated or corrupt): the line where reading stopped."))


# ------------------------------------------------------------------------------------------------ ingest


def ingest(store: Store, predictions: Sequence[PredictionIn], *, source: Source | str = Source.API,
           prices: PriceBook | None = None) -> list[int]:
    """Store validated predictions in one transaction and return their ids, in order."""
    access.require(store, Permission.PREDICTIONS_WRITE, action="predictions.ingest")
    if not predictions:
        return []
    book = prices or workspace_prices(store)
    now = datetime.now(UTC)
    created = utcnow()
    source_text = Source(source).value
    prepared = [_row(p, book, now, created, source_text) for p in predictions]
    with store.write() as db:
        return rows.insert_predictions(db, prepared)


@dataclass(frozen=True)
class Ingested:
    ids: list[int]
    warnings: list[str]
    """One per distinct problem that leaves stored predictions out of an analysis, naming the items."""


def ingest_with_warnings(store: Store, predictions: Sequence[PredictionIn], *, source: Source | str = Source.API,
                         prices: PriceBook | None = None, field: str = "predictions") -> Ingested:
    """Store predictions as `ingest` does, and say which name an experiment or variant that does not exist."""
    problems = experiment_problems(predictions, experiment_variants(store, predictions))
    ids = ingest(store, predictions, source=source, prices=prices)
    return Ingested(ids, [f"{listed([f'{field}[{i}]' for i in where])}: {problem}"
                          for problem, where in problems.items()])


def experiment_variants(store: Store, predictions: Sequence[PredictionIn]) -> dict[str, list[str]]:
    """Every experiment's variant names by id (as text): one read for a whole request, none when none is named.

    Experiments are few (tens), so reading them all costs less than a query per distinct id.
    """
    if all(p.experiment_id is None for p in predictions):
        return {}
    with store.connect() as db:
        return {str(e.id): [v.name for v in e.variants] for e in experiment_rows.list_all(db)}


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


class UnknownPrediction(InvalidInput):
    """Feedback named a prediction id that is not stored; `fields` are the paths that named one."""

    def __init__(self, fields: list[str], message: str) -> None:
        super().__init__(message)
        self.fields = fields


def add_feedback(store: Store, items: Sequence[FeedbackIn], *, source: str = "api") -> list[int]:
    """Store feedback and return its ids; a `prediction_id` that names no prediction refuses the whole batch."""
    access.require(store, Permission.PREDICTIONS_WRITE, action="feedback.add")
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
            raise UnknownPrediction(where, f"{', '.join(where[:5])}: no prediction with id {', '.join(map(str, sorted(missing)[:5]))}; "
                               "use an id returned by POST /v1/predictions, or send unit_id instead")
        return rows.insert_feedback(db, prepared)


# ------------------------------------------------------------------------------------------ log import


def import_log(store: Store, path: str | Path, fmt: LogFormat | str = LogFormat.JSONL, *, batch_size: int = MAX_BATCH,
               s3_client: Any = None, force: bool = False) -> ImportReport:
    """Import a prediction log from a file (plain or gzip) or every object under an `s3://bucket/prefix`.

    A file whose content was imported before is refused (an S3 object is skipped, with a warning)
    unless `force`: a log has no ids of its own, so a second import would count its traffic twice.
    """
    try:
        log_format = LogFormat(fmt)
    except ValueError:
        raise InvalidInput(f"format {fmt!r} is not known; use one of: {', '.join(f.value for f in LogFormat)}") from None
    access.require(store, Permission.PREDICTIONS_WRITE, action="predictions.import", target=f"file:{path}")
    report = ImportReport(source=str(path), format=log_format.value)
    book = PriceBook()
    batch: list[PredictionIn] = []
    batch_lines: list[int] = []
    experiments: dict[str, list[str]] | None = None  # read once per import, when a line first names one
    not_counted: dict[str, list[int]] = {}  # per file: each experiment problem and the lines that have it

    def flush() -> None:
        nonlocal experiments
        if experiments is None and any(p.experiment_id is not None for p in batch):
            experiments = experiment_variants(store, batch)
        for problem, where in experiment_problems(batch, experiments or {}).items():
            not_counted.setdefault(problem, []).extend(batch_lines[i] for i in where)
        report.stored += len(ingest(store, batch, source=Source.IMPORT, prices=book))
        batch.clear()
        batch_lines.clear()

    for name, stream, content_key in _streams(str(path), s3_client, report, log_format, store, force):
        report.files += 1
        stored_before, broken_before = report.stored, len(report.incomplete)
        with stream:
            for line, fields, error in _records(name, _lines(stream), log_format, report):
                report.read += 1
                prediction = _validated(name, line, fields, error, report, log_format)
                if prediction is not None:
                    batch.append(prediction)
                    batch_lines.append(line)
                    if len(batch) >= batch_size:
                        flush()
        flush()
        for problem, lines in not_counted.items():
            report.warnings.append(f"{name} {'line' if len(lines) == 1 else 'lines'} {listed([str(n) for n in lines])}: "
                                   f"{problem}")
        not_counted.clear()
        if report.stored > stored_before:  # a file none of whose lines was stored may simply be imported again
            with store.write() as db:
                imports.record(db, content_key, name, stored=report.stored - stored_before,
                               complete=len(report.incomplete) == broken_before)
                access.audit(db, "predictions.import", f"file:{name}", source=str(path), format=log_format.value,
                             stored=report.stored - stored_before, complete=len(report.incomplete) == broken_before)
    return report


def _streams(path: str, s3_client: Any, report: ImportReport, fmt: LogFormat, store: Store,
             force: bool) -> Iterator[tuple[str, IO[bytes], str]]:
    if path.startswith("s3://"):
        yield from _s3_streams(path, s3_client, report, fmt is LogFormat.BEDROCK, store, force)
        return
    local = Path(path)
    if local.is_dir():
        raise InvalidInput(f"{path}: is a directory; give one log file (or an s3://bucket/prefix to read every object)")
    if not local.exists():
        raise InvalidInput(f"{path}: no such file (give a file path or s3://bucket/prefix)")
    if not local.is_file():  # a device such as /dev/zero never ends; a pipe cannot be read twice (hashed, then read)
        raise InvalidInput(f"{path}: is not a regular file (a device, pipe or socket); give a log file, e.g. save "
                           "the stream to a file first")
    content_key = _file_key(local)
    before = None if force else _imported(store, content_key)
    if before is not None:
        raise Conflict(f"{path}: this file's content was already imported on {before.imported_at} (from "
                       f"{before.source}, {before.stored:,} stored{'' if before.complete else ', broke off early'}); "
                       "importing it again would count its predictions twice. Use --force to import it anyway")
    with local.open("rb") as raw:
        yield local.name, _maybe_gzip(raw), content_key


def _file_key(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        for chunk in iter(lambda: raw.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _imported(store: Store, content_key: str) -> imports.ImportedFile | None:
    with store.connect() as db:
        return imports.find(db, content_key)


BEDROCK_PERMISSION_CHECK = "amazon-bedrock-logs-permission-check"
"""The object Bedrock writes to test it may write to the bucket: not a log."""


def _s3_streams(uri: str, s3_client: Any, report: ImportReport, bedrock: bool, store: Store,
                force: bool) -> Iterator[tuple[str, IO[bytes], str]]:
    """Open every object under the prefix; skip (said in warnings) Bedrock's non-record objects and objects read before."""
    from workbench.providers import aws

    s3 = s3_client or aws.make_client("s3")
    bucket, _ = aws.parse_s3_uri(uri)
    keys = aws.list_keys(s3, uri)
    if not keys:
        raise InvalidInput(f"{uri}: no objects under this prefix; check the bucket and prefix Bedrock logs to")
    skipped = [k for k in keys if bedrock and _not_a_bedrock_log(k)]
    if skipped:
        report.warnings.append(f"skipped {len(skipped)} object(s) that hold no invocation records (the permission "
                               f"check, or large request/response bodies under data/), e.g. {skipped[0]}")
    seen: list[str] = []
    for key in keys:
        if key.endswith("/") or key in skipped:
            continue
        with aws.translate_errors(f"reading s3://{bucket}/{key}"):
            response = s3.get_object(Bucket=bucket, Key=key)
        content_key = f"s3://{bucket}/{key}#{response.get('ETag', '')}"
        if not force and _imported(store, content_key) is not None:
            response["Body"].close()
            seen.append(key)
            continue
        with io.BufferedReader(_RawReader(response["Body"])) as raw:
            yield f"s3://{bucket}/{key}", _maybe_gzip(raw), content_key
    if seen:
        report.warnings.append(f"skipped {len(seen)} object(s) imported before (same key and ETag), e.g. {seen[0]}; "
                               "use --force to import them again")


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


MAX_LINE_BYTES = MAX_BODY_BYTES
"""A longer line is skipped and reported: the API refuses a body this big, so no one prediction needs more."""
READ_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class _Line:
    number: int
    text: str | None = None
    problem: str | None = None  # why the line cannot be read; `text` is None then
    broken: bool = False


def _lines(stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[_Line]:
    """Yield the stream's lines, each bytes scanned once (a long line costs linear time) and none held past `max_bytes`.

    A line that is not UTF-8 or is too long comes back with its problem instead of its text; a stream
    that breaks off (a truncated or corrupt gzip, a dropped connection) ends with a `broken` line.
    """
    number, size, parts, too_long = 0, 0, [], False
    read = getattr(stream, "read1", stream.read)  # read1: what is there, so a break loses no line before it
    while True:
        try:
            chunk = read(READ_CHUNK_BYTES)
        except Exception as exc:  # noqa: BLE001 - whatever broke the stream, the lines before it were read
            yield _Line(number + 1, problem=f"the file breaks off here ({_broken_reason(exc)}); nothing after this "
                                            "point was read", broken=True)
            return
        if not chunk:
            break
        start = 0
        while start <= len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            size += len(piece)
            too_long = too_long or size > max_bytes
            if not too_long:
                parts.append(piece)
            else:
                parts.clear()
            if end < 0:
                break
            number += 1
            yield _line(number, parts, too_long, max_bytes)
            size, parts, too_long = 0, [], False
            start = end + 1
    if size or too_long:
        yield _line(number + 1, parts, too_long, max_bytes)


def _line(number: int, parts: list[bytes], too_long: bool, max_bytes: int) -> _Line:
    if too_long:
        return _Line(number, problem=f"line longer than {max_bytes:,} bytes (the API's limit for a whole request); "
                                     "skipped")
    raw = b"".join(parts)
    if number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return _Line(number, raw.decode("utf-8").removesuffix("\r") + "\n")
    except UnicodeDecodeError as exc:
        return _Line(number, problem=f"not valid UTF-8 (byte {exc.start + 1} of the line): the file must be UTF-8; "
                                     "convert it (e.g. `iconv -f latin1 -t utf-8`) and import again")


def _broken_reason(exc: Exception) -> str:
    if isinstance(exc, EOFError):
        return "the file is truncated: the gzip stream ends early"
    if isinstance(exc, zlib.error | gzip.BadGzipFile):
        return f"corrupt gzip data: {exc}"
    return f"{type(exc).__name__}: {exc}"


Record = tuple[int, dict[str, Any] | None, LineError | None]


def _records(name: str, lines: Iterator[_Line], fmt: LogFormat, report: ImportReport) -> Iterator[Record]:
    if fmt is LogFormat.CSV:
        yield from _csv_records(name, lines, report)
        return
    for line in lines:
        if line.broken:
            report.incomplete.append(LineError(file=name, line=line.number, field="", message=line.problem or ""))
            return
        if line.text is None:
            yield line.number, None, LineError(file=name, line=line.number, field="", message=line.problem or "")
            continue
        if not line.text.strip():
            continue
        yield _json_record(name, line.number, line.text, fmt, report)


MAX_LISTED_WARNINGS = 200
"""Per-line warnings (text cut) a report lists; past that, one more says how many were left out."""


def _warn(report: ImportReport, warning: str) -> None:
    if len(report.warnings) < MAX_LISTED_WARNINGS:
        report.warnings.append(warning)
    elif len(report.warnings) == MAX_LISTED_WARNINGS:
        report.warnings.append(f"more lines were cut or warned about than the {MAX_LISTED_WARNINGS} listed; "
                               "the rest are not listed")


def _json_record(name: str, number: int, text: str, fmt: LogFormat, report: ImportReport) -> Record:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return number, None, LineError(file=name, line=number, field="", message=f"not valid JSON: {exc}")
    if fmt is LogFormat.BEDROCK:
        try:
            fields, cuts = invocation_logs.read_record(value)
        except invocation_logs.RecordError as exc:
            return number, None, LineError(file=name, line=number, field=exc.field, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - a record of a shape the reader did not expect costs that record only
            return number, None, _unexpected(name, number, exc)
        for cut in cuts:
            _warn(report, f"{name} line {number}: {cut}")
        return number, fields, None
    if isinstance(value, dict):
        return number, value, None
    return number, None, LineError(file=name, line=number, field="",
                                   message=f"expected a JSON object, got {type(value).__name__}")


def _unexpected(name: str, number: int, exc: Exception) -> LineError:
    return LineError(file=name, line=number, field="", message=f"could not read this record ({type(exc).__name__}: "
                                                                f"{exc}); skipped. Please report it with the line")


_CSV_COUNTS = {"tokens_in", "tokens_out", "tokens_cached"}
"""Integer columns: CSV cells are text, and the counts are strict integers everywhere else."""
_CSV_FLAGS = {"correct", "cache_hit"}
_CSV_BOOLEANS = {"true": True, "false": False}
"""Boolean columns, strict JSON booleans elsewhere: a `true`/`false` cell (any case) is read, anything else refused."""


def _csv_records(name: str, lines: Iterator[_Line], report: ImportReport) -> Iterator[Record]:
    """Read CSV rows, giving each its first line; a line that could not be read rejects the row it falls in."""
    problems: dict[int, str] = {}

    def texts() -> Iterator[str]:
        for line in lines:
            if line.broken:
                report.incomplete.append(LineError(file=name, line=line.number, field="", message=line.problem or ""))
                return
            if line.text is None:
                problems[line.number] = line.problem or ""
            yield line.text or "\n"  # keeps the reader's line count on the file's

    reader = csv.reader(texts(), strict=True)
    header: list[str] | None = None
    last = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            first, last = last + 1, reader.line_num
            where = f"line {first}" if last <= first else f"lines {first} to {last}"
            hint = ("a quoted value opened here is never closed" if "end of data" in str(exc) else
                    "check the quotes: one is probably not closed, or a quote inside a value is not doubled")
            yield first, None, LineError(file=name, line=first, field="",
                                         message=f"not valid CSV on {where} ({exc}): {hint}")
            continue
        first, last = last + 1, reader.line_num
        bad = sorted(n for n in problems if n <= last)
        if not row:  # a blank line, or one that could not be read
            for number in bad:
                yield number, None, LineError(file=name, line=number, field="", message=problems.pop(number))
            continue
        if bad:
            yield first, None, LineError(file=name, line=bad[0], field="", message=problems.pop(bad[0]))
            for number in bad[1:]:
                problems.pop(number)
            continue
        if header is None:
            header = row
            _check_header(name, header, report)
            continue
        yield _csv_row(name, first, last, header, row)
    for number in sorted(problems):  # lines the reader never reached (the file broke off)
        yield number, None, LineError(file=name, line=number, field="", message=problems[number])


def _check_header(name: str, header: list[str], report: ImportReport) -> None:
    unknown = [h for h in header if h not in PredictionIn.model_fields]
    if unknown:
        report.warnings.append(f"{name}: columns ignored (not prediction fields): {', '.join(unknown)}")


def _csv_row(name: str, first: int, last: int, header: list[str], row: list[str]) -> Record:
    if len(row) > len(header):
        return first, None, LineError(file=name, line=first, field="", message="more values than the header has columns")
    if last > first and len(row) < len(header):
        return first, None, LineError(file=name, line=first, field="", message=(
            f"a quoted value opened here runs on to line {last} and the row has fewer values than the header: "
            "a quote is probably not closed"))
    known = PredictionIn.model_fields
    fields: dict[str, Any] = {k: v for k, v in zip(header, row, strict=False) if k in known and v != ""}
    if isinstance(fields.get("tags"), str):
        fields["tags"] = _csv_tags(fields["tags"])
    for column in _CSV_COUNTS & fields.keys():
        if re.fullmatch(r"\s*-?\d+\s*", fields[column]):
            fields[column] = int(fields[column])
    for column in _CSV_FLAGS & fields.keys():
        fields[column] = _CSV_BOOLEANS.get(fields[column].strip().lower(), fields[column])
    return first, fields, None


def _csv_tags(text: str) -> Any:
    if text.lstrip()[:1] in ("[", "{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text  # validation names the field
    return [t.strip() for t in text.split(",") if t.strip()]


def _validated(name: str, line: int, fields: dict[str, Any] | None, error: LineError | None,
               report: ImportReport, fmt: LogFormat = LogFormat.JSONL) -> PredictionIn | None:
    errors = [error] if error is not None else []
    prediction = None
    if fields is not None:
        try:
            prediction = PredictionIn.model_validate(fields)
        except ValidationError as exc:
            errors = [LineError(file=name, line=line, field=_source_field(e["loc"], fmt), message=e["msg"])
                      for e in exc.errors()]
        except Exception as exc:  # noqa: BLE001 - one record's surprise must not abort the import
            errors = [_unexpected(name, line, exc)]
    if errors:
        report.rejected += 1
        room = MAX_LISTED_ERRORS - len(report.errors)
        report.errors += errors[:max(0, room)]
        report.errors_not_listed += max(0, len(errors) - max(0, room))
    return prediction


def _source_field(loc: Sequence[Any], fmt: LogFormat) -> str:
    """Name the field as the log has it: a Bedrock record says `modelId`, not the `model_version` it became."""
    path = field_path(loc)
    if fmt is not LogFormat.BEDROCK or not loc:
        return path
    head = str(loc[0])
    source = invocation_logs.SOURCE_FIELDS.get(head)
    return path if source is None else source + path[len(head):]


# --------------------------------------------------------------------------------------------- track


def track_one(store: Store, **fields: Any) -> int:
    """Validate and store one prediction from code on this machine; return its id."""
    try:
        prediction = PredictionIn.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    return ingest(store, [prediction], source=Source.TRACK)[0]

