"""Shared fixtures: a temporary PREFECT_HOME and one Prefect test harness per test process."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cjm_analytics.config import Config
from cjm_analytics.warehouse import connect
from tests.browser import browser  # noqa: F401  (a fixture, shared by the report and flow tests)

# Before Prefect is imported anywhere: never touch the developer's ~/.prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="cjm-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = REPO / "data" / "sample" / "cjm.yaml"
# What a run writes into the sample (`make demo` does): never an input of a test.
SAMPLE_OUTPUTS = ("warehouse", "reports", "marts")


def copy_sample(to: Path, source: Path = SAMPLE_CONFIG.parent) -> Path:
    """The sample's inputs and config, as committed, whatever `make demo` left in the folder.

    Links are copied as links (following them would turn `marts/current` into a folder), and the outputs of a
    run are left out, so a test starts from no warehouse, no report and no marts.
    """
    shutil.copytree(source, to, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SAMPLE_OUTPUTS))
    return to


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real Prefect API (temporary server and database) for flow tests, entered once per process."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The committed sample after one nightly run without Prefect, built once per test process: read it only."""
    from cjm_analytics.config import load_config
    from tests.fixtures import run_steps

    config = load_config(copy_sample(tmp_path_factory.mktemp("sample")) / "cjm.yaml")
    run_steps(config)
    return config


@pytest.fixture(scope="module")
def con(cfg: Config) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse of the module's `cfg` fixture."""
    c = connect(cfg.warehouse, read_only=True)
    yield c
    c.close()
