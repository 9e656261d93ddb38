"""The raw layer: source files into raw_events, rejects and the load manifest (sql/raw/).

Every row read is loaded, rejected with a reason, or a duplicate; docs/lifecycle.md states what happens to a
file that is added, changed, renamed, moved, refused or deleted.
"""

from cjm_analytics.raw.load import FileLoad, load_source

__all__ = ["FileLoad", "load_source"]
