"""The run lock and readers: what a lock file says never blocks a run, only a live run does; a reader holding the
warehouse is waited for (a bounded time, naming it) instead of failing the night; real processes, no mocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from cjm_analytics import warehouse
from cjm_analytics.cli import main
from cjm_analytics.errors import WarehouseBusyError, WarehouseLockedError
from cjm_analytics.warehouse import connect, lock_path, open_warehouse, run_lock
from tests.fixtures import STAGES, WEB_COLUMNS, make_config, run_steps, write_csv

# Opens the warehouse (read-only or not), says so, closes it on the first line of stdin, then stays alive.
READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro')
print('open', flush=True)
sys.stdin.readline()
con.close()
print('closed', flush=True)
sys.stdin.readline()
"""
# A run in the middle of a step: the run lock and a writable connection, both let go of on the first line of stdin.
RUN_IN_A_STEP = """
import sys
from pathlib import Path
from cjm_analytics.warehouse import connect, run_lock
w = Path(sys.argv[1])
with run_lock(w, 'writer'):
    con = connect(w, wait=0)
    print('held', flush=True)
    sys.stdin.readline()
    con.close()
"""
EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    e1,a1,u1,landing,2026-11-01 10:00:00,ads
    e2,a1,u1,add_to_cart,2026-11-01 10:03:00,ads
    e3,a1,u1,order,2026-11-01 10:05:00,ads
