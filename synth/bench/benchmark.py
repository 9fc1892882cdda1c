"""The benchmark: methods x environments x seeds, scored, planned and tabled. Layout of `out`:

    benchmark.json                      the configuration (what --resume and --replay read)
    tasks/<Env>/<method>/seed<k>/       synthesize's outputs (best.py, summary.json,
                                        tree.jsonl, checkpoint.json, cache.sqlite)
                                        and record.json once the task is finished
    baselines/<Env>.json                random and oracle returns (shared by all tasks of an env)
    results.md, results.csv, results.json, *.png   (synth/bench/report.py)

Resuming skips every task with a record.json and continues every other one
from its checkpoint; its cache replays every call already answered. Tasks
(synth/bench/runner.py) run concurrently in threads of one process and share
one sandbox; planning runs one evaluation at a time because each one uses
every device. With --ray, each task is a Ray task with a sandbox of its own
(synth/bench/ray_backend.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from cwm_jax import envs
from cwm_jax.errors import UsageError
from synth.bench import ray_backend
from synth.bench.config import BenchConfig, Task, task_grid, write_json
from synth.bench.report import describe
from synth.bench.runner import TaskResources, llm_client, run_task
from synth.search.node import VALUE_METRICS

__all__ = ["is_fatal", "prepare_out", "run_benchmark", "run_local"]


def prepare_out(config: BenchConfig, out: Path, *, resume: bool) -> None:
    """Checks `out` against --resume and writes benchmark.json; UsageError if they disagree."""
    path = out / "benchmark.json"
    if path.exists():
        if not resume:
            raise UsageError(f"{out} already holds a benchmark; pass --resume to continue it or choose another --out")
        # Read back through BenchConfig: a field added since it was written takes its default.
        recorded = BenchConfig.from_json(json.loads(path.read_text())).to_json()
        if json.loads(json.dumps(recorded)) != json.loads(json.dumps(config.to_json())):
            raise UsageError(f"{out} holds a benchmark with another configuration ({path}); "
                             "resume it with the same options or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, config.to_json())


def run_benchmark(
    config: BenchConfig,
    out: str | Path,
    *,
    resume: bool = False,
    replay_from: str | Path | None = None,
    say: Callable[[str], None] = print,
    ray_address: str | None = None, ray_gpus: float = 0.0,
) -> list[dict]:
    """Runs every task not yet finished in `out`; returns the records of all tasks that finished.

    Tasks run in threads of this process, or as Ray tasks with `ray_address`, each with `ray_gpus`
    GPUs (synth/bench/ray_backend.py).
    Raises UsageError for a bad configuration or `out`, and the LLM client's fatal errors (endpoint
    unreachable, model unknown) after the tasks in flight have stopped; finished tasks stay finished.
    """
    out = Path(out)
    if config.description not in envs.DESCRIPTION_LEVELS:
        raise UsageError(f"--description must be one of {', '.join(envs.DESCRIPTION_LEVELS)}, "
                         f"got {config.description!r}")
    if config.value not in VALUE_METRICS:
        raise UsageError(f"--value must be one of {', '.join(VALUE_METRICS)}, got {config.value!r}")
    if config.needs_llm and not config.model:
        raise UsageError("the LLM methods need --model (or --replay DIR of a recorded benchmark)")
    for env in config.envs:
        envs.make(env)
    if ray_address is not None:  # before anything is written: a missing ray leaves no benchmark behind
        ray_backend.require_ray()
    prepare_out(config, out, resume=resume)
    tasks = task_grid(config)
    records: dict[Task, dict] = {}
    for task in tasks:
        path = task.directory(out) / "record.json"
        if path.exists():
            records[task] = json.loads(path.read_text())
    pending = [t for t in tasks if t not in records]
    where = "on Ray" if ray_address else f"{config.tasks_in_flight} at a time"
    say(f"benchmark: {len(tasks)} tasks ({len(records)} already finished), {where}, output in {out}")
    failures: list[tuple[Task, BaseException]] = []

    def finished(task: Task, result: dict | BaseException) -> bool:  # False: no other task can succeed
        if isinstance(result, BaseException):
            failures.append((task, result))
            if not is_fatal(result):
                say(f"  {task.name}: FAILED: {type(result).__name__}: {result}")
            return not is_fatal(result)
        records[task] = result
        say(f"  [{len(records)}/{len(tasks)}] {task.name}: {describe(result)}")
        return True

    if pending:
        replay = Path(replay_from) if replay_from is not None else None
        if ray_address is None:
            run_local(config, out, pending, replay, finished)
        else:
            ray_backend.run_on_ray(ray_address, config, out, pending, replay, finished, say=say, gpus_per_task=ray_gpus)
    fatal = [exc for _, exc in failures if is_fatal(exc)]
    if fatal:
        if replay_from is not None:
            raise UsageError(f"replay: a call is missing from the recorded caches in {replay_from} "
                             f"(nothing was sent): {fatal[0]}")
        raise fatal[0]
    if failures:
        names = "; ".join(f"{t.name} ({type(e).__name__}: {e})" for t, e in failures)
        raise RuntimeError(f"{len(failures)} task(s) failed (rerun with --resume to retry them): {names}")
    return [records[t] for t in tasks if t in records]


def run_local(config: BenchConfig, out: Path, pending: list[Task], replay: Path | None,
               finished: Callable[[Task, dict | BaseException], bool]) -> None:
    """The tasks in threads of this process, sharing one sandbox and one LLM client."""
    from cwm_jax.sandbox import Sandbox

    # No warm-up list: a worker loads an env's splits when its first candidate comes (warming
    # every env at start-up would hold the first task back for all of them).
    with Sandbox(size=config.sandbox_workers or min(2, config.tasks_in_flight)) as box:
        shared = TaskResources(config, out, box, llm_client(config, replay is not None))
        with ThreadPoolExecutor(config.tasks_in_flight) as pool:
            futures = {pool.submit(run_task, t, shared, replay_from=replay): t for t in pending}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - one broken task must not lose the others
                    result = exc
                if not finished(futures[future], result):
                    for other in futures:
                        other.cancel()


def is_fatal(error: BaseException) -> bool:
    """The endpoint is gone or does not serve the model (the LLM client's fatal errors)."""
    llm = sys.modules.get("synth.llm.client")  # not imported: no LLM method ran, no such error exists
    return llm is not None and isinstance(error, (llm.LLMUnavailable, llm.LLMModelNotFound))
