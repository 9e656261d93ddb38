"""Every failure a user can meet is one line and an exit code, never a traceback (issue 10, item 11).

Resource faults are made real, also as root (as CI runs): a folder mounted read-only or too small (tmpfs, in a
mount namespace of the test's own, so nothing outside sees it), a file where a folder should be, DuckDB out of
memory. Each runs the installed command without Prefect and through Prefect; a fault met inside a Prefect task
must come out the same as without Prefect.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cjm_analytics.cli import main
from cjm_analytics.errors import ResourceError, as_user_error
from tests.test_orchestrator import CJM, CONFIG, user_environment, write_night

WITH_PREFECT = pytest.param([], id="prefect", marks=pytest.mark.flow)
WITHOUT_PREFECT = pytest.param(["--no-prefect"], id="no-prefect")


def project(tmp_path: Path, warehouse: str = "warehouse/cjm.duckdb", duckdb_settings: str = "") -> Path:
    root = tmp_path / "project"
    write_night(root, 0, customers=30, seed=5)
    config = CONFIG.replace("warehouse: warehouse/cjm.duckdb", f"warehouse: {warehouse}")
    (root / "cjm.yaml").write_text(config + (f"duckdb: {{{duckdb_settings}}}\n" if duckdb_settings else ""))
    (tmp_path / "home").mkdir(exist_ok=True)
    return root


def run(tmp_path: Path, root: Path, *args: str, env: dict[str, str] | None = None,
        mount: tuple[Path, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`cjm run` as a user starts it; with `mount`, (folder, tmpfs options) is mounted first, for it alone."""
    command = [*CJM, "run", *args, "--config", str(root / "cjm.yaml")]
    if mount is not None:
        folder, options = mount
        folder.mkdir(parents=True, exist_ok=True)
        command = [*NAMESPACE, "sh", "-c", 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"', "sh",
                   options, str(folder), *command]
    return subprocess.run(command, env=env or user_environment(tmp_path / "home"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)


def one_error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The run failed with `code`, said so in exactly one `cjm:` line, and printed no traceback."""
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == code, output
    lines = [line for line in done.stderr.splitlines() if line.startswith("cjm: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def _namespace() -> list[str]:
    """A command prefix giving the command a mount namespace of its own in which it may mount a tmpfs."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return []
    for prefix in (["unshare", "-rm"], ["unshare", "-m"]):  # a user namespace where allowed; root needs none
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=1M tmpfs /mnt"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return []


NAMESPACE = _namespace()
needs_tmpfs = pytest.mark.skipif(not NAMESPACE, reason="cannot mount a tmpfs in a private mount namespace here "
                                                       "(needs util-linux's unshare and user namespaces, or root)")


@pytest.mark.parametrize("prefect", [WITHOUT_PREFECT, WITH_PREFECT])
def test_a_file_where_the_warehouse_folder_should_be(tmp_path: Path, prefect: list[str]) -> None:
    root = project(tmp_path, warehouse="in-the-way/cjm.duckdb")
    (root / "in-the-way").write_text("a file, not a folder\n")
    line = one_error_line(run(tmp_path, root, *prefect), 6)
    assert line.startswith(f"cjm: error: {root / 'in-the-way'}"), line
    assert "check the paths in the config" in line
    assert (root / "in-the-way").read_text() == "a file, not a folder\n"


@needs_tmpfs
@pytest.mark.parametrize("prefect", [WITHOUT_PREFECT, WITH_PREFECT])
def test_a_read_only_warehouse_folder(tmp_path: Path, prefect: list[str]) -> None:
    root = project(tmp_path)
    line = one_error_line(run(tmp_path, root, *prefect, mount=(root / "warehouse", "ro")), 6)
    assert f"cjm: error: {root / 'warehouse'}/cjm.duckdb" in line and "Read-only file system" in line, line
    assert "point the config's folders at a writable disk" in line


@needs_tmpfs
@pytest.mark.parametrize("prefect", [WITHOUT_PREFECT, WITH_PREFECT])
def test_a_full_disk_under_the_warehouse(tmp_path: Path, prefect: list[str]) -> None:
    """3 MB: too small for the warehouse (and, through Prefect, for its temporary server's database)."""
    root = project(tmp_path)
    line = one_error_line(run(tmp_path, root, *prefect, mount=(root / "warehouse", "size=3M")), 6)
    assert "No space left on device" in line or "no space left on device" in line, line
    assert str(root / "warehouse") in line
    assert "free space on that disk" in line


@pytest.fixture
def harness_api(prefect_harness: None) -> Iterator[str]:
    """The URL of the suite's Prefect server, for a `cjm run` in a subprocess: Prefect runs the steps, but its
    database is not on the disk the test fills."""
    from prefect.settings import PREFECT_API_URL

    yield str(PREFECT_API_URL.value())


@needs_tmpfs
@pytest.mark.flow
def test_a_full_disk_met_inside_a_prefect_task(tmp_path: Path, harness_api: str) -> None:
    root = project(tmp_path)
    env = {**user_environment(tmp_path / "home"), "PREFECT_API_URL": harness_api}
    done = run(tmp_path, root, env=env, mount=(root / "warehouse", "size=3M"))
    line = one_error_line(done, 6)
    assert line.startswith("cjm: error: DuckDB: ") and "No space left on device" in line, line
    assert "Task run 'load_sources" in done.stderr  # it was the task that failed...
    assert "Retry" not in done.stderr  # ...and a full disk is not retried


def big_project(tmp_path: Path, events: int = 400_000) -> Path:
    """`events` events of events/10 customers, loaded and built without limits."""
    root = project(tmp_path)
    for night in (root / "web").glob("*.csv"):
        night.unlink()
    duckdb.sql(f"""
        COPY (SELECT 'e' || i AS event_id, 'u' || (i % {events // 10}) AS user_id, 'a' || (i % {events // 8})
                     AS anonymous_id, ['landing', 'product_view', 'add_to_cart', 'order'][1 + (hash(i) % 4)::INT]
                     AS event, 1700000000 + (hash(i * 7) % 30000000)::BIGINT AS ts, 'ads' AS channel
              FROM range({events}) t(i))
        TO '{root / "web" / "events.csv"}' (HEADER)""")
    assert main(["run", "--no-prefect", "--config", str(root / "cjm.yaml")]) == 0
    return root


@pytest.mark.slow
@pytest.mark.parametrize("prefect", [WITHOUT_PREFECT, WITH_PREFECT])
def test_duckdb_out_of_memory(tmp_path: Path, prefect: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A full refresh within 64 MB and no room to spill: DuckDB runs out of memory in a step."""
    root = big_project(tmp_path)
    capsys.readouterr()
    config = root / "cjm.yaml"
    config.write_text(config.read_text() + "duckdb: {memory_limit: 64MB, max_temp_directory_size: 1KB}\n")
    before = duckdb.connect(str(root / "warehouse" / "cjm.duckdb"), read_only=True)
    try:
        sessions = before.execute("SELECT count(*) FROM sessions").fetchone()
    finally:
        before.close()
    line = one_error_line(run(tmp_path, root, *prefect, "--full-refresh"), 6)
    assert line.startswith("cjm: error: out of memory: Out of Memory Error"), line
    assert "max_temp_directory_size" in line
    after = duckdb.connect(str(root / "warehouse" / "cjm.duckdb"), read_only=True)
    try:  # the step that failed committed nothing
        assert after.execute("SELECT count(*) FROM sessions").fetchone() == sessions
    finally:
        after.close()


def test_an_unexpected_error_is_one_line_with_its_details_in_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import cjm_analytics.nightly

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(cjm_analytics.nightly, "run_nightly", broken)
    root = project(tmp_path)
    assert main(["run", "--no-prefect", "--config", str(root / "cjm.yaml")]) == 1
    log = root / "warehouse" / "cjm.duckdb.error.log"
    assert capsys.readouterr().err == f"cjm: internal error: KeyError: 'a bug' (details in {log})\n"
    details = log.read_text()
    assert "Traceback" in details and "in broken" in details and "KeyError: 'a bug'" in details


@pytest.mark.flow
def test_an_unexpected_error_inside_a_prefect_task(
        tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    import cjm_analytics.nightly as nightly

    def broken(ctx: Any) -> Any:
        raise ZeroDivisionError("a bug in a step")

    steps = tuple((name, broken if name == "sessionize" else step) for name, step in nightly.NIGHTLY_STEPS)
    monkeypatch.setattr(nightly, "NIGHTLY_STEPS", steps)  # the flow runs the plan made from them as tasks
    root = project(tmp_path)
    assert main(["run", "--config", str(root / "cjm.yaml")]) == 1
    err = capfd.readouterr().err
    log = root / "warehouse" / "cjm.duckdb.error.log"
    assert err.splitlines()[-1] == f"cjm: internal error: ZeroDivisionError: a bug in a step (details in {log})"
    assert "Traceback" not in err  # Prefect's line that the task failed stays, its traceback goes to run.log
    assert "ZeroDivisionError" in (root / "warehouse" / "cjm.duckdb.prefect" / "run.log").read_text()
    assert "in broken" in log.read_text()


def test_a_warehouse_that_is_not_a_duckdb_file(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "warehouse").mkdir()
    (root / "warehouse" / "cjm.duckdb").write_bytes(b"\x00garbage" * 10_000)
    line = one_error_line(run(tmp_path, root, "--no-prefect"), 1)
    assert line.startswith("cjm: DuckDB failed: IO Error: ") and "not a valid DuckDB database file" in line, line
    assert line.endswith(f"(details in {root / 'warehouse' / 'cjm.duckdb.error.log'})")


@pytest.mark.parametrize(("error", "says"), [
    (OSError(errno.ENOSPC, "No space left on device", "/data/w.duckdb"),
     "/data/w.duckdb: No space left on device; free space on that disk"),
    (OSError(errno.EROFS, "Read-only file system", "/data"), "/data: Read-only file system; the file system is "),
    (PermissionError(errno.EACCES, "Permission denied", "/data"), "/data: Permission denied; give the user"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/data/x/w.duckdb"),
     "/data/x/w.duckdb: Not a directory; a part of that path is a file"),
    (OSError(errno.EIO, "Input/output error", "/data/w.duckdb"), "/data/w.duckdb: Input/output error"),
    (MemoryError(), "out of memory: MemoryError Give the run more memory"),
    (duckdb.TransactionException('Failed to commit: Could not write file "/d/w.wal": No space left on device'),
     'DuckDB: Failed to commit: Could not write file "/d/w.wal": No space left on device; free space'),
])
def test_what_the_machine_refused_is_exit_6_and_says_what_to_do(error: BaseException, says: str) -> None:
    found = as_user_error(error)
    assert isinstance(found, ResourceError) and found.exit_code == 6
    assert str(found).startswith(says), str(found)


def test_a_bug_is_not_a_user_error() -> None:
    assert as_user_error(KeyError("x")) is None
    assert as_user_error(duckdb.CatalogException("Table with name x does not exist")) is None
