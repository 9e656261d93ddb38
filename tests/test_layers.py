"""Layers: the nightly marts are built from the analysis functions, never from the analyst's command line or
the report's code (charts, pages, plotly).

Checked in a fresh interpreter after the nightly steps up to `aggregate` have run on a tiny warehouse, so that
an import inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What only `cjm analyze` and the report site need.
NOT_NIGHTLY = ("plotly", "argparse", "cjm_analytics.report", "cjm_analytics.analyze_cli", "cjm_analytics.cli")

AGGREGATE = """
import importlib, json, pkgutil, sys
from pathlib import Path

import cjm_analytics.analysis
from tests.fixtures import make_config, run_steps, write_csv

root = Path(sys.argv[1])
write_csv(root / "web" / "events.csv", '''
    event_id,anonymous_id,user_id,event,ts,channel
    1,a1,u1,landing,2026-11-01T10:00:00Z,ads
    2,a1,u1,add_to_cart,2026-11-01T10:05:00Z,
    3,a1,u1,order,2026-11-01T10:10:00Z,
    4,a2,u2,landing,2026-11-01T11:00:00Z,email
    5,a2,u2,nps,2026-11-01T11:05:00Z,
''')
# A survey, so that all three answers the marts store are computed.
cfg = make_config(root, analysis={"surveys": [{"event": "nps", "score": "score", "kind": "nps"}]})
run_steps(cfg, until="aggregate")
for module in pkgutil.iter_modules(cjm_analytics.analysis.__path__):
    importlib.import_module(f"cjm_analytics.analysis.{module.name}")
print(json.dumps(sorted(sys.modules)))
"""


def test_the_nightly_marts_load_no_cli_report_or_plotly(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", AGGREGATE, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "cjm_analytics.marts" in loaded and "cjm_analytics.analysis.pain_points" in loaded
    assert [m for m in loaded if any(m == name or m.startswith(f"{name}.") for name in NOT_NIGHTLY)] == []


def test_the_import_contracts_hold() -> None:
    """pyproject's [tool.importlinter] contracts (also `make lint`): an arrow pointing up fails the suite."""
    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.skip("import-linter is not installed (pip install '.[dev]')")
    done = subprocess.run([str(linter)], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout
