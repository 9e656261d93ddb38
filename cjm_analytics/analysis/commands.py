"""`cjm analyze <name>`: each analysis module registers its command here through `add_analysis`."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.output import write_analysis_page, write_table
from cjm_analytics.config import Config, load_config
from cjm_analytics.errors import ConfigError

# Modules with a `register(add_analysis)` function, in the order their commands are listed.
ANALYSIS_MODULES: tuple[str, ...] = (
    "funnels", "segments", "timing", "paths", "pain_points", "emotion", "attribution",
)


@dataclass(frozen=True)
class Answer:
    """What an analysis command produces: the table, and how the report page presents it."""

    table: pd.DataFrame
    title: str
    intro: str
    figure: go.Figure | None = None


Compute = Callable[[duckdb.DuckDBPyConnection, Config, argparse.Namespace], Answer]
AddAnalysis = Callable[[str, str, Compute], argparse.ArgumentParser]


def _open(config: Config) -> duckdb.DuckDBPyConnection:
    from cjm_analytics.warehouse import connect

    if not config.warehouse.exists():
        raise ConfigError(f"warehouse: {config.warehouse} does not exist yet; run `cjm run` first")
    return connect(config.warehouse, read_only=True, settings=config.duckdb)


def _run(name: str, compute: Compute, args: argparse.Namespace) -> int:
    config = load_config(args.config)
    con = _open(config)
    try:
        answer = compute(con, config, args)
        out = Path(args.out) if args.out else config.reports / "analysis" / f"{name}.csv"
        write_table(answer.table, out)
        page = write_analysis_page(con, config.reports, f"analysis-{name}", answer.title, answer.intro,
                                   answer.table, answer.figure, site_title=config.report.title)
    finally:
        con.close()
    print(answer.table.head(20).to_string(index=False))
    print(f"table: {out}\npage: {page}")
    return 0


def register_all(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `analyze` with one sub-command per analysis."""
    analyze = subparsers.add_parser("analyze", help="answer an analyst's question (writes CSV/Parquet and a page)")
    commands = analyze.add_subparsers(dest="analysis", required=True)

    def add_analysis(name: str, help_text: str, compute: Compute) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--config", required=True, help="the YAML config of the warehouse")
        parser.add_argument("--out", help="a .csv or .parquet file (default: <reports>/analysis/<name>.csv)")
        parser.set_defaults(func=lambda args: _run(name, compute, args))
        return parser

    for module in ANALYSIS_MODULES:
        importlib.import_module(f"cjm_analytics.analysis.{module}").register(add_analysis)
