"""Progress and cancellation for actions that walk a whole dataset.

A service that walks a dataset takes a `Progress` and calls `stage` when it starts a pass and
`advance` as records go by. The caller decides what progress means: the CLI draws a line on a
terminal, a background task writes its row in the store for the app to poll, a test records the
calls. The same object is how a caller stops the work: `advance` raises `Cancelled` once the
caller's `cancelled` says so, at a point where the service can leave nothing half-written (a
service that writes does so in transactions it can roll back, or in steps that are each whole).

Reporting is throttled (every `every` seconds at most), so a service may call `advance` once per
record without paying for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from workbench.errors import WorkbenchError

T = TypeVar("T")


class Cancelled(WorkbenchError):
    """The caller asked the action to stop; whatever it had written is rolled back or whole."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class ProgressState:
    """Where an action stands: its current stage, how far through it, and a time-left estimate."""

    stage: str
    done: int
    total: int
    unit: str
    elapsed_s: float
    """Seconds since the stage started."""
    rate_s: float | None = None
    """Seconds over which `rate_done` records went by, counted from the stage's first record (None: use the whole stage)."""
    rate_done: int | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left in this stage at the rate so far; None until there is a rate to go by.

        The rate is taken from the first record on: a stage that warms up before its first record
        (loading a tokenizer, say) would otherwise extrapolate that wait over every record left
        (measured: "about 29 h left" for a 28 s run). At least a second of records is needed.
        """
        seconds, done = (self.elapsed_s, self.done) if self.rate_s is None else (self.rate_s, self.rate_done or 0)
        if self.total <= 0 or done <= 0 or seconds < 1.0:
            return None
        return max(0.0, seconds * (self.total - self.done) / done)

    def describe_counts(self) -> str:
        """The line without its time estimate: what changes when work is done, not as time passes."""
        return f"{self.stage}: {format_amount(self.done, self.total, self.unit)}"

    def describe(self) -> str:
        """One line for a person: `dedup: checking 120,000 of 1,000,000 examples (12%), about 42 s left`."""
        text = f"{self.stage}: {format_amount(self.done, self.total, self.unit)} ({self.fraction:.0%})"
        eta = self.eta_s
        if eta is not None:
            text += f", about {format_duration(eta)} left"
        return text


def format_amount(done: int, total: int, unit: str) -> str:
    """Say how far a stage got: `1,200 of 5,000 examples`; bytes (an import) as `12.5 of 340.0 MB`."""
    if unit == "bytes":
        return f"{done / 1e6:,.1f} of {total / 1e6:,.1f} MB"
    return f"{done:,} of {total:,} {unit}"


def format_duration(seconds: float) -> str:
    """Say a duration the way a person would: `42 s`, `3 min 5 s`, `1 h 20 min`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class Progress:
    """Counts records through the stages of one action; reports now and then and stops on request."""

    def __init__(
        self,
        report: Callable[[ProgressState], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        *,
        every: float = 0.25,
    ) -> None:
        self._report = report
        self._cancelled = cancelled
        self._every = every
        self._stage = ""
        self._total = 0
        self._unit = "examples"
        self._done = 0
        self._started = time.monotonic()
        self._next = 0.0
        self._reported = 0
        self._first: tuple[float, int] | None = None

    def stage(self, name: str, total: int, unit: str = "examples") -> None:
        """Start a pass of `total` records (0 when unknown), reported at once, after the last count of the pass before."""
        if self._stage and self._done != self._reported:
            self._tick(force=True, check=False)
        self._stage, self._total, self._unit, self._done = name, max(0, int(total)), unit, 0
        self._started = time.monotonic()
        self._first = None
        self._next = 0.0
        self._tick(force=True)

    def advance(self, n: int = 1) -> None:
        """Count `n` more records done; may report, and raises `Cancelled` when the caller asked to stop."""
        if self._first is None:
            self._first = (time.monotonic(), self._done)
        self._done += n
        if time.monotonic() >= self._next:
            self._tick()

    def check(self) -> None:
        """Raise `Cancelled` now if the caller asked to stop (for a point where stopping is safe)."""
        if self._cancelled is not None and self._cancelled():
            raise Cancelled()

    def finish(self) -> None:
        """Report the current stage as complete."""
        self._done = max(self._done, self._total)
        self._tick(force=True, check=False)

    def iterate(self, items: Iterable[T], per_item: int = 1) -> Iterator[T]:
        """Yield `items`, counting `per_item` records for each."""
        for item in items:
            yield item
            self.advance(per_item)

    @property
    def state(self) -> ProgressState:
        now = time.monotonic()
        if self._first is None:
            return ProgressState(self._stage, self._done, self._total, self._unit, now - self._started, 0.0, 0)
        at, before = self._first
        return ProgressState(self._stage, self._done, self._total, self._unit, now - self._started, now - at, self._done - before)

    def _tick(self, *, force: bool = False, check: bool = True) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self._every
        self._reported = self._done
        if self._report is not None:
            self._report(self.state)
        if check:
            self.check()


def no_progress() -> Progress:
    """A Progress that reports nowhere and is never cancelled (the default for every service)."""
    return Progress()
