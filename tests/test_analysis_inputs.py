"""Analysis queries take their inputs as arguments: no query reads a table that an earlier step of Python left on
the connection, except through a parameter that names it ($segments)."""

from __future__ import annotations

import re

from cjm_analytics.sql_steps import SQL_DIR

# A relation after FROM or JOIN that is one of ours (cjm_*) and not a macro call: a hidden input.
_HIDDEN = re.compile(r"\b(?:FROM|JOIN)\s+(cjm_\w+)\b(?!\s*\()", re.IGNORECASE)
_CREATED = re.compile(r"CREATE\s+OR\s+REPLACE\s+TEMP\s+TABLE\s+(\w+)", re.IGNORECASE)


def test_no_analysis_query_reads_a_temp_table_it_was_not_given() -> None:
    hidden = {}
    for path in sorted((SQL_DIR / "analysis").glob("*.sql")):
        text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("--"))
        if read := set(_HIDDEN.findall(text)) - set(_CREATED.findall(text)):
            hidden[path.name] = sorted(read)
    assert hidden == {}
