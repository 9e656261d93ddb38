"""The analyst's toolkit: questions asked of the warehouse, each a function returning a DataFrame.

Every answer is computed in DuckDB (sql/analysis/) over a read-only warehouse connection; nothing here draws or
parses a command line. `cjm analyze <name>` (cjm_analytics/analyze_cli.py) writes each answer as CSV/Parquet and
a report page (cjm_analytics/report/analysis_pages.py); the nightly marts store three of them (marts.py).
"""
