"""Progress of a long run (`cjm run`): per step, the files and bytes read, DuckDB's own progress through the step's
statements, the rate and the time; live on a terminal (rich), a log line every few seconds otherwise.

The steps report to the process's one reporter (`current()`), which does nothing unless the command installed
one (`reporting`): the library's steps stay silent in tests, benchmarks and notebooks. Progress goes to stderr;
the run's summary stays alone on stdout.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TextIO

import duckdb

# A plain log gets a line this often while a step runs (a terminal is redrawn several times a second).
LOG_EVERY_SECONDS = 5.0
_TICK_SECONDS = 0.25


@dataclass
class _Step:
    name: str
    started: float
    con: duckdb.DuckDBPyConnection | None = None
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0

    def line(self) -> str:
        """What the step has done so far, e.g. 'load_sources: 2/5 files, 1.1/2.3 GB (48 MB/s), 23s'."""
        elapsed = time.monotonic() - self.started
        parts = []
        if self.files_total:
            parts.append(f"{self.files_done}/{self.files_total} files")
            if self.bytes_total:
                rate = f" ({_size(self.bytes_done / elapsed)}/s)" if elapsed > 0 and self.bytes_done else ""
                parts.append(f"{_size(self.bytes_done)}/{_size(self.bytes_total)}{rate}")
        done = self.query_percent()
        if done is not None:
            parts.append(f"statement {done:.0f}%")
        parts.append(f"{elapsed:.0f}s")
        return f"{self.name}: {', '.join(parts)}"

    def query_percent(self) -> float | None:
        """DuckDB's progress through the statement running on the step's connection (None when it has none)."""
        if self.con is None:
            return None
        try:
            done = float(self.con.query_progress())
        except duckdb.Error:  # the connection is closing, or busy in a way that cannot say
            return None
        return done if 0 <= done <= 100 else None


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def finished_line(step: str, seconds: float, counts: dict[str, Any]) -> str:
    """One line for a finished step: its time, and what it counted with its rate (rows read, events, journeys)."""
    n, unit = _counted(counts)
    rate = f" ({n / seconds:,.0f}/s)" if n and seconds > 0 else ""
    return f"{step} done in {seconds:.1f}s" + (f": {n:,} {unit}{rate}" if n else "")


def _counted(counts: dict[str, Any]) -> tuple[int, str]:
    files = counts.get("files")
    if isinstance(files, list):
        return sum(int(f.get("rows_read", 0)) for f in files if isinstance(f, dict)), "rows read"
    for key, unit in (("events_recomputed", "events"), ("journeys", "journeys")):
        if isinstance(counts.get(key), int):
            return int(counts[key]), unit
    return 0, ""


class Reporter:
    """Does nothing: what the library reports to when no command is watching."""

    @contextmanager
    def step(self, name: str, con: duckdb.DuckDBPyConnection | None = None) -> Iterator[None]:
        yield

    def files(self, count: int, size: int) -> None:
        """A source's files to read in this step (called once per source)."""

    def file_read(self, size: int) -> None:
        """One more file read."""

    def finished(self, step: str, seconds: float, counts: dict[str, Any]) -> None:
        """A step finished, with its counts."""


class LineReporter(Reporter):
    """Progress as log lines on a stream: a line every LOG_EVERY_SECONDS while a step runs, one when it ends."""

    def __init__(self, stream: TextIO, every: float = LOG_EVERY_SECONDS, say_finished: bool = True,
                 quiet_below: float = LOG_EVERY_SECONDS) -> None:
        # quiet_below: a step faster than this gets no line (a log is for what a user would otherwise wait for
        # in silence; a short run's summary follows on stdout at once).
        self.stream, self.every, self.say_finished, self.quiet_below = stream, every, say_finished, quiet_below
        self._step: _Step | None = None
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with suppress(OSError, ValueError):  # a closed or full log is not the run's failure
            self.stream.write(f"progress: {text}\n")
            self.stream.flush()

    @contextmanager
    def step(self, name: str, con: duckdb.DuckDBPyConnection | None = None) -> Iterator[None]:
        step = _Step(name, time.monotonic(), con)
        stop = threading.Event()
        with self._lock:
            self._step = step
        ticker = threading.Thread(target=self._tick, args=(step, stop), name="cjm-progress", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
            with self._lock:
                self._step = None

    def _tick(self, step: _Step, stop: threading.Event) -> None:
        while not stop.wait(self.every):
            self._show(step)

    def _show(self, step: _Step) -> None:
        self._write(step.line())

    def files(self, count: int, size: int) -> None:
        with self._lock:
            if self._step is not None:
                self._step.files_total += count
                self._step.bytes_total += size

    def file_read(self, size: int) -> None:
        with self._lock:
            if self._step is not None:
                self._step.files_done += 1
                self._step.bytes_done += size

    def finished(self, step: str, seconds: float, counts: dict[str, Any]) -> None:
        if self.say_finished and seconds >= self.quiet_below:
            self._write(finished_line(step, seconds, counts))


class LiveReporter(LineReporter):
    """On a terminal: the running step redrawn in place (rich), each finished step kept as a line."""

    def __init__(self, stream: TextIO, say_finished: bool = True) -> None:
        super().__init__(stream, every=_TICK_SECONDS, say_finished=say_finished, quiet_below=0)
        from rich.console import Console
        from rich.status import Status

        self._console = Console(file=stream, highlight=False, soft_wrap=True)
        self._status: Status | None = None
        self._status_class = Status

    @contextmanager
    def step(self, name: str, con: duckdb.DuckDBPyConnection | None = None) -> Iterator[None]:
        status = self._status_class(name, console=self._console, spinner="dots")
        status.start()
        self._status = status
        try:
            with super().step(name, con):
                yield
        finally:
            status.stop()
            self._status = None

    def _show(self, step: _Step) -> None:
        if self._status is not None:
            self._status.update(step.line())

    def _write(self, text: str) -> None:
        with suppress(OSError, ValueError):
            self._console.print(text, markup=False)


_current: Reporter = Reporter()


def current() -> Reporter:
    """The reporter the run's steps report to (one per process: a run is one per warehouse and process)."""
    return _current


@contextmanager
def reporting(stream: TextIO | None = None, live: bool | None = None, say_finished: bool = True,
              quiet_below: float = LOG_EVERY_SECONDS) -> Iterator[Reporter]:
    """Install a reporter for the duration of a command: live when the stream is a terminal. say_finished=False
    leaves the line for a finished step to the orchestrator, which logs one itself."""
    global _current
    out = stream or sys.stderr
    is_terminal = live if live is not None else (hasattr(out, "isatty") and out.isatty())
    reporter: Reporter = (LiveReporter(out, say_finished) if is_terminal
                          else LineReporter(out, say_finished=say_finished, quiet_below=quiet_below))
    before, _current = _current, reporter
    try:
        yield reporter
    finally:
        _current = before
