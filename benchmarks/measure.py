"""Measuring a process: wall and CPU time, peak RSS and DuckDB spill of a child, or of this process so far; and what
was measured (the machine, the product's code).

Standard library only at import: Retentioneering's own interpreter imports it too (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def rss_mb() -> float:
    """This process's peak RSS so far: VmHWM of its own address space.

    Not getrusage's ru_maxrss: on Linux a child's ru_maxrss starts at its parent's RSS at spawn (exec keeps
    the larger of the two), so a large parent would inflate every child's figure.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """CPU seconds of this process so far (all threads, user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate(events: int, seconds: float) -> float:
    """Events per second."""
    return round(events / seconds) if seconds > 0 else 0.0


def _allocated_bytes(path: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for root, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


class _Sampler(threading.Thread):
    """While a child runs, every 50 ms: the largest allocated size of the DuckDB temp directory; the child's VmHWM
    (so a child that has to be stopped still has a peak RSS); and, with psutil, the sum of the current RSS of the
    child and all its descendants (a whole command's process tree: a Prefect server, a browser)."""

    def __init__(self, temp_dir: Path) -> None:
        super().__init__(daemon=True)
        self.temp_dir, self.max_spill, self.pid, self.hwm_kb, self.tree_bytes = temp_dir, 0, 0, 0, 0
        self.tree_processes = 1
        self._stop_event = threading.Event()
        try:
            import psutil
        except ImportError:  # Retentioneering's interpreter: the child's own VmHWM only
            psutil = None
        self._psutil: Any = psutil

    def sample(self) -> None:
        self.max_spill = max(self.max_spill, _allocated_bytes(self.temp_dir))
        if not self.pid:
            return
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{self.pid}/status").read_text(encoding="utf-8").splitlines():
                if line.startswith("VmHWM:"):
                    self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))
        if self._psutil is not None:
            with contextlib.suppress(self._psutil.Error):
                root = self._psutil.Process(self.pid)
                tree = [root, *root.children(recursive=True)]
                total = 0
                for p in tree:
                    with contextlib.suppress(self._psutil.Error):
                        total += p.memory_info().rss
                self.tree_bytes = max(self.tree_bytes, total)
                self.tree_processes = max(self.tree_processes, len(tree))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(0.05)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.max_spill = max(self.max_spill, _allocated_bytes(self.temp_dir))
        return self.max_spill


class TimedOut(Exception):
    """A measured child was stopped at the benchmark's time limit; what was measured until then."""

    def __init__(self, name: str, partial: dict[str, Any]) -> None:
        super().__init__(f"{name} stopped at the time limit after {partial['seconds']:.0f} s")
        self.partial = partial


def run_process(command: Sequence[str], log_file: Path, temp_dir: Path, deadline: float | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `command` in REPO (output to log_file) and measure it as a whole: wall seconds from spawn to exit; CPU
    seconds (user + system) of the process and of the descendants it waited for (wait4); peak RSS, the larger of
    the process's own VmHWM and the largest sum of its tree's RSS seen (sampled every 50 ms, so a peak shorter than
    that can be missed in the sum, never in VmHWM); and the spill into temp_dir.

    A child still running at `deadline` (time.monotonic()) is killed (with its process group) and TimedOut raised.
    """
    load_before = os.getloadavg()[0]
    sampler = _Sampler(temp_dir)
    clock = time.perf_counter()
    timed_out = False
    with log_file.open("w", encoding="utf-8") as log:
        # A session of its own: a timed-out command's whole tree can be stopped by its group id, which is ours.
        child = subprocess.Popen(list(command), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        sampler.pid = child.pid
        sampler.start()
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.monotonic() > deadline and not timed_out:
                timed_out = True
                sampler.sample()
                os.killpg(child.pid, signal.SIGKILL)  # our own child's group, by its id
            time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - clock
    spill = sampler.stop()
    shutil.rmtree(temp_dir, ignore_errors=True)
    out = {"seconds": round(wall, 3), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
           "peak_rss_mb": round(max(sampler.hwm_kb * 1024, sampler.tree_bytes) / MB, 1),
           "hwm_mb": round(sampler.hwm_kb / 1024, 1), "tree_rss_peak_mb": round(sampler.tree_bytes / MB, 1),
           "tree_processes": sampler.tree_processes, "ru_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
           "spill_max_mb": round(spill / MB, 1), "load_average_before": round(load_before, 2),
           "returncode": child.returncode}
    if timed_out:
        raise TimedOut(log_file.stem, {"timed_out": True, **out})
    return out


def measure(command: Sequence[str], spec: dict[str, Any], workdir: Path, name: str,
            deadline: float | None = None) -> dict[str, Any]:
    """Run `command SPEC_FILE` in REPO and measure it: the result it writes to spec["result"], plus peak RSS and the
    spill into spec["duckdb"]["temp_directory"], and the whole process's wall and CPU time (process_seconds,
    process_cpu_seconds: with the interpreter's start and imports).

    A child still running at `deadline` (time.monotonic()) is killed and TimedOut raised.
    """
    spec_file = workdir / f"{name}.spec.json"
    result_file = workdir / f"{name}.result.json"
    log_file = workdir / f"{name}.log"
    spec = {**spec, "result": str(result_file)}
    spec_file.write_text(json.dumps(spec, default=str), encoding="utf-8")
    temp_dir = Path(spec["duckdb"]["temp_directory"]) if spec.get("duckdb") else workdir / "none"
    try:
        p = run_process([*command, str(spec_file)], log_file, temp_dir, deadline)
    except TimedOut as stopped:
        keep = ("timed_out", "seconds", "cpu_seconds", "peak_rss_mb", "spill_max_mb", "load_average_before")
        raise TimedOut(name, {k: stopped.partial[k] for k in keep}) from None
    if p["returncode"] != 0 or not result_file.is_file():
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{name} failed (exit {p['returncode']}); log {log_file}:\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    # peak_rss_mb: the child's own VmHWM at its end (see rss_mb); ru_maxrss is kept for reference only.
    result.update(spill_max_mb=p["spill_max_mb"], process_seconds=p["seconds"], process_cpu_seconds=p["cpu_seconds"],
                  ru_maxrss_mb=p["ru_maxrss_mb"], load_average_before=p["load_average_before"])
    result.setdefault("peak_rss_mb", p["hwm_mb"])
    return result


def machine_info() -> dict[str, Any]:
    """The machine, the versions of what was measured and the product's commit."""
    import duckdb
    import numpy
    import pandas
    import pyarrow

    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 1024**3, 1)
    except ImportError:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = ""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
    return {
        "cores": os.cpu_count(), "cores_available": len(os.sched_getaffinity(0)), "cpu_model": cpu_model,
        "memory_gb": memory_gb, "platform": platform.platform(), "python": platform.python_version(),
        "duckdb": duckdb.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__, "git_commit": commit, "load_average": list(os.getloadavg()),
    }


def product_fingerprint() -> dict[str, Any]:
    """Which product code was measured: a hash of sql/ and cjm_analytics/ as they are on disk (other work may be
    uncommitted)."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted([*REPO.glob("sql/**/*.sql"), *REPO.glob("cjm_analytics/**/*.py")])
    for f in files:
        digest.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return {"source_sha256": digest.hexdigest()[:16], "files": len(files)}
