"""A wrong config stops with one line naming the file and the field, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cjm_analytics.cli import main
from cjm_analytics.config import load_config
from tests.fixtures import WEB_COLUMNS, write_csv

GOOD: dict[str, Any] = {
    "warehouse": "warehouse/cjm.duckdb",
    "reports": "reports/",
    "sources": [{"name": "web", "kind": "clickstream", "path": "web/*.csv", "columns": WEB_COLUMNS}],
    "stages": [{"name": "browse", "events": ["product_*"]}, {"name": "buy", "events": ["order"]}],
    "goal": "buy",
}


def _write(tmp_path: Path, data: Any) -> Path:
    write_csv(tmp_path / "web" / "a.csv", "event_id,anonymous_id,user_id,event,ts,channel")
    path = tmp_path / "cjm.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _with(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


def test_the_good_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.warehouse == tmp_path / "warehouse" / "cjm.duckdb"
    assert cfg.sources[0].files() == [tmp_path / "web" / "a.csv"]
    assert cfg.goal_order == 2
    assert cfg.sessions.inactivity_minutes == 30
    assert cfg.report.sankey_steps == 8


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({}, {}),
        ({"memory_limit": "4GB", "threads": 2}, {"memory_limit": "4GB", "threads": 2}),
        ({"memory_limit": " 512 MiB ", "max_temp_directory_size": "1.5TB"},
         {"memory_limit": "512 MiB", "max_temp_directory_size": "1.5TB"}),
        ({"memory_limit": "50%"}, {"memory_limit": "50%"}),
        ({"memory_limit": "2gib"}, {"memory_limit": "2gib"}),
        ({"temp_directory": "spill"}, {"temp_directory": "<dir>/spill"}),
        ({"temp_directory": "/var/tmp/cjm"}, {"temp_directory": "/var/tmp/cjm"}),
    ],
)
def test_duckdb_settings_are_checked_and_paths_are_relative_to_the_file(
        tmp_path: Path, section: dict[str, Any], expected: dict[str, Any]) -> None:
    cfg = load_config(_write(tmp_path, _with(duckdb=section)))
    assert cfg.duckdb.configured() == {k: v.replace("<dir>", str(tmp_path)) if isinstance(v, str) else v
                                       for k, v in expected.items()}
    assert load_config(_write(tmp_path, GOOD)).duckdb.configured() == {}  # nothing set: DuckDB's defaults


def test_every_accepted_size_is_one_duckdb_accepts() -> None:
    import duckdb

    con = duckdb.connect()
    for value in ("4GB", "512 MiB", "1.5TB", "64MB", "2gib", "50%", "100%"):
        con.execute(f"SET memory_limit = '{value}'")
    con.execute("SET max_temp_directory_size = '1.5TB'")
    con.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(colour="blue"), "colour: unknown key"),
        (_with(sources__0__columns__event_nam="x"), "sources[0].columns.event_nam: unknown key"),
        (_with(goal=...), "goal: Field required"),
        (_with(goal="sell"), "goal: 'sell' is not a stage (stages: browse, buy)"),
        (_with(stages__0__events=[]), "stages[0].events: List should have at least 1 item"),
        (_with(sources__0__path="nowhere/*.csv"), "sources[0].path: 'nowhere/*.csv' matches no file"),
        (_with(sources__0__kind="erp"), "sources[0].kind: Input should be 'clickstream' or 'crm'"),
        (_with(sources__0__timezone="Mars/Olympus"), "sources[0].timezone: unknown time zone 'Mars/Olympus'"),
        (_with(sources__0__timestamp_format="yyyy-mm-dd"), "sources[0].timestamp_format: use auto"),
        (_with(sources__0__columns={"event_name": "e", "timestamp": "t"}),
         "sources[0].columns: give customer_id or anonymous_id"),
        (_with(sessions={"inactivity_minutes": 0}), "sessions.inactivity_minutes: Input should be greater than 0"),
        (_with(stages=[{"name": "buy", "events": ["a"]}, {"name": "buy", "events": ["b"]}]),
         "duplicate stage name(s) buy"),
        (_with(duckdb={"memory_limit": "4"}), "duckdb.memory_limit: '4' is not a size: use a number and a unit"),
        (_with(duckdb={"memory_limit": 4}), "duckdb.memory_limit: '4' is not a size"),
        (_with(duckdb={"memory_limit": "4 gigs"}), "duckdb.memory_limit: '4 gigs' is not a size"),
        (_with(duckdb={"memory_limit": "10MB"}), "duckdb.memory_limit: '10MB' is too small"),
        (_with(duckdb={"memory_limit": "120%"}), "duckdb.memory_limit: a share of RAM is more than 0%"),
        (_with(duckdb={"threads": 0}), "duckdb.threads: Input should be greater than or equal to 1"),
        (_with(duckdb={"threads": "two"}), "duckdb.threads: Input should be a valid integer"),
        (_with(duckdb={"threads": True}), "duckdb.threads: Input should be a valid integer"),
        (_with(duckdb={"max_temp_directory_size": "90%"}), "duckdb.max_temp_directory_size: '90%' is not a size"),
        (_with(engine={"memory_budget": "lots"}), "engine.memory_budget: 'lots' is not a size"),
        (_with(engine={"memory_budget": "10MB"}), "engine.memory_budget: '10MB' is too small"),
        (_with(duckdb={"max_temp_directory_size": "0GB"}), "duckdb.max_temp_directory_size: give a size above 0"),
        (_with(duckdb={"memory": "4GB"}), "duckdb.memory: unknown key"),
        *[(_with(stages__0__name=name, goal="buy"), f"stages[0].name: {name!r} is reserved")
          for name in ("(start)", "(end)", "(drop-off)", "(completed)", "(continues)", "other")],
        (_with(sources__0__missing_files="delete"), "sources[0].missing_files: Input should be 'retract' or 'keep'"),
        (_with(entity=""), "entity.singular: String should have at least 1 character"),
        (_with(entity="case<b>"), "entity.singular: 'case<b>' is not a name"),
        (_with(entity=3), "entity: give a word (entity: case) or entity: {singular: person, plural: people}"),
        (_with(entity={"plural": "people"}), "entity: give a word"),
        (_with(entity={"singular": "person", "plurals": "people"}), "entity.plurals: unknown key (did you mean "),
        (_with(sessions="sometimes"), "sessions: give the settings (inactivity_minutes, from) or off"),
        (_with(sessions={"enabled": False, "from": "sid"}), "sessions: off takes no other setting"),
        ("stages: [unclosed", "not valid YAML at line 1"),
        ("- a list", "expected a mapping of settings"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_field(tmp_path: Path, data: Any, message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, data)
    assert main(["run", "--config", str(path), "--no-prefect"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"cjm: error: {path}: "), err
    assert message in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", "/nonexistent/cjm.yaml"]) == 2
    assert capsys.readouterr().err == "cjm: error: /nonexistent/cjm.yaml: config file not found\n"


def test_the_installed_command_exits_2_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, _with(goal="sell"))
    done = subprocess.run([sys.executable, "-m", "cjm_analytics.cli", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("goal: 'sell' is not a stage (stages: browse, buy)")


def test_a_second_run_while_one_holds_the_warehouse_exits_3(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD)
    write_csv(tmp_path / "web" / "a.csv", "event_id,anonymous_id,user_id,event,ts,channel\n"
              "1,a1,,product_view,2026-11-01T10:00:00Z,\n2,a1,,order,2026-11-01T10:05:00Z,")
    blocker = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from cjm_analytics.warehouse import "
         "run_lock\nwith run_lock(Path(sys.argv[1]), 'blocker'):\n print('held', flush=True); time.sleep(60)",
         str(tmp_path / "warehouse" / "cjm.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert blocker.stdout is not None and blocker.stdout.readline().strip() == "held"
        assert main(["run", "--config", str(path), "--no-prefect"]) == 3
        err = capsys.readouterr().err
        assert f"is locked by run blocker (pid {blocker.pid}" in err
    finally:
        blocker.kill()
        blocker.wait()
    # The holder is gone: its lock is stale and the next run takes it over.
    assert main(["run", "--config", str(path), "--no-prefect"]) == 0
