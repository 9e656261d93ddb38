"""The nightly Prefect flow: one coarse task per step of the run's plan (cjm_analytics.nightly.run_plan).

The plan is the library's; here is only how it runs: each step as a task, each customer bucket as a task of
its own, on a DaskTaskRunner with `engine: dask` (docs/scaling.md). Every step is a plain function tested
without Prefect.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import httpx
import prefect
from prefect import Flow, flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import PrefectException
from prefect.settings import PREFECT_API_URL
from prefect.task_runners import TaskRunner

from cjm_analytics.alerts import alerting
from cjm_analytics.config import Config, Engine, load_config
from cjm_analytics.errors import CjmError, ConfigError, OrchestratorError, as_user_error
from cjm_analytics.nightly import InProcess, LoadResult, RunContext, StepResult, run_steps, run_summary
from cjm_analytics.warehouse import run_lock
from pipelines.prefect_server import state_folder, temporary_server

NIGHTLY_CRON = "0 2 * * *"
# Reading files can fail for passing reasons (a network share, a file still being written); the rest is SQL.
# A bucket runs on a worker that can die under it; its output is replaced on every attempt.
RETRIED_STEPS = {"load_sources": 2, "process_bucket": 2}
RETRY_DELAY_SECONDS = {"process_bucket": 2}


def _retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """A config, source or lock error will fail the same way again, as will a full disk, a read-only folder or
    running out of memory ten seconds later: don't retry them; the user is told at once."""
    try:
        state.result()
    except Exception as e:
        return as_user_error(e) is None
    return False


@cache  # one task per step function
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


class AsTasks(InProcess):
    """The plan's steps as Prefect tasks: a step is called (it runs here, on the driver, which holds the
    warehouse); the buckets are submitted to the flow's task runner, one task each."""

    def step(self, name: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return _as_task(name, step)(*args, **kwargs)

    def map(self, name: str, step: Callable[[Path, Config], Path], items: list[Path], config: Config) -> list[Path]:
        return list(_as_task(name, step).map(items, unmapped(config)).result())


@flow(name="cjm-nightly", log_prints=False)
def nightly_flow(config_path: str, full_refresh: bool = False, reload: bool = False,
                 force_publish: bool = False) -> dict[str, Any]:
    """Load, stitch, sessionize, build journeys, aggregate, check and publish, for the config at config_path.

    A failed error-level health check fails the flow run with the checks' one-line summary (docs/checks.md).
    """
    logger = get_run_logger()
    config = load_config(config_path)
    ctx = RunContext.start(config, full_refresh, reload, force_publish)
    steps: list[StepResult] = []
    with run_lock(config.warehouse, ctx.run_id), alerting(config, ctx.run_id):
        for result in run_steps(ctx, AsTasks()):
            logger.info("%s finished in %.2fs: %s", result.step, result.seconds, _brief(result))
            steps.append(result)
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


def run_flow(config: Config, config_path: str, full_refresh: bool = False, reload: bool = False,
             force_publish: bool = False) -> dict[str, Any]:
    """Run the nightly flow once with the config's task runner (`cjm run`).

    On the Prefect server the settings name (PREFECT_API_URL), else on a temporary one started for this run
    (pipelines/prefect_server.py); Dask workers report to the same one, its address travelling with the flow's
    settings. Prefect's console lines stay, without tracebacks: those go to `<warehouse>.prefect/run.log`.
    A step's exception comes out as it is, also when Prefect failed in turn while recording it (a full disk
    fails both); a failure of Prefect alone becomes an OrchestratorError.
    """
    runner_flow = flow_for(config)
    folder = state_folder(config.warehouse)
    with ExitStack() as stack:
        stack.enter_context(_tracebacks_to_file(folder / "run.log"))
        api = PREFECT_API_URL.value()
        if not api:
            api = stack.enter_context(temporary_server(folder))
        try:
            return runner_flow(config_path=config_path, full_refresh=full_refresh, reload=reload,
                               force_publish=force_publish)
        except Exception as e:
            if not _prefects_own(e):
                raise
            with suppress(OSError), open(folder / "run.log", "a", encoding="utf-8") as log:
                log.write("".join(traceback.format_exception(e)))
            first = next((x for x in reversed(_chain(e)) if _through_the_steps(x)), None)
            if isinstance(first, Exception):
                raise first from None
            raise OrchestratorError(
                f"Prefect failed ({api}): {type(e).__name__}: {_first_line(e)}; nothing of this run was committed "
                f"past its last finished step, run again (details in {folder / 'run.log'})") from None


def _prefects_own(e: BaseException) -> bool:
    """Whether Prefect itself failed (an API call, a lost run), not a step it ran nor the machine under both."""
    if isinstance(e, httpx.HTTPError | PrefectException):
        return True
    if isinstance(e, CjmError | OSError | MemoryError | duckdb.Error):
        return False
    frames = _files(e)
    return bool(frames) and frames[-1].startswith(str(prefect.__module_path__)) and not _through_the_steps(e)


_STEPS = str(Path(__file__).resolve().parents[1] / "cjm_analytics")
_HERE = str(Path(__file__).resolve().parent)


def _files(e: BaseException) -> list[str]:
    return [f.f_code.co_filename for f, _ in traceback.walk_tb(e.__traceback__)]


def _through_the_steps(e: BaseException) -> bool:
    """Whether e was raised in (or under) the library's code, which the steps and the flow call. Only the frames
    after this package's last count: the plan's walker (cjm_analytics.nightly.run_steps) calls Prefect through
    AsTasks, so its frames sit above every task, and Prefect failing under them is still Prefect's failure."""
    files = _files(e)
    last = max((i for i, f in enumerate(files) if f.startswith(_HERE)), default=-1)
    return any(f.startswith(_STEPS) for f in files[last + 1:])


def _chain(e: BaseException) -> list[BaseException]:
    """e, the exception it was raised from or while handling, that one's, and so on."""
    chain: list[BaseException] = []
    cause: BaseException | None = e
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def _first_line(e: BaseException) -> str:
    return next((line for line in str(e).splitlines() if line.strip()), "")


class _WithoutTraceback(logging.Filter):
    """On the console, Prefect's line that a task or the flow failed, without the traceback under it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


@contextmanager
def _tracebacks_to_file(path: Path) -> Iterator[None]:
    """Prefect's log of this run, tracebacks included, in `path`; its console handlers leave the tracebacks out.

    The file handler sits on the `prefect` loggers, which a record passes before the root's console handler, so
    it formats the traceback before the filter drops it. Prefect's API log handler (a Prefect server's UI) is
    untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, mode="w", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"))
    loggers = [logging.getLogger("prefect"), logging.getLogger("prefect._internal")]  # the latter does not propagate
    consoles = [h for lg in (logging.root, *loggers) for h in lg.handlers if isinstance(h, logging.StreamHandler)
                and not isinstance(h, logging.FileHandler)]
    strip = _WithoutTraceback()
    for lg in loggers:
        lg.addHandler(to_file)
    for h in consoles:
        h.addFilter(strip)
    # A log line that cannot be written (this file on a full disk, a server refusing logs) is not the run's
    # failure: without this, logging prints its own traceback for each one ("--- Logging error ---").
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        yield
    finally:
        logging.raiseExceptions = raise_exceptions
        for h in consoles:
            h.removeFilter(strip)
        for lg in loggers:
            lg.removeHandler(to_file)
        with suppress(OSError):  # its last lines, on a full disk
            to_file.close()


