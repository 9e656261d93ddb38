"""How the report writes mart values: numbers, dates and names, formatted and escaped for HTML or plotly.js."""

from __future__ import annotations

import html
import math
from datetime import date, datetime
from typing import Any

import pandas as pd


def missing(value: Any) -> bool:
    """NULL as read from DuckDB: None, NaN, NaT or pd.NA, depending on the column and how it was read."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def number(value: Any) -> float | None:
    """A mart value as a float; None for NULL."""
    return None if missing(value) else float(value)


def count(value: Any) -> int:
    """A mart count as an int; NULL counts as 0 (only used where a count feeds a chart's geometry)."""
    return 0 if missing(value) else int(value)


def share(part: Any, whole: Any) -> float | None:
    """part / whole of two mart values; None when either is NULL or the whole is 0."""
    p, w = number(part), number(whole)
    return None if p is None or not w else p / w


def fmt_int(value: Any) -> str:
    """A count with thousands separators; a dash for NULL."""
    n = number(value)
    return "—" if n is None else f"{round(n):,}"


def fmt_num(value: Any, digits: int = 1) -> str:
    """A number with thousands separators and `digits` decimals; a dash for NULL."""
    n = number(value)
    return "—" if n is None else f"{n:,.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A rate (0..1) as a percentage; a dash for NULL."""
    n = number(value)
    return "—" if n is None else f"{n:.{digits}%}"


def fmt_hours(value: Any) -> str:
    """Hours with one decimal; a dash for NULL."""
    return fmt_num(value, 1)


def fmt_when(value: Any) -> str:
    """A run's start (a UTC TIMESTAMP) to the minute."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "unknown time" if missing(value) else str(value)


def as_date(value: Any) -> date | None:
    """A DATE or TIMESTAMP value (however DuckDB handed it over) as a date; None for NULL."""
    if missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    stamp = pd.Timestamp(value)
    return None if pd.isna(stamp) else stamp.date()


def fmt_date(value: Any) -> str:
    """A date as `5 Mar 2024`; a dash for NULL."""
    d = as_date(value)
    return "—" if d is None else f"{d.day} {d:%b %Y}"


def fmt_date_range(start: Any, end: Any) -> str:
    """Two dates as one short range: `1–30 Nov 2026`, `28 Oct – 3 Nov 2026`, `30 Dec 2025 – 2 Jan 2026`."""
    a, b = as_date(start), as_date(end)
    if a is None or b is None:
        return "no dates"
    if a == b:
        return fmt_date(a)
    if (a.year, a.month) == (b.year, b.month):
        return f"{a.day}–{b.day} {b:%b %Y}"
    if a.year == b.year:
        return f"{a.day} {a:%b} – {b.day} {b:%b %Y}"
    return f"{fmt_date(a)} – {fmt_date(b)}"


def plotly_text(name: object) -> str:
    """A data value made safe for plotly.js text, which reads a subset of HTML (<b>, <br>, entities).

    Only &, < and > are replaced: plotly.js decodes &amp; &lt; &gt; but not &quot;, so quotes stay as
    they are.
    """
    return str(name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def esc(value: object) -> str:
    """A value escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def fmt_rate(value: Any) -> str:
    """A rate (0..1) as a percentage with one decimal, or two significant digits below 0.1% (0.042%, not 0.0%);
    a dash for NULL."""
    n = number(value)
    return f"{n * 100:.2g}%" if n is not None and 0 < abs(n) < 0.001 else fmt_pct(n)


def fmt_p(value: Any) -> str:
    """A p- or q-value: three decimals, in scientific notation below 0.001 (3.2e-05); a dash for NULL."""
    n = number(value)
    if n is None:
        return "—"
    return f"{n:.1e}" if 0 < n < 0.001 else f"{n:.3f}"
