"""What a run does with each of a source's files, from the manifest and the folder (docs/lifecycle.md).

Pure: the manifest's entries and the files present in, a LoadPlan out. The loader (raw/load.py) carries the plan
out in one transaction per source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class ManifestEntry:
    """One row of load_manifest: a file's content as it was last loaded, or last refused."""

    file: str
    content_hash: str
    status: Literal["loaded", "refused"]
    reading_fingerprint: str | None  # None: loaded before fingerprints were kept (read again once)
    rows_loaded: int


@dataclass(frozen=True)
class PresentFile:
    """A file the source's glob matches tonight."""

    index: int  # place in the source's file order: the first occurrence of an id wins by it
    path: Path
    size: int
    mtime: float
    digest: str

    @classmethod
    def of(cls, index: int, path: Path) -> PresentFile:
        stat = path.stat()
        return cls(index, path, stat.st_size, stat.st_mtime, content_hash(path))


@dataclass
class LoadPlan:
    """A source's files sorted by what tonight's run does with them."""

    unchanged: list[PresentFile] = field(default_factory=list)
    # New, changed, refused before, or read with other settings; plus (added by the loader) unchanged files that
    # hold a duplicate of an event whose loaded row goes.
    read: list[PresentFile] = field(default_factory=list)
    # Files loaded before, whose earlier rows tonight's reading replaces (the rest of `read` is new).
    known: set[str] = field(default_factory=set)
    renamed: list[tuple[ManifestEntry, PresentFile]] = field(default_factory=list)  # same content, new path
    retracted: list[ManifestEntry] = field(default_factory=list)  # gone: their events go
    kept: list[ManifestEntry] = field(default_factory=list)  # gone: their events stay (missing_files: keep)
    cleared_refusals: list[str] = field(default_factory=list)  # refused files that are gone

    @property
    def writes(self) -> bool:
        """Whether the warehouse changes."""
        return bool(self.read or self.renamed or self.retracted or self.cleared_refusals)


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes: what decides whether a file is new, unchanged or changed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plan_files(entries: list[ManifestEntry], present: list[PresentFile], fingerprint: str,
               missing_files: Literal["retract", "keep"], reload: bool = False) -> LoadPlan:
    """Sort the source's files: unchanged, to read, renamed, retracted, kept, or a refusal cleared.

    A file is unchanged only when its content was loaded with tonight's reading settings; a refused file is read
    again every run until it loads or goes. The warehouse holds what the folder's files give when read now: a
    file refused tonight has no rows (its earlier ones go), as a first load of the folder would have. A loaded
    file that is gone is a rename when a new file has its exact content (its rows only change path), else it is
    retracted or kept as the source says. `reload` reads every present file again and retracts every file that
    is gone, whatever the source says.
    """
    plan = LoadPlan()
    loaded = {e.file: e for e in entries if e.status == "loaded"}
    refused = {e.file for e in entries if e.status == "refused"}
    here = {str(f.path) for f in present}
    for f in present:
        entry = loaded.get(str(f.path))
        if (not reload and entry is not None and entry.content_hash == f.digest
                and entry.reading_fingerprint == fingerprint):
            plan.unchanged.append(f)
        else:
            plan.read.append(f)
            if entry is not None:
                plan.known.add(str(f.path))
    plan.cleared_refusals += sorted(refused - here)
    new = [f for f in plan.read if str(f.path) not in loaded and str(f.path) not in refused]
    for entry in sorted((e for e in loaded.values() if e.file not in here), key=lambda e: e.file):
        twin = None if reload or entry.reading_fingerprint != fingerprint else next(
            (f for f in new if f.digest == entry.content_hash), None)
        if twin is not None:
            new.remove(twin)
            plan.read.remove(twin)
            plan.renamed.append((entry, twin))
        elif reload or missing_files == "retract":
            plan.retracted.append(entry)
        else:
            plan.kept.append(entry)
    return plan
