"""Opening the DuckDB warehouse file: one writer at a time, UTC session, the config's DuckDB settings, raw tables
created once."""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics.config import DuckDBSettings
from cjm_analytics.errors import WarehouseLockedError
from cjm_analytics.sql_steps import quote_literal, run_sql

_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


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


def connect(path: Path, read_only: bool = False, settings: DuckDBSettings | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the config's DuckDB settings; a file held by another process is a
    WarehouseLockedError naming the holder."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as e:
        if "lock" not in str(e).lower():
            raise
        pid = _LOCK_HOLDER.search(str(e))
        holder = f"process {pid.group(1)}" if pid else "another process"
        raise WarehouseLockedError(
            f"warehouse {path} is in use by {holder} (another cjm run?); try again when it has finished"
        ) from None
    # Timestamps are stored as UTC; a UTC session makes every cast and date() mean the same everywhere.
    con.execute("SET TimeZone = 'UTC'")
    try:
        apply_settings(con, settings)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def open_warehouse(path: Path, settings: DuckDBSettings | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable connection with the raw- and core-layer tables present."""
    con = connect(path, settings=settings)
    try:
        run_sql(con, "raw/schema")
        run_sql(con, "core/schema")
        yield con
    finally:
        con.close()


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
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
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
