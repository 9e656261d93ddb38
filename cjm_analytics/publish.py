"""Publishing a run's outputs for their readers: the marts for dashboards and the report site.

Each output is a folder of whole versions. A version is written as `<store>/.<version>.partial/`, renamed to
`<store>/<version>/` once complete, and shown by swapping one link in one rename: `marts/current -> runs/<run_id>`,
`reports/site -> sites/<version>` (the report's pages in `reports/` are links through `site`). A reader sees one
whole version, old or new, never half of one, and dashboards never touch the warehouse (its writer's lock can't
block them). The nightly run writes both versions first and swaps both links back to back at its very end, so the
report and the marts show the same run. The next publish repairs whatever a killed publish or the filesystem left:
`.partial` folders, temporary links, a `current` that a copy or a restore turned into a real folder.
docs/marts.md ("Publishing") says what a reader can see at each moment.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics.catalog import COLUMN_DOCS, PUBLISHED, TABLES, column_doc
from cjm_analytics.checks import Health
from cjm_analytics.errors import PublishError
from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.sql_steps import quote_ident, quote_literal

# The published tables and their Parquet partition column: catalog.PUBLISHED (cohort_month is added on publishing),
# and their descriptions: catalog.TABLES, catalog.column_doc.
# BI tools bundle DuckDB 1.x, which can't open files in DuckDB 2's default storage format.
STORAGE_VERSION = "v1.4.0"
KEEP_RUNS = 3  # marts: a dashboard may still be reading the run before current
KEEP_SITES = 2  # report: a page open in a browser has loaded all it needs; the previous site is a margin
GRAPHML = "stage_graph.graphml"
# What an interrupted `write_page` (cjm analyze) or an older build_report leaves beside the pages: .<name>.<pid>.tmp
_PAGE_TEMP = re.compile(r"\..+\.(\d+)\.tmp")


@dataclass(frozen=True)
class Versions:
    """Whole versions of an output: `<root>/<store>/<version>/`, and `<root>/<pointer>`, a link to the one shown."""

    root: Path
    store: str
    pointer: str
    marker: str  # a file every version holds: a folder in the pointer's place without it is not ours

    @property
    def folder(self) -> Path:
        return self.root / self.store

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """One publisher at a time (a nightly run, `cjm report`), so nobody cleans up a folder another is writing.

        flock on the store folder: the kernel releases it when its process dies, so a killed publisher never
        blocks the next one, and there is no lock file to go stale.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # A filesystem without flock: nightly runs are still one at a time (the warehouse's run lock).
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def clean(self) -> list[str]:
        """Remove what killed publishers left (call under `publishing`); returns the names removed.

        In the store every dot-name is ours and dead: `.<version>.partial` being written, `.*.stale` set aside. In
        root: the temporary links of `_link`, and `.current.<pid>`, the temporary link of releases before 2026-12.
        """
        ours = re.compile(rf"\..+\.\d+\.{re.escape(self.store)}\.link|\.{re.escape(self.pointer)}\.\d+")
        left = [p for p in self.folder.iterdir() if p.name.startswith(".")]
        left += [p for p in self.root.iterdir() if ours.fullmatch(p.name)]
        for path in left:
            _remove(path)
        return sorted(p.name for p in left)

    def stage(self, version: str, write: Callable[[Path], object]) -> Path:
        """A new version: `write` fills an empty folder, which gets the version's name only when complete."""
        if not version or version.startswith(".") or "/" in version:
            raise ValueError(f"not a version name: {version!r}")
        partial = self.folder / f".{version}.partial"
        _remove(partial)
        partial.mkdir(parents=True)
        write(partial)
        final = self.folder / version
        if final.exists() or final.is_symlink():
            self._discard(final)
        partial.rename(final)
        return final

    def shown(self) -> str | None:
        """The version the pointer links to (None when it is not a link into the store)."""
        link = self.root / self.pointer
        if not link.is_symlink():
            return None
        target = Path(os.readlink(link))
        return target.name if target.parent == Path(self.store) else None

    def show(self, version: Path) -> None:
        """Point the pointer at a staged version in one rename: a reader resolves the old one or the new one."""
        self._link(self.pointer, version.relative_to(self.root))

    def link_entries(self, version: Path) -> None:
        """A link in root for every file of the version, through the pointer (`index.html -> site/index.html`).

        The links never change from one version to the next, so swapping the pointer moves all of them at once;
        links to files the version no longer has are removed.
        """
        names = {p.name for p in version.iterdir()}
        for name in sorted(names):
            target = Path(self.pointer) / name
            entry = self.root / name
            if not (entry.is_symlink() and Path(os.readlink(entry)) == target):
                self._link(name, target)  # first publish, or a copy that followed the links
        for entry in self.root.iterdir():
            if (entry.name not in names and entry.is_symlink()
                    and Path(os.readlink(entry)).parent == Path(self.pointer)):
                entry.unlink()

    def prune(self, keep: int) -> None:
        """Keep the shown version and the newest others, `keep` in all (run ids sort by their start)."""
        shown = self.shown()
        versions = sorted(p.name for p in self.folder.iterdir() if not p.name.startswith(".") and p.is_dir())
        for name in versions[:-keep]:
            if name != shown:
                self._discard(self.folder / name)

    def _link(self, name: str, target: Path) -> None:
        # A new link renamed over the old entry: a reader finds the old target or the new, never nothing.
        entry = self.root / name
        tmp = self.root / f".{name}.{os.getpid()}.{self.store}.link"
        tmp.unlink(missing_ok=True)
        try:
            tmp.symlink_to(target)
        except OSError as e:
            raise PublishError(f"{self.root}: cannot create the link {name} -> {target}: {e.strerror}") from e
        if entry.is_dir() and not entry.is_symlink():
            # A real folder where the link belongs (`current` after cp -rL, copytree or a restore). A link can't be
            # renamed over a folder: set it aside first (the name is missing between the two renames); it stays
            # readable by whoever has it open and is removed by the next publish's clean.
            if name != self.pointer or not (entry / self.marker).is_file():
                tmp.unlink()
                raise PublishError(f"{entry} is a folder cjm did not write; move it: cjm keeps a link of that name "
                                   f"there")
            entry.rename(self._aside(name))
        os.replace(tmp, entry)

    def _aside(self, name: str) -> Path:
        return self.folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.stale"

    def _discard(self, path: Path) -> None:
        # Renamed first, so a removal cut short leaves a dot-name that the next clean finishes, never half a version.
        aside = self._aside(path.name)
        path.rename(aside)
        _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def marts_versions(marts_dir: Path) -> Versions:
    """`<marts>/current -> runs/<run_id>`."""
    return Versions(marts_dir, "runs", "current", "marts.duckdb")