"""


class Process:
    """A real second process running a script; it does its next thing on `next()`."""

    def __init__(self, script: str, *args: str) -> None:
        self.popen = subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        self.pid = self.popen.pid

    def said(self) -> str:
        assert self.popen.stdout is not None
        return self.popen.stdout.readline().strip()

    def next(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write("\n")
        self.popen.stdin.flush()

    def later(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.next)
        timer.start()
        return timer

    def stop(self) -> None:
        self.popen.kill()
        self.popen.wait()


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    """An existing warehouse file (a reader can only open one that exists)."""
    path = tmp_path / "warehouse" / "cjm.duckdb"
    path.parent.mkdir()
    duckdb.connect(str(path)).close()
    return path


@pytest.fixture
def reader(wh: Path) -> Iterator[Process]:
    """A notebook holding the warehouse open read-only until told to close it."""
    p = Process(READER, str(wh), "ro")
    try:
        assert p.said() == "open"
        yield p
    finally:
        p.stop()


def _holder(lock: Path) -> dict[str, object]:
    result = json.loads(lock.read_text(encoding="utf-8"))
    assert isinstance(result, dict)
    return result


# --- The run lock: only a live holder blocks --------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\0\0\0\0", b'{"pid": 12', b"[1, 2]", b"not json at all"],
                         ids=["empty", "nul", "cut-json", "list", "garbage"])
def test_an_empty_or_corrupt_lock_file_does_not_block_a_run(tmp_path: Path, content: bytes) -> None:
    wh = tmp_path / "cjm.duckdb"
    lock_path(wh).write_bytes(content)  # disk full while it was written, or a crash
    with run_lock(wh, "tonight"):
        assert _holder(lock_path(wh))["run_id"] == "tonight"
    assert not lock_path(wh).exists()


def test_a_lock_naming_a_reused_pid_does_not_block_a_run(tmp_path: Path) -> None:
    # After a container restart the dead run's pid belongs to another, unrelated process.
    other = subprocess.Popen(["sleep", "60"])
    try:
        wh = tmp_path / "cjm.duckdb"
        lock_path(wh).write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "run_id": "dead",
                                             "started": "2026-11-01T02:00:00+00:00"}), encoding="utf-8")
        with run_lock(wh, "tonight"):
            assert _holder(lock_path(wh)) | {"started": "-"} == {
                "pid": os.getpid(), "host": socket.gethostname(), "run_id": "tonight", "started": "-"}
    finally:
        other.kill()
        other.wait()


def test_a_live_holder_with_an_empty_lock_file_is_named_by_its_pid(tmp_path: Path) -> None:
    wh = tmp_path / "cjm.duckdb"
    holder = Process("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
                     "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.readline()",
                     str(lock_path(wh)))
    try:
        assert holder.said() == "held"
        with pytest.raises(WarehouseLockedError) as e, run_lock(wh, "tonight"):
            pass
        assert str(e.value) == (f"warehouse {wh} is locked by another cjm run (pid {holder.pid}; its lock file "
                                f"names no run); wait for it to finish")
    finally:
        holder.stop()
    with run_lock(wh, "tonight"):  # the kernel let go of the killed holder's lock
        pass


def _project(root: Path) -> Path:
    write_csv(root / "web" / "events.csv", EVENTS)
    path = root / "cjm.yaml"
    path.write_text(yaml.safe_dump({
        "warehouse": "warehouse/cjm.duckdb", "reports": "reports", "marts": "marts",
        "sources": [{"name": "web", "kind": "clickstream", "path": "web/*.csv", "columns": WEB_COLUMNS}],
        "stages": STAGES, "goal": "buy"}), encoding="utf-8")
    return path


def test_two_real_runs_exclude_each_other_and_a_run_waits_for_a_reader(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path)
    assert main(["run", "--config", str(config), "--no-prefect"]) == 0
    wh = tmp_path / "warehouse" / "cjm.duckdb"
    notebook = Process(READER, str(wh), "ro")
    first = None
    try:
        assert notebook.said() == "open"
        # The first run's first step meets the notebook: it waits, holding the run lock, and says who it waits for.
        first = subprocess.Popen([sys.executable, "-m", "cjm_analytics.cli", "run", "--config", str(config),
                                  "--no-prefect"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert first.stderr is not None
        assert first.stderr.readline().startswith(
            f"cjm: warehouse {wh} is open in process {notebook.pid} ({sys.executable} -c ")
        capsys.readouterr()
        assert main(["run", "--config", str(config), "--no-prefect"]) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"cjm: error: warehouse {wh} is locked by run ")
        assert f"(pid {first.pid} on {socket.gethostname()}, started " in err and err.count("\n") == 1
        notebook.next()  # the notebook closes its connection: the first run goes on
        out, rest = first.communicate(timeout=120)
        assert first.returncode == 0, rest
        assert out.startswith("cjm run ")
    finally:
        notebook.stop()
        if first is not None and first.poll() is None:
            first.kill()
            first.wait()


# --- A run's step and a reader --------------------------------------------------------------------------------

def test_a_step_waits_for_a_reader_and_goes_on_when_it_closes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources")
    notebook = Process(READER, str(cfg.warehouse), "ro")
    try:
        assert notebook.said() == "open"
        monkeypatch.setattr(warehouse, "WAIT_SECONDS", 30.0)
        capfd.readouterr()
        timer = notebook.later(1.0)
        started = time.monotonic()
        run_steps(cfg)  # every step through stitch_identities .. aggregate, the first one waiting
        timer.join()
        assert time.monotonic() - started >= 1.0
        err = capfd.readouterr().err.splitlines()
        assert len(err) == 1  # said once, not at every try
        # The notebook's command line, on one line: its script's newlines are spaces.
        assert err[0].startswith(f"cjm: warehouse {cfg.warehouse} is open in process {notebook.pid} "
                                 f"({sys.executable} -c import sys, duckdb con = duckdb.connect(")
        assert err[0].endswith("; waiting up to 30s for it to close")
        assert notebook.said() == "closed"
    finally:
        notebook.stop()
    con = connect(cfg.warehouse, read_only=True)
    assert con.execute("SELECT count(*) FROM journeys").fetchone() == (1,)
    con.close()


def test_a_reader_that_never_closes_is_one_line_naming_it_after_the_wait(wh: Path, reader: Process) -> None:
    started = time.monotonic()
    with pytest.raises(WarehouseBusyError) as e:
        connect(wh, wait=1.5)
    assert 1.5 <= time.monotonic() - started < 5
    message = str(e.value)
    assert message.startswith(f"warehouse {wh} is still open in process {reader.pid} ({sys.executable} -c ")
    assert message.endswith(" after 1.5s; close that connection (a notebook, a dashboard, `cjm report`?) "
                            "and run again")
    assert "\n" not in message and e.value.exit_code == 4


def test_cjm_run_blocked_by_a_reader_exits_4_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path)
    assert main(["run", "--config", str(config), "--no-prefect"]) == 0
    wh = tmp_path / "warehouse" / "cjm.duckdb"
    notebook = Process(READER, str(wh), "rw")  # a notebook that opened it writable: a reader all the same
    try:
        assert notebook.said() == "open"
        monkeypatch.setattr(warehouse, "WAIT_SECONDS", 1.0)
        capsys.readouterr()
        assert main(["run", "--config", str(config), "--no-prefect"]) == 4
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and "Traceback" not in "".join(err)
        assert err[0].startswith(f"cjm: warehouse {wh} is open in process {notebook.pid} (")
        assert err[1].startswith(f"cjm: error: warehouse {wh} is still open in process {notebook.pid} (")
    finally:
        notebook.stop()
    assert not lock_path(wh).exists()  # the failed run let go of its lock: the next night runs
    assert main(["run", "--config", str(config), "--no-prefect"]) == 0


def test_wait_zero_fails_at_once(wh: Path, reader: Process) -> None:
    started = time.monotonic()
    with pytest.raises(WarehouseBusyError, match=f"still open in process {reader.pid} "), \
            open_warehouse(wh, wait=0):
        pass
    assert time.monotonic() - started < 1


# --- A reader and a run ---------------------------------------------------------------------------------------

def test_a_reader_waits_for_the_run_to_finish(wh: Path, capfd: pytest.CaptureFixture[str]) -> None:
    run = Process(RUN_IN_A_STEP, str(wh))
    try:
        assert run.said() == "held"
        capfd.readouterr()
        timer = run.later(1.0)
        started = time.monotonic()
        con = connect(wh, read_only=True, wait=30)
        timer.join()
        con.close()
        assert time.monotonic() - started >= 1.0
        err = capfd.readouterr().err.splitlines()
        assert len(err) == 1
        assert err[0].startswith(f"cjm: warehouse {wh} is being written by run writer (pid {run.pid} on ")
        assert err[0].endswith("; waiting up to 30s for it to finish")
    finally:
        run.stop()


def test_a_reader_gives_up_on_a_long_run_with_exit_3_naming_it(wh: Path) -> None:
    run = Process(RUN_IN_A_STEP, str(wh))
    try:
        assert run.said() == "held"
        with pytest.raises(WarehouseLockedError) as e:
            connect(wh, read_only=True, wait=1)
        assert str(e.value).startswith(f"warehouse {wh} is still being written by run writer (pid {run.pid} on ")
        assert str(e.value).endswith(" after 1s; try again when it has finished")
        assert e.value.exit_code == 3
    finally:
        run.stop()


def test_a_writer_outside_a_run_meeting_a_runs_step_fails_at_once(wh: Path) -> None:
    run = Process(RUN_IN_A_STEP, str(wh))
    try:
        assert run.said() == "held"
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError, match=f"is locked by run writer \\(pid {run.pid} on "):
            connect(wh, wait=30)
        assert time.monotonic() - started < 5
    finally:
        run.stop()
