"""Prefect's API server for one `cjm run`, when no Prefect server is configured (docs/operations.md, Orchestration).

Prefect would start a temporary server by itself (prefect.server.api.server.SubprocessASGIServer). Measured on a
busy 2-core machine, its defaults fail a nightly job: a 20 s start-up limit that the first start (creating its
SQLite database) overruns; a telemetry service whose read-then-insert transaction collides with the flow's writes
("database is locked") and prints a traceback; one ~/.prefect/prefect.db shared by every Prefect process of the
user; the server's log on the user's terminal; and a server that outlives a killed run. This server is the same
uvicorn command with those points changed.
"""

from __future__ import annotations

import ctypes
import fcntl
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO

import httpx
import prefect
from prefect.events.worker import EventsWorker
from prefect.logging import get_logger
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, get_current_settings, temporary_settings
from prefect.utilities.asyncutils import run_coro_as_sync

from cjm_analytics.errors import OrchestratorError, ResourceError

# The first start creates and migrates the database: ~10 s on an idle 2-core machine, several times that under
# load. A server that is really stuck is still reported, after this long.
STARTUP_TIMEOUT_SECONDS = 300
# What the server is told, whatever the environment says. Usage reporting off: its service writes to the
# database at start-up in a transaction that fails against the flow's own writes, and calls the internet.
# The rest is what Prefect's own temporary server sets: no UI, only the services a temporary server needs.
SERVER_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
_PORT_IN_USE = "address already in use"
_ENOUGH_DISK = 64 * 2**20  # below this, a server that fails to start is taken to have found the disk full


def state_folder(warehouse: Path) -> Path:
    """`<warehouse>.prefect/`: the temporary server's database and log, private to this warehouse's runs."""
    return warehouse.with_name(warehouse.name + ".prefect")


@contextmanager
def temporary_server(folder: Path) -> Iterator[str]:
    """Start Prefect's API server in a subprocess and, with PREFECT_API_URL naming it, yield its URL; stop it after.

    The database is `folder/prefect.db`, kept from run to run so that only the first run creates it. Runs take
    the warehouse's run lock only inside the flow, so a second run can get here while the first one's server is
    up: it then gets a throwaway database instead of sharing the file. The server writes its log to
    `folder/server.log`, never to the terminal, and is killed by the kernel if this process dies (Linux).
    """
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        database = folder
        owner = stack.enter_context(open(folder / "server.lock", "a"))  # held until the stack closes
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            database = Path(tempfile.mkdtemp(prefix="cjm-prefect-server-"))
            stack.callback(shutil.rmtree, database, ignore_errors=True)
        log = stack.enter_context(open(folder / "server.log", "w", encoding="utf-8"))
        get_logger().info("Starting a temporary Prefect server for this run (no PREFECT_API_URL is set); its "
                          "database and log: %s", folder)
        server, url = _start(database, log, folder / "server.log")
        stack.callback(_stop, server)
        # No UI link in the log: the temporary server serves no UI, and is gone when the run ends.
        stack.enter_context(temporary_settings({PREFECT_API_URL: url, PREFECT_UI_URL: ""}))
        stack.callback(_drain_prefect_workers)  # first: the run's last logs and events still go to this server
        yield url


def _start(database: Path, log: IO[str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    settings = get_current_settings()
    environment = {**os.environ, **settings.to_environment_variables(exclude_unset=True), **SERVER_ENVIRONMENT}
    # A database the user configured (a Postgres, say) stays theirs; otherwise the folder's own SQLite file.
    if "connection_url" not in settings.server.database.model_fields_set:
        environment["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{database / 'prefect.db'}"
    environment["PREFECT_SERVER_MEMO_STORE_PATH"] = str(database / "memo_store.toml")
    timeout = settings.server.ephemeral.startup_timeout_seconds \
        if "startup_timeout_seconds" in settings.server.ephemeral.model_fields_set else STARTUP_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    for _ in range(3):  # a port found free can be taken before uvicorn binds it: then (only then) another port
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        server = subprocess.Popen(_command(port), env=environment, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, preexec_fn=_dies_with(os.getpid()))
        try:
            if _wait_until_healthy(server, url, deadline):
                return server, url
        except BaseException:
            _stop(server)
            raise
        if server.returncode is None:
            _stop(server)
            raise OrchestratorError(
                f"Prefect's temporary server did not answer within {timeout:.0f}s (its log: {log_path}); "
                f"set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or run your own Prefect server "
                f"and set PREFECT_API_URL")
        if _PORT_IN_USE not in _tail(log_path).lower():
            break
    free = shutil.disk_usage(database).free
    if free < _ENOUGH_DISK:  # it could not even write its log: say what the user can act on
        raise ResourceError(
            f"{database}: no space left on device for Prefect's temporary server ({free // 2**20} MiB free); free "
            f"space on that disk, or point the config's folders at a disk with room")
    raise OrchestratorError(
        f"Prefect's temporary server stopped while starting (exit code {server.returncode}): "
        f"{_tail(log_path) or 'no output'} (its log: {log_path})")


def _command(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]


def _wait_until_healthy(server: subprocess.Popen[bytes], url: str, deadline: float) -> bool:
    """True once the API answers; False if the server exits or the deadline passes first."""
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                return False
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    return False


def _drain_prefect_workers() -> None:
    """Send what Prefect's background workers still hold (log lines, events) before the server goes away.

    Prefect's own temporary server stops at interpreter exit, after they drained; without this, each would retry
    the stopped server for over a minute and then print "Error logging to API". As in prefect_test_harness.
    """
    async def drain() -> None:
        with suppress(RuntimeError):  # a worker that never started
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(log_path: Path) -> str:
    """The log's last non-empty line (where uvicorn and Prefect say why they stopped)."""
    try:
        lines = [line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    return next((line for line in reversed(lines) if line), "")


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _dies_with(parent: int) -> Callable[[], None] | None:
    """Run in the child before exec: the kernel sends it SIGKILL when its parent dies, even by SIGKILL.

    (Strictly: when the thread that started it ends; `cjm run` starts it from its main thread.) Elsewhere than
    Linux a killed run can leave the server behind, as Prefect's own would.
    """
    libc = _LIBC
    if libc is None:
        return None

    def set_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above: nobody would send the signal
            os._exit(1)

    return set_death_signal