def site_versions(reports_dir: Path) -> Versions:
    """`<reports>/site -> sites/<version>`, the pages in `<reports>/` linked through `site`."""
    return Versions(reports_dir, "sites", "site", "index.html")


# --- marts -------------------------------------------------------------------------------------------------------


# A list column also published as text, for BI tools that can't show lists: `stage_path_text`.
LIST_SEPARATOR = " > "
_LIST_TYPE = re.compile(r".*\[\d*\]")  # VARCHAR[], INTEGER[3]
# The nights a dashboard could have seen: a night whose error-level checks failed published nothing, so its
# headline is no history of the published marts (the report's overview leaves it out the same way).
_ROWS = {"run_history": "run_id NOT IN (SELECT run_id FROM run_checks WHERE status = 'error')"}
# The listing of the catalog's published tables, written beside them: a dashboard tells a table this night did not
# build (an optional one not configured) from an empty one.
LISTING = "published_tables"
_LISTING_DOC = "The catalog's published tables: which this run published, with how many rows, and why any is absent."
_LISTING_COLUMNS = {  # name: (type, description)
    "table_name": ("VARCHAR", "the published table"),
    "published": ("BOOLEAN", "the table is in this run's marts; false: absent, see reason"),
    "row_count": ("BIGINT", "rows published (null when absent)"),
    "partition": ("VARCHAR", "the Parquet partition column (null: one file)"),
    "description": ("VARCHAR", "what the table holds"),
    "reason": ("VARCHAR", "why the table is absent (null when published)"),
    "run_id": ("VARCHAR", COLUMN_DOCS["run_id"]),
    "run_date": ("DATE", COLUMN_DOCS["run_date"]),
}
_NOT_BUILT = "not built by this run: the config does not ask for it (docs/marts.md)"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, type) of a table's columns; `table` as SQL (quoted)."""
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def _select(con: duckdb.DuckDBPyConnection, table: str, run_id: str, run_date: str) -> str:
    """The mart with run_id and run_date (where it has none), its partition column and its lists as text."""
    cols = _columns(con, quote_ident(table))
    has = {name for name, _ in cols}
    # The partition column last, where a Hive-partitioned Parquet reader puts it: both read alike by position.
    extra = "".join(f", array_to_string({quote_ident(name)}, {quote_literal(LIST_SEPARATOR)}) "
                    f"AS {quote_ident(name + '_text')}" for name, type_ in cols if _LIST_TYPE.fullmatch(type_))
    extra += "" if "run_id" in has else f", {quote_literal(run_id)} AS run_id"
    extra += f", DATE {quote_literal(run_date)} AS run_date"
    if PUBLISHED[table] == "cohort_month":
        extra += ", strftime(cohort_date, '%Y-%m') AS cohort_month"
    where = f" WHERE {_ROWS[table]}" if table in _ROWS else ""
    return f"SELECT *{extra} FROM {quote_ident(table)}{where}"


