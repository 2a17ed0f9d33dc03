"""The workbench from a terminal: the same services the pages use, with `--json` for scripts and CI.

Every command prints one JSON object under `--json` (on failure `{"ok": false, "error": ...}`) and
exits non-zero when it failed or, for `validate`, when the data would be rejected. That holds for
every way a command can fail: a usage error, Ctrl-C, a file system error, or a bug
(`{"ok": false, "error": "internal error: ..."}`); without `--json` the message goes to stderr.
Never a traceback, never click's bare "Aborted!".

A reader that stops reading (`workbench datasets list | head -1`) is not a failure: the rest of the
output is dropped without a word and the command exits with the status it would have had, as
https://docs.python.org/3/library/signal.html#note-on-sigpipe recommends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any

import click
import orjson
from pydantic import BaseModel

from workbench.domain.catalogue import Rule, target_ids
from workbench.domain.example import Split
from workbench.domain.formats import Format
from workbench.errors import Forbidden, WorkbenchError
from workbench.store import Store

if TYPE_CHECKING:
    from workbench.domain.validation import Finding

FORMAT_CHOICES = ["auto", *(f.value for f in Format)]
TARGET_CHOICES = target_ids()  # from the target catalogue: a new target is a new choice
SPLIT_CHOICES = [s.value for s in Split if s is not Split.UNASSIGNED]
SEED_MAX = 2**63 - 1
"""The split seed is stored with the dataset's split settings as a JSON integer: 64 bits at most."""


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def json_text(payload: Any, *, indent: bool = True) -> str:
    """Serialise to JSON; text holding undecodable bytes (from a file name, say) is escaped, never fatal."""
    try:
        return orjson.dumps(_plain(payload), option=orjson.OPT_INDENT_2 if indent else 0).decode()
    except orjson.JSONEncodeError:
        # orjson refuses lone surrogates; the standard library writes them as \udcXX escapes.
        return json.dumps(_plain(payload), indent=2 if indent else None, ensure_ascii=True, default=str)


def emit(ctx: click.Context, payload: dict[str, Any], human: Callable[[], None]) -> None:
    """Print one JSON object under --json, otherwise the human-readable form."""
    with output_closed_quietly():
        if ctx.obj["json"]:
            click.echo(json_text(payload))
        else:
            human()


@contextlib.contextmanager
def output_closed_quietly() -> Iterator[None]:
    """Write (and flush) the output inside; if the reader has gone, drop the rest and carry on.

    The work is done by the time a command prints, so its exit status still says how it went.
    Flushing here makes a closed pipe show now, not at interpreter exit after `sys.exit`.
    """
    try:
        yield
        if sys.stdout is not None:  # None when the shell started us with stdout closed (`>&-`)
            sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()


def _flush() -> None:
    """Flush stdout now: a closed pipe shows here, quietly, not at interpreter exit as an ignored exception."""
    with output_closed_quietly():
        pass


def _drop_stdout() -> None:
    """Point stdout at /dev/null so what is still buffered, and the interpreter's exit, write nowhere quietly."""
    with _suppressed():
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def fail(ctx: click.Context, message: str, payload: dict[str, Any] | None = None, code: int = 1) -> None:
    """End a command that ran but did not succeed: one JSON object (with `payload`) or the message on stderr."""
    with output_closed_quietly():
        if ctx.obj["json"]:
            click.echo(json_text({"ok": False, "error": message, **(payload or {})}))
        else:
            click.echo(f"Error: {_printable(message)}", err=True)
    sys.exit(code)


