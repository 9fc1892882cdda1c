"""The benchmark's Ray backend: `--ray ADDRESS` runs each task (env, method, seed) as a Ray task.

A Ray task runs `synth.bench.runner.run_task` exactly as a thread of the local backend
does, with a sandbox and an LLM client of its own, and writes the same outputs
under `out` (synthesize's files, then record.json); the driver gathers the
records and writes the tables. So `--resume` and `--replay` work unchanged, and
every node must see `out` (and the --replay directory) at the same path: one
machine, or a shared filesystem. Nothing here is a job queue: Ray schedules,
the driver only keeps the number of tasks in flight within --concurrency
(Ray's "limit pending tasks" pattern, `ray.wait`).

ADDRESS is what `ray.init(address=...)` takes: "local" starts a Ray instance
on this machine for this run, "auto" joins the cluster `ray start` made here,
"ray://host:10001" connects through Ray Client. An already initialized Ray
(`ray.init` called by the caller) is used as it is and left running.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from cwm_jax.errors import UsageError

from synth.bench import runner
from synth.bench.config import BenchConfig, Task

__all__ = ["INSTALL_HINT", "calls_per_task", "require_ray", "run_on_ray", "run_one", "runtime_env", "tasks_in_flight"]

INSTALL_HINT = 'pip install "cwm-jax[ray]"'
# The driver's environment that the tasks need, passed through Ray's runtime_env: where the
# trajectory splits are cached, and the code of a checkout that is not installed.
FORWARDED_ENV = ("CWM_JAX_CACHE",)
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cwm_jax", "planners", "synth")


def require_ray():
    """The ray module; UsageError naming the extra to install if it is missing."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs the ray package, which is not installed: {INSTALL_HINT}") from None
    return ray


def calls_per_task(config: BenchConfig) -> int:
    """LLM calls one task may have in flight: --task-concurrency, within --concurrency."""
    return min(config.task_concurrency, config.concurrency)


def tasks_in_flight(config: BenchConfig) -> int:
    """Ray tasks in flight: as many as keep the calls over all of them within --concurrency
    (each task has its own client, so no one semaphore spans them as in the local backend)."""
    return max(1, config.concurrency // calls_per_task(config))


def run_one(task: Task, config: BenchConfig, out: Path, replay: Path | None) -> dict:
    """One task in a Ray worker: its own sandbox and LLM client; returns its record (also in record.json)."""
    from cwm_jax.sandbox import Sandbox

    with Sandbox(size=config.sandbox_workers or 1) as box:
        client = runner.llm_client(dataclasses.replace(config, concurrency=calls_per_task(config)), replay is not None)
        return runner.run_task(task, runner.TaskResources(config, out, box, client), replay_from=replay)


def _for_workers(config: BenchConfig, replay: Path | None) -> BenchConfig:
    """The endpoint and key resolved here, from the options or the driver's OPENAI_* variables:
    a worker on another node has neither the driver's environment nor its shell."""
    if not config.needs_llm or replay is not None:
        return config
    llm = runner.llm_config(config, replay=False)
    return dataclasses.replace(config, base_url=llm.resolved_base_url(), api_key=llm.resolved_api_key())


def runtime_env(gpus_per_task: float) -> dict:
    """Ray's runtime_env for the tasks: the forwarded variables, this checkout first on PYTHONPATH
    (harmless where cwm-jax is installed and that path does not exist), and JAX kept to its share.

    Ray leaves every GPU of a node visible to a task that asked for none, and JAX takes 75% of
    each visible GPU's memory at start: a task given no GPU plans on CPU, and tasks sharing a GPU
    (a fraction each) take memory as they need it. (The sandbox's scoring is CPU-only anyway.)
    """
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, **{k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}}
    if gpus_per_task == 0:
        env["JAX_PLATFORMS"] = "cpu"
    elif gpus_per_task < 1:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return {"env_vars": env}


def run_on_ray(
    address: str,
    config: BenchConfig,
    out: Path,
    pending: list[Task],
    replay: Path | None,
    finished: Callable[[Task, dict | BaseException], bool],
    *,
    say: Callable[[str], None] = print,
    gpus_per_task: float = 0.0,
) -> None:
    """Runs `pending` as Ray tasks; `finished(task, record or exception)` for each, as it ends.

    When `finished` answers False (the endpoint is gone: no other task can
    succeed), the tasks not yet started are not submitted and those running are
    cancelled; what they wrote (checkpoint, cache) stays for --resume.
    """
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        start = time.perf_counter()
        # Ray puts the driver script's directory on the workers' import path, ahead of PYTHONPATH:
        # experiments/ holds synth.py, which would hide the synth package there. Hidden while Ray reads it.
        script_dir, kept = os.path.dirname(os.path.realpath(sys.argv[0] or ".")), list(sys.path)
        sys.path[:] = [p for p in kept if p != script_dir]
        try:
            with warnings.catch_warnings():  # Ray starts its processes with fork+exec: no JAX state is shared
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                # A dashboard for a run of its own is start-up time nobody asked for; a cluster keeps its own.
                extra = {"include_dashboard": False} if address == "local" else {}
                if address.startswith("ray://"):  # tasks are unpickled on the cluster: ship this code there
                    extra["runtime_env"] = {"py_modules": [str(ROOT / name) for name in PACKAGES]}
                ray.init(address=address, log_to_driver=False, **extra)
        except ConnectionError as exc:  # no cluster there, or it refused us
            raise UsageError(f"--ray {address}: cannot connect to Ray: {' '.join(str(exc).split())} "
                             "(nothing ran; rerun with --resume once Ray is reachable)") from None
        finally:
            sys.path[:] = kept
        say(f"  ray.init({address!r}): {time.perf_counter() - start:.1f} s, "
            f"{ray.cluster_resources().get('CPU', 0):g} CPUs in the cluster")
    try:
        # Workers may start elsewhere (another node, another directory): every path absolute.
        out = Path(out).resolve()
        replay = Path(replay).resolve() if replay is not None else None
        work = _for_workers(config, replay)
        remote = ray.remote(num_gpus=gpus_per_task, runtime_env=runtime_env(gpus_per_task))(run_one)
        window = tasks_in_flight(config)
        say(f"  {window} Ray task(s) in flight, {calls_per_task(config)} LLM call(s) each at most")
        queue, running = list(pending), {}
        while queue or running:
            while queue and len(running) < window:
                task = queue.pop(0)
                running[remote.remote(task, work, out, replay)] = task
            [done], _ = ray.wait(list(running), num_returns=1)
            task = running.pop(done)
            try:
                result = ray.get(done)
            except ray.exceptions.RayTaskError as exc:  # the task raised: hand on what it raised
                result = exc.cause if exc.cause is not None else exc
            except ray.exceptions.RayError as exc:  # the worker died, or the node (after Ray's retries)
                result = exc
            if not finished(task, result):
                for ref in running:
                    ray.cancel(ref)
                return
    finally:
        if started_here:
            ray.shutdown()
