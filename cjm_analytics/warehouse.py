"""Opening the DuckDB warehouse file: one run at a time, readers waited for (a bounded time), UTC session, the
config's DuckDB settings, raw tables created once."""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics.config import DuckDBSettings
from cjm_analytics.errors import WarehouseBusyError, WarehouseLockedError
from cjm_analytics.sql_steps import quote_literal, run_sql

# How long opening the warehouse waits for another process to let go of it before giving up (docs/operations.md):
# a run's step waits for a reader (a notebook, `cjm report`), a reader waits for a run to finish.
WAIT_SECONDS = 300.0
# A run that finds the run lock taken tries again this long: a reader checking whether a run is on holds the lock
# for a moment (see _other_run), and must never make a starting run fail.
_LOCK_GRACE_SECONDS = 0.5
_LONGEST_PAUSE = 1.0  # between two tries to open the file; DuckDB lets go of it between a run's steps for an instant

_DUCKDB_HOLDER = re.compile(r"Conflicting lock is held in (.*) \(PID (\d+)\)")

# Called by `connect` with each connection it opens, after the config's settings, in order; what a hook returns is
# used in its place. A harness measuring the product adds to it instead of patching this module (benchmarks/
# profiling.py: DuckDB settings the config has no field for, a JSON profile per statement). Empty in the product.
ConnectHook = Callable[[duckdb.DuckDBPyConnection], duckdb.DuckDBPyConnection]
CONNECT_HOOKS: list[ConnectHook] = []


def apply_settings(con: duckdb.DuckDBPyConnection, settings: DuckDBSettings | None) -> None:
    """Give the connection's database the configured DuckDB settings (the others keep DuckDB's defaults).

    SET at run time rather than `duckdb.connect(config=...)`: a second connection to a database that is open in
    this process must use the first one's config, and the settings are the database's anyway.
    """
    for name, value in (settings.configured() if settings else {}).items():
        if name == "temp_directory" and _current(con, name) == value:
            continue  # DuckDB refuses to switch (even to the same folder) once it has spilled there
        con.execute(f"SET {name} = {quote_literal(str(value))}")


def _current(con: duckdb.DuckDBPyConnection, name: str) -> str:
    row = con.execute("SELECT current_setting($name)", {"name": name}).fetchone()
    return str(row[0]) if row else ""


_MEMORY_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """DuckDB's memory_limit in bytes (it says it as e.g. '572.2 MiB'); 0 if it says it otherwise."""
    amount, _, unit = _current(con, "memory_limit").partition(" ")
    try:
        return int(float(amount) * _MEMORY_UNITS.get(unit, 0))
    except ValueError:
        return 0


def lock_path(warehouse: Path) -> Path:
    """The run lock of a warehouse: `<warehouse>.lock` beside it."""
    return warehouse.with_name(warehouse.name + ".lock")


def _read_holder(fd: int) -> dict[str, Any]:
    """What the run holding the lock wrote into it; {} when the file is empty or not ours (disk full, a crash)."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _flock_pid(fd: int) -> int | None:
    """The process holding a flock on fd's file, from /proc/locks (Linux): names a holder whose file is empty."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with suppress(OSError):
        for line in Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode and fields[4].isdigit():
                return int(fields[4])  # waiters are listed with "->" and fields shifted: they never match
    return None


def _describe_run(holder: dict[str, Any]) -> str:
    if "run_id" not in holder:
        pid = holder.get("pid")
        return f"another cjm run (pid {pid if pid is not None else '?'}; its lock file names no run)"
    return (f"run {holder['run_id']} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"started {holder.get('started', '?')})")


def _locked_message(warehouse: Path, holder: dict[str, Any]) -> str:
    return f"warehouse {warehouse} is locked by {_describe_run(holder)}; wait for it to finish"


def _other_run(warehouse: Path) -> dict[str, Any] | None:
    """The run holding the warehouse's run lock, if another process holds it (what its file says about it)."""
    try:
        fd = os.open(lock_path(warehouse), os.O_RDONLY)
    except OSError:
        return None  # no lock file: no run (a run creates it before anything else)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            if "pid" not in holder:
                holder["pid"] = _flock_pid(fd)
            if holder["pid"] == os.getpid() and holder.get("host", socket.gethostname()) == socket.gethostname():
                return None  # this process's own run (a step opening the warehouse)
            return holder
        return None  # nobody held it; closing fd below lets go of the shared lock at once
    finally:
        os.close(fd)


