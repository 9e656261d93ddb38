"""cjm-analytics: customer journeys from clickstream and CRM events, computed in DuckDB."""

__version__ = "0.1.0"