def command(group: click.Group, name: str | None = None) -> Callable[[Callable[..., Any]], click.Command]:
    """Register a subcommand that takes --json; its failures are reported by `WorkbenchCli.main`."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
        @click.pass_context
        @wraps(fn)
        def run(ctx: click.Context, as_json: bool, **kwargs: Any) -> None:
            ctx.obj["json"] = ctx.obj.get("json") or as_json
            try:
                fn(ctx, **kwargs)
            except BrokenPipeError as exc:
                # Output written outside `emit` was cut short: the command may not have finished.
                sys.exit(_report_failure(exc, ctx.obj["json"]))
            _flush()

        return group.command(name)(run)

    return decorate


LISTED = 20
"""Items a human-readable report names one by one before it gives a count of the rest."""

EXIT_FORBIDDEN = 3
"""A role that may not do what was asked (a token's or WORKBENCH_USER's): not an error to retry."""

EXIT_INTERRUPTED = 130
"""What shells report for a process ended by Ctrl-C (128 + SIGINT)."""


class WorkbenchCli(click.Group):
    """The top-level group: turns every way a command can fail into one message, in the form asked for."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
        standalone_mode: bool = True, **extra: Any,
    ) -> Any:
        """Run the CLI; when standalone (a terminal, a script), report failures instead of raising them."""
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        before_separator = argv[: argv.index("--")] if "--" in argv else argv
        as_json = "--json" in before_separator
        if args is None:  # the program itself, not a caller (a test's CliRunner) whose process is not ours to change
            _stop_on_sigterm()
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            _flush()
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - the one place every failure is turned into a message
            code = _report_failure(exc, as_json)
            if args is None and _interrupted(exc) and threading.active_count() > 1:
                # Threads still waiting on a hung provider call would hold the exit until their timeouts:
                # everything worth keeping is committed and the message is out, so leave now.
                _flush()
                with _suppressed():
                    sys.stderr.flush()
                os._exit(code)
        sys.exit(code if isinstance(code, int) else 0)


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C or SIGTERM, which click hands on as an Abort caused by KeyboardInterrupt (not a "no" to a prompt)."""
    return isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, click.exceptions.Abort) and isinstance(exc.__cause__, KeyboardInterrupt))


def _stop_on_sigterm() -> None:
    """Treat SIGTERM (`kill`, `timeout`, a supervisor stopping) like Ctrl-C, so a run ends with its state written.

    Left alone where someone already chose a handler, and off the main thread, where Python refuses it.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _report_failure(exc: BaseException, as_json: bool) -> int:
    """Print one message for a failure that escaped a command; return the exit status."""
    if isinstance(exc, BrokenPipeError):
        # The reader has gone while a command was still writing: nothing to say to anyone, but the
        # command did not run to its end, so 1 (what Python's note on SIGPIPE recommends).
        _drop_stdout()
        return 1
    code = 1
    if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
        if isinstance(exc.__cause__, EOFError):
            message = "the input ended before the command had what it needed"
        else:
            message, code = "interrupted; work already committed is kept", EXIT_INTERRUPTED
    elif isinstance(exc, click.ClickException):
        if not as_json:
            exc.show()
            return exc.exit_code
        message, code = exc.format_message(), exc.exit_code
    elif isinstance(exc, Forbidden):
        message, code = str(exc), EXIT_FORBIDDEN
    elif isinstance(exc, WorkbenchError):
        message = str(exc)
    elif isinstance(exc, sqlite3.Error):
        message = f"database error: {exc}"
    elif isinstance(exc, OSError):
        message = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else f"{exc.strerror or exc}"
    elif isinstance(exc, MemoryError):
        message = "out of memory"
    else:
        message = f"internal error: {type(exc).__name__}: {exc}"
    with _suppressed():
        if as_json:
            click.echo(json_text({"ok": False, "error": message}, indent=False))
        else:
            click.echo(f"Error: {_printable(message)}", err=True)
    return code


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _suppressed() -> contextlib.suppress:
    return contextlib.suppress(OSError)


def store_of(ctx: click.Context) -> Store:
    """Return the store named by --db or WORKBENCH_DB, opened once per invocation."""
    if "store" not in ctx.obj:
        ctx.obj["store"] = Store(ctx.obj["db"])
    return ctx.obj["store"]  # type: ignore[no-any-return]


