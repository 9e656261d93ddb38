"""Which files a source reads: each file once, never the product's own outputs, whatever the project folder is
called (docs/lifecycle.md, "Which files a source reads")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cjm_analytics.cli import main
from cjm_analytics.config import load_config
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
