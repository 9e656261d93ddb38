"""Bad input gets a clear reason and loses nothing: read = loaded + rejected + duplicate, file by file."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures import RUN_STARTED, make_config, run_steps, table

HEADER = "event_id,anonymous_id,user_id,event,ts,channel\n"


def _load(root: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    cfg = make_config(root)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    manifest = table(cfg, "SELECT file, status, rows_read, rows_loaded, rows_rejected, rows_duplicate "
                          "FROM load_manifest ORDER BY file")
    for m in manifest.itertuples():
        assert m.rows_read == m.rows_loaded + m.rows_rejected + m.rows_duplicate, m
    rejects = table(cfg, "SELECT row_number, reason FROM rejects ORDER BY file, row_number")
    return ([tuple(r)[2:] for r in manifest.itertuples()],
            [tuple(r)[1:] for r in rejects.itertuples()])


@pytest.mark.parametrize(
    ("name", "content", "counts", "reasons"),
    [
        ("quoted newline", HEADER.encode() + b'1,a1,,landing,2026-11-01T10:00:00Z,"two\nlines"\n'
         b"2,a1,,landing,2026-11-01T10:01:00Z,x\n", (2, 2, 0, 0), []),
        ("byte order mark", b"\xef\xbb\xbf" + HEADER.encode() + b"1,a1,,landing,2026-11-01T10:00:00Z,x\n",
         (1, 1, 0, 0), []),
        ("not UTF-8", HEADER.encode() + b"1,a1,,caf\xe9,2026-11-01T10:00:00Z,x\n2,a1,,ok,2026-11-01T10:00:00Z,x\n",
         (2, 1, 1, 0), [(1, "INVALID ENCODING")]),
        ("empty file", b"", (0, 0, 0, 0), []),
        ("header only", HEADER.encode(), (0, 0, 0, 0), []),
        ("wrong column counts", HEADER.encode() + b"1,a1,,landing\n2,a1,,landing,2026-11-01T10:00:00Z,x,y\n"
         b"3,a1,,landing,2026-11-01T10:00:00Z,x\n", (3, 1, 2, 0), [(1, "MISSING COLUMNS"), (2, "TOO MANY COLUMNS")]),
        # An unclosed quote would run to the end of the file: its first line is the reject, the lines after it
        # are read again as records of their own (tests/test_load_robustness.py).
        ("unclosed quote", HEADER.encode() + b"0,a1,,landing,2026-11-01T10:00:00Z,x\n"
         b'1,a1,,"landing,2026-11-01T10:00:00Z,x\n2,a1,,landing,2026-11-01T10:00:00Z,x\n', (3, 2, 1, 0),
         [(2, "UNQUOTED VALUE")]),
        ("duplicate ids in a file", HEADER.encode() + b"1,a1,,landing,2026-11-01T10:00:00Z,x\n"
         b"1,a1,,landing,2026-11-01T10:05:00Z,y\n", (2, 1, 0, 1), []),
        ("mixed offsets", HEADER.encode() + b"1,a1,,l,2026-11-01T10:00:00+02:00,\n2,a1,,l,2026-11-01T10:00:00Z,\n"
         b"3,a1,,l,2026-11-01 10:00:00 UTC,\n4,a1,,l,1762000000,\n5,a1,,l,1762000000000,\n", (5, 5, 0, 0), []),
    ],
)
def test_each_kind_of_bad_input(tmp_path: Path, name: str, content: bytes, counts: tuple[int, ...],
                                reasons: list[tuple[int, str]]) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "a.csv").write_bytes(content)
    manifest, rejects = _load(tmp_path)
    assert manifest == [("loaded", *counts)], name
    assert [(row, reason[: len(prefix)]) for (row, reason), (_, prefix) in zip(rejects, reasons, strict=True)] == [
        (row, prefix) for row, prefix in reasons]


def test_a_truncated_gzip_is_refused_whole_and_the_others_load(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    rows = "".join(f"g{i},a1,,landing,2026-11-01T10:00:00Z,x\n" for i in range(3000))
    whole = gzip.compress((HEADER + rows).encode())
    (tmp_path / "web" / "a.csv.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "web" / "b.csv").write_text(HEADER + "b1,a1,,landing,2026-11-01T10:00:00Z,x\n")
    manifest, rejects = _load(tmp_path)
    assert manifest == [("refused", 0, 0, 0, 0), ("loaded", 1, 1, 0, 0)]
    assert pd.isna(rejects[0][0])  # no row number: the whole file
    assert "file refused" in rejects[0][1] and "GZIP" in rejects[0][1]


def test_mixed_line_endings_refuse_the_file_with_the_cause(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "a.csv").write_bytes(HEADER.encode() + b"1,a1,,l,2026-11-01T10:00:00Z,x\r\n"
                                             b"2,a1,,l,2026-11-01T10:00:00Z,x\n")
    manifest, rejects = _load(tmp_path)
    assert manifest == [("refused", 0, 0, 0, 0)]
    assert "mixed line endings" in rejects[0][1]


def test_duplicate_ids_across_files_load_once(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "a.csv").write_text(HEADER + "1,a1,,landing,2026-11-01T10:00:00Z,x\n")
    (tmp_path / "web" / "b.csv").write_text(HEADER + "1,a1,,landing,2026-11-01T10:00:00Z,x\n"
                                            "2,a1,,landing,2026-11-01T10:00:00Z,x\n")
    manifest, _ = _load(tmp_path)
    assert manifest == [("loaded", 1, 1, 0, 0), ("loaded", 2, 1, 0, 1)]


# --- fuzzing --------------------------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["", " ", '"', ",", "\n", "'; drop table events; --", "<script>alert(1)</script>", "NULL"])
TIMESTAMPS = st.sampled_from(["2026-11-01T10:00:00Z", "2026-11-01 10:00:00", "1762000000", "not-a-date", "",
                              "1970-01-01T00:00:00Z", "2031-01-01T00:00:00Z", "2026-02-30T10:00:00Z"])
ROW = st.tuples(st.sampled_from(["1", "2", "3", ""]) | TEXT, TEXT, TEXT, TEXT, TIMESTAMPS, TEXT)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=25), garbage=st.lists(st.binary(max_size=40), max_size=4))
def test_fuzzed_files_never_crash_and_always_reconcile(tmp_path: Path, rows: list[tuple[str, ...]],
                                                       garbage: list[bytes]) -> None:
    root = tmp_path / "fuzz"
    shutil.rmtree(root, ignore_errors=True)
    (root / "web").mkdir(parents=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF records, so a field holding CR or LF is quoted
    writer.writerow(HEADER.strip().split(","))
    writer.writerows(rows)
    (root / "web" / "clean.csv").write_text(buffer.getvalue(), encoding="utf-8")
    (root / "web" / "garbage.csv").write_bytes(HEADER.encode() + b"\n".join(garbage))
    manifest, rejects = _load(root)
    clean = manifest[0]
    # A correctly quoted CSV is always read record by record: every record is accounted for.
    assert clean[0] == "loaded" and clean[1] == len(rows), (clean, rows)
    assert all(reason for _, reason in rejects)