@click.group(cls=WorkbenchCli)
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Store file (default: $WORKBENCH_DB or data/workbench.db).")
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """Fine-Tuning Workbench: curate training data and launch fine-tuning jobs."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


@main.group()
def datasets() -> None:
    """Import, inspect, validate, split, version and export training datasets."""


@main.group()
def demo() -> None:
    """The demo workspace."""


@main.group()
def rules() -> None:
    """Guardrail rules checked against datasets."""


@main.group()
def targets() -> None:
    """Fine-tuning targets and the rules `datasets validate` checks for each, with their sources."""


# ----------------------------------------------------------------------------------------- datasets


@command(datasets, "import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Dataset to import into, created if new (default: the file's name, e.g. tickets for tickets.jsonl.gz).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="auto", show_default=True)
@click.option("--progress", is_flag=True, help="Write 'progress <bytes read> <file size>' lines to stderr as the import goes.")
def import_cmd(ctx: click.Context, path: str, name: str | None, fmt: str, progress: bool) -> None:
    """Import a JSONL, .jsonl.gz, JSON array or CSV file; bad lines are reported, good ones kept.

    Exits 1 when nothing was added or the file could not be read to its end (what was read before
    the break is kept and listed in the report).
    """
    from workbench.services import preparing
    from workbench.services.importing import import_path, name_from_file

    name = name if name is not None else name_from_file(path)
    # This process runs one import and exits: it may use a worker and tune the interpreter for it.
    preparing.own_process()
    total = os.path.getsize(path) if progress and os.path.isfile(path) else 0

    def report_progress(done: int) -> None:
        click.echo(f"progress {done} {total}", err=True)

    from workbench.cli_progress import cli_progress

    if progress:  # the machine-readable lines a parent process reads (services/import_process.py)
        result = import_path(store_of(ctx), path, name, fmt, progress=report_progress)
    else:
        with cli_progress(ctx) as shown:
            result = import_path(store_of(ctx), path, name, fmt, progress=shown)
    problem = import_problem(path, result)

    def human() -> None:
        click.echo(f"{result.imported} imported into {result.dataset!r}, {result.duplicates} duplicates, format {result.format}")
        for issue in result.errors[:50]:
            click.echo(f"  line {issue.line}: {issue.message}", err=True)
        if result.error_count > 50:
            click.echo(f"  ... and {result.error_count - 50} more errors", err=True)
        for issue in result.warnings[:LISTED]:
            click.echo(f"  line {issue.line} (kept, note): {issue.message}", err=True)
        total_notes = max(result.warning_count, len(result.warnings))
        if total_notes > LISTED:
            listed = f"--json lists the first {len(result.warnings):,}" if total_notes > len(result.warnings) else "--json lists them"
            click.echo(f"  ... and {total_notes - LISTED:,} more notes ({listed})", err=True)

    if problem is not None:
        if not ctx.obj["json"]:
            with output_closed_quietly():
                human()
        fail(ctx, problem, result.model_dump(mode="json"))
    emit(ctx, {"ok": True, **result.model_dump(mode="json")}, human)


def import_problem(path: str, result: Any) -> str | None:
    """Say why an import that ran counts as failed (the file broke off, or nothing was added), or None."""
    if result.fault is not None:
        return (
            f"{path} line {result.fault.line:,}: {result.fault.message}; "
            f"{result.imported:,} examples read before it were imported"
        )
    if result.added_nothing:
        first = f" (first: line {result.errors[0].line}: {result.errors[0].message})" if result.errors else ""
        return f"{path}: nothing imported; {result.error_count:,} of {result.lines_read:,} lines could not be imported{first}"
    return None


@command(datasets, "list")
def list_cmd(ctx: click.Context) -> None:
    """List datasets with their example counts."""
    from workbench.services.datasets import list_datasets

    found = list_datasets(store_of(ctx))

    def human() -> None:
        for d in found:
            click.echo(f"{d.name}\t{d.example_count} examples\t{d.source_format or '-'}")

    emit(ctx, {"ok": True, "datasets": found}, human)


@command(datasets, "show")
@click.argument("name")
def show_cmd(ctx: click.Context, name: str) -> None:
    """Show a dataset's counts per split and its versions."""
    from workbench.services.datasets import facets, get_dataset
    from workbench.services.versions import list_versions

    store = store_of(ctx)
    dataset, found, versions = get_dataset(store, name), facets(store, name), list_versions(store, name)

    def human() -> None:
        click.echo(f"{dataset.name}: {dataset.example_count} examples ({dataset.source_format or 'unknown format'})")
        click.echo(f"  description: {_printable(dataset.description) if dataset.description else '(none)'}")
        for split, n in sorted(found.splits.items()):
            click.echo(f"  {split}: {n}")
        for v in versions:
            click.echo(f"  version {v.name}: {v.example_count} examples, {v.created_at}")

    emit(ctx, {"ok": True, "dataset": dataset, "splits": found.splits, "tags": found.tags, "versions": versions}, human)


@command(datasets, "rename")
@click.argument("name")
@click.argument("new_name")
def rename_cmd(ctx: click.Context, name: str, new_name: str) -> None:
    """Rename a dataset (its examples, versions and history go with it)."""
    from workbench.services.datasets import rename_dataset

    dataset = rename_dataset(store_of(ctx), name, new_name)
    emit(ctx, {"ok": True, "dataset": dataset}, lambda: click.echo(f"renamed {name!r} to {dataset.name!r}"))


@command(datasets, "describe")
@click.argument("name")
@click.argument("description")
def describe_cmd(ctx: click.Context, name: str, description: str) -> None:
    """Set a dataset's description ('' clears it)."""
    from workbench.services.datasets import describe_dataset

    dataset = describe_dataset(store_of(ctx), name, description)
    emit(ctx, {"ok": True, "dataset": dataset}, lambda: click.echo(f"{dataset.name}: {dataset.description or '(no description)'}"))


