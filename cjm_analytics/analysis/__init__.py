"""The analyst's toolkit: questions asked of the warehouse, each a function returning a DataFrame.

Every answer is computed in DuckDB (sql/analysis/), takes a read-only warehouse connection, and is also a
`cjm analyze <name>` command writing CSV/Parquet and a report page.
"""
