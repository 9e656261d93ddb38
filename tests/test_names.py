"""The names of cjm_analytics.names are spelled once: never in sql/, and what the SQL writes is the Python spelling."""

from __future__ import annotations

import duckdb
import pytest

from cjm_analytics import names
from cjm_analytics.analysis.attribution import channel_transitions
from cjm_analytics.analysis.segments import stage_funnel_by_segment
from cjm_analytics.config import Config
from cjm_analytics.sql_steps import SQL_DIR, run_sql
from cjm_analytics.warehouse import connect


def test_no_sql_file_spells_a_name() -> None:
    """SQL reads them as parameters ($no_segment, ...): a literal would drift from the Python spelling."""
    literals = {f"'{value}'" for value in names.SQL_NAMES.values()} | {"'(start) > '", "' > (end)'"}
    found = [(path.relative_to(SQL_DIR).as_posix(), literal) for path in sorted(SQL_DIR.rglob("*.sql"))
             for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("--")
             for literal in literals if literal in line]
    assert found == []


def test_the_sql_writes_the_python_names(sample: Config) -> None:
    """What the marts and the answers hold is spelled as cjm_analytics.names spells it (the sample has each)."""
    con = connect(sample.warehouse, read_only=True)
    try:
        def values(sql: str) -> set[str]:
            return {str(v) for (v,) in con.execute(sql).fetchall()}

        assert {names.START} == values("SELECT from_stage FROM stage_transitions WHERE from_order = 0")
        assert {names.END} == values("SELECT DISTINCT to_stage FROM stage_transitions "
                                     "WHERE to_order > (SELECT max(stage_order) FROM stage_list)")
        assert {names.DROP_OFF, names.CONTINUES, names.OTHER} <= values("SELECT to_node FROM sankey_links")
        # Half the sample's events have no campaign; channel attribution's chain has every state.
        assert names.NO_SEGMENT in set(stage_funnel_by_segment(con, "campaign", sample)["segment"])
        states = channel_transitions(con)
        assert names.START in set(states["from_state"])
        assert {names.CONVERSION, names.NULL_STATE} <= set(states["to_state"])
    finally:
        con.close()


def test_a_step_cannot_take_a_parameter_named_like_a_name() -> None:
    con = duckdb.connect()
    with pytest.raises(ValueError, match="no_segment"):
        run_sql(con, "analysis/segments_none", no_segment="x")