def column_docs(table: str, columns: list[tuple[str, str]]) -> dict[str, str]:
    """The published table's columns (name, type) that the catalog describes, with their one line each; a list's
    text twin (added by _select) is described from the list's line."""
    docs = {name: doc for name, _ in columns if (doc := column_doc(table, name)) is not None}
    for name, type_ in columns:
        if _LIST_TYPE.fullmatch(type_) and name in docs:
            docs[f"{name}_text"] = f"{docs[name]}; as text, the elements joined by '{LIST_SEPARATOR}'"
    return docs


def _describe(con: duckdb.DuckDBPyConnection, folder: Path, table: str, description: str,
              docs: dict[str, str], partition: str | None, select: str) -> None:
    """Table and column comments in marts.duckdb, and the same as key-value metadata of every Parquet file.

    A comment takes no parameter, hence the quoted literals. The Parquet keys: `description` (the table's line)
    and `column_descriptions` (a JSON object, column -> line); pyarrow reads them with `read_schema(f).metadata`.
    The Parquet is written by the mart's query, not read back from the table just written in marts.duckdb: that
    was measured slower (journeys at 10M: 1.06 CPU s against 0.79).
    """
    name = f"published.{quote_ident(table)}"
    con.execute(f"COMMENT ON TABLE {name} IS {quote_literal(description)}")
    for column, doc in docs.items():
        con.execute(f"COMMENT ON COLUMN {name}.{quote_ident(column)} IS {quote_literal(doc)}")
    metadata = (f"KV_METADATA {{description: {quote_literal(description)}, "
                f"column_descriptions: {quote_literal(json.dumps(docs, ensure_ascii=False))}}}")
    target = folder / "parquet" / table
    if partition:
        con.execute(f"COPY ({select}) TO {quote_literal(str(target))} (FORMAT parquet, "
                    f"PARTITION_BY ({quote_ident(partition)}), WRITE_PARTITION_COLUMNS false, {metadata})")
    else:
        target.mkdir()
        con.execute(f"COPY ({select}) TO {quote_literal(str(target / 'data.parquet'))} (FORMAT parquet, {metadata})")


