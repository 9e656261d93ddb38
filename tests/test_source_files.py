"""Which files a source reads: each file once, never the product's own outputs, whatever the project folder is
called (docs/lifecycle.md, "Which files a source reads")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from cjm_analytics.cli import main
from cjm_analytics.config import Source, load_config
from tests.fixtures import STAGES, WEB_COLUMNS, write_csv

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
HEADER = "event_id,anonymous_id,user_id,event,ts,channel"


def _web(path: str, name: str = "web") -> dict[str, Any]:
    return {"name": name, "kind": "clickstream", "path": path, "columns": WEB_COLUMNS}


def _config(root: Path, *sources: dict[str, Any], **overrides: Any) -> Path:
    data: dict[str, Any] = {"warehouse": "warehouse/cjm.duckdb", "reports": "reports", "sources": list(sources),
                            "stages": STAGES, "goal": "buy", **overrides}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "cjm.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _rows(*ids: str) -> str:
    return "\n".join([HEADER, *(f"{i},a{i},,product_view,2026-11-01 10:00:0{n},web" for n, i in enumerate(ids))])


# --- glob characters in the project's own path ------------------------------------------------------------


@pytest.mark.parametrize(("folder", "decoy"), [
    ("proj[1]", "proj1"), ("proj[x]", "projx"), ("a*b", "a-b"), ("what?", "whatX"), ("[abc]", "a")])
def test_a_project_folder_named_with_glob_characters_works(tmp_path: Path, folder: str, decoy: str) -> None:
    root = tmp_path / folder
    write_csv(root / "web" / "a.csv", _rows("1"))
    write_csv(tmp_path / decoy / "web" / "b.csv", _rows("2"))  # what the folder's name matches as a pattern
    cfg = load_config(_config(root, _web("web/*.csv")))
    assert cfg.sources[0].files() == [root / "web" / "a.csv"]


def test_the_users_own_pattern_keeps_its_glob_characters(tmp_path: Path) -> None:
    root = tmp_path / "proj[1]"
    for name in ("a.csv", "b.csv", "c.csv"):
        write_csv(root / "web" / name, _rows("1"))
    cfg = load_config(_config(root, _web("web/[ab].csv")))
    assert cfg.sources[0].files() == [root / "web" / "a.csv", root / "web" / "b.csv"]
    # An absolute pattern stays as written: here the user escapes the bracket themselves.
    absolute = str(root).replace("[", "[[]") + "/web/[!a].csv"
    cfg = load_config(_config(tmp_path / "elsewhere", _web(absolute)))
    assert cfg.sources[0].files() == [root / "web" / "b.csv", root / "web" / "c.csv"]


def test_a_home_folder_with_glob_characters_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home[1]"
    write_csv(home / "web" / "a.csv", _rows("1"))
    monkeypatch.setenv("HOME", str(home))
    cfg = load_config(_config(tmp_path / "project", _web("~/web/*.csv")))
    assert cfg.sources[0].files() == [home / "web" / "a.csv"]


def test_a_pattern_matching_nothing_is_still_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj[1]"
    write_csv(root / "web" / "a.csv", _rows("1"))
    path = _config(root, _web("web/*.parquet"))
    assert main(["run", "--config", str(path), "--no-prefect"]) == 2
    assert capsys.readouterr().err == f"cjm: error: {path}: sources[0].path: 'web/*.parquet' matches no file\n"


# --- the same file matched twice --------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [
    ("web/*.csv", "web/events.csv"),        # two globs over one file
    ("web/*.csv", "web/**/*.csv"),
    ("web/*.csv", "mirror/*.csv"),          # mirror -> web: another path to the same file
])
def test_two_sources_matching_one_file_is_an_error_naming_both(tmp_path: Path, first: str, second: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    write_csv(tmp_path / "web" / "events.csv", _rows("1", "2"))
    (tmp_path / "mirror").symlink_to(tmp_path / "web")
    path = _config(tmp_path, _web(first), _web(second, name="crm_web"))
    assert main(["run", "--config", str(path), "--no-prefect"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    matched = tmp_path / ("mirror" if second.startswith("mirror") else "web") / "events.csv"
    assert err.startswith(f"cjm: error: {path}: sources[1].path: matches {matched}, which sources[0] (web) "
                          f"also reads"), err
    assert "crm_web" in err
    assert not (tmp_path / "warehouse" / "cjm.duckdb").exists()  # refused before anything was loaded


def test_a_hard_link_in_two_sources_is_the_same_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_csv(tmp_path / "web" / "events.csv", _rows("1"))
    (tmp_path / "copy").mkdir()
    os.link(tmp_path / "web" / "events.csv", tmp_path / "copy" / "events.csv")
    path = _config(tmp_path, _web("web/*.csv"), _web("copy/*.csv", name="other"))
    assert main(["run", "--config", str(path), "--no-prefect"]) == 2
    assert "which sources[0] (web) also reads" in capsys.readouterr().err


def test_disjoint_sources_over_one_folder_are_fine(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", _rows("1"))
    write_csv(tmp_path / "web" / "b.csv", _rows("2"))
    cfg = load_config(_config(tmp_path, _web("web/a.csv"), _web("web/b.csv", name="other")))
    assert [s.files() for s in cfg.sources] == [[tmp_path / "web" / "a.csv"], [tmp_path / "web" / "b.csv"]]


def test_one_file_reached_by_two_paths_of_one_source_is_read_once(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events-1.csv", _rows("1"))
    (tmp_path / "web" / "latest.csv").symlink_to("events-1.csv")
    (tmp_path / "web" / "sub").mkdir()
    (tmp_path / "web" / "sub" / "again").symlink_to(tmp_path / "web")
    cfg = load_config(_config(tmp_path, _web("web/**/*.csv")))
    assert cfg.sources[0].files() == [tmp_path / "web" / "events-1.csv"]  # the first path in sorted order


# --- `**` through a symlink loop -------------------------------------------------------------------------


def test_a_symlink_loop_under_double_star_reads_each_file_once(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", _rows("1"))
    write_csv(tmp_path / "web" / "sub" / "b.csv", _rows("2"))
    (tmp_path / "web" / "sub" / "loop").symlink_to("..")
    cfg = load_config(_config(tmp_path, _web("web/**/*.csv")))
    assert cfg.sources[0].files() == [tmp_path / "web" / "a.csv", tmp_path / "web" / "sub" / "b.csv"]


def test_two_symlink_loops_do_not_explode(tmp_path: Path) -> None:
    # Followed naively, two loops give 2**40 paths: glob.glob never returns. In a child, so that it fails instead.
    write_csv(tmp_path / "web" / "a.csv", _rows("1"))
    for name in ("loop1", "loop2"):
        (tmp_path / "web" / name).symlink_to(".")
    pattern = str(tmp_path / "web" / "**" / "*.csv")
    code = ("import sys; from cjm_analytics.config import Source; "
            "print(Source(name='web', kind='clickstream', path=sys.argv[1], event_name='x', "
            "columns={'timestamp': 'ts', 'anonymous_id': 'a'}).files())")
    done = subprocess.run([sys.executable, "-c", code, pattern], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == repr([tmp_path / "web" / "a.csv"]), done.stderr


@pytest.mark.parametrize(("pattern", "expected"), [
    ("web/**/*.csv", ["web/a.csv", "web/deep/er/c.csv", "web/sub/b.csv", "web/via/b.csv"]),
    ("web/**", ["web/a.csv", "web/deep/er/c.csv", "web/notes.txt", "web/sub/b.csv", "web/via/b.csv"]),
    ("web/*/**/*.csv", ["web/deep/er/c.csv", "web/sub/b.csv", "web/via/b.csv"]),
    ("**/er/*.csv", ["web/deep/er/c.csv"]),
    ("web/**/er/**/*.csv", ["web/deep/er/c.csv"]),
    ("web/**/.*.csv", ["web/.hidden.csv"]),
    ("web/a**.csv", ["web/a.csv"]),  # `**` inside a name is `*`
])
def test_double_star_matches_what_glob_matches(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    """Where glob.glob terminates (no loop), the files are the ones it finds, each real file once."""
    import glob

    for name in ("a.csv", "sub/b.csv", "deep/er/c.csv", ".hidden.csv", ".dot/d.csv", "notes.txt"):
        write_csv(tmp_path / "web" / name, _rows("1"))
    (tmp_path / "web" / "via").symlink_to("elsewhere")
    write_csv(tmp_path / "web" / "elsewhere" / "b.csv", _rows("2"))
    (tmp_path / "web" / "elsewhere").rename(tmp_path / "elsewhere")
    (tmp_path / "web" / "via").unlink()
    (tmp_path / "web" / "via").symlink_to(tmp_path / "elsewhere")
    cfg = load_config(_config(tmp_path, _web(pattern)))
    found = cfg.sources[0].files()
    assert found == [tmp_path / p for p in expected]
    by_glob = sorted(Path(p) for p in glob.glob(str(tmp_path / pattern), recursive=True) if Path(p).is_file())
    assert found == by_glob


# --- the product's own outputs are never inputs -----------------------------------------------------------


def test_the_warehouse_reports_marts_spill_and_work_folders_are_never_inputs(tmp_path: Path) -> None:
    write_csv(tmp_path / "data" / "web" / "a.csv", _rows("1"))
    outputs = ["data/warehouse/cjm.duckdb", "data/warehouse/cjm.duckdb.wal", "data/warehouse/cjm.duckdb.lock",
               "data/warehouse/cjm.duckdb.tmp/duckdb_temp_block-1.block",
               "data/warehouse/cjm.duckdb.buckets/run1/raw_events/bucket=0/part.parquet",
               "data/reports/index.html", "data/marts/runs/r1/parquet/stage_funnel.parquet",
               "data/spill/x.tmp", "work/b.parquet"]
    for name in outputs:
        write_csv(tmp_path / name, "x")
    (tmp_path / "data" / "marts" / "current").symlink_to("runs/r1")
    cfg = load_config(_config(tmp_path, _web("data/**/*"), warehouse="data/warehouse/cjm.duckdb",
                              reports="data/reports", marts="data/marts",
                              duckdb={"temp_directory": "data/spill"},
                              engine={"work_dir": str(tmp_path / "work")}))
    kept = write_csv(tmp_path / "data" / "warehouse" / "notes.csv", _rows("2"))  # only the warehouse's own files
    assert cfg.sources[0].files() == [kept, tmp_path / "data" / "web" / "a.csv"]
    assert load_config(_config(tmp_path, _web("**/*.parquet"), marts="data/marts",
                               engine={"work_dir": str(tmp_path / "work")})).sources[0].files() == [
        tmp_path / "data" / "warehouse" / "cjm.duckdb.buckets" / "run1" / "raw_events" / "bucket=0" / "part.parquet"]


def test_a_source_matching_only_outputs_matches_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_csv(tmp_path / "web" / "a.csv", _rows("1"))
    write_csv(tmp_path / "reports" / "old.csv", _rows("1"))
    path = _config(tmp_path, _web("web/*.csv"), _web("reports/*.csv", name="old"))
    assert main(["run", "--config", str(path), "--no-prefect"]) == 2
    assert "sources[1].path: 'reports/*.csv' matches no file" in capsys.readouterr().err


def test_a_source_without_a_config_excludes_nothing(tmp_path: Path) -> None:
    write_csv(tmp_path / "reports" / "a.csv", _rows("1"))
    assert Source.model_validate(_web(str(tmp_path / "**" / "*.csv"))).files() == [tmp_path / "reports" / "a.csv"]


def test_copies_of_the_config_keep_the_exclusions(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", _rows("1"))
    write_csv(tmp_path / "reports" / "r.csv", _rows("1"))
    cfg = load_config(_config(tmp_path, _web("**/*.csv")))
    copied = cfg.model_copy(update={"goal": "cart"}).sources[0].model_copy(update={"name": "other"})
    assert copied.files() == [tmp_path / "web" / "a.csv"]


def test_a_glob_over_the_whole_project_reads_only_inputs_night_after_night(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sample's CRM export in a folder that also holds the warehouse, the marts and the reports, read with a
    `**/*` glob over that folder: the second night reads the same files, and the warehouse holds the same."""
    root = tmp_path / "project"
    shutil.copytree(SAMPLE / "clickstream", root / "clickstream")
    (root / "data").mkdir()
    shutil.copy(SAMPLE / "crm" / "crm_activities.csv", root / "data")
    data = yaml.safe_load((SAMPLE / "cjm.yaml").read_text(encoding="utf-8"))
    data.update(warehouse="data/warehouse/cjm.duckdb", reports="data/reports", marts="data/marts")
    data["sources"][1]["path"] = "data/**/*"
    config = root / "cjm.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")

    nights = []
    for _ in range(2):
        assert main(["run", "--config", str(config), "--no-prefect"]) == 0
        out = capsys.readouterr().out.splitlines()
        files_per_source = [line.split(",")[0] for line in out if line.startswith(("  web:", "  crm:"))]
        headlines = [line for line in out if line.startswith(("warehouse:", "journeys:", "worst drop-off:"))]
        con = duckdb.connect(str(root / "data" / "warehouse" / "cjm.duckdb"), read_only=True)
        try:
            files = con.execute("SELECT DISTINCT file FROM load_manifest ORDER BY file").fetchall()
            events = con.execute("SELECT source, count(*) FROM raw_events GROUP BY ALL ORDER BY ALL").fetchall()
        finally:
            con.close()
        nights.append((files_per_source, headlines, files, events))
    assert nights[0] == nights[1]
    assert nights[0][0] == ["  web: 3 file(s)", "  crm: 1 file(s)"]
    assert [Path(f) for (f,) in nights[0][2]] == [*sorted((root / "clickstream").iterdir()),
                                                   root / "data" / "crm_activities.csv"]
    # The outputs the glob passes over are there:
    assert (root / "data" / "reports" / "index.html").exists()
    assert any((root / "data" / "marts" / "current").glob("**/*.parquet"))