@command(datasets, "delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Delete without asking (needed with --json or without a terminal).")
def delete_cmd(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete a dataset with its examples, their revisions, its versions and its import history."""
    from workbench.errors import InvalidInput
    from workbench.services.datasets import dataset_contents, delete_dataset

    store = store_of(ctx)
    if not yes:
        what = f"deleting {name!r} removes {dataset_contents(store, name).summary()}"
        if ctx.obj["json"] or not sys.stdin.isatty():
            raise InvalidInput(f"{what}; add --yes to confirm")
        if not click.confirm(f"{what[0].upper()}{what[1:]}. Delete it?", default=False):
            raise InvalidInput("nothing deleted")
    removed = delete_dataset(store, name)
    emit(ctx, {"ok": True, "deleted": name, "removed": removed}, lambda: click.echo(f"deleted {name!r}: {removed.summary()}"))


@command(datasets, "validate")
@click.argument("name")
@click.option("--target", type=click.Choice(TARGET_CHOICES), required=True)
@click.option("--split", type=click.Choice(SPLIT_CHOICES), default=None,
              help="Only this split (default: every example, record counts judged per split as a launch would).")
@click.option("--version", default=None, help="A frozen version instead of the live dataset.")
@click.option("--base-model", default=None,
              help="The base model's own rules too (Nova Micro takes no media, Nova 2 ignores a validation set), "
                   "as a launch for that model checks them.")
def validate_cmd(
    ctx: click.Context, name: str, target: str, split: str | None, version: str | None, base_model: str | None
) -> None:
    """Check a dataset against a fine-tuning target's rules; exit 1 if the target would reject it."""
    from workbench.cli_progress import cli_progress
    from workbench.services.validating import validate_dataset

    store = store_of(ctx)
    with cli_progress(ctx) as progress:
        report = validate_dataset(store, name, target, split=split, version=version, base_model=base_model,
                                  progress=progress)
    payload = report.to_json_dict()
    groups = report.groups(3)
    # Each finding's field as the Validate tab names it ('turn 1 (user)'), beside the raw path.
    findings = [*payload["errors"], *payload["warnings"], *payload["groups"]]
    firsts = [f.get("example_id") if "example_id" in f else _first_example(f["examples"]) for f in findings]
    for finding, label in zip(findings, _finding_labels(store, target, findings, firsts), strict=True):
        if finding.get("field"):
            finding["where"] = label or finding["field"]
    listed = [*payload["errors"], *payload["warnings"]]
    located = [(f, _location(f, d.get("where"))) for f, d in zip([*report.errors, *report.warnings], listed, strict=True)]

    def human() -> None:
        # One header per code with its true count, then a few findings each with its own place and message.
        verdict = "OK" if report.ok else "REJECTED"
        click.echo(f"{verdict}: {_count(report.record_count, 'record')} for {target}, "
                   f"{_count(report.error_count, 'error')}, {_count(report.warning_count, 'warning')}")
        for group in groups:
            title = f"{group.rule} ({group.code})" if group.rule else group.code
            click.echo(f"  {group.severity.value:7}  {title}  x{group.count:,}")
            members = [(f, where) for f, where in located if (f.severity, f.code) == (group.severity, group.code)]
            for finding, where in members[:SHOWN_PER_GROUP]:
                click.echo(f"    {where}: {finding.message}" if where else f"    {finding.message}")
            more = group.count - sum(f.count for f, _ in members[:SHOWN_PER_GROUP])
            if more > 0:
                one_by_one = sum(f.count == 1 for f, _ in members)
                lists = "every one" if one_by_one == group.count else f"the first {one_by_one:,}"
                click.echo(f"    ... and {more:,} more (--json lists {lists})")
        _echo_rules_checked(target, report.rules, {g.rule for g in groups if g.rule})

    emit(ctx, payload, human)
    if not report.ok:
        sys.exit(1)


SHOWN_PER_GROUP = 3
"""Findings printed under each code's header; `--json` lists them all."""


def _location(finding: Finding, where: str | None) -> str:
    """Name a finding's place as a user finds it: file line first, then the stored example and the part.

    'line 21 (example #558), turn 1 (user)'; a finding standing for many records names their lines
    ('lines 35, 36, 37, ...'), as its message does; a dataset-level finding has none ('').
    """
    if finding.count > 1 or (finding.example_id is None and finding.source_line is None):
        lines = [r.source_line for r in finding.records if r.source_line is not None]
        ids = [r.example_id for r in finding.records if r.example_id is not None]
        more = ", ..." if finding.count > SHOWN_PER_GROUP else ""
        if lines:
            return ("lines " if len(lines) > 1 else "line ") + ", ".join(map(str, lines[:SHOWN_PER_GROUP])) + more
        if ids:
            return "examples " + ", ".join(f"#{i}" for i in ids[:SHOWN_PER_GROUP]) + more
        return ""
    record = f"example #{finding.example_id}" if finding.example_id is not None else ""
    if finding.source_line is not None:
        record = f"line {finding.source_line}" + (f" ({record})" if record else "")
    return ", ".join(part for part in (record, where or finding.field or "") if part)


def _echo_rules_checked(target: str, checked: Sequence[Rule], broken: set[str]) -> None:
    """List the rules checked: those with findings first and in full, then the rest one compact line each."""
    click.echo(f"Rules checked for {target} ({len(checked)}):")
    hit = [r for r in checked if r.id in broken]
    rest = [r for r in checked if r.id not in broken]
    if hit:
        click.echo(f"  with findings ({len(hit)}):")
        for rule in hit:
            _echo_rule(rule, indent="    ")
    if rest:
        click.echo(f"  without findings ({len(rest)}):")
        width = max(len(r.id) for r in rest)
        for rule in rest:
            click.echo(f"    {rule.id:{width}}  {rule.severity.value:7}  {rule.origin.value}")
    click.echo(f"Each rule's source, codes and notes: workbench targets rules {target}")


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _first_example(refs: list[dict[str, Any]]) -> int | None:
    return next((r["example_id"] for r in refs if r.get("example_id") is not None), None)


CANONICAL_FIELD_CODES = frozenset({"tool_use_not_supported"})
"""Finding codes whose `field` is a path in the stored example, not in the target's record."""


def _finding_labels(store: Store, target: str, findings: list[dict[str, Any]], firsts: list[int | None]) -> list[str]:
    """Label each finding's field as the Validate tab does; '' where there is no field or example."""
    from workbench.domain.catalogue import get_target
    from workbench.services.datasets import field_labels, record_part_labels

    canonical = [i for i, f in enumerate(findings) if f.get("field") and f["code"] in CANONICAL_FIELD_CODES]
    labels = record_part_labels(store, get_target(target).format, [
        (None, None) if i in canonical else (example_id, f.get("field")) for i, (f, example_id) in enumerate(zip(findings, firsts, strict=True))
    ])
    for i, label in zip(canonical, field_labels(store, [(firsts[i], findings[i]["field"]) for i in canonical]), strict=True):
        labels[i] = label
    return labels


@command(datasets, "split")
@click.argument("name")
@click.option("--train", type=float, default=0.8, show_default=True)
@click.option("--validation", type=float, default=0.1, show_default=True)
@click.option("--test", type=float, default=0.1, show_default=True)
@click.option("--seed", type=click.IntRange(-SEED_MAX - 1, SEED_MAX), default=42, show_default=True)
@click.option("--stratify", default=None, help="Metadata field whose values keep their balance in every split.")
@click.option("--only-new", is_flag=True, help="Assign unassigned examples only; never move assigned ones.")
def split_cmd(
    ctx: click.Context, name: str, train: float, validation: float, test: float, seed: int, stratify: str | None, only_new: bool
) -> None:
    """Split a dataset into train/validation/test, reproducibly for a given seed."""
    from workbench.cli_progress import cli_progress
    from workbench.services.splits import split_dataset

    with cli_progress(ctx) as progress:
        summary = split_dataset(
            store_of(ctx), name, (train, validation, test), seed=seed, stratify_by=stratify, only_new=only_new, progress=progress
        )
    emit(ctx, {"ok": True, **summary.model_dump(mode="json")}, lambda: click.echo(
        f"{summary.assigned} assigned: " + ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    ))


@command(datasets, "export")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice([f.value for f in Format]), required=True)
@click.option("--split", type=click.Choice(SPLIT_CHOICES), default=None)
@click.option("--version", default=None, help="Export a frozen version instead of the live dataset.")
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--keep-pii", is_flag=True, help="Write PII as found instead of scrubbing it to placeholders.")
def export_cmd(
    ctx: click.Context, name: str, fmt: str, split: str | None, version: str | None, out: str, keep_pii: bool
) -> None:
    """Write a dataset, split or version as JSONL in any format (PII scrubbed unless --keep-pii)."""
    from pathlib import Path

    from workbench.cli_progress import cli_progress
    from workbench.services.datasets import field_labels
    from workbench.services.exporting import export_path
    from workbench.services.validating import file_name_findings

    store = store_of(ctx)
    with cli_progress(ctx) as progress:
        result = export_path(store, name, fmt, out, version=version, split=split, scrub_pii=not keep_pii, progress=progress)
    # Bedrock refuses a Nova file by its name; warn only, since the file may be renamed before it is uploaded.
    named = file_name_findings(Path(out).name, "bedrock-nova") if fmt == Format.BEDROCK_NOVA.value else []
    payload = {"ok": True, **result.model_dump(mode="json"), "warnings": [f.to_json_dict() for f in named]}
    # Lost fields named as the Export tab names them ('turn 2 (assistant), tool_calls'); JSON keeps the raw `field` too.
    shown = payload["lossy"] if ctx.obj["json"] else payload["lossy"][:20]
    lost = [loss for lossy in shown for loss in lossy["lost"]]
    for loss, label in zip(lost, field_labels(store, [(lossy["example_id"], loss["field"]) for lossy in shown for loss in lossy["lost"]]), strict=True):
        loss["where"] = label

    def human() -> None:
        click.echo(f"{result.written} examples written to {result.path} ({result.scrubbed} scrubbed of PII)")
        for finding in named:
            click.echo(f"  warning ({finding.rule}, before uploading to Bedrock): {finding.message}", err=True)
        for lossy in shown:
            lines = "; ".join(f"{loss['where']}: {loss['reason']}" for loss in lossy["lost"])
            click.echo(f"  example {lossy['example_id']}: {lines}", err=True)
        if result.lossy_count > len(shown):
            click.echo(f"  ... {result.lossy_count - len(shown)} more lossy conversions", err=True)

    emit(ctx, payload, human)


