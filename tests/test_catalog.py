"""The catalog of tables against a built warehouse and against the docs."""

from __future__ import annotations

import re
from pathlib import Path

from cjm_analytics.catalog import CUSTOMER_TABLES, PUBLISHED, TABLES
from cjm_analytics.config import Config
from cjm_analytics.warehouse import connect

REPO = Path(__file__).resolve().parents[1]
# A table's heading in the docs: `### `a`, `b` — what they hold`.
_HEADING = re.compile(r"^### (.+?)(?: — .*)?$", re.MULTILINE)


def _documented(doc: str) -> set[str]:
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    return {name for heading in _HEADING.findall(text) for name in re.findall(r"`([a-z_]+)`", heading)}


def test_every_catalog_table_is_documented_and_every_documented_table_is_in_the_catalog() -> None:
    tables, marts = _documented("tables.md"), _documented("marts.md")
    assert set(TABLES) - tables - marts == set(), "add a ### heading to docs/tables.md"
    assert (tables | marts) - set(TABLES) == set(), "a table the docs describe is missing from cjm_analytics/catalog.py"
    # A dashboard's reader finds every published table in docs/marts.md.
    assert set(PUBLISHED) <= marts


def test_the_catalog_lists_every_table_of_a_built_warehouse_with_its_columns(sample: Config) -> None:
    """The sample (surveys configured: emotion_curve too) after the aggregate step."""
    con = connect(sample.warehouse, read_only=True)
    try:
        built = {str(t): [str(c) for c in cols] for t, cols in con.execute(
            "SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
            "WHERE NOT internal AND database_name = current_database() GROUP BY table_name").fetchall()}
    finally:
        con.close()
    # The sample has run one night: there is no earlier run for conversion_change to compare with.
    assert set(built) == set(TABLES) - {"conversion_change"}
    for name, table in TABLES.items():
        if table.columns:
            assert list(table.columns) == built[name], name
        if table.per_customer:  # core.clear_scope clears them by customer_key (identities by anonymous id)
            assert table.layer == "core" and ("customer_key" in built[name] or name == "identities"), name
    assert CUSTOMER_TABLES == ("identities", "events", "sessions", "journey_steps", "journeys", "stage_entries",
                               "stage_touchpoints", "stage_channels", "touchpoint_firsts", "channel_touches")
