"""Publishing over the lifetime of a project: copies and restores that turn links into folders, runs killed while
publishing, readers during a swap, and the tests' own copies of the sample after `make demo`.

The report and the marts are told apart by run: every page says "Run <code>run_id</code>" and every mart carries
the run_id of the run that published it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
import yaml

from cjm_analytics.cli import main
from cjm_analytics.config import Config, load_config
from cjm_analytics.report import PAGES, PLOTLY_JS
from cjm_analytics.warehouse import connect
from tests.browser import Visit
from tests.conftest import REPO, SAMPLE_OUTPUTS, copy_sample
from tests.fixtures import PUBLISH_EVENTS as EVENTS
from tests.fixtures import STAGES, WEB_COLUMNS, without_progress, write_csv

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PAGE_NAMES = [p.name for p in PAGES]


def project(root: Path) -> Path:
    """A tiny project on disk, as a user has it: events, and cjm.yaml naming the warehouse, report and marts."""
    write_csv(root / "web" / "a.csv", EVENTS)
    config = {"warehouse": "warehouse/cjm.duckdb", "reports": "reports", "marts": "marts",
              "sources": [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}],
              "stages": STAGES, "goal": "buy"}
    path = root / "cjm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def cjm_run(config_path: Path) -> int:
    return main(["run", "--config", str(config_path), "--no-prefect"])


def last_run(cfg: Config) -> str:
    con = connect(cfg.warehouse, read_only=True)
    try:
        return str(con.execute("SELECT run_id FROM run_summary").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def page_runs(reports: Path) -> dict[str, str]:
    """Each page of the site as a reader opens it (reports/<page>), and the run it shows."""
    runs = {}
    for name in PAGE_NAMES:
        found = re.search(r"Run <code>([^<]*)</code>", (reports / name).read_text(encoding="utf-8"))
        runs[name] = found.group(1) if found else "?"
    return runs


def marts_run(marts: Path) -> str:
    con = duckdb.connect(str(marts / "current" / "marts.duckdb"), read_only=True)
    try:
        return str(con.execute("SELECT run_id FROM run_summary").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def shown(cfg: Config) -> set[str]:
    """The runs a reader sees: the report's pages and the marts' (one run when all is well)."""
    return {*page_runs(cfg.reports).values(), marts_run(cfg.marts)}


def leftovers(cfg: Config) -> list[str]:
    """Dot-names of publishing (partial folders, set-aside copies, temporary links and files), wherever they are."""
    found = []
    for folder in (cfg.marts, cfg.marts / "runs", cfg.reports, cfg.reports / "sites"):
        if folder.is_dir():
            found += [str(p.relative_to(folder.parent)) for p in folder.iterdir() if p.name.startswith(".")]
    return sorted(found)


def dereference(folder: Path) -> None:
    """What `cp -rL`, shutil.copytree's default or a backup restore does to a folder: every link becomes a copy."""
    copy = folder.with_name(folder.name + ".copy")
    shutil.copytree(folder, copy)
    shutil.rmtree(folder)
    copy.rename(folder)