@command(datasets, "freeze")
@click.argument("name")
@click.argument("version")
@click.option("--split", type=click.Choice(SPLIT_CHOICES), default=None)
@click.option("--note", default="")
def freeze_cmd(ctx: click.Context, name: str, version: str, split: str | None, note: str) -> None:
    """Freeze a dataset (or one split) into an immutable named version."""
    from workbench.cli_progress import cli_progress
    from workbench.services.versions import freeze

    with cli_progress(ctx) as progress:
        frozen = freeze(store_of(ctx), name, version, split=split, note=note, progress=progress)
    emit(ctx, {"ok": True, "version": frozen}, lambda: click.echo(f"version {frozen.name}: {frozen.example_count} examples"))


@command(datasets, "versions")
@click.argument("name")
def versions_cmd(ctx: click.Context, name: str) -> None:
    """List a dataset's frozen versions."""
    from workbench.services.versions import list_versions

    found = list_versions(store_of(ctx), name)
    emit(ctx, {"ok": True, "versions": found}, lambda: [click.echo(f"{v.name}\t{v.example_count}\t{v.created_at}") for v in found])


@command(datasets, "diff")
@click.argument("name")
@click.argument("old")
@click.argument("new")
def diff_cmd(ctx: click.Context, name: str, old: str, new: str) -> None:
    """Show what changed between two versions."""
    from workbench.cli_progress import cli_progress
    from workbench.services.versions import diff

    with cli_progress(ctx) as progress:
        d = diff(store_of(ctx), name, old, new, progress=progress)
    emit(ctx, {"ok": True, **d.model_dump()}, lambda: click.echo(
        f"{old} -> {new}: {d.added_count} added, {d.removed_count} removed, {d.changed_count} edited, "
        f"{d.moved_count} moved split, {d.unchanged} unchanged"
    ))


