"""The run lock: what a lock file says never blocks a run, only a live run does; real processes, no mocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cjm_analytics.errors import WarehouseLockedError
from cjm_analytics.warehouse import lock_path, run_lock


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

    def stop(self) -> None:
        self.popen.kill()
        self.popen.wait()


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
