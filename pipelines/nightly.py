"""The nightly Prefect flow: one coarse task per step of cjm_analytics.nightly.NIGHTLY_STEPS.

Only composition lives here; every step is a plain function tested without Prefect. With `engine: dask` the
flow runs on a DaskTaskRunner and the per-customer core steps run as one task per customer bucket
(cjm_analytics.distributed, docs/scaling.md).
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import TaskRunner

from cjm_analytics.config import Config, Engine, load_config
from cjm_analytics.distributed import BUCKETED_STEPS, export_step, import_step, process_bucket
from cjm_analytics.errors import CjmError, ConfigError
from cjm_analytics.nightly import NIGHTLY_STEPS, RunContext, StepResult, run_summary
from cjm_analytics.warehouse import run_lock

NIGHTLY_CRON = "0 2 * * *"
# Reading files can fail for passing reasons (a network share, a file still being written); the rest is SQL.
# A bucket runs on a worker that can die under it; its output is replaced on every attempt.
RETRIED_STEPS = {"load_sources": 2, "process_bucket": 2}
RETRY_DELAY_SECONDS = {"process_bucket": 2}


def _retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """A config, source or lock error will fail the same way again: don't retry it."""
    try:
        state.result()
    except CjmError:
        return False
    except Exception:
        return True
    return False


def _as_task(name: str, step: Any) -> Any:
    # NO_CACHE: a nightly step must run every night, and its input (a Config) is not a cache key.
    return task(
        step,
        name=name,
        retries=RETRIED_STEPS.get(name, 0),
        retry_delay_seconds=RETRY_DELAY_SECONDS.get(name, 10),
        retry_condition_fn=_retry_unless_user_error,
        cache_policy=NO_CACHE,
    )


STEP_TASKS = [(name, _as_task(name, step)) for name, step in NIGHTLY_STEPS]
# engine: dask. Export and import are called (on the driver); only the buckets are submitted to the runner.
EXPORT_TASK = _as_task("export_buckets", export_step)
BUCKET_TASK = _as_task("process_bucket", process_bucket)
IMPORT_TASK = _as_task("import_buckets", import_step)


def _core_by_bucket(ctx: RunContext) -> list[StepResult]:
    exported, folders = EXPORT_TASK(ctx)
    outputs = BUCKET_TASK.map(folders, config=unmapped(ctx.config)).result()
    return [exported, IMPORT_TASK(ctx, outputs)]


@flow(name="cjm-nightly", log_prints=False)
def nightly_flow(config_path: str, full_refresh: bool = False) -> dict[str, Any]:
    """Load, stitch, sessionize, build journeys, aggregate and publish, for the config at config_path."""
    logger = get_run_logger()
    config = load_config(config_path)
    ctx = RunContext.start(config, full_refresh)
    steps: list[StepResult] = []
    by_bucket = config.engine.kind == "dask"
    with run_lock(config.warehouse, ctx.run_id):
        for name, step_task in STEP_TASKS:
            if by_bucket and name in BUCKETED_STEPS:
                results = _core_by_bucket(ctx) if name == BUCKETED_STEPS[0] else []
            else:
                results = [step_task(ctx)]
            for result in results:
                logger.info("%s finished in %.2fs: %s", result.step, result.seconds, _brief(result.counts))
            steps += results
    return {"run_id": ctx.run_id, "steps": steps, "summary": run_summary(config.warehouse, config.duckdb)}


def task_runner(engine: Engine) -> TaskRunner[Any] | None:
    """The task runner an engine needs: a DaskTaskRunner for `dask`, None (the flow's default) for `local`."""
    if engine.kind != "dask":
        return None
    try:
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError:
        raise ConfigError("engine: kind dask needs the dask extra: pip install 'cjm-analytics[dask]'") from None
    if engine.address:
        return DaskTaskRunner(address=engine.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": engine.workers, "threads_per_worker": 1, "dashboard_address": None},
    )


def flow_for(config: Config) -> Flow[..., dict[str, Any]]:
    """The nightly flow with the task runner the config's engine asks for."""
    runner = task_runner(config.engine)
    return nightly_flow if runner is None else nightly_flow.with_options(task_runner=runner)


def run_flow(config: Config, config_path: str, full_refresh: bool = False) -> dict[str, Any]:
    """Run the nightly flow once with the config's task runner (`cjm run`).

    Without PREFECT_API_URL, Prefect starts a temporary server in each process that needs one. Dask workers
    must report to the driver's: so with engine dask the temporary server is started here and its address
    travels to the workers with the flow's settings.
    """
    runner_flow = flow_for(config)
    if config.engine.kind != "dask" or PREFECT_API_URL.value():
        return runner_flow(config_path=config_path, full_refresh=full_refresh)
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the one Prefect itself would start in this process; stopped at exit
    server.start()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        return runner_flow(config_path=config_path, full_refresh=full_refresh)


def nightly_deployment(config_path: str, cron: str = NIGHTLY_CRON, name: str = "cjm-nightly") -> Any:
    """The nightly flow as a deployment on a cron schedule (UTC), for `prefect.serve`."""
    return flow_for(load_config(config_path)).to_deployment(
        name=name, cron=cron, parameters={"config_path": config_path}, description=nightly_flow.description
    )


def _brief(counts: dict[str, Any]) -> dict[str, Any]:
    files = counts.get("files")
    if not isinstance(files, list):
        return counts
    return {k: sum(int(f[k]) for f in files) for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")}