def _command_line(pid: int) -> str | None:
    """A process's command line (Linux), shortened to fit in one line of a message."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    line = " ".join(raw.decode("utf-8", "replace").replace("\0", " ").split())  # a `python -c` script's newlines too
    return line if len(line) <= 120 else line[:119] + "…"


@dataclass(frozen=True)
class _Holder:
    """Who keeps the warehouse from opening: a cjm run (run is what its lock file says) or another process."""

    pid: int | None
    program: str | None = None
    run: dict[str, Any] | None = None

    def describe(self) -> str:
        if self.run is not None:
            return _describe_run(self.run)
        if self.pid is None:
            return "another process"
        return f"process {self.pid} ({_command_line(self.pid) or self.program or 'command unknown'})"

    def waiting(self, warehouse: Path, wait: float) -> str:
        if self.run is not None:
            return f"cjm: warehouse {warehouse} is being written by {self.describe()}; waiting up to {wait:g}s " \
                   f"for it to finish"
        return f"cjm: warehouse {warehouse} is open in {self.describe()}; waiting up to {wait:g}s for it to close"

    def gave_up(self, warehouse: Path, wait: float) -> Exception:
        if self.run is not None:
            return WarehouseLockedError(f"warehouse {warehouse} is still being written by {self.describe()} after "
                                        f"{wait:g}s; try again when it has finished")
        return WarehouseBusyError(f"warehouse {warehouse} is still open in {self.describe()} after {wait:g}s; "
                                  f"close that connection (a notebook, a dashboard, `cjm report`?) and run again")


def _holder_of(warehouse: Path, error: duckdb.IOException, read_only: bool) -> _Holder | None:
    """Who holds DuckDB's lock on the file, if that is the error; another run's step fails a writer at once."""
    message = str(error)
    if "Could not set lock" not in message and "Conflicting lock" not in message:
        return None
    found = _DUCKDB_HOLDER.search(message)
    pid = int(found.group(2)) if found else None
    run = _other_run(warehouse)
    if run is not None and run.get("pid") == pid:
        if not read_only:
            # Only a writer outside a run gets here (a run holds the run lock); waiting would interleave two runs.
            raise WarehouseLockedError(_locked_message(warehouse, run)) from None
        return _Holder(pid, run=run)
    return _Holder(pid, found.group(1) if found else None)


def connect(path: Path, read_only: bool = False, settings: DuckDBSettings | None = None, *,
            wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the config's DuckDB settings.

    A file held by another process is waited for, up to `wait` seconds (WAIT_SECONDS by default), saying once on
    stderr who holds it: a run's step waits for a reader to close; a reader waits for a run to finish (not only
    its step: a report never reads half a night). Still held after that: a WarehouseBusyError naming the process
    (exit 4), or a WarehouseLockedError naming the run (exit 3). A writer meeting another run's step fails at once.
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    wait = WAIT_SECONDS if wait is None else wait
    deadline = time.monotonic() + wait
    pause, told = 0.05, False
    while True:
        run = _other_run(path) if read_only else None
        holder = _Holder(run.get("pid"), run=run) if run is not None else None
        if holder is None:
            try:
                con = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as e:
                holder = _holder_of(path, e, read_only)
                if holder is None:
                    raise
        left = deadline - time.monotonic()
        if left <= 0:
            raise holder.gave_up(path, wait) from None
        if not told:
            print(holder.waiting(path, wait), file=sys.stderr, flush=True)
            told = True
        time.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE)
    # Timestamps are stored as UTC; a UTC session makes every cast and date() mean the same everywhere.
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB tracks a long statement's progress (cjm_analytics/progress.py reads it) but never prints its own
    # bar: stdout is the run's summary, and a nightly log is not a terminal.
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    try:
        apply_settings(con, settings)
        for hook in CONNECT_HOOKS:
            con = hook(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def open_warehouse(path: Path, settings: DuckDBSettings | None = None, *,
                   wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable connection with the raw- and core-layer tables present (waiting for a reader: see connect)."""
    con = connect(path, settings=settings, wait=wait)
    try:
        run_sql(con, "raw/schema")
        run_sql(con, "core/schema")
        yield con
    finally:
        con.close()


@contextmanager
def undone_after(undo: Callable[[], object]) -> Iterator[None]:
    """`undo` (a setting put back) after the block, whatever its outcome; when the block failed, a failure of the
    undo is dropped: after a failed statement the transaction is aborted and refuses it, and the block's own error
    (e.g. out of memory) is the one to show, not "Current transaction is aborted". The failed step's connection
    is rolled back and closed with it."""
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):
            undo()
        raise
    undo()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All of a step's writes, or none of them."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _take_lock(lock: Path, warehouse: Path) -> int:
    """An fd holding an exclusive flock on the lock file at `lock` (the file now at that path, not an old one)."""
    deadline = time.monotonic() + _LOCK_GRACE_SECONDS
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() < deadline:
                os.close(fd)
                time.sleep(0.05)
                continue
            holder = _read_holder(fd)
            if "pid" not in holder:
                holder["pid"] = _flock_pid(fd)
            os.close(fd)
            raise WarehouseLockedError(_locked_message(warehouse, holder)) from None
        except BaseException:
            os.close(fd)
            raise
        # A run that finished between our open and our flock has unlinked the file we hold: take the new one.
        try:
            here, there = os.fstat(fd), os.stat(lock)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def run_lock(warehouse: Path, run_id: str) -> Iterator[None]:
    """Hold `<warehouse>.lock` for a whole run: a second run fails at once, naming the holder.

    DuckDB's own file lock only lasts while a connection is open, and a run opens one per step. The lock is an
    OS lock (flock) on the file, held by an open descriptor: the kernel lets go of it when the process ends,
    however it ends, so what the file says (empty after a full disk, garbage, a pid that now belongs to another
    process after a container restart) never blocks a run; it only names the holder in messages.
    Taken once per run, in the process that runs the steps (their threads share the descriptor).
    """
    lock = lock_path(warehouse)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _take_lock(lock, warehouse)
    try:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id,
              "started": datetime.now(UTC).isoformat(timespec="seconds")}
        # Only for messages: a full disk leaving the file empty doesn't matter, the flock is the lock.
        with suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        yield
    finally:
        # Unlinked before it is let go of: a process that opened this file meanwhile sees it is gone (_take_lock).
        with suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)