def write_marts(con: duckdb.DuckDBPyConnection, folder: Path, run_id: str, run_started: datetime) -> None:
    """The published tables into an empty folder: a read-only-to-be `marts.duckdb` and Parquet under `parquet/`.

    An optional table this run did not build is left out (whether or not an earlier night had it), and the
    listing `published_tables` says why; a table that is not optional and missing is an error.
    """
    (folder / "parquet").mkdir(parents=True)
    run_date = f"{run_started:%Y-%m-%d}"
    present = {str(r[0]) for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
    missing = [t for t in PUBLISHED if t not in present and not TABLES[t].optional]
    if missing:
        raise PublishError(f"the warehouse lacks the published table(s) {', '.join(missing)}: run `cjm run` first")
    con.execute(f"ATTACH {quote_literal(str(folder / 'marts.duckdb'))} AS published "
                f"(STORAGE_VERSION {quote_literal(STORAGE_VERSION)})")
    # One transaction for the whole file: each statement on its own would commit (a WAL write and an fsync) on its
    # own, ~250 of them (a comment per column), which cost more than the copies. The file is not shown before
    # its folder is renamed (Versions.stage), so a transaction changes nothing a reader can see.
    con.execute("BEGIN TRANSACTION")
    try:
        listing: list[tuple[Any, ...]] = []
        for table, partition in PUBLISHED.items():
            description = TABLES[table].description
            if table not in present:
                listing.append((table, False, None, partition, description, _NOT_BUILT, run_id, run_date))
                continue
            select = _select(con, table, run_id, run_date)
            con.execute(f"CREATE TABLE published.{quote_ident(table)} AS {select}")
            docs = column_docs(table, _columns(con, f"published.{quote_ident(table)}"))
            _describe(con, folder, table, description, docs, partition, select)
            rows = con.execute(f"SELECT count(*) FROM published.{quote_ident(table)}").fetchone()
            listing.append((table, True, rows[0] if rows else 0, partition, description, None, run_id, run_date))
        con.execute(f"CREATE TABLE published.{LISTING} ("
                    + ", ".join(f"{name} {type_}" for name, (type_, _) in _LISTING_COLUMNS.items()) + ")")
        con.executemany(f"INSERT INTO published.{LISTING} VALUES ({', '.join('?' * len(_LISTING_COLUMNS))})",
                        listing)
        _describe(con, folder, LISTING, _LISTING_DOC, {name: doc for name, (_, doc) in _LISTING_COLUMNS.items()},
                  None, f"SELECT * FROM published.{LISTING}")
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):  # not after a failed COMMIT (a full disk), which ended the transaction
            con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DETACH published")


def publish_marts(
    con: duckdb.DuckDBPyConnection, marts_dir: Path, run_id: str, run_started: datetime, keep: int = KEEP_RUNS
) -> Path:
    """Write this run's marts and make them `current`, the marts alone; returns the run's folder."""
    marts = marts_versions(marts_dir)
    with marts.publishing():
        marts.clean()
        folder = marts.stage(run_id, lambda f: write_marts(con, f, run_id, run_started))
        marts.show(folder)
        marts.prune(keep)
    return folder


# --- report ------------------------------------------------------------------------------------------------------


def _write_site(con: duckdb.DuckDBPyConnection, folder: Path, title: str, entity: Entity = CUSTOMERS,
                sessions_off: bool = False) -> None:
    # Imported here: plotly is only needed by the steps that draw.
    from cjm_analytics.graph import stage_graph, write_graphml
    from cjm_analytics.report import build_report

    build_report(con, folder, title, entity=entity, sessions_off=sessions_off)
    write_graphml(stage_graph(con), folder / GRAPHML)


def _clean_site(site: Versions) -> list[str]:
    """The site's leftovers, and the temp files of page writes whose process is gone (a live one may be writing)."""
    removed = site.clean()
    for path in site.root.iterdir():
        match = _PAGE_TEMP.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _show_site(site: Versions, folder: Path) -> None:
    site.show(folder)
    site.link_entries(folder)
    site.prune(KEEP_SITES)


