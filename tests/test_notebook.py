"""notebooks/journeys.ipynb runs top to bottom on a freshly built warehouse and prints that warehouse's numbers.

The pipeline runs without Prefect on a copy of data/sample/, the notebook is executed with nbclient in a
kernel that runs this interpreter (the project's venv), and its outputs are compared with the marts.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cjm_analytics.config import PSEUDO_STAGES, load_config
from cjm_analytics.nightly import run_nightly
from tests.conftest import REPO, copy_sample

pytestmark = pytest.mark.slow

NOTEBOOK = REPO / "notebooks" / "journeys.ipynb"
KERNEL = "python3"  # the notebook's own kernelspec name


def _pin_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the kernel name `python3` launch this interpreter, whatever kernelspecs the machine has.

    In a fresh venv `python3` already resolves to the venv (ipykernel's wheel installs
    <venv>/share/jupyter/kernels/python3, whose `python` jupyter_client replaces by sys.executable, and
    jupyter_core searches the venv before the user's directories). A kernelspec written into JUPYTER_PATH,
    which is searched first, makes that hold even beside a user or system kernelspec of the same name.
    """
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    jupyter = tmp_path / "jupyter"
    write_kernel_spec(jupyter / "kernels" / KERNEL)  # argv: [sys.executable, -m, ipykernel_launcher, ...]
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    # Connection files and the kernel's IPython profile stay in tmp_path, not in the home directory.
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable


def _expected(warehouse: Path) -> dict[str, Any]:
    """The figures the notebook must print, read straight from the marts."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        summary = con.execute("SELECT worst_dropoff_stage, journey_customers FROM run_summary").fetchone()
        assert summary is not None
        worst, journey_customers = summary
        funnel = con.execute(
            "SELECT stage, stage_order, reached, exited, dropoff_rate FROM stage_funnel ORDER BY stage_order"
        ).fetchall()
        edges = con.execute(
            "SELECT from_stage, to_stage, probability FROM stage_transitions ORDER BY from_order, to_order"
        ).fetchall()
        # The most likely path, walked here on the mart rows (ties: the earlier target stage).
        start, end = PSEUDO_STAGES
        path = [start]
        while path[-1] != end:
            out = [e for e in edges if e[0] == path[-1]]
            target = max(out, key=lambda e: e[2])[1]
            loop = target in path
            path.append(target)
            if loop:
                break
        exact = None
        if path[-1] == end:
            row = con.execute("SELECT count(*) FROM journeys WHERE stage_path = $path", {"path": path[1:-1]}).fetchone()
            assert row is not None
            exact = row[0]
    finally:
        con.close()
    return {
        "worst": worst,
        "journey_customers": journey_customers,
        "funnel": funnel,
        "n_edges": len(edges),
        "path": path,
        "path_customers": exact,
    }


def _text(cell: Any) -> str:
    """What a code cell printed and displayed as text."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_runs_on_a_fresh_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code_cells), "commit the notebook cleared"

    config = load_config(copy_sample(tmp_path / "sample") / "cjm.yaml")
    run_nightly(config)
    expected = _expected(config.warehouse)

    monkeypatch.setenv("CJM_WAREHOUSE", str(config.warehouse))
    _pin_kernel(tmp_path, monkeypatch)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=120,
        startup_timeout=60,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises

    assert not [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    cells = {c.id: c for c in nb.cells}

    # 1. The warehouse the test built, not the sample's.
    assert f"Warehouse: {config.warehouse.resolve()}" in _text(cells["setup"])

    # 2. The headline and the funnel table.
    headline = _text(cells["headline"])
    assert re.search(rf"journey_customers\s+{expected['journey_customers']}\b", headline)
    assert re.search(rf"worst_dropoff_stage\s+{re.escape(expected['worst'])}\b", headline)
    funnel_text = _text(cells["funnel"])
    for stage, order, reached, exited, _ in expected["funnel"]:
        assert re.search(rf"{re.escape(stage)}\s+{order}\s+{reached}\s+{exited}\s", funnel_text), stage

    # 3. The worst drop-off, found by the notebook's own query, is run_summary's; and its "why" covers
    #    everyone who reached it.
    worst_row = next(r for r in expected["funnel"] if r[0] == expected["worst"])
    _, _, reached, exited, rate = worst_row
    assert f"Worst drop-off stage: {expected['worst']} — {rate:.1%} " in _text(cells["worst"])
    assert f"({exited:,} customers)" in _text(cells["worst"])
    why = _text(cells["why"])
    assert f"Reached {expected['worst']}: {exited:,} stopped here, {reached - exited:,} went further" in why
    assert "Most over-represented last event among those who stopped: " in why

    # 4. The Sankey and the funnel, as plotly JSON (nothing fetched from a CDN).
    figures = [o.data for o in cells["figures"].outputs if o.output_type == "display_data"]
    plots = [d["application/vnd.plotly.v1+json"] for d in figures if "application/vnd.plotly.v1+json" in d]
    assert [p["data"][0]["type"] for p in plots] == ["sankey", "funnel"]
    assert plots[1]["data"][0]["x"] == [r[2] for r in expected["funnel"]]
    for cell in code_cells:
        for out in cell.outputs:
            assert "<script src=" not in str(out.get("data", "")), f"cell {cell.id} loads a script"

    # 5. The stage graph: one row per edge, the most likely path, the GraphML round trip.
    edges_text = _text(cells["edges"]).strip().splitlines()
    assert len(edges_text) == 1 + expected["n_edges"]
    path_text = _text(cells["path"])
    assert "Most likely path: " + " → ".join(expected["path"]) in path_text
    if expected["path_customers"] is not None:
        assert f"Customers whose whole journey is this path: {expected['path_customers']:,} of " in path_text
    n_nodes = len(expected["funnel"]) + len(PSEUDO_STAGES)
    assert f"{n_nodes} nodes, {expected['n_edges']} edges" in _text(cells["graphml"])

    # 6. Plain SQL on the published marts (what a BI tool reads: marts/current, this run's), not the warehouse.
    published_run = (config.marts / "current").resolve().name
    assert f"Published marts: {config.marts.resolve() / 'current'} (run {published_run})" in _text(cells["sql"])
    assert f"Drop-off at {expected['worst']} by cohort week:" in _text(cells["sql"])
