"""Errors a user can act on; the CLI turns each into one line and an exit code."""

from __future__ import annotations

import errno


class CjmError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code = 1


class ConfigError(CjmError):
    """The config file is missing, malformed or names something that does not exist."""

    exit_code = 2


class AnalysisError(CjmError, ValueError):
    """An analysis was asked something it cannot answer: a step that names no stage, event or touchpoint, a
    segment no event has, bin edges out of order. Fixed on the command line, like a config (exit 2); a ValueError
    too, as a bad argument to the analysis function is in Python."""

    exit_code = 2


class MartMissingError(CjmError):
    """The warehouse has no marts (or a mart is missing): `cjm run` has not built them yet. Exit 2, as for a
    warehouse that does not exist yet."""

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


class OrchestratorError(CjmError):
    """Prefect itself failed (its temporary server did not start, its API could not be reached), not a step:
    nothing of the run is half-done, and the same run can simply be started again."""

    exit_code = 5


class ResourceError(CjmError):
    """The machine refused what a step needed: no space left, a read-only or forbidden folder, a file where a
    folder should be, out of memory. The warehouse is left as the last finished step committed it."""

    exit_code = 6


class ChecksFailedError(CjmError):
    """An error-level health check of the run failed: what it loaded is kept, nothing new is published."""

    exit_code = 7


def as_user_error(e: BaseException) -> CjmError | None:
    """The failure as an error with the one line a user can act on, or None if it is unexpected (a bug).

    A CjmError is itself; what the machine refused (an OSError, running out of memory, DuckDB failing to write
    for the same reasons) is a ResourceError naming the path and what to do.
    """
    import duckdb

    if isinstance(e, CjmError):
        return e
    if isinstance(e, OSError):
        return ResourceError(_os_message(e))
    if isinstance(e, MemoryError | duckdb.OutOfMemoryException):
        # DuckDB's second line says which limit it hit (memory_limit or max_temp_directory_size).
        limit = next((line.strip() for line in str(e).splitlines() if "limit was set by" in line), "")
        return ResourceError(
            f"out of memory: {' '.join(filter(None, (_first_line(e) or 'MemoryError', limit)))} Give the run more "
            f"memory, or set `duckdb: {{memory_limit: ...}}` below what the machine has free so that DuckDB spills "
            f"to disk, with room for it in `temp_directory` and `max_temp_directory_size` (docs/scaling.md)")
    if isinstance(e, duckdb.Error):
        # DuckDB reports a refused write (a full disk when it commits, say) in its own exception types, with the
        # system's words in the message.
        advice = next((a for words, a in _DUCKDB_OS_WORDS.items() if words in str(e)), None)
        if advice is not None:
            return ResourceError(f"DuckDB: {_first_line(e)}; {advice}")
    return None


# errno -> what to do about it; the message also names the path and the system's own words.
_OS_ADVICE = {
    errno.ENOSPC: "free space on that disk, or point the config's folders at a disk with room",
    errno.EDQUOT: "free space within the disk quota, or point the config's folders at a disk with room",
    errno.EROFS: "the file system is read-only: point the config's folders at a writable disk",
    errno.EACCES: "give the user running cjm access to it, or point the config at a folder it can write",
    errno.EPERM: "give the user running cjm access to it, or point the config at a folder it can write",
    errno.ENOTDIR: "a part of that path is a file, not a folder: check the paths in the config",
    errno.EEXIST: "a file is in the way of a folder cjm needs: check the paths in the config",
    errno.EISDIR: "that is a folder where cjm expects a file: check the paths in the config",
    errno.ENOMEM: "give the run more memory, or set `duckdb: {memory_limit: ...}` (docs/scaling.md)",
}
_DUCKDB_OS_WORDS = {
    "No space left on device": _OS_ADVICE[errno.ENOSPC],
    "Disk quota exceeded": _OS_ADVICE[errno.EDQUOT],
    "Read-only file system": _OS_ADVICE[errno.EROFS],
    "Permission denied": _OS_ADVICE[errno.EACCES],
    "Not a directory": _OS_ADVICE[errno.ENOTDIR],
}


def _os_message(e: OSError) -> str:
    path = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    what = e.strerror or str(e) or type(e).__name__
    advice = _OS_ADVICE.get(e.errno or 0)
    return "; ".join(part for part in (f"{path}: {what}" if path else what, advice) if part)


def _first_line(e: BaseException) -> str:
    return next((line.strip() for line in str(e).splitlines() if line.strip()), "")