def serve_nightly(config_path: str, cron: str = NIGHTLY_CRON, name: str = "cjm-nightly") -> None:
    """Serve the nightly deployment on the Prefect server the settings name (`cjm serve`); a server that is not
    configured or fails is one line (ConfigError, OrchestratorError)."""
    _check_cron(cron)
    api = PREFECT_API_URL.value()  # the environment, or the active Prefect profile (`prefect config set`)
    if not api:
        raise ConfigError(
            "cjm serve needs a running Prefect server: start one with `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (a schedule does nothing on the temporary server)"
        )
    try:
        prefect.serve(nightly_deployment(config_path, cron=cron, name=name))
    except (httpx.HTTPError, PrefectException) as e:
        raise OrchestratorError(f"the Prefect server at {api} failed: {type(e).__name__}: {e}") from None


def _check_cron(cron: str) -> None:
    """A schedule Prefect would refuse, refused now in one line (Prefect's own check: 5 fields, no H/R)."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron)
    except ValidationError as e:
        why = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--cron {cron!r}: {why}; give minute hour day month weekday, e.g. '0 2 * * *'") from None


def nightly_deployment(config_path: str, cron: str = NIGHTLY_CRON, name: str = "cjm-nightly") -> Any:
    """The nightly flow as a deployment on a cron schedule (UTC), for `prefect.serve`."""
    return flow_for(load_config(config_path)).to_deployment(
        name=name, cron=cron, parameters={"config_path": config_path}, description=nightly_flow.description
    )


def _brief(result: StepResult) -> dict[str, Any]:
    if not isinstance(result, LoadResult):
        return result.counts
    return {k: sum(getattr(f, k) for f in result.files)
            for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")}
