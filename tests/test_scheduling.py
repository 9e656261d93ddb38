"""The scheduling examples (examples/scheduling/) as shipped: the crontab line, run as cron runs it (a bare
environment, no terminal, /bin/sh -c), against a tiny warehouse without Prefect, and the systemd units, which run
the same command and pass `systemd-analyze verify` where it exists (docs/operations.md, "Scheduling")."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cjm_analytics.config import load_config
from cjm_analytics.warehouse import run_lock
from tests.fixtures import PUBLISH_EVENTS, STAGES, WEB_COLUMNS, write_csv

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scheduling"
# The paths the examples are written with, replaced by the test's own.
CJM, CONFIG, LOG = "/opt/cjm/.venv/bin/cjm", "/srv/cjm/cjm.yaml", "/var/log/cjm/nightly.log"
ESCAPE = "\x1b["  # a terminal control sequence: live progress, colours


def cron_line() -> str:
    """The command of the crontab's one job (after its five time fields)."""
    jobs = [line for line in (EXAMPLES / "crontab").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#") and not re.match(r"\w+=", line)]
    assert len(jobs) == 1, jobs
    fields = jobs[0].split(None, 5)
    assert len(fields) == 6 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), jobs[0]
    return fields[5]


def cjm_command() -> str:
    """How this test suite starts cjm (the package it tests, with this Python)."""
    return f"{shlex.quote(sys.executable)} -m cjm_analytics.cli"


def as_cron(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`command` as cron runs it: /bin/sh -c, only PATH and HOME set, stdin not a terminal."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    if "PYTHONPATH" in os.environ:  # where the tests find the package when it is not installed (a worktree)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(["/bin/sh", "-c", command], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300, check=False)


def project(root: Path) -> Path:
    write_csv(root / "web" / "events.csv", PUBLISH_EVENTS)
    config = root / "cjm.yaml"
    config.write_text(yaml.safe_dump({
        "warehouse": "warehouse/cjm.duckdb", "reports": "reports", "marts": "marts", "stages": STAGES, "goal": "buy",
        "sources": [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}]}))
    return config


def test_the_crontab_line_runs_as_cron_runs_it(tmp_path: Path) -> None:
    line = cron_line()
    assert f"{CJM} run --no-prefect --config {CONFIG}" in line and LOG in line
    config, log, home = project(tmp_path), tmp_path / "nightly.log", tmp_path / "home"
    home.mkdir()

    def job(config_path: Path) -> subprocess.CompletedProcess[str]:
        return as_cron(line.replace(CJM, cjm_command()).replace(CONFIG, str(config_path)).replace(LOG, str(log)),
                       home)

    done = job(config)
    text = log.read_text(encoding="utf-8")
    assert done.returncode == 0, text
    assert done.stdout == done.stderr == ""  # everything went to the log, as the line says
    assert "cjm run " in text and "report: " in text
    assert "Traceback" not in text and ESCAPE not in text and "\r" not in text  # plain lines, no progress bars
    assert "Prefect" not in text

    # A run started while another holds the run lock stops at once: exit 3, one line naming the holder.
    with run_lock(load_config(config).warehouse, "the-night-before"):
        log.write_text("", encoding="utf-8")
        assert job(config).returncode == 3
    assert re.fullmatch(r"cjm: error: warehouse .* is locked by run the-night-before .*\n",
                        log.read_text(encoding="utf-8"))

    # A config error: exit 2, one line.
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text(encoding="utf-8").replace("goal: buy", "goal: nowhere"), encoding="utf-8")
    log.write_text("", encoding="utf-8")
    assert job(bad).returncode == 2
    text = log.read_text(encoding="utf-8")
    assert text.startswith("cjm: error: ") and text.count("\n") == 1 and "Traceback" not in text


def test_the_systemd_units_run_the_same_command(tmp_path: Path) -> None:
    service = (EXAMPLES / "cjm-nightly.service").read_text(encoding="utf-8")
    timer = (EXAMPLES / "cjm-nightly.timer").read_text(encoding="utf-8")
    exec_start = re.findall(r"^ExecStart=(.*)$", service, flags=re.M)
    assert exec_start == [cron_line().split(" >>")[0]]  # the crontab's command, without its redirection
    assert re.search(r"^SuccessExitStatus=3$", service, flags=re.M)  # another run is doing the night's work
    assert re.search(r"^Type=oneshot$", service, flags=re.M)
    assert re.search(r"^OnCalendar=.+$", timer, flags=re.M) and "Unit=cjm-nightly.service" in timer
    assert "flock" not in exec_start[0]

    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed: the units' syntax is not checked")
    # Verified with the paths of this machine (verify checks that ExecStart's program exists); any warning fails.
    cjm = Path(sys.executable).with_name("cjm")
    units = {"cjm-nightly.service": service.replace(CJM, str(cjm if cjm.exists() else sys.executable))
             .replace("/srv/cjm", str(tmp_path)).replace("User=cjm", "User=root"),
             "cjm-nightly.timer": timer}
    for name, text in units.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    checked = subprocess.run([verify, "verify", *units], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             check=False)
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