def _index_analyses(con: duckdb.DuckDBPyConnection, reports_dir: Path, title: str) -> None:
    """analyses.html, which every page's navigation links, written again beside the site just shown: the pages of
    `cjm analyze` live in reports/ outside the versions, so a publish keeps them (report/analysis_pages.py)."""
    from cjm_analytics.report.analysis_pages import summary_of, write_analyses_index

    write_analyses_index(reports_dir, title, summary_of(con))


def stage_report(con: duckdb.DuckDBPyConnection, reports_dir: Path, version: str, title: str, *,
                 entity: Entity = CUSTOMERS, sessions_off: bool = False) -> Path:
    """The whole report site (pages, plotly.min.js, the GraphML graph) as a version, not shown yet; the pages
    speak of the entity (config `entity`) and show no session measure with sessions_off (build_report)."""
    site = site_versions(reports_dir)
    with site.publishing():
        _clean_site(site)
        return site.stage(version, lambda f: _write_site(con, f, title, entity, sessions_off))


def publish_report(con: duckdb.DuckDBPyConnection, reports_dir: Path, title: str, *, entity: Entity = CUSTOMERS,
                   sessions_off: bool = False) -> Path:
    """The report site rebuilt from the warehouse and shown at once (`cjm report`); returns its version's folder."""
    site = site_versions(reports_dir)
    # Sorts among run ids by time, and after the one before within a second: prune keeps the newest by name.
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-report"
    with site.publishing():
        _clean_site(site)
        folder = site.stage(version, lambda f: _write_site(con, f, title, entity, sessions_off))
        _show_site(site, folder)
        _index_analyses(con, reports_dir, title)
    return folder


# --- the run -----------------------------------------------------------------------------------------------------


def publish_run(
    con: duckdb.DuckDBPyConnection, marts_dir: Path, reports_dir: Path, run_id: str, run_started: datetime,
    title: str = "Customer journeys",
) -> dict[str, Any]:
    """Write this run's marts, then show them and the report site staged by `stage_report` under the run id together.

    Everything slow happens before the first swap; the two swaps are back to back, so the report and the marts only
    differ if the process dies between two renames, and then only until the next run publishes.
    """
    marts, site = marts_versions(marts_dir), site_versions(reports_dir)
    with marts.publishing():
        cleaned = marts.clean()
        folder = marts.stage(run_id, lambda f: write_marts(con, f, run_id, run_started))
        with site.publishing():
            report = site.folder / run_id
            staged = report.is_dir()  # not when publish_reports was left out (a benchmark, a custom flow)
            if staged:
                site.show(report)
            marts.show(folder)
            if staged:
                site.link_entries(report)
                site.prune(KEEP_SITES)
                _index_analyses(con, reports_dir, title)
        marts.prune(KEEP_RUNS)
    return {"published": str(folder), "current": str(marts_dir / marts.pointer),
            "report": str(report) if staged else None, "leftovers_removed": cleaned}


def show_failed_night(reports_dir: Path, health: Health, run_started: datetime) -> None:
    """A failed night publishes nothing, but the report that stays shown learns of it: its run_status.js (beside
    the shown site's pages) is replaced, and the overview says it shows the last good run (docs/checks.md)."""
    from cjm_analytics.report.site import write_run_status

    site = site_versions(reports_dir)
    shown = site.root / site.pointer
    if shown.is_dir():
        failed = "; ".join(c.message for c in health.failed[:3])  # the page says which run failed itself
        more = f" (+{len(health.failed) - 3} more, see table run_checks)" if len(health.failed) > 3 else ""
        write_run_status(shown, {"run_id": health.run_id, "run_started": f"{run_started:%Y-%m-%d %H:%M} UTC",
                                 "verdict": health.verdict, "summary": failed + more})
