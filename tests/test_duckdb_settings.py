"""The config's `duckdb:` settings reach every connection the product opens, in a real run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

import cjm_analytics.warehouse as warehouse
from cjm_analytics.cli import main
from cjm_analytics.config import DuckDBSettings
from tests.fixtures import STAGES, WEB_COLUMNS, write_csv

SETTINGS = {"memory_limit": "512MiB", "threads": 1, "temp_directory": "spill", "max_temp_directory_size": "3GiB"}
SHOWN = ("memory_limit", "threads", "temp_directory", "max_temp_directory_size")


def _config(tmp_path: Path, duckdb_section: dict[str, Any] | None) -> Path:
    write_csv(tmp_path / "web" / "day1.csv", """
        event_id,anonymous_id,user_id,event,ts,channel
        e1,a1,,landing,2026-11-01 09:00:00,ads
        e2,a1,,product_view,2026-11-01 09:05:00,ads
        e3,a1,u1,add_to_cart,2026-11-01 09:06:00,ads
        e4,,u1,order,2026-11-01 09:10:00,ads
        e5,a2,,landing,2026-11-01 10:00:00,seo
    """)
    data: dict[str, Any] = {"warehouse": "warehouse/cjm.duckdb", "reports": "reports", "marts": "marts",
                            "sources": [{"name": "web", "kind": "clickstream", "path": "web/*.csv",
                                         "columns": WEB_COLUMNS}],
                            "stages": STAGES, "goal": "buy"}
    if duckdb_section is not None:
        data["duckdb"] = duckdb_section
    path = tmp_path / "cjm.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    """What each connection the product opens through warehouse.connect reports as its settings."""
    seen: list[dict[str, str]] = []
    original = warehouse.connect

    def connect(path: Path, read_only: bool = False, settings: DuckDBSettings | None = None, **kw: Any) -> Any:
        con = original(path, read_only, settings, **kw)
        row = con.execute("SELECT " + ", ".join(f"current_setting('{s}')" for s in SHOWN)).fetchone()
        assert row is not None
        seen.append({"read_only": str(read_only), **dict(zip(SHOWN, map(str, row), strict=True))})
        return con

    monkeypatch.setattr(warehouse, "connect", connect)
    yield seen


def _defaults() -> dict[str, str]:
    con = duckdb.connect()
    row = con.execute("SELECT " + ", ".join(f"current_setting('{s}')" for s in SHOWN)).fetchone()
    con.close()
    assert row is not None
    return dict(zip(SHOWN, map(str, row), strict=True))


def test_every_connection_of_a_run_a_report_and_an_analysis_gets_the_settings(
        tmp_path: Path, opened: list[dict[str, str]]) -> None:
    path = _config(tmp_path, SETTINGS)
    assert main(["run", "--config", str(path), "--no-prefect"]) == 0
    assert main(["report", "--config", str(path)]) == 0
    assert main(["analyze", "paths", "--config", str(path)]) == 0
    # Eight steps, the run summary, the report and the analysis: each through warehouse.connect.
    assert len(opened) == 11
    assert {c["read_only"] for c in opened} == {"True", "False"}
    for con in opened:
        assert con["memory_limit"] == "512.0 MiB"
        assert con["threads"] == "1"
        assert con["temp_directory"] == str(tmp_path / "spill")  # relative to the config file
        assert con["max_temp_directory_size"] == "3.0 GiB"
    assert (tmp_path / "marts" / "current" / "marts.duckdb").is_file()  # publish_marts ran under them too


def test_without_a_duckdb_section_duckdb_keeps_its_defaults(tmp_path: Path, opened: list[dict[str, str]]) -> None:
    path = _config(tmp_path, None)
    assert main(["run", "--config", str(path), "--no-prefect"]) == 0
    defaults = _defaults()
    for con in opened:
        assert con["memory_limit"] == defaults["memory_limit"]
        assert con["threads"] == defaults["threads"]
        # DuckDB's own spill folder: beside the database file.
        assert con["temp_directory"] == str(tmp_path / "warehouse" / "cjm.duckdb.tmp")


def test_a_second_connection_after_spilling_keeps_the_folder(tmp_path: Path) -> None:
    # DuckDB refuses to switch temp_directory once it has spilled, even to the same folder; a connection opened
    # while another one of this process holds the database (tests, notebooks) must still open.
    settings = DuckDBSettings(memory_limit="64MB", threads=1, temp_directory=tmp_path / "spill")
    first = warehouse.connect(tmp_path / "w.duckdb", settings=settings)
    first.execute("SET preserve_insertion_order = false")
    first.execute("CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(2000000) ORDER BY s")
    assert any((tmp_path / "spill").iterdir())
    second = warehouse.connect(tmp_path / "w.duckdb", settings=settings)
    row = second.execute("SELECT current_setting('temp_directory'), count(*) FROM t").fetchone()
    assert row == (str(tmp_path / "spill"), 2_000_000)
    second.close()
    first.close()