@command(datasets, "pii")
@click.argument("name")
@click.option("--scrub", is_flag=True, help="Replace every finding with its placeholder ([EMAIL], [PHONE]...).")
def pii_cmd(ctx: click.Context, name: str, scrub: bool) -> None:
    """Report PII found in a dataset, and optionally scrub it."""
    from workbench.cli_progress import cli_progress
    from workbench.services.cleaning import pii_summary, scrub_dataset

    store = store_of(ctx)
    with cli_progress(ctx) as progress:
        scrubbed = scrub_dataset(store, name, progress=progress) if scrub else 0
        summary = pii_summary(store, name, progress=progress)
    emit(ctx, {"ok": True, "scrubbed": scrubbed, **summary.model_dump()}, lambda: click.echo(
        f"{summary.examples_with_pii} examples with PII: "
        + (", ".join(f"{k} {v}" for k, v in summary.by_kind.items()) or "none")
        + (f"; scrubbed {scrubbed}" if scrub else "")
    ))


@command(datasets, "dedup")
@click.argument("name")
@click.option("--threshold", type=float, default=0.8, show_default=True, help="Similarity above which examples are near-duplicates.")
@click.option("--resolve", is_flag=True, help="Delete all but one example of every group (undoable).")
def dedup_cmd(ctx: click.Context, name: str, threshold: float, resolve: bool) -> None:
    """Find exact and near-duplicate examples; optionally keep one of each group."""
    from workbench.cli_progress import cli_progress
    from workbench.services.duplicates import find_duplicates, resolve_duplicates

    store = store_of(ctx)
    with cli_progress(ctx) as progress:
        groups = find_duplicates(store, name, threshold=threshold, progress=progress)
        deleted = resolve_duplicates(store, name, groups, progress=progress) if resolve else 0
    emit(ctx, {"ok": True, "groups": groups, "deleted": deleted}, lambda: click.echo(
        f"{len(groups)} duplicate groups ({sum(len(g.example_ids) for g in groups)} examples)"
        + (f"; deleted {deleted}" if resolve else "")
    ))


@command(datasets, "leakage")
@click.argument("name")
@click.option("--threshold", type=float, default=0.8, show_default=True)
def leakage_cmd(ctx: click.Context, name: str, threshold: float) -> None:
    """Find examples that appear (nearly) verbatim in two different splits; exit 1 if any do."""
    from workbench.cli_progress import cli_progress
    from workbench.services.duplicates import find_leakage

    with cli_progress(ctx) as progress:
        pairs = find_leakage(store_of(ctx), name, threshold=threshold, progress=progress)
    emit(ctx, {"ok": not pairs, "pairs": pairs}, lambda: click.echo(f"{len(pairs)} pairs leak across splits"))
    if pairs:
        sys.exit(1)  # as `ok` says: a CI step reading the exit code and one reading the JSON agree


@command(datasets, "guardrails")
@click.argument("name")
def guardrails_cmd(ctx: click.Context, name: str) -> None:
    """Run every enabled guardrail rule over a dataset; exit 1 if any example is blocked."""
    from workbench.cli_progress import cli_progress
    from workbench.services.cleaning import run_guardrails
    from workbench.services.datasets import part_labels

    store = store_of(ctx)
    with cli_progress(ctx) as progress:
        report = run_guardrails(store, name, progress=progress)
    # The blocking matches of the first examples, each turn named as the Clean tab names it.
    shown = report.failing[:LISTED]
    blocks = [(ex.example_id, v) for ex in shown for v in ex.violations if v.action.value == "block"]
    labels = part_labels(store, [(example_id, v.where) for example_id, v in blocks])

    def human() -> None:
        click.echo(f"pass rate {report.pass_rate:.1%} over {report.checked} examples; {report.failing_count} blocked")
        # One line per example, rule and turn: a rule matching twice in one turn is one thing to fix.
        lines = dict.fromkeys(f"  example {example_id}: rule {_printable(v.rule_name)!r} in {label}"
                              for (example_id, v), label in zip(blocks, labels, strict=True))
        for line in lines:
            click.echo(line)
        if report.failing_count > LISTED:
            click.echo(f"  ... and {report.failing_count - LISTED:,} more blocked examples")

    emit(ctx, {"ok": report.pass_rate == 1.0, **report.model_dump(mode="json")}, human)
    if report.failing_count:
        sys.exit(1)


# ----------------------------------------------------------------------------------------- targets


@command(targets, "list")
def targets_list_cmd(ctx: click.Context) -> None:
    """List the fine-tuning targets: id, name, provider, record format and how many rules are checked."""
    from workbench.services.validating import target_summaries

    found = target_summaries()
    header = ("id", "label", "provider", "format", "rules")
    rows = [(t.id, t.label, t.provider.value, t.format, str(t.rules)) for t in found]

    def human() -> None:
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        click.echo("See one target's rules: workbench targets rules TARGET")

    emit(ctx, {"ok": True, "targets": found}, human)


@command(targets, "rules")
@click.argument("target", required=False)
@click.option("--markdown", is_flag=True, help="Print the rules as Markdown; without TARGET, every target (docs/validation-rules.md).")
def targets_rules_cmd(ctx: click.Context, target: str | None, markdown: bool) -> None:
    """List the rules `datasets validate` checks for TARGET: severity, origin, codes, checking function, source.

    TARGET may also be a rule id ('nova.reserved-tokens', that rule alone) or a rule-id prefix ('nova').
    """
    from workbench.errors import InvalidInput
    from workbench.services.validating import RULES_LEGEND, lookup_rules, rules_markdown

    if markdown:
        text = rules_markdown(target)
        emit(ctx, {"ok": True, "target": target, "markdown": text}, lambda: click.echo(text, nl=False))
        return
    if target is None:
        raise InvalidInput(f"name a target: workbench targets rules TARGET, one of {', '.join(TARGET_CHOICES)}; "
                           "or add --markdown for every target's rules")
    spec, only = lookup_rules(target)
    shown = [only] if only is not None else list(spec.rules)
    tally = Counter(rule.origin.value for rule in spec.rules)

    def human() -> None:
        if only is not None:
            click.echo(f"{only.id}: one of {spec.label}'s {len(spec.rules)} rules (--target {spec.id})")
        else:
            click.echo(f"{spec.label} (--target {spec.id}): {len(spec.rules)} rules ("
                       + ", ".join(f"{n} {origin}" for origin, n in tally.items()) + ")")
        for line in RULES_LEGEND:
            click.echo(textwrap.fill(line, width=100, subsequent_indent="  "))
        for rule in shown:
            click.echo("")
            _echo_rule(rule)
        if only is not None:
            click.echo(f"\nEvery rule of the target: workbench targets rules {spec.id}")

    emit(ctx, {"ok": True, "target": spec.id, "label": spec.label, "rules": shown}, human)


def _echo_rule(rule: Rule, indent: str = "") -> None:
    """Print one rule in full: its id, severity and origin, then what it requires, codes, check, source and note."""
    click.echo(f"{indent}{rule.id or '(no id)'}  {rule.severity.value}  {rule.origin.value}")
    _echo_field("requires", rule.summary, indent)
    _echo_field("codes", ", ".join(rule.codes), indent)
    _echo_field("checked by", rule.check or "-", indent)
    _echo_field("source", rule.source + (f" ({rule.anchor})" if rule.anchor else ""), indent)
    if rule.note:
        _echo_field("note", rule.note, indent)


def _echo_field(name: str, text: str, indent: str = "") -> None:
    """Print `name: text`, wrapped under its own indent so long notes stay readable; URLs are never broken."""
    click.echo(textwrap.fill(
        text, width=100, initial_indent=f"{indent}  {name + ':':12}", subsequent_indent=indent + " " * 14,
        break_long_words=False, break_on_hyphens=False,
    ))


# ------------------------------------------------------------------------------------------- rules


