"""The default `cjm run` (through Prefect) started as a user would: not failed by its orchestrator, on a busy machine.

Every test starts the real command in a subprocess with none of the test suite's or the Makefile's Prefect
settings (issue 17: `make demo` hid Prefect's telemetry traceback behind PREFECT_SERVER_ANALYTICS_ENABLED=false).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("CJM_ORCHESTRATOR_RUNS", "20"))  # CI runs 20 (docs/operations.md, Orchestration)
# `cjm` as installed beside this Python (make test's venv), else the module.
CJM = [str(Path(sys.executable).parent / "cjm")] if (Path(sys.executable).parent / "cjm").exists() \
    else [sys.executable, "-m", "cjm_analytics.cli"]

CONFIG = """\
warehouse: warehouse/cjm.duckdb
reports: reports/
marts: marts/
sources:
  - name: web
    kind: clickstream
    path: web/*.csv
    timestamp_format: epoch_s
    columns: {event_id: event_id, customer_id: user_id, anonymous_id: anonymous_id, event_name: event,
              timestamp: ts, channel: channel}
stages:
  - {name: browse, events: ["product_*", landing]}
  - {name: cart, events: [add_to_cart]}
  - {name: buy, events: [order]}
goal: buy
"""
NAMES = ["landing", "product_view", "product_list", "add_to_cart", "order"]


def write_night(root: Path, night: int, customers: int, seed: int) -> int:
    """web/night-<n>.csv: a few events for each of `customers` customers; returns how many events."""
    rnd = random.Random(seed * 1000 + night)
    lines = ["event_id,user_id,anonymous_id,event,ts,channel"]
    for c in range(customers):
        ts = 1_780_000_000 + night * 86_400 + c * 60
        for k in range(rnd.randint(1, 6)):
            ts += rnd.randint(10, 3_000)
            lines.append(f"n{night}-c{c}-{k},u{c},a{c},{NAMES[min(k, 4)]},{ts},{rnd.choice(['ads', 'seo', 'mail'])}")
    (root / "web").mkdir(parents=True, exist_ok=True)
    (root / "web" / f"night-{night:02d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


def user_environment(home: Path, prefect_home: Path | None = None) -> dict[str, str]:
    """This process's environment without any Prefect setting (the suite's PREFECT_HOME, the Makefile's), HOME
    pointed at `home`; PREFECT_HOME only if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in ("DO_NOT_TRACK", "HOME")}
    env["HOME"] = str(home)
    if prefect_home is not None:
        env["PREFECT_HOME"] = str(prefect_home)
    return env


def servers_for(home: Path) -> list[int]:
    """Prefect API servers (uvicorn running Prefect's app) started with HOME=home, i.e. by this test's runs."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"prefect.server.api.server:create_app" in command and f"HOME={home}".encode() in environ \
                and state != "Z":
            found.append(int(proc.name))
    return found


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Both cores kept busy by two processes spinning, for the length of the test."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for b in burners:
            b.kill()
            b.wait()


@pytest.mark.slow
@pytest.mark.flow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cjm_run_through_prefect_succeeds_every_time_under_load(tmp_path: Path, cpu_load: None) -> None:
    """RUNS nights in a row, each a new file, half with HOME only and half with a PREFECT_HOME of their own:
    every run exits 0 with no traceback and no Prefect telemetry, leaves no server behind, and the warehouse
    ends with every event."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "cjm.yaml").write_text(CONFIG, encoding="utf-8")
    expected = 0
    failures, seconds = [], []
    for night in range(RUNS):
        expected += write_night(root, night, customers=40 if night else 150, seed=17)
        env = user_environment(tmp_path / "home", tmp_path / "prefect-home" if night % 2 else None)
        (tmp_path / "home").mkdir(exist_ok=True)
        started = time.monotonic()
        done = subprocess.run([*CJM, "run", "--config", str(root / "cjm.yaml")], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        seconds.append(time.monotonic() - started)
        output = done.stdout + done.stderr
        if done.returncode != 0 or "Traceback" in output or "telemetry" in output.lower():
            failures.append(f"night {night}: exit {done.returncode}\n{output[-3000:]}")
        leftover = servers_for(tmp_path / "home")
        assert not leftover, f"night {night}: Prefect's server still running after the run: {leftover}"
    print(f"{RUNS} runs under load: {sum(seconds):.0f}s, {min(seconds):.1f}-{max(seconds):.1f}s each")
    assert not failures, f"{len(failures)} of {RUNS} runs failed:\n" + "\n".join(failures)
    con = duckdb.connect(str(root / "warehouse" / "cjm.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (expected,)
    finally:
        con.close()


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "cjm.yaml").write_text(CONFIG, encoding="utf-8")
    write_night(root, 0, customers=30, seed=3)
    return root


@pytest.mark.flow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_a_killed_run_takes_its_prefect_server_with_it(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (tmp_path / "home").mkdir()
    run = subprocess.Popen([*CJM, "run", "--config", str(root / "cjm.yaml")], env=user_environment(tmp_path / "home"),
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not servers_for(tmp_path / "home") and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.1)
        servers = servers_for(tmp_path / "home")
        assert servers, "the run never started a server"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    deadline = time.monotonic() + 10
    while servers_for(tmp_path / "home") and time.monotonic() < deadline:
        time.sleep(0.1)
    left = servers_for(tmp_path / "home")
    for pid in left:  # don't leave it to the next test either
        os.kill(pid, signal.SIGKILL)
    assert not left, f"Prefect's server {left} outlived the killed run"


def _one_line_exit_5(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("cjm: ")]
    assert len(errors) == 1 and errors[0].startswith("cjm: error: "), done.stderr
    return errors[0]


@pytest.mark.flow
def test_prefects_server_not_starting_in_time_is_one_line_exit_5_and_nothing_done(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (tmp_path / "home").mkdir()
    env = {**user_environment(tmp_path / "home"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}
    done = subprocess.run([*CJM, "run", "--config", str(root / "cjm.yaml")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    line = _one_line_exit_5(done)
    assert "Prefect's temporary server did not answer within 1s" in line
    assert str(root / "warehouse" / "cjm.duckdb.prefect" / "server.log") in line
    assert not (root / "warehouse" / "cjm.duckdb").exists()  # no step ran
    assert not servers_for(tmp_path / "home")


@pytest.mark.flow
def test_an_unreachable_prefect_server_is_one_line_exit_5(tmp_path: Path) -> None:
    import socket

    root = _project(tmp_path)
    (tmp_path / "home").mkdir()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**user_environment(tmp_path / "home"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    done = subprocess.run([*CJM, "run", "--config", str(root / "cjm.yaml")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    line = _one_line_exit_5(done)
    assert f"Prefect failed (http://127.0.0.1:{port}/api)" in line
    assert not (root / "warehouse" / "cjm.duckdb").exists()  # no step ran
    assert not servers_for(tmp_path / "home")  # a configured server is used, none is started


@pytest.mark.flow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="uses /proc as a home nobody can write, root included")
def test_a_user_without_a_writable_home(tmp_path: Path) -> None:
    """A service account whose HOME cannot be written: Prefect's files go beside the warehouse, no warning."""
    root = _project(tmp_path)
    env = user_environment(Path("/proc/no-such-home"))
    done = subprocess.run([*CJM, "run", "--config", str(root / "cjm.yaml")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert (root / "warehouse" / "cjm.duckdb.prefect" / "home").is_dir()
