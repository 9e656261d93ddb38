"""Retentioneering's transition graph (benchmarks/retentioneering_baseline.py) against the pipeline's, at a small
size. Needs the benchmark's own virtualenv (`make bench-deps`); skipped without it, so CI never needs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from benchmarks.generate import config_dict, generate
from benchmarks.retentioneering_baseline import REPO, compare_edges, env_ready, venv_python
from cjm_analytics.config import parse_config
from tests.fixtures import run_steps

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not env_ready(), reason="no .venv-retentioneering (make bench-deps)"),
]


def test_retentioneering_counts_the_same_transitions_as_the_pipeline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, 20_000, seed=7)
    cfg = parse_config(config_dict(data, warehouse=str(tmp_path / "cjm.duckdb"), reports=str(tmp_path / "reports")),
                       tmp_path, "benchmark config")
    run_steps(cfg)  # the nightly steps up to the marts
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    ours = con.execute("SELECT from_stage, to_stage, transitions, customers, probability "
                       "FROM stage_transitions ORDER BY from_order, to_order").df()
    row = con.execute("SELECT (SELECT count(DISTINCT customer_key) FROM events), (SELECT count(*) FROM sessions), "
                      "(SELECT count(*) FROM journeys)").fetchone()
    con.close()

    out = tmp_path / "retentioneering"
    subprocess.run([str(venv_python()), "-m", "benchmarks.retentioneering_baseline", "--data", str(data),
                    "--out", str(out)], cwd=REPO, check=True, capture_output=True, timeout=600)
    theirs = pd.read_parquet(out / "stage_transitions.parquet")
    counts = json.loads((out / "counts.json").read_text(encoding="utf-8"))

    assert (counts["customers"], counts["sessions"], counts["journeys"]) == row
    agreement = compare_edges(ours, theirs)
    # The same edges; counts equal up to the ordering of events with equal timestamps, which Retentioneering
    # leaves to the input order (benchmarks/README.md): a few transitions at most.
    assert agreement["edges_in_both"] == agreement["edges"] == agreement["edges_retentioneering"]
    assert abs(agreement["transitions_retentioneering"] - agreement["transitions"]) <= 0.001 * agreement["transitions"]
    assert agreement["max_abs_probability_diff"] < 0.01