@command(rules, "list")
def rules_list_cmd(ctx: click.Context) -> None:
    """List guardrail rules."""
    from workbench.services.cleaning import list_rules

    found = list_rules(store_of(ctx))
    header = ("id", "name", "enabled", "action", "scope", "pattern")
    rows = [(str(r.id), _printable(r.name), "yes" if r.enabled else "no", r.action.value, r.scope.value,
             f"{r.kind.value} {r.pattern[:40]!r}") for r in found]

    def human() -> None:
        if not rows:
            click.echo("no rules; add one with `workbench rules add`")
            return
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
        for row in (header, *rows):
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])

    emit(ctx, {"ok": True, "rules": found}, human)


@command(rules, "add")
@click.argument("name")
@click.option("--regex", default=None, help="A regular expression to flag.")
@click.option("--words", default=None, help="Comma-separated words or phrases to flag.")
@click.option("--scope", type=click.Choice(["any", "system", "user", "assistant", "tool"]), default="any", show_default=True, help="Where the rule looks: the system prompt, one role's turns, or anywhere.")
@click.option("--action", type=click.Choice(["block", "warn"]), default="warn", show_default=True)
@click.option("--message", default="", help="What to tell the user when the rule fires.")
def rules_add_cmd(ctx: click.Context, name: str, regex: str | None, words: str | None, scope: str, action: str, message: str) -> None:
    """Add a guardrail rule (give exactly one of --regex or --words)."""
    from workbench.services.cleaning import add_rule

    rule = add_rule(store_of(ctx), name=name, regex=regex, words=words, scope=scope, action=action, message=message)
    emit(ctx, {"ok": True, "rule": rule}, lambda: click.echo(f"rule {rule.id} {rule.name!r} added"))


@command(rules, "delete")
@click.argument("rule_id", type=int)
@click.option("--yes", is_flag=True, help="Delete without asking (needed with --json or without a terminal).")
def rules_delete_cmd(ctx: click.Context, rule_id: int, yes: bool) -> None:
    """Delete a guardrail rule; rules are global, so this changes the checks of every dataset."""
    from workbench.errors import InvalidInput, NotFound
    from workbench.services.cleaning import delete_rule, list_rules
    from workbench.services.datasets import list_datasets

    store = store_of(ctx)
    if not yes:
        rule = next((r for r in list_rules(store) if r.id == rule_id), None)
        if rule is None:
            raise NotFound(f"no rule with id {rule_id}")
        count = len(list_datasets(store))
        what = (f"rule {rule_id} {_printable(rule.name)!r} applies to every dataset: deleting it changes the checks of "
                f"{count} dataset{'' if count == 1 else 's'}")
        if ctx.obj["json"] or not sys.stdin.isatty():
            raise InvalidInput(f"{what}; add --yes to confirm")
        if not click.confirm(f"{what[0].upper()}{what[1:]}. Delete it?", default=False):
            raise InvalidInput("nothing deleted")
    delete_rule(store, rule_id)
    emit(ctx, {"ok": True, "deleted": rule_id}, lambda: click.echo(f"rule {rule_id} deleted"))


# -------------------------------------------------------------------------------------------- demo


@command(demo, "load")
@click.option("--if-empty", is_flag=True, help="Do nothing when the store already holds datasets.")
@click.option("--history-rows", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              help="Generated production predictions to add: 90 days for the Monitoring, Costs and Experiments pages.")
@click.option("--no-history", is_flag=True, help="Add no generated predictions (same as --history-rows 0).")
def demo_load_cmd(ctx: click.Context, if_empty: bool, history_rows: int, no_history: bool) -> None:
    """Load the demo workspace: sample datasets, splits, guardrail rules and 90 days of generated traffic."""
    from workbench.cli_progress import cli_progress
    from workbench.services.demo import load_demo

    with cli_progress(ctx) as progress:
        loaded = load_demo(store_of(ctx), if_empty=if_empty, history=0 if no_history else history_rows, progress=progress)
    emit(ctx, {"ok": True, **loaded.model_dump()}, lambda: click.echo(
        "demo already loaded (store not empty)" if loaded.skipped else
        "loaded " + ", ".join(f"{k} ({v} examples)" for k, v in loaded.datasets.items())
        + (f", and a generated history of {loaded.jobs} demo jobs (`workbench jobs list`)" if loaded.jobs else "")
        + (f", and {loaded.predictions:,} demo predictions over 90 days" if loaded.predictions else "")
    ))

import workbench.cli_costs  # noqa: E402,F401  (register `costs` on the main group)
import workbench.cli_distill  # noqa: E402,F401  (register `distill` on the main group)
import workbench.cli_experiments  # noqa: E402,F401  (register `experiments` on the main group)
import workbench.cli_monitoring_drift  # noqa: E402,F401  (register `drift` and `alerts` on the main group)
import workbench.cli_users  # noqa: E402,F401  (register `users` and `audit` on the main group)
from workbench import cli_compare, cli_evaluate, cli_jobs, cli_monitoring, cli_tasks, cli_templates  # noqa: E402,F401  (register `evaluate`, `jobs`, `models`, `api`, `tokens`, `predictions`, `tasks` and `templates` on the main group)
