"""The `cjm` command: run the nightly pipeline, serve it on a schedule, rebuild the report, make sample data.

Every CjmError becomes one line on stderr and its exit code (2: config, 3: warehouse locked); no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cjm_analytics.config import Config, load_config
from cjm_analytics.errors import CjmError, ConfigError

_COUNTS = ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")


def _int(n: Any) -> str:
    return f"{int(n):,}" if n is not None else "-"


def _pct(x: Any) -> str:
    return f"{float(x):.1%}" if x is not None else "-"


def format_summary(config: Config, run_id: str, files: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """The few lines `cjm run` prints: reconciliation per source, headline figures, where the report is."""
    lines = [f"cjm run {run_id}"]
    for source in config.sources:
        mine = [f for f in files if f["source"] == source.name]
        total = {k: sum(int(f[k]) for f in mine) for k in _COUNTS}
        unchanged = sum(f["status"] == "unchanged" for f in mine)
        refused = [f for f in mine if f["status"] == "refused"]
        lines.append(
            f"  {source.name}: {len(mine)} file(s), {unchanged} unchanged; read {_int(total['rows_read'])} = "
            f"loaded {_int(total['rows_loaded'])} + rejected {_int(total['rows_rejected'])} "
            f"+ duplicate {_int(total['rows_duplicate'])}"
        )
        lines += [f"    refused {Path(f['file']).name}: {f['message']}" for f in refused]
    s = summary
    lines.append(
        f"warehouse: {_int(s.get('events_loaded'))} events ({_int(s.get('events_rejected'))} rejected, see table "
        f"rejects), {_int(s.get('customers'))} customers, {_int(s.get('sessions'))} sessions"
    )
    lines.append(
        f"journeys: {_int(s.get('journey_customers'))} customers, {_int(s.get('converted'))} reached "
        f"{config.goal} ({_pct(s.get('conversion_rate'))})"
    )
    if s.get("worst_dropoff_stage") is not None:
        lines.append(
            f"worst drop-off: {s['worst_dropoff_stage']}: {_pct(s['worst_dropoff_rate'])} of the customers "
            f"who reach it go no further"
        )
    lines.append(f"report: {config.reports / 'index.html'}")
    lines.append(f"marts for dashboards: {config.marts / 'current'} (marts.duckdb and parquet/)")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.no_prefect:
        from cjm_analytics.distributed import run_nightly_bucketed
        from cjm_analytics.nightly import run_nightly, run_summary

        # engine: dask without the orchestrator runs the same buckets one after another, in this process.
        run = run_nightly_bucketed if config.engine.kind == "dask" else run_nightly
        ctx, steps = run(config, full_refresh=args.full_refresh)
        run_id, files, summary = ctx.run_id, steps[0].counts["files"], run_summary(config.warehouse, config.duckdb)
    else:
        from pipelines.nightly import run_flow

        result = run_flow(config, str(args.config), full_refresh=args.full_refresh)
        run_id, files, summary = result["run_id"], result["steps"][0].counts["files"], result["summary"]
    print(format_summary(config, run_id, files, summary))
    return 0


def _serve(args: argparse.Namespace) -> int:
    load_config(args.config)  # fail now, not at 02:00
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "cjm serve needs a running Prefect server: start one with `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (a schedule does nothing on the temporary server)"
        )
    from prefect import serve

    from pipelines.nightly import nightly_deployment

    serve(nightly_deployment(str(Path(args.config).resolve()), cron=args.cron, name=args.name))
    return 0


def _report(args: argparse.Namespace) -> int:
    from cjm_analytics.publish import publish_report
    from cjm_analytics.warehouse import connect

    config = load_config(args.config)
    if not config.warehouse.exists():
        raise ConfigError(f"{args.config}: warehouse: {config.warehouse} does not exist yet; run `cjm run` first")
    con = connect(config.warehouse, read_only=True, settings=config.duckdb)
    try:
        publish_report(con, config.reports, config.report.title)  # the site and the GraphML graph, swapped in whole
        if args.export:
            from cjm_analytics.report.export import export_charts

            files = export_charts(con, config.reports, args.export)
            print(f"charts: {len(files)} files in {config.reports / 'export'}")
    finally:
        con.close()
    print(f"report: {config.reports / 'index.html'}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from cjm_analytics.sample import generate

    counts = generate(Path(args.out), n_customers=args.customers, seed=args.seed)
    print(", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cjm", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the nightly pipeline once")
    run.add_argument("--config", required=True, help="the YAML config (see README)")
    run.add_argument("--no-prefect", action="store_true", help="run the same steps without Prefect")
    run.add_argument("--full-refresh", action="store_true",
                     help="recompute every customer from the raw events (otherwise only those with changes)")
    run.set_defaults(func=_run)

    serve = sub.add_parser("serve", help="serve the nightly flow on a cron schedule (needs a Prefect server)")
    serve.add_argument("--config", required=True)
    serve.add_argument("--cron", default="0 2 * * *", help="when to run (default 02:00 every day)")
    serve.add_argument("--name", default="cjm-nightly", help="the deployment's name")
    serve.set_defaults(func=_serve)

    report = sub.add_parser("report", help="rebuild the report site from the warehouse")
    report.add_argument("--config", required=True)
    report.add_argument("--export", action="append", choices=("png", "pdf", "svg"),
                        help="also write every chart to reports/export/ (needs the `export` extra and Chromium)")
    report.set_defaults(func=_report)

    from cjm_analytics.analyze_cli import register_all

    register_all(sub)

    sample = sub.add_parser("sample", help="generate the seeded sample data set")
    sample.add_argument("--out", default="data/sample")
    sample.add_argument("--customers", type=int, default=5000)
    sample.add_argument("--seed", type=int, default=20261123)
    sample.set_defaults(func=_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except CjmError as e:
        print(f"cjm: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("cjm: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
