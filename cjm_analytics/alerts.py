"""Telling people about a night: the config's `alerts:` commands, run after a failed night or one with warnings.

Each command is run by the shell with the run's verdict and checks as JSON on stdin (docs/checks.md). A command that
fails or hangs is reported on stderr in one line; it never changes the run's own outcome or exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cjm_analytics.config import Config
from cjm_analytics.errors import ChecksFailedError


def run_alert(command: str, payload: dict[str, Any], timeout: float) -> None:
    """Run one alert command with the payload on stdin; its failure is one line on stderr."""
    try:
        done = subprocess.run(command, shell=True, input=json.dumps(payload, default=str), text=True,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"cjm: warning: alert command timed out after {timeout:g} s: {command}", file=sys.stderr)
        return
    except OSError as e:
        print(f"cjm: warning: alert command could not start ({e}): {command}", file=sys.stderr)
        return
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        print(f"cjm: warning: alert command exited {done.returncode}: {command}"
              + (f" ({said[-1][:200]})" if said else ""), file=sys.stderr)


def _health(config: Config, run_id: str) -> dict[str, Any] | None:
    """The run's stored checks, if it got as far as checking."""
    from cjm_analytics.checks import read_health
    from cjm_analytics.warehouse import connect

    try:
        con = connect(config.warehouse, read_only=True, settings=config.duckdb, wait=30)
    except Exception:  # the warehouse may be what failed; the alert still goes out without checks
        return None
    try:
        tables = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return read_health(con, run_id).as_dict() if "run_checks" in tables else None
    finally:
        con.close()


@contextmanager
def alerting(config: Config, run_id: str) -> Iterator[None]:
    """Around a whole run: on_failure when it fails (a step, or an error-level check), on_warning when it passes
    with warnings. Does nothing (and opens nothing) without alerts configured."""
    alerts = config.alerts
    if alerts.on_failure is None and alerts.on_warning is None:
        yield
        return
    try:
        yield
    except BaseException as e:
        if alerts.on_failure is not None:
            payload = _health(config, run_id) or {"run_id": run_id, "verdict": "failed", "checks": []}
            if not isinstance(e, ChecksFailedError):
                payload |= {"verdict": "failed", "error": f"{type(e).__name__}: {e}".splitlines()[0]}
            payload["summary"] = str(e).splitlines()[0] if str(e) else type(e).__name__
            run_alert(alerts.on_failure, payload, alerts.timeout_seconds)
        raise
    if alerts.on_warning is not None:
        health = _health(config, run_id)
        if health is not None and health["verdict"] == "warning":
            run_alert(alerts.on_warning, health, alerts.timeout_seconds)
