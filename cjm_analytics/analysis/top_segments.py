"""The largest segments of a segmented answer, and the rest folded into one segment, for a page that stays
readable with many segments (`cjm analyze … --top N`); the table file keeps every segment.

The folded segment's counts are sums over its segments, and its rates are recomputed from those sums (never an
average of rates). What cannot be recomputed from counts — a median, a p90, a test against the rest — is NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cjm_analytics.analysis import stats

TOP_SEGMENTS = 10  # segments a page shows by default


def other_label(folded: int) -> str:
    """The folded segment's name, in parentheses like the pipeline's other names for what is not in the data."""
    return f"(other {folded} segments)"


def _fold(table: pd.DataFrame, n: int, size: str, per_segment: str, keys: Sequence[str],
          sums: Sequence[str], min_size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows of the n largest segments, as they are; the rows of the others summed per `keys`).

    Size is `size` per segment: its largest value (`per_segment="max"`, a column repeated on every row such as
    segment_size) or its total (`"sum"`, e.g. transitions). Ties keep the table's order.
    """
    sizes = table.groupby("segment", sort=False)[size].agg(per_segment)
    kept = set(sizes.sort_values(ascending=False, kind="stable").index[:n])
    rest = table[~table["segment"].isin(kept)]
    other = rest.groupby(list(keys), sort=False, as_index=False, dropna=False)[list(sums)].sum()
    folded = int(rest["segment"].nunique())
    other.insert(0, "segment", other_label(folded))
    size_of_other = int(sizes[~sizes.index.isin(kept)].sum())
    if "too_small" in table.columns:
        other["too_small"] = size_of_other < min_size
    return table[table["segment"].isin(kept)], other


def _with(kept: pd.DataFrame, other: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    return pd.concat([kept, other.reindex(columns=columns)], ignore_index=True)


def _ratio(part: pd.Series, whole: pd.Series) -> pd.Series:
    return part.astype(float) / whole.astype(float).where(whole != 0)


def fold_stage_funnel(table: pd.DataFrame, n: int, min_size: int) -> pd.DataFrame:
    """stage_funnel_by_segment with the segments beyond the n largest (by segment_size) as one."""
    if table["segment"].nunique() <= n:
        return table
    kept, other = _fold(table, n, "segment_size", "max", ["stage", "stage_order"],
                        ["segment_size", "reached", "exited"], min_size)
    other = other.sort_values("stage_order", kind="stable").reset_index(drop=True)
    reached = other["reached"]
    next_reached = reached.shift(-1)
    other["dropoff_rate"] = _ratio(other["exited"], reached)
    other["conversion_to_next"] = _ratio(next_reached, reached)
    other["conversion_from_first"] = _ratio(reached, pd.Series(reached.iloc[0], index=reached.index))
    for rate, k, total in [("dropoff", other["exited"], reached), ("conversion_to_next", next_reached, reached),
                           ("conversion_from_first", reached, pd.Series(reached.iloc[0], index=reached.index))]:
        low, high = stats.wilson_interval(k, total)
        known = k.notna()
        other[f"{rate}_ci_low"], other[f"{rate}_ci_high"] = np.where(known, low, np.nan), np.where(known, high, np.nan)
    return _with(kept, other, table.columns)


def fold_ordered_funnel(table: pd.DataFrame, n: int, min_size: int) -> pd.DataFrame:
    """An ordered funnel by segment with the segments beyond the n largest (by segment_size) as one."""
    if table["segment"].nunique() <= n:
        return table
    kept, other = _fold(table, n, "segment_size", "max", ["step", "step_name"],
                        ["segment_size", "entered", "completed", "dropped"], min_size)
    other = other.sort_values("step", kind="stable").reset_index(drop=True)
    other["conversion_from_previous"] = _ratio(other["completed"], other["entered"])
    other["conversion_from_first"] = _ratio(other["completed"],
                                            pd.Series(other["completed"].iloc[0], index=other.index))
    return _with(kept, other, table.columns)


def fold_stage_times(table: pd.DataFrame, n: int, min_size: int) -> pd.DataFrame:
    """time_between_stages by segment with the segments beyond the n largest (by transitions) as one: transitions
    summed, mean_hours weighted by them; median and p90 unknown."""
    if table["segment"].nunique() <= n:
        return table
    weighted = table.assign(hours_total=table["mean_hours"] * table["transitions"])
    kept, other = _fold(weighted, n, "transitions", "sum", ["from_stage", "to_stage"],
                        ["transitions", "hours_total"], min_size)
    other["mean_hours"] = _ratio(other["hours_total"], other["transitions"])
    return _with(kept.drop(columns="hours_total"), other, table.columns)


def fold_conversion_times(summary: pd.DataFrame, histogram: pd.DataFrame, n: int, min_size: int
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """time_to_convert (with its bin columns) and its histogram by segment, the segments beyond the n largest (by
    converted) as one: counts summed, shares recomputed from them; median and p90 unknown."""
    if summary["segment"].nunique() <= n:
        return summary, histogram
    bins = [c for c in summary.columns if c not in ("segment", "converted", "median_hours", "p90_hours", "too_small")]
    kept, other = _fold(summary.assign(one=0), n, "converted", "sum", ["one"], ["converted", *bins], min_size)
    folded_summary = _with(kept.drop(columns="one"), other.drop(columns="one"), summary.columns)
    top = histogram["segment"].isin(set(kept["segment"]))
    kept_h, rest = histogram[top], histogram[~top]
    bin_keys = ["bin", "label", "lower_hours", "upper_hours"]
    other_h = rest.groupby(bin_keys, sort=True, as_index=False)[["converted"]].sum()
    other_h.insert(0, "segment", other["segment"].iloc[0])
    other_h["share"] = _ratio(other_h["converted"], pd.Series(other_h["converted"].sum(), index=other_h.index))
    other_h["too_small"] = other["too_small"].iloc[0]
    return folded_summary, _with(kept_h, other_h, histogram.columns)
