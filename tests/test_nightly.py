"""The run's composition (one plan for both engines, walked by run_nightly and the flow) and the run's plan
(the derivation fingerprint hashed once, the rule tables the buckets read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

import cjm_analytics.nightly as nightly
from cjm_analytics.config import Config
from cjm_analytics.distributed import export_buckets, process_bucket
from cjm_analytics.nightly import BUCKETED_STEPS, ExportResult, InProcess, LoadResult, RunContext, run_steps
from cjm_analytics.warehouse import open_warehouse
from tests.fixtures import make_config, write_csv

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    1,a1,,landing,2026-11-01T10:00:00Z,ads
    2,a1,u1,add_to_cart,2026-11-01T10:05:00Z,
    3,,u2,order,2026-11-01T11:00:00Z,
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Config:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    return make_config(tmp_path)


class Recording(InProcess):
    """Runs nothing: records which steps and buckets the plan asks for, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def step(self, name: str, step: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        return ExportResult(name, 0.0, folders=[Path("bucket-0"), Path("bucket-1")])

    def map(self, name: str, step: Any, items: list[Path], config: Config) -> list[Path]:
        self.calls += [name] * len(items)
        return items


def _walk(config: Config) -> list[str]:
    runner = Recording()
    for _ in run_steps(RunContext.start(config), runner):
        pass
    return runner.calls


def test_both_engines_walk_one_plan_and_differ_only_in_the_bucketed_core(
        tiny: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    # A step added to the one list shows in both engines' runs, at the same place: the run is composed once.
    added = (*nightly.NIGHTLY_STEPS[:5], ("a_new_step", nightly.aggregate_step), *nightly.NIGHTLY_STEPS[5:])
    monkeypatch.setattr(nightly, "NIGHTLY_STEPS", added)
    local = _walk(tiny)
    on_dask = _walk(tiny.model_copy(update={"engine": tiny.engine.model_copy(update={"kind": "dask"})}))
    assert local == [name for name, _ in added]
    assert on_dask == ["load_sources", "stitch_identities", "export_buckets", "process_bucket", "process_bucket",
                       "import_buckets", "aggregate", "a_new_step", "check_health", "publish_reports", "publish_marts"]
    at = on_dask.index("export_buckets")
    assert on_dask[:at] + list(BUCKETED_STEPS) + on_dask[on_dask.index("import_buckets") + 1:] == local


def test_the_derivation_fingerprint_is_hashed_once_per_run(tiny: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Config] = []
    original = nightly.derivation_fingerprint

    def counting(config: Config) -> str:
        calls.append(config)
        return original(config)

    monkeypatch.setattr(nightly, "derivation_fingerprint", counting)
    until_aggregate = nightly.NIGHTLY_STEPS[:[name for name, _ in nightly.NIGHTLY_STEPS].index("aggregate") + 1]
    monkeypatch.setattr(nightly, "NIGHTLY_STEPS", until_aggregate)  # the steps that need it; publishing is slow
    _, steps = nightly.run_nightly(tiny)
    assert len(calls) == 1
    loaded = steps[0]
    assert isinstance(loaded, LoadResult) and [f.rows_loaded for f in loaded.files] == [3]
    assert loaded.counts == {"files": [f.as_dict() for f in loaded.files]}  # what run_log keeps, as before


def test_a_bucket_maps_stages_with_the_rules_the_run_wrote_not_its_own_config(tiny: Config, tmp_path: Path) -> None:
    ctx = RunContext.start(tiny)
    nightly.load_sources(ctx)
    nightly.stitch_identities_step(ctx)  # decides the run's plan and writes its rule tables
    with open_warehouse(tiny.warehouse) as con:
        folders = export_buckets(con, tmp_path / "buckets", 1, full=True)
    # A worker handed another config (say, an older deployment's) still maps with the run's rules.
    other = make_config(tmp_path, stages=[{"name": "only", "events": ["*"]}], goal="only")
    output = process_bucket(folders[0], other)
    events = duckdb.sql(f"SELECT event_id, stage FROM read_parquet('{output / 'events.parquet'}') ORDER BY 1")
    assert events.fetchall() == [("1", "browse"), ("2", "cart"), ("3", "buy")]


def _raised_through(*files: str) -> BaseException:
    """An exception raised through one function per file, outermost first, as if each file called the next."""
    call: Any = None
    for name in reversed(files):
        src = "def f():\n    raise RuntimeError('lost')\n" if call is None else "def f():\n    return nxt()\n"
        namespace: dict[str, Any] = {"nxt": call}
        exec(compile(src, name, "exec"), namespace)
        call = namespace["f"]
    try:
        call()
    except RuntimeError as e:
        return e
    raise AssertionError("did not raise")


def test_prefect_failing_under_the_plans_walker_is_still_prefects_failure() -> None:
    import prefect

    import pipelines.nightly as flow

    walker, runner = nightly.__file__, flow.__file__  # the library's plan walker calls Prefect through AsTasks
    engine = str(Path(prefect.__module_path__) / "task_engine.py")  # type: ignore[arg-type]
    step = str(Path(nightly.__file__).with_name("core.py"))
    assert flow._prefects_own(_raised_through(runner, walker, runner, engine))  # exit 5, as before the walker
    assert not flow._prefects_own(_raised_through(runner, walker, runner, engine, step, engine))  # the step's
