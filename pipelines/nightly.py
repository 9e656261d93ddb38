"""The nightly Prefect flow: one coarse task per step of cjm_analytics.nightly.NIGHTLY_STEPS.

Only composition lives here; every step is a plain function tested without Prefect.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cjm_analytics.config import load_config
from cjm_analytics.errors import CjmError
from cjm_analytics.nightly import NIGHTLY_STEPS, RunContext, StepResult, run_summary
from cjm_analytics.warehouse import run_lock

NIGHTLY_CRON = "0 2 * * *"
# Reading files can fail for passing reasons (a network share, a file still being written); the rest is SQL.
RETRIED_STEPS = {"load_sources": 2}


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
        retry_delay_seconds=10,
        retry_condition_fn=_retry_unless_user_error,
        cache_policy=NO_CACHE,
    )


STEP_TASKS = [(name, _as_task(name, step)) for name, step in NIGHTLY_STEPS]


@flow(name="cjm-nightly", log_prints=False)
def nightly_flow(config_path: str, full_refresh: bool = False) -> dict[str, Any]:
    """Load, stitch, sessionize, build journeys, aggregate and publish, for the config at config_path."""
    logger = get_run_logger()
    config = load_config(config_path)
    ctx = RunContext.start(config, full_refresh)
    steps: list[StepResult] = []
    with run_lock(config.warehouse, ctx.run_id):
        for name, step_task in STEP_TASKS:
            result: StepResult = step_task(ctx)
            logger.info("%s finished in %.2fs: %s", name, result.seconds, _brief(result.counts))
            steps.append(result)
    return {"run_id": ctx.run_id, "steps": steps, "summary": run_summary(config.warehouse)}


def nightly_deployment(config_path: str, cron: str = NIGHTLY_CRON, name: str = "cjm-nightly") -> Any:
    """The nightly flow as a deployment on a cron schedule (UTC), for `prefect.serve`."""
    return nightly_flow.to_deployment(
        name=name, cron=cron, parameters={"config_path": config_path}, description=nightly_flow.description
    )


def _brief(counts: dict[str, Any]) -> dict[str, Any]:
    files = counts.get("files")
    if not isinstance(files, list):
        return counts
    return {k: sum(int(f[k]) for f in files) for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")}