def killed(config_path: Path, module: str, function: str, nth: int) -> int:
    """A whole nightly run in a child process that SIGKILLs itself at the nth call of module.function."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        import {module} as target
        from cjm_analytics.config import load_config
        from cjm_analytics.nightly import run_nightly

        real, calls = target.{function}, []
        def dying(*args, **kwargs):
            calls.append(1)
            if len(calls) == {nth}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        target.{function} = dying
        run_nightly(load_config(sys.argv[1]))
    """)
    done = subprocess.run([sys.executable, "-c", code, str(config_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    return done.returncode


# --- a pointer turned into a folder --------------------------------------------------------------------------


@pytest.mark.parametrize("copied", ["marts", "reports", "the whole project"])
def test_publishing_survives_links_turned_into_folders(tmp_path: Path, copied: str) -> None:
    config_path = project(tmp_path / "p")
    assert cjm_run(config_path) == 0
    if copied == "the whole project":  # copied elsewhere, links followed: the copy's links are all folders now
        shutil.copytree(tmp_path / "p", tmp_path / "copy")
        config_path = tmp_path / "copy" / "cjm.yaml"
    else:
        dereference(tmp_path / "p" / copied)
    cfg = load_config(config_path)
    assert not (cfg.marts / "current").is_symlink() or copied == "reports"
    first = marts_run(cfg.marts)
    assert shown(cfg) == {first}  # the copy still reads as the night it was taken

    assert cjm_run(config_path) == 0
    second = last_run(cfg)
    assert second != first
    current = cfg.marts / "current"
    assert current.is_symlink() and os.readlink(current) == f"runs/{second}"
    assert os.readlink(cfg.reports / "site") == f"sites/{second}"
    for name in [*PAGE_NAMES, PLOTLY_JS, "stage_graph.graphml"]:
        assert os.readlink(cfg.reports / name) == f"site/{name}", name
    assert shown(cfg) == {second}

    assert cjm_run(config_path) == 0  # the folder set aside is gone with the next publish
    assert leftovers(cfg) == []
    assert shown(cfg) == {last_run(cfg)}


def test_a_folder_cjm_did_not_write_is_never_set_aside(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = project(tmp_path)
    mine = tmp_path / "reports" / "site" / "notes.txt"  # the user's own, where the site's link goes
    mine.parent.mkdir(parents=True)
    mine.write_text("mine", encoding="utf-8")
    assert cjm_run(config_path) == 1
    err = without_progress(capsys.readouterr().err)
    assert err.count("\n") == 1 and err.startswith("cjm: error: ") and "is a folder cjm did not write" in err
    assert mine.read_text(encoding="utf-8") == "mine"
    assert not (tmp_path / "marts" / "current").exists()  # the marts did not move ahead of the report either


# --- killed while publishing ---------------------------------------------------------------------------------


def test_a_run_killed_while_writing_the_report_leaves_the_site_whole(tmp_path: Path) -> None:
    config_path = project(tmp_path)
    cfg = load_config(config_path)
    assert cjm_run(config_path) == 0
    first = last_run(cfg)
    # Killed at the 4th file of the site (plotly.min.js and two pages written).
    assert killed(config_path, "cjm_analytics.report.site", "_write", nth=4) == -signal.SIGKILL
    assert last_run(cfg) != first  # the killed run did aggregate: its pages were being written
    assert shown(cfg) == {first}  # every page, and the marts, still of the first run
    assert leftovers(cfg) != []  # what the killed run was writing, out of sight

    assert cjm_run(config_path) == 0
    assert leftovers(cfg) == []
    assert shown(cfg) == {last_run(cfg)}


def test_a_run_killed_while_writing_the_marts_shows_neither_its_report_nor_its_marts(tmp_path: Path) -> None:
    config_path = project(tmp_path)
    cfg = load_config(config_path)
    assert cjm_run(config_path) == 0
    first = last_run(cfg)
    # Killed at the 3rd published table: the report of the run is written, its marts half.
    assert killed(config_path, "cjm_analytics.publish", "_select", nth=3) == -signal.SIGKILL
    assert shown(cfg) == {first}  # the report did not move ahead of the marts
    assert any(name.endswith(".partial") for name in leftovers(cfg))

    assert cjm_run(config_path) == 0
    assert leftovers(cfg) == []
    assert shown(cfg) == {last_run(cfg)}
    assert len(list((cfg.reports / "sites").iterdir())) == 2  # this run's site and the one before


def test_a_run_killed_between_the_two_swaps_is_made_whole_by_the_next(tmp_path: Path) -> None:
    """The one moment the report and the marts differ: between two renames. The next run shows one run again."""
    config_path = project(tmp_path)
    cfg = load_config(config_path)
    assert cjm_run(config_path) == 0
    first = last_run(cfg)
    # Versions.show: 1st the report's swap, 2nd the marts'.
    assert killed(config_path, "cjm_analytics.publish", "Versions.show", nth=2) == -signal.SIGKILL
    second = last_run(cfg)
    assert set(page_runs(cfg.reports).values()) == {second} and marts_run(cfg.marts) == first

    assert cjm_run(config_path) == 0
    assert shown(cfg) == {last_run(cfg)}
    assert leftovers(cfg) == []


def test_leftovers_of_killed_publishers_are_removed_by_the_next_publish(tmp_path: Path) -> None:
    config_path = project(tmp_path)
    cfg = load_config(config_path)
    assert cjm_run(config_path) == 0
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)  # a pid whose process has ended
    planted = {
        cfg.marts / "runs" / ".20261101T020000Z-aaaaaa.partial": "dir",
        cfg.marts / ".current.4242": "link",  # the temporary link of releases before 2026-12
        cfg.reports / "sites" / ".20261101T020000Z-aaaaaa.partial": "dir",
        cfg.reports / f".index.html.{dead}.tmp": "file",  # an older build_report, or cjm analyze, killed
    }
    for path, kind in planted.items():
        if kind == "dir":
            (path / "parquet").mkdir(parents=True)
            (path / "marts.duckdb").write_bytes(b"half")
        elif kind == "link":
            path.symlink_to("runs/gone")
        else:
            path.write_text("<html>half", encoding="utf-8")
    alive = cfg.reports / f".analysis-funnel.html.{os.getpid()}.tmp"  # a live writer's, maybe about to be renamed
    alive.write_text("<html>", encoding="utf-8")

    assert cjm_run(config_path) == 0
    assert [p for p in planted if p.exists() or p.is_symlink()] == []
    assert alive.exists()
    alive.unlink()
    assert leftovers(cfg) == []


# --- readers --------------------------------------------------------------------------------------------------


def test_a_reader_of_the_report_never_sees_two_sites(tmp_path: Path) -> None:
    """While `cjm report` rebuilds the site again and again, every reading of the site is of one build."""
    from cjm_analytics.publish import publish_report

    config_path = project(tmp_path)
    cfg = load_config(config_path)
    assert cjm_run(config_path) == 0
    seen: list[set[str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                site = (cfg.reports / "index.html").resolve().parent  # as a browser's next click would find it
                titles = {re.search(r"<title>[^<]*· (build \d) ·", (site / n).read_text(encoding="utf-8"))
                          for n in PAGE_NAMES}
                seen.append({m.group(1) if m else "?" for m in titles})
            except BaseException as e:  # reported below, in the test's thread
                errors.append(e)

    reader = threading.Thread(target=read)
    con = connect(cfg.warehouse, read_only=True)
    reader.start()
    try:
        for build in range(4):
            publish_report(con, cfg.reports, f"build {build}")
    finally:
        stop.set()
        reader.join()
        con.close()
    assert [repr(e) + str(getattr(e, "filename", "")) for e in errors] == []
    assert seen and all(len(titles) == 1 for titles in seen)
    assert len(list((cfg.reports / "sites").iterdir())) == 2


@pytest.mark.browser
def test_the_published_site_opens_and_navigates_from_disk(tmp_path: Path, browser: Browser) -> None:
    config_path = project(tmp_path)
    cfg = load_config(config_path)
    assert cjm_run(config_path) == 0
    visit = Visit(browser, (cfg.reports / "index.html").as_uri())
    visit.page.click("nav >> text=Stage funnel")
    visit.page.wait_for_selector(".plotly-graph-div .main-svg")  # plotly.min.js found through the links
    assert visit.page.url == (cfg.reports / "funnel.html").as_uri()
    # The index of the analysis pages, written beside the site by the publish, not in a version of it.
    visit.page.click("nav >> text=Analyses")
    visit.page.wait_for_selector("main h1")
    assert visit.page.url == (cfg.reports / "analyses.html").as_uri()
    assert visit.page.inner_text("main h1") == "Analyses"
    visit.assert_clean()
    visit.page.close()


def test_cjm_report_publishes_the_site_whole(tmp_path: Path) -> None:
    config_path = project(tmp_path)
    cfg = load_config(config_path)
    assert cjm_run(config_path) == 0
    before = os.readlink(cfg.reports / "site")
    assert main(["report", "--config", str(config_path)]) == 0
    after = os.readlink(cfg.reports / "site")
    assert after != before and re.fullmatch(r"sites/\d{8}T\d{12}Z-report", after)
    assert shown(cfg) == {last_run(cfg)}
    assert (cfg.reports / "stage_graph.graphml").read_text(encoding="utf-8").startswith("<?xml")
    assert leftovers(cfg) == []


# --- the tests' copies of the sample after `make demo` ---------------------------------------------------------


def test_the_tests_copy_of_the_sample_works_after_make_demo(tmp_path: Path) -> None:
    """`make demo` then `make test` on a fresh clone: the sample folder then holds a run's outputs and links."""
    demo = copy_sample(tmp_path / "clone")
    assert cjm_run(demo / "cjm.yaml") == 0  # make demo
    assert (demo / "marts" / "current").is_symlink() and (demo / "reports" / "index.html").is_symlink()

    copy = copy_sample(tmp_path / "test-copy", source=demo)
    assert [name for name in SAMPLE_OUTPUTS if (copy / name).exists()] == []
    assert cjm_run(copy / "cjm.yaml") == 0
    cfg = load_config(copy / "cjm.yaml")
    assert shown(cfg) == {last_run(cfg)}
