"""Progress on long runs (issue 15): per step, files and bytes read, DuckDB's progress, rate and time; live on a
terminal, log lines otherwise; nothing unless a command asks for it."""

from __future__ import annotations

import contextlib
import io
import re
import threading
import time
from pathlib import Path

import duckdb

from cjm_analytics import progress
from cjm_analytics.nightly import run_nightly
from tests.fixtures import PUBLISH_EVENTS, make_config, rows, write_csv


def test_a_run_reports_each_step_with_what_it_counted(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", PUBLISH_EVENTS)
    write_csv(tmp_path / "web" / "b.csv", PUBLISH_EVENTS.replace("\n    1,", "\n    9,"))
    config = make_config(tmp_path)
    log = io.StringIO()
    with progress.reporting(log, live=False, quiet_below=0):
        run_nightly(config)
    lines = log.getvalue().splitlines()
    assert [re.sub(r"done in [0-9.]+s.*", "done", line) for line in lines] == [
        f"progress: {step} done" for step in ("load_sources", "stitch_identities", "sessionize", "build_journeys",
                                         "aggregate", "check_health", "publish_reports", "publish_marts")]
    [(read,)] = rows(config, "SELECT sum(rows_read) FROM load_manifest")
    [(events,)] = rows(config, "SELECT count(*) FROM events")
    [(journeys,)] = rows(config, "SELECT count(*) FROM journeys")
    assert re.fullmatch(rf"progress: load_sources done in [0-9.]+s: {read:,} rows read \([0-9,]+/s\)", lines[0])
    assert re.search(rf": {events:,} events \(", lines[2]) and re.search(rf": {journeys:,} journeys \(", lines[3])
    # The library is silent when no command installed a reporter.
    assert isinstance(progress.current(), progress.Reporter) and type(progress.current()) is progress.Reporter


def test_a_long_step_is_reported_while_it_runs_with_files_and_duckdb_progress() -> None:
    log = io.StringIO()
    reporter = progress.LineReporter(log, every=0.05)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    seen: list[str] = []
    with reporter.step("load_sources", con):
        reporter.files(2, 3_000_000)
        reporter.file_read(1_000_000)
        done = threading.Event()

        def slow() -> None:
            # Interrupted below, once the statement's progress was seen.
            with contextlib.suppress(duckdb.InterruptException):
                con.execute("SELECT count(*) FROM range(2000000000) t(x) WHERE x % 7 = 1").fetchall()
            done.set()

        worker = threading.Thread(target=slow)
        worker.start()
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            seen = log.getvalue().splitlines()
            if any("statement" in line for line in seen):
                con.interrupt()
                break
            time.sleep(0.02)
        worker.join()
    assert seen and all(line.startswith("progress: load_sources: 1/2 files, 1.0 MB/3.0 MB (") for line in seen), seen
    assert any(re.search(r", statement \d+%, \d+s$", line) for line in seen), seen


def test_on_a_terminal_the_step_is_redrawn_and_each_finished_step_kept() -> None:
    out = io.StringIO()
    reporter = progress.LiveReporter(out)
    with reporter.step("sessionize"):
        time.sleep(0.3)
    reporter.finished("sessionize", 2.0, {"events_recomputed": 1000})
    assert "sessionize done in 2.0s: 1,000 events (500/s)" in out.getvalue()


def test_without_prefect_the_orchestrator_is_not_repeated() -> None:
    log = io.StringIO()
    reporter = progress.LineReporter(log, say_finished=False)
    reporter.finished("aggregate", 1.0, {})
    assert log.getvalue() == ""


def test_in_a_log_a_fast_step_says_nothing() -> None:
    """A log gets lines for what a user would wait for in silence: a step faster than LOG_EVERY_SECONDS has none (a
    short run's summary follows at once; `cjm run`'s one error line stays the only `cjm:` line)."""
    log = io.StringIO()
    reporter = progress.LineReporter(log)
    with reporter.step("aggregate"):
        pass
    reporter.finished("aggregate", 0.4, {})
    reporter.finished("sessionize", progress.LOG_EVERY_SECONDS + 1, {"events_recomputed": 6})
    assert log.getvalue().splitlines() == ["progress: sessionize done in 6.0s: 6 events (1/s)"]
