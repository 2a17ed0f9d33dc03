"""Progress of a dataset-wide action on the terminal: one line on stderr, redrawn in place.

Shown when stderr is a terminal and the command is not under `--json` (a script reading JSON wants
exactly one object and nothing else). `WORKBENCH_PROGRESS=1` forces it on where stderr is not a
terminal (a log file, a test), one line per report instead of redrawing; `WORKBENCH_PROGRESS=0`
turns it off.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click

from workbench.domain.progress import Progress, ProgressState


def progress_enabled(as_json: bool, stream: TextIO | None = None) -> bool:
    """Say whether a command should draw progress: never under --json; else on a terminal or when forced."""
    if as_json:
        return False
    forced = os.environ.get("WORKBENCH_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class TerminalProgress:
    """Draws `ProgressState` lines on a stream: in place on a terminal, one per line elsewhere."""

    def __init__(self, stream: TextIO, *, in_place: bool) -> None:
        self.stream = stream
        self.in_place = in_place
        self._width = 0

    last = ""
    """The counts of the last line drawn (`ProgressState.describe_counts`)."""

    def __call__(self, state: ProgressState) -> None:
        self.last = state.describe_counts()
        line = state.describe()
        try:
            if self.in_place:
                columns = shutil.get_terminal_size((100, 20)).columns - 1
                line = line[:columns]
                self.stream.write("\r" + line.ljust(self._width))
                self._width = len(line)
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr must never fail the action it reports on

    def clear(self) -> None:
        if self.in_place and self._width:
            try:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._width = 0


@contextmanager
def cli_progress(ctx: click.Context) -> Iterator[Progress]:
    """Yield the Progress a CLI command hands its service; the line is cleared when the command ends."""
    as_json = bool((ctx.find_root().obj or {}).get("json")) or bool((ctx.obj or {}).get("json"))
    if not progress_enabled(as_json):
        yield Progress()
        return
    stream = sys.stderr
    try:
        in_place = stream.isatty()
    except (AttributeError, ValueError):
        in_place = False
    drawer = TerminalProgress(stream, in_place=in_place)
    progress = Progress(drawer, every=0.2 if in_place else 1.0)
    try:
        yield progress
        if not in_place and drawer.last != progress.state.describe_counts():
            drawer(progress.state)  # a log ends on the last count, not on the last throttled report
    finally:
        drawer.clear()
