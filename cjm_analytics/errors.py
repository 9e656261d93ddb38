"""Errors a user can act on; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class CjmError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code = 1


class ConfigError(CjmError):
    """The config file is missing, malformed or names something that does not exist."""

    exit_code = 2


class SourceError(CjmError):
    """A source file cannot be read as configured (the whole file is refused)."""

    exit_code = 1


class WarehouseLockedError(CjmError):
    """Another run holds the warehouse."""

    exit_code = 3


class WarehouseBusyError(CjmError):
    """A process other than a cjm run (a notebook, a dashboard, `cjm report`) kept the warehouse open longer than
    a run or a reader waits for it."""

    exit_code = 4


class PublishError(CjmError):
    """The marts or the report can't be published where the config says (e.g. a filesystem without links)."""

    exit_code = 1
