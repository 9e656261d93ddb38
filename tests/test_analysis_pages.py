"""The pages of `cjm analyze`: one per analysis and parameters, listed on analyses.html (linked from every
page's navigation, kept by a nightly publish), their numbers formatted, and readable with many segments (the top N
and the others folded into one, checked against pandas)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cjm_analytics import cli
from cjm_analytics.analysis.top_segments import (
    fold_conversion_times,
    fold_ordered_funnel,
    fold_stage_funnel,
    fold_stage_times,
    other_label,
)
from cjm_analytics.config import Config, load_config
from cjm_analytics.report.analysis_pages import (
    MAX_STEM,
    cell_formats,
    listed_pages,
    page_path,
    page_stem,
)
from tests.fixtures import RUN_STARTED, STAGES, WEB_COLUMNS, run_steps, write_csv

XSS = "<b>x</b>"
# Channel ch00 has 14 customers, ch01 13, … ch13 1, and XSS 2: 15 segments of known sizes.
SIZES = {**{f"ch{k:02d}": 14 - k for k in range(14)}, XSS: 2}


def _events() -> str:
    lines = ["event_id,anonymous_id,user_id,event,ts,channel"]
    n = 0
    for channel, size in SIZES.items():
        for i in range(size):
            n += 1
            quoted = f'"{channel}"'
            lines.append(f"{n}a,,u{n},landing,2026-11-01T10:00:00Z,{quoted}")
            if i % 2 == 0:
                lines.append(f"{n}b,,u{n},add_to_cart,2026-11-01T1{i % 10}:30:00Z,")
            if i % 4 == 0:
                lines.append(f"{n}c,,u{n},order,2026-11-0{2 + i % 3}T10:00:00Z,")
    return "\n".join(lines)


def _project(root: Path) -> Config:
    write_csv(root / "web" / "events.csv", _events())
    data = {"warehouse": "warehouse/cjm.duckdb", "reports": "reports", "stages": STAGES, "goal": "buy",
            "sources": [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}],
            "analysis": {"min_segment_size": 3}}
    (root / "cjm.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(root / "cjm.yaml")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    config = _project(tmp_path_factory.mktemp("analysis_pages"))
    run_steps(config, run_started=RUN_STARTED)
    return config


def analyze(cfg: Config, *argv: str) -> Path:
    """Run `cjm analyze …` in this process; the page it wrote."""
    pages = set(cfg.reports.glob("analysis-*.html"))
    stamps = {p: p.stat().st_mtime_ns for p in pages}
    assert cli.main(["analyze", *argv, "--config", str(cfg.config_path)]) == 0
    new = [p for p in cfg.reports.glob("analysis-*.html") if p not in pages or p.stat().st_mtime_ns != stamps[p]]
    assert len(new) == 1, new
    return new[0]


def cells(page: Path) -> list[list[str]]:
    body = page.read_text(encoding="utf-8").split("<tbody>")[-1].split("</tbody>")[0]
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


# ---- one page per analysis and parameters -----------------------------------------------------------------

def test_names_are_readable_bounded_and_distinct() -> None:
    assert page_stem("funnel", [("--steps", "visit,cart,buy"), ("--order", "strict")]) == \
        "analysis-funnel--steps-visit-cart-buy--order-strict"
    assert page_stem("attribution", []) == "analysis-attribution"
    assert page_stem("funnel", [("--hide-unelapsed", "")]) == "analysis-funnel--hide-unelapsed"
    long = page_stem("funnel", [("--steps", ",".join(f"step_{i}" for i in range(40)))])
    assert len(long) == MAX_STEM and re.fullmatch(r"analysis-funnel--steps-step-0-.*-[0-9a-f]{8}", long)
    assert long != page_stem("funnel", [("--steps", ",".join(f"step_{i}" for i in range(41)))])
    # A value that slugs to nothing is told apart by the hash.
    assert page_stem("funnel", [("--steps", "★")]) != page_stem("funnel", [("--steps", "☆")])
    assert re.fullmatch(r"[a-z0-9-]+", page_stem("paths-around", [("--anchor", "/Café <b>")]))


def test_each_parameter_set_keeps_its_page_and_table(cfg: Config) -> None:
    first = analyze(cfg, "funnel", "--steps", "browse,cart,buy")
    other = analyze(cfg, "funnel", "--steps", "browse,buy")
    assert first.name == "analysis-funnel--steps-browse-cart-buy.html"
    assert other.name == "analysis-funnel--steps-browse-buy.html"
    assert first.exists() and other.exists()
    tables = cfg.reports / "analysis"
    assert pd.read_csv(tables / "funnel--steps-browse-cart-buy.csv").step_name.tolist() == ["browse", "cart", "buy"]
    assert pd.read_csv(tables / "funnel--steps-browse-buy.csv").step_name.tolist() == ["browse", "buy"]
    # The same parameters again, given at their defaults or not: the same page, overwritten.
    again = analyze(cfg, "funnel", "--order", "ordered", "--steps", "browse,cart,buy")
    assert again == first
    # Parameters that slug alike but differ get a page of their own, named with a hash.
    alike = analyze(cfg, "funnel", "--steps", "browse, cart, buy")
    assert alike != first and re.fullmatch(r"analysis-funnel--steps-browse-cart-buy-[0-9a-f]{8}\.html", alike.name)
    assert page_path(cfg.reports, "funnel", [("--steps", "browse, cart, buy")]) == alike
    assert page_path(cfg.reports, "funnel", [("--steps", "browse,cart,buy")]) == first


def test_the_page_states_its_parameters_escaped(cfg: Config) -> None:
    page = analyze(cfg, "audience", "--dropped-at", "browse", "--segment", f"first_touch_channel={XSS}")
    text = page.read_text(encoding="utf-8")
    assert XSS not in text
    assert "Parameters: --dropped-at browse, --segment first_touch_channel=&lt;b&gt;x&lt;/b&gt;." in text
    assert "<code>cjm analyze audience --dropped-at browse --segment &#x27;first_touch_channel=&lt;b&gt;x&lt;/b&gt;" \
        "&#x27;</code>" in text


# ---- analyses.html ------------------------------------------------------------------------------------------

def test_the_index_lists_every_page_and_survives_a_nightly_publish(tmp_path: Path) -> None:
    config = _project(tmp_path)
    run_steps(config, until="publish_marts", run_started=RUN_STARTED)  # a published site, as every night
    index = config.reports / "analyses.html"
    assert "No analysis page yet." in index.read_text(encoding="utf-8")
    # A page of an earlier release (no record of its parameters) and one that is not ours at all.
    (config.reports / "analysis-funnel.html").write_text("<html><h1>Funnel: a &amp; b</h1>", encoding="utf-8")
    (config.reports / "analysis-junk.html").write_bytes(b"\xff\xfe<script type=\"application/json\" "
                                                        b"id=\"cjm-analysis\">[1, 2</script>")
    page = analyze(config, "funnel-by-segment", "--by", "first_touch_channel")
    listed = {p.file: p for p in listed_pages(config.reports)}
    assert listed[page.name].title == "Stage funnel by first_touch_channel"
    assert listed[page.name].parameters == "--by first_touch_channel"
    assert listed["analysis-funnel.html"].title == "Funnel: a & b"
    assert listed["analysis-funnel.html"].parameters.startswith("not recorded")
    assert "analysis-junk.html" in listed
    text = index.read_text(encoding="utf-8")
    assert f'<a href="{page.name}">Stage funnel by first_touch_channel</a>' in text
    assert '<a href="analysis-funnel.html">Funnel: a &amp; b</a>' in text
    # The analysis page's own navigation links the index.
    assert '<a href="analyses.html">Analyses</a>' in page.read_text(encoding="utf-8")

    # The next night publishes a new version of the site: the pages stay, the index lists them, every page of the
    # site links it.
    run_steps(config, until="publish_marts")
    assert page.is_file() and not page.is_symlink()
    assert f'href="{page.name}"' in index.read_text(encoding="utf-8") and not index.is_symlink()
    for name in ("index.html", "funnel.html"):
        nav = re.findall(r"<nav\b[^>]*>.*?</nav>", (config.reports / name).read_text(encoding="utf-8"), re.S)[0]
        assert 'href="analyses.html"' in nav
    assert cli.main(["report", "--config", str(config.config_path)]) == 0  # `cjm report` publishes the same way
    assert page.is_file() and f'href="{page.name}"' in index.read_text(encoding="utf-8")


# ---- numbers -------------------------------------------------------------------------------------------------

def test_numbers_are_formatted_for_reading() -> None:
    table = pd.DataFrame({
        "segment": ["a", XSS], "reached": [12345, 7], "conversion_to_next": [0.12345, 0.0004213],
        "p_value": [0.0000321, 0.5], "q_value": [float("nan"), 1.0], "median_hours": [1234.56, float("nan")],
        "odds_ratio": [2.345, 0.004], "support_share": [float("nan"), 0.5], "converted": [3.0, float("nan")],
        "differs": [True, False],
    })
    formats = cell_formats(table, {"support_share": "not configured"})
    shown = [[formats[c](v) for c, v in row.items()] for _, row in table.iterrows()]
    assert shown == [
        ["a", "12,345", "12.3%", "3.2e-05", "—", "1,234.6", "2.35", "not configured", "3", "yes"],
        [XSS, "7", "0.042%", "0.500", "1.000", "—", "0.004", "50.0%", "—", "no"],
    ]


def test_pages_show_formatted_numbers_and_tables_keep_raw_ones(cfg: Config) -> None:
    page = analyze(cfg, "funnel", "--steps", "browse,cart,buy", "--segment", "first_touch_channel", "--top", "20")
    table = pd.read_csv(cfg.reports / "analysis" / f"{page.stem.removeprefix('analysis-')}.csv",
                        keep_default_na=False)
    row = table[(table.segment == "ch00") & (table.step == 3)].iloc[0]
    assert (row.completed, row.segment_size) == (4, 14)  # customers 0, 4, 8, 12
    assert row.conversion_from_first == pytest.approx(4 / 14)  # raw in the file
    shown = next(r for r in cells(page) if r[0] == "ch00" and r[3] == "3")
    assert shown[:10] == ["ch00", "14", "no", "3", "buy", "7", "4", "28.6%", "57.1%", shown[9]]
    assert any(r[0] == XSS for r in cells(page))  # the name shown as itself, escaped in the HTML


# ---- many segments: the top N and "other" ----------------------------------------------------------------------

def _other(full: pd.DataFrame, n: int, size: str, how: str) -> tuple[set[str], pd.DataFrame]:
    """The segments beyond the n largest and their rows, by pandas alone."""
    sizes = full.groupby("segment")[size].agg(how).sort_values(ascending=False, kind="stable")
    rest = set(sizes.index[n:])
    return rest, full[full.segment.isin(rest)]


def test_other_is_summed_and_its_rates_recomputed(cfg: Config) -> None:
    page = analyze(cfg, "funnel-by-segment", "--by", "first_touch_channel", "--top", "4")
    full = pd.read_csv(cfg.reports / "analysis" / f"{page.stem.removeprefix('analysis-')}.csv",
                       keep_default_na=False, na_values=[""])
    assert full.segment.nunique() == len(SIZES)  # the table file keeps every segment
    rest, rows = _other(full, 4, "segment_size", "max")
    assert len(rest) == len(SIZES) - 4
    expected = rows.groupby("stage_order").agg(reached=("reached", "sum"), exited=("exited", "sum"))
    expected["dropoff_rate"] = expected.exited / expected.reached
    expected["conversion_to_next"] = expected.reached.shift(-1) / expected.reached
    expected["conversion_from_first"] = expected.reached / expected.reached.iloc[0]

    folded = fold_stage_funnel(full, 4, 3)
    assert folded.segment.nunique() == 5 and set(folded.segment) - set(full.segment) == {other_label(len(rest))}
    other = folded[folded.segment == other_label(len(rest))].set_index("stage_order")
    pd.testing.assert_frame_equal(other[expected.columns].astype(float), expected.astype(float), check_names=False)
    assert (other.segment_size == rows.groupby("segment").segment_size.max().sum()).all()
    assert other.p_value.isna().all() and other.q_value.isna().all()  # a test against the rest is not summable
    # The top four as they were, in the table's order.
    pd.testing.assert_frame_equal(folded[folded.segment != other_label(len(rest))].reset_index(drop=True),
                                  full[~full.segment.isin(rest)].reset_index(drop=True), check_dtype=False)
    # On the page: five segments, the other's conversion as a percentage, and the note.
    shown = cells(page)
    assert {r[0] for r in shown} == set(folded.segment)
    first = next(r for r in shown if r[0] == other_label(len(rest)) and r[3] == "browse")
    assert first[5] == f"{expected.reached.iloc[0]:,}"
    text = page.read_text(encoding="utf-8")
    assert "15 segments: the page shows the 4 largest and the others as one" in text


def test_other_in_the_ordered_funnel_and_the_timings(cfg: Config) -> None:
    page = analyze(cfg, "funnel", "--steps", "browse,cart,buy", "--segment", "first_touch_channel")
    full = pd.read_csv(cfg.reports / "analysis" / f"{page.stem.removeprefix('analysis-')}.csv",
                       keep_default_na=False, na_values=[""])
    rest, rows = _other(full, 10, "segment_size", "max")
    expected = rows.groupby("step")[["entered", "completed", "dropped"]].sum()
    folded = fold_ordered_funnel(full, 10, 3)
    other = folded[folded.segment == other_label(len(rest))].set_index("step")
    assert other[["entered", "completed", "dropped"]].equals(expected)
    assert other.conversion_from_previous.tolist() == pytest.approx((expected.completed / expected.entered).tolist())
    assert other.conversion_from_first.tolist() == pytest.approx(
        (expected.completed / expected.completed.iloc[0]).tolist())
    assert other.median_hours_to_convert.isna().all()

    page = analyze(cfg, "time-between-stages", "--segment", "first_touch_channel", "--top", "3")
    full = pd.read_csv(cfg.reports / "analysis" / f"{page.stem.removeprefix('analysis-')}.csv",
                       keep_default_na=False, na_values=[""])
    rest, rows = _other(full, 3, "transitions", "sum")
    g = rows.assign(total=rows.mean_hours * rows.transitions).groupby(["from_stage", "to_stage"])
    folded = fold_stage_times(full, 3, 3)
    other = folded[folded.segment == other_label(len(rest))].set_index(["from_stage", "to_stage"]).sort_index()
    assert other.transitions.tolist() == g.transitions.sum().sort_index().tolist()
    assert other.mean_hours.tolist() == pytest.approx((g.total.sum() / g.transitions.sum()).sort_index().tolist())


def test_other_in_time_to_convert(cfg: Config) -> None:
    from cjm_analytics.analysis.timing import time_to_convert, time_to_convert_histogram, with_bin_columns
    from cjm_analytics.warehouse import connect

    con = connect(cfg.warehouse, read_only=True)
    try:
        summary = time_to_convert(con, "first_touch_channel", cfg)
        histogram = time_to_convert_histogram(con, [0, 24, 48, float("inf")], "first_touch_channel", cfg)
    finally:
        con.close()
    table = with_bin_columns(summary, histogram)
    rest, rows = _other(table, 2, "converted", "sum")
    folded, drawn = fold_conversion_times(table, histogram, 2, 3)
    other = folded[folded.segment == other_label(len(rest))].iloc[0]
    assert other.converted == rows.converted.sum() and pd.isna(other.median_hours)
    bins = histogram[histogram.segment.isin(rest)].groupby("bin").converted.sum()
    drawn_other = drawn[drawn.segment == other_label(len(rest))].set_index("bin")
    assert drawn_other.converted.tolist() == bins.tolist()
    assert drawn_other.share.tolist() == pytest.approx((bins / bins.sum()).tolist())
    assert drawn.segment.nunique() == 3
