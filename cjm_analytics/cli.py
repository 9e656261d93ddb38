"""The `cjm` command: run the nightly pipeline, serve it on a schedule, rebuild the report, make sample data.

Every failure becomes one line on stderr and an exit code, never a traceback: a CjmError its own code (README,
Exit codes), what the machine refused (a full disk, a read-only folder, out of memory) 6, anything unexpected 1
with its traceback in a file the line names.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cjm_analytics.config import Config, load_config
from cjm_analytics.errors import ConfigError, as_user_error

if TYPE_CHECKING:  # annotations only: `cjm report` and `cjm analyze` need not import the nightly steps
    from cjm_analytics.checks import Health
    from cjm_analytics.raw import FileLoad


def _int(n: Any) -> str:
    return f"{int(n):,}" if n is not None else "-"


def _pct(x: Any) -> str:
    return f"{float(x):.1%}" if x is not None else "-"


def format_summary(config: Config, run_id: str, files: list[FileLoad], summary: dict[str, Any],
                   health: Health | None = None) -> str:
    """The few lines `cjm run` prints: reconciliation per source, files gone or renamed, the checks' verdict,
    headline figures, where the report is."""
    lines = [f"cjm run {run_id}"]
    for source in config.sources:
        mine = [f for f in files if f.source == source.name]
        unchanged = sum(f.status == "unchanged" for f in mine)
        lines.append(
            f"  {source.name}: {len(mine)} file(s), {unchanged} unchanged; read {_int(sum(f.rows_read for f in mine))}"
            f" = loaded {_int(sum(f.rows_loaded for f in mine))} + rejected {_int(sum(f.rows_rejected for f in mine))}"
            f" + duplicate {_int(sum(f.rows_duplicate for f in mine))}"
            + (f" + filtered {_int(sum(f.rows_filtered for f in mine))}" if source.where or source.where_not else "")
        )
        lines += [f"    refused {Path(f.file).name}: {f.message}" for f in mine if f.status == "refused"]
        # Files gone from the folder or renamed (docs/lifecycle.md): what the run did with them.
        lines += [f"    {f.status} {Path(f.file).name}: {f.message}" for f in mine
                  if f.status in ("retracted", "missing", "renamed")]
        lines += [f"    read nothing from {Path(f.file).name}: {f.message}" for f in mine
                  if f.status == "loaded" and not f.rows_read]
    s, e = summary, config.entity
    sessions = "sessions: off" if config.sessions.off else f"{_int(s.get('sessions'))} sessions"
    lines.append(
        f"warehouse: {_int(s.get('events_loaded'))} events ({_int(s.get('events_rejected'))} rejected, see table "
        f"rejects), {_int(s.get('customers'))} {e.plural}, {sessions}"
    )
    lines.append(
        f"journeys: {_int(s.get('journey_customers'))} {e.plural}, {_int(s.get('converted'))} reached "
        f"{config.goal} ({_pct(s.get('conversion_rate'))})"
    )
    if s.get("worst_dropoff_stage") is not None:
        lines.append(
            f"worst drop-off: {s['worst_dropoff_stage']}: {_pct(s['worst_dropoff_rate'])} of the {e.plural} "
            f"who reach it go no further"
        )
    if health is not None:
        lines.append(f"checks: {health.summary()}")
    lines.append(f"report: {config.reports / 'index.html'}")
    lines.append(f"marts for dashboards: {config.marts / 'current'} (marts.duckdb and parquet/)")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from cjm_analytics.progress import reporting

    config = load_config(args.config)
    with reporting(say_finished=args.no_prefect):  # Prefect logs a line for each finished task itself
        return _run_reporting(args, config)


def _run_reporting(args: argparse.Namespace, config: Config) -> int:
    from cjm_analytics import nightly

    if args.no_prefect:
        ctx, steps = nightly.run_nightly(config, full_refresh=args.full_refresh, reload=args.reload,
                                         force_publish=args.force_publish)
        run_id, summary = ctx.run_id, nightly.run_summary(config.warehouse, config.duckdb)
    else:
        # Prefect's SDK reports first uses to Prefect from an interactive terminal; a nightly job's command does
        # not, unless the user says otherwise (DO_NOT_TRACK=0). Set before Prefect is imported.
        os.environ.setdefault("DO_NOT_TRACK", "1")
        _prefect_home_if_none(config.warehouse)
        from pipelines.nightly import run_flow

        result = run_flow(config, str(args.config), full_refresh=args.full_refresh, reload=args.reload,
                          force_publish=args.force_publish)
        run_id, summary, steps = result["run_id"], result["summary"], result["steps"]
    loaded = next(s for s in steps if isinstance(s, nightly.LoadResult))
    health = next((s.health for s in steps if isinstance(s, nightly.HealthResult)), None)
    print(format_summary(config, run_id, loaded.files, summary, health))
    return 0


def _prefect_home_if_none(warehouse: Path) -> None:
    """A user without a writable home (a service account, systemd's DynamicUser) gets Prefect's files beside the
    warehouse, in `<warehouse>.prefect/home`, instead of a warning from Prefect on every run."""
    if "PREFECT_HOME" in os.environ:
        return
    try:
        (Path.home() / ".prefect").mkdir(exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home at all
        home = warehouse.with_name(warehouse.name + ".prefect") / "home"
        with contextlib.suppress(OSError):  # Prefect makes only the last folder; an unwritable one fails later
            home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)


def _serve(args: argparse.Namespace) -> int:
    load_config(args.config)  # fail now, not at 02:00
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from pipelines.nightly import serve_nightly

    serve_nightly(str(Path(args.config).resolve()), cron=args.cron, name=args.name)
    return 0


def _report(args: argparse.Namespace) -> int:
    from cjm_analytics.publish import publish_report
    from cjm_analytics.warehouse import connect

    config = load_config(args.config)
    if not config.warehouse.exists():
        raise ConfigError(f"{args.config}: warehouse: {config.warehouse} does not exist yet; run `cjm run` first")
    con = connect(config.warehouse, read_only=True, settings=config.duckdb)
    try:
        # The site and the GraphML graph, swapped in whole.
        publish_report(con, config.reports, config.report.title, entity=config.entity.words,
                       sessions_off=config.sessions.off)
        if args.export:
            from cjm_analytics.report.export import export_charts

            files = export_charts(con, config.reports, args.export, entity=config.entity.words)
            print(f"charts: {len(files)} files in {config.reports / 'export'}")
    finally:
        con.close()
    print(f"report: {config.reports / 'index.html'}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from cjm_analytics.validate import format_validation, validate

    config = load_config(args.config)
    found = validate(config, allow_empty_stages=args.allow_empty_stages, preview=args.journeys)
    print(format_validation(config, found))
    if found.errors:
        first = found.errors[0]
        more = f" (and {len(found.errors) - 1} more error(s) above)" if len(found.errors) > 1 else ""
        raise ConfigError(f"{args.config}: {first.where}: {first.message}{more}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from cjm_analytics.sample import generate

    counts = generate(Path(args.out), n_customers=args.customers, seed=args.seed)
    print(", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    return 0


def _version() -> str:
    """What a bug report needs: this version, and the Python and DuckDB it runs on."""
    import platform

    import duckdb

    from cjm_analytics import __version__

    return f"cjm {__version__} (Python {platform.python_version()}, DuckDB {duckdb.__version__})"


# The commands besides `analyze`, whose options are known without importing the analyses.
_COMMANDS = ("run", "serve", "validate", "report", "sample")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `cjm` parser; given the arguments, without `analyze` when they ask for another command: registering the
    analyses imports them with pandas and plotly (0.4 s), which `cjm run --help` or `cjm validate` need not pay."""
    parser = argparse.ArgumentParser(prog="cjm", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the nightly pipeline once")
    run.add_argument("--config", required=True, help="the YAML config (see README)")
    run.add_argument("--no-prefect", action="store_true", help="run the same steps without Prefect")
    run.add_argument("--reload", action="store_true",
                     help="read every source file again and retract the files that are gone (docs/lifecycle.md); "
                          "implies --full-refresh")
    run.add_argument("--force-publish", action="store_true",
                     help="publish even if an error-level health check fails (docs/checks.md)")
    run.add_argument("--full-refresh", action="store_true",
                     help="recompute every customer from the raw events (otherwise only those with changes)")
    run.set_defaults(func=_run)

    serve = sub.add_parser("serve", help="serve the nightly flow on a cron schedule (needs a Prefect server)")
    serve.add_argument("--config", required=True)
    serve.add_argument("--cron", default="0 2 * * *", help="when to run (default 02:00 every day)")
    serve.add_argument("--name", default="cjm-nightly", help="the deployment's name")
    serve.set_defaults(func=_serve)

    validate = sub.add_parser("validate", help="check the config against the data without running (nothing is "
                              "written to the warehouse)")
    validate.add_argument("--config", required=True)
    validate.add_argument("--allow-empty-stages", action="store_true",
                          help="a stage whose rules match no event is a warning, not an error")
    validate.add_argument("--journeys", type=int, default=5, help="how many journeys to preview (default 5)")
    validate.set_defaults(func=_validate)

    report = sub.add_parser("report", help="rebuild the report site from the warehouse")
    report.add_argument("--config", required=True)
    report.add_argument("--export", action="append", choices=("png", "pdf", "svg"),
                        help="also write every chart to reports/export/ (needs the `export` extra and Chromium)")
    report.set_defaults(func=_report)

    command = next((a for a in argv or () if not a.startswith("-")), None)
    if command not in _COMMANDS:  # analyze, none (`cjm --help` lists them all) or a mistyped one
        from cjm_analytics.analyze_cli import register_all

        register_all(sub)

    sample = sub.add_parser("sample", help="generate the seeded sample data set")
    sample.add_argument("--out", default="data/sample")
    sample.add_argument("--customers", type=int, default=5000)
    sample.add_argument("--seed", type=int, default=20261123)
    sample.set_defaults(func=_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("cjm: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        error = as_user_error(e)
        if error is None:
            details = _write_details(e, args)
            what = "DuckDB failed" if _is_duckdb_error(e) else f"internal error: {type(e).__name__}"
            print(f"cjm: {what}: {_first_line(e)} (details in {details})", file=sys.stderr)
            return 1
        print(f"cjm: error: {error}", file=sys.stderr)
        return error.exit_code
    return code


def _is_duckdb_error(e: Exception) -> bool:
    import duckdb

    return isinstance(e, duckdb.Error)


def _first_line(e: BaseException) -> str:
    return next((line.strip() for line in str(e).splitlines() if line.strip()), "")


def _write_details(e: Exception, args: argparse.Namespace) -> Path:
    """Write the traceback beside the warehouse (`<warehouse>.error.log`), else to a file in the temp folder."""
    text = "".join(traceback.format_exception(e))
    candidates = []
    with contextlib.suppress(Exception):
        if getattr(args, "config", None):
            warehouse = load_config(args.config).warehouse
            candidates.append(warehouse.with_name(warehouse.name + ".error.log"))
    candidates.append(Path(tempfile.gettempdir()) / f"cjm-error-{os.getpid()}.log")
    for path in candidates:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"cjm {' '.join(sys.argv[1:])}\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return candidates[-1]


if __name__ == "__main__":
    sys.exit(main())
