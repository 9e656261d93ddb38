"""Opening the DuckDB warehouse file: one writer at a time, UTC session, the config's DuckDB settings, raw tables
created once."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def run_lock(warehouse: Path, run_id: str) -> Iterator[None]:
    """Hold `<warehouse>.lock` for a whole run: a second run fails at once, naming the holder.

    DuckDB's own file lock only lasts while a connection is open, and a run opens one per step.
    A lock left by a process that no longer exists (a killed run) is taken over.
    """
    lock = warehouse.with_name(warehouse.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id,
          "started": datetime.now(UTC).isoformat(timespec="seconds")}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                holder = {}
            stale = holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) \
                and not _alive(holder["pid"])
            if stale:
                with suppress(FileNotFoundError):
                    lock.unlink()
                continue
            raise WarehouseLockedError(
                f"warehouse {warehouse} is locked by run {holder.get('run_id', '?')} "
                f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}); "
                f"wait for it to finish, or delete {lock} if that process is gone"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        break
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            lock.unlink()
