"""Read the published marts the way a dashboard does: DuckDB (1.4+ or 2.x) and pandas/pyarrow.

    python examples/dashboard/read_marts.py data/sample/marts

Both read marts/current/, which the nightly run swaps in only after it has succeeded; neither touches the
warehouse, so the nightly writer never blocks them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pyarrow.dataset as ds


def main(marts: Path) -> None:
    current = marts / "current"
    con = duckdb.connect(str(current / "marts.duckdb"), read_only=True)
    (run_id,) = con.execute("SELECT any_value(run_id) FROM stage_funnel").fetchone() or ("?",)
    print(f"duckdb {duckdb.__version__}: stage funnel of run {run_id}")
    for stage, reached, dropoff in con.execute(
        "SELECT stage, reached, dropoff_rate FROM stage_funnel ORDER BY stage_order"
    ).fetchall():
        print(f"  {stage:<15} {reached:>7,}  drop-off {'-' if dropoff is None else f'{dropoff:.1%}'}")
    con.close()

    daily = ds.dataset(current / "parquet" / "stage_conversion_daily", format="parquet", partitioning="hive")
    df = daily.to_table().to_pandas()
    last = df[df.cohort_date == df.cohort_date.max()]
    print(f"pyarrow: {len(df):,} rows of daily stage conversion in {df.cohort_month.nunique()} month partition(s);")
    print(f"  latest cohort {last.cohort_date.iloc[0]}: reached", dict(zip(last.stage, last.reached, strict=True)))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample/marts"))
