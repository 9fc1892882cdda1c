"""The benchmark: methods x environments x seeds, scored, planned and tabled.

Each task (env, method, seed) synthesizes a CWM with `synth.run.synthesize`
(or takes the hand-written reference), scores the best program on the train
and held-out test splits in the sandbox, and plans with it in the real
environment (MCTS for discrete actions, CEM for continuous ones, the seeds
split over all local devices), next to a random policy and the same planner
on the true dynamics (the oracle). Layout of `out`:

    benchmark.json                      the configuration (what --resume and --replay read)
    tasks/<Env>/<method>/seed<k>/       synthesize's outputs (best.py, summary.json,
                                        tree.jsonl, checkpoint.json, cache.sqlite)
                                        and record.json once the task is finished
    baselines/<Env>.json                random and oracle returns (shared by all tasks of an env)
    results.md, results.csv, results.json, *.png   (synth/bench_report.py)

Resuming skips every task with a record.json and continues every other one
from its checkpoint; its cache replays every call already answered. Tasks run
concurrently in threads of one process and share one sandbox; planning runs
one evaluation at a time because each one uses every device. With --ray, each
task is a Ray task with a sandbox of its own (synth/bench_ray.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from cwm_jax import envs
from cwm_jax.errors import UsageError
from synth import bench_ray
from synth.bench_report import describe
from synth.node import VALUE_METRICS

REFERENCE = "reference"
FIT_ONLY = "fit-only"
NO_FIT = "--no-fit"
CONFIG_VERSION = 1
# Where replayed requests go: a closed port, so a response missing from the
# recorded caches fails at once (LLMUnavailable) and nothing is sent anywhere.
REPLAY_URL = "http://127.0.0.1:9/v1"


# --------------------------------------------------------------------------- methods


@dataclasses.dataclass(frozen=True)
class MethodKind:
    """A method the benchmark can run, with the variant flags it accepts (flag -> meaning)."""

    name: str
    needs_llm: bool
    flags: dict[str, str] = dataclasses.field(default_factory=dict)


# New methods and flags are new entries here plus a branch in `_synthesize_kwargs` / `run_task`.
# The synthesis methods fit the constants of their programs (`Sandbox.fit`) unless given --no-fit.
_NO_FIT = {NO_FIT: "without the fit step (the paper)"}
METHOD_KINDS: dict[str, MethodKind] = {
    kind.name: kind
    for kind in (
        MethodKind("gif-mcts", True, {"--no-fix": "without the fix action", "--no-improve": "without improve",
                                      "--paper-faithful": "the paper's search (no plateau rules, first "
                                                          "counterexample only)", **_NO_FIT}),
        MethodKind("worldcoder", True, _NO_FIT),
        MethodKind("zero-shot", True, _NO_FIT),
        MethodKind(REFERENCE, False),
        MethodKind(FIT_ONLY, False),  # the reference CWM of the base env, its constants fitted to the data
    )
}


@dataclasses.dataclass(frozen=True)
class Method:
    """One column of the table: a method name plus variant flags, e.g. "gif-mcts --no-fix"."""

    name: str
    flags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return " ".join((self.name, *self.flags))

    @property
    def slug(self) -> str:
        return "_".join((self.name, *(f.lstrip("-") for f in self.flags)))

    @property
    def kind(self) -> MethodKind:
        return METHOD_KINDS[self.name]


def parse_method(text: str) -> Method:
    """'gif-mcts --no-fix' -> Method; a clear UsageError for unknown names or flags."""
    name, *flags = text.split()
    if name not in METHOD_KINDS:
        raise UsageError(f"unknown method {name!r}; choose from {', '.join(METHOD_KINDS)}")
    kind = METHOD_KINDS[name]
    for flag in flags:
        if flag not in kind.flags:
            known = ", ".join(kind.flags) or "none"
            raise UsageError(f"method {name!r} has no flag {flag!r} (its flags: {known})")
    return Method(name, tuple(sorted(set(flags))))


# --------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to run. `plan` holds planner overrides (simulations, horizon, ...) as in plan.py."""

    envs: tuple[str, ...]
    methods: tuple[Method, ...]
    seeds: tuple[int, ...]
    budget: int = 10
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 120.0
    description: str = "full"
    value: str = "paper"  # the search value of the synthesis methods, a key of synth.node.VALUE_METRICS
    temperature: float | None = 1.0
    max_tokens: int | None = 1500
    prices: tuple[float, float] | None = None
    concurrency: int = 1
    task_concurrency: int = 1
    plan_seeds: int = 16
    plan: dict[str, Any] = dataclasses.field(default_factory=dict)
    devices: int | None = None
    sandbox_workers: int | None = None

    @property
    def needs_llm(self) -> bool:
        return any(m.kind.needs_llm for m in self.methods)

    @property
    def tasks_in_flight(self) -> int:
        """Tasks also score, fit and plan between calls; the shared client keeps the calls within --concurrency."""
        return max(1, self.concurrency)

    def to_json(self) -> dict:
        record = dataclasses.asdict(self)
        record.pop("api_key")
        record["methods"] = [m.label for m in self.methods]
        return {"version": CONFIG_VERSION, **record}

    @classmethod
    def from_json(cls, record: dict) -> BenchConfig:
        fields = {k: v for k, v in record.items() if k in {f.name for f in dataclasses.fields(cls)}}
        fields["methods"] = tuple(parse_method(m) for m in record["methods"])
        for key in ("envs", "seeds"):
            fields[key] = tuple(record[key])
        if fields.get("prices") is not None:
            fields["prices"] = tuple(fields["prices"])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class Task:
    env: str  # canonical id, "gymnax/CartPole"
    method: Method
    seed: int

    def directory(self, out: Path) -> Path:
        return out / "tasks" / self.env.split("/")[-1] / self.method.slug / f"seed{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.env.split('/')[-1]} / {self.method.label} / seed {self.seed}"


def task_grid(config: BenchConfig) -> list[Task]:
    return [Task(env, method, seed) for env in config.envs for method in config.methods for seed in config.seeds]


def _write_json(path: Path, payload: Any) -> None:
    """Atomic: a kill leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- one task


class _Shared:
    """What the concurrent tasks share: the sandbox, the LLM client, the devices, the baselines."""

    def __init__(self, config: BenchConfig, out: Path, sandbox, client=None):
        import jax

        import planners

        self.config, self.out, self.sandbox = config, out, sandbox
        self.client = client  # synth.llm.LLMClient whose max_concurrency is --concurrency; None without LLM methods
        self.plan_lock = threading.Lock()  # one evaluation at a time: each uses every device
        count = config.devices or len(jax.devices())
        self.mesh = planners.seed_mesh(count) if count > 1 else None
        self.keys = planners.seed_keys(config.plan_seeds) if config.plan_seeds else None
        self.model_returns: dict[tuple[str, str], float] = {}  # (env, program hash) -> mean return

    def settings(self, spec) -> dict[str, Any]:
        from types import SimpleNamespace

        from cwm_jax.planning import settings_for

        args = SimpleNamespace(planner=None, open_loop=False, discount=None, **self.config.plan)
        return settings_for(spec, args)

    def evaluate(self, spec, policy, label: str):
        """One timed evaluation of `policy` over the plan seeds (quiet: the benchmark prints per task)."""
        from cwm_jax.planning import evaluate

        return evaluate(spec, policy, self.keys, label, lambda text: None, mesh=self.mesh)

    def planner(self, spec, step_fn):
        from cwm_jax.planning import make_policy

        return make_policy(spec, step_fn, self.settings(spec))

    def baselines(self, spec) -> dict:
        """Random and oracle returns for `spec` (call with plan_lock held); cached in baselines/."""
        import planners

        path = self.out / "baselines" / f"{spec.name}.json"
        settings = self.settings(spec)
        key = {"settings": settings, "plan_seeds": self.config.plan_seeds}
        if path.exists():
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                return cached
        random = self.evaluate(spec, planners.random_policy(spec.random_action), "random")
        oracle = self.evaluate(spec, self.planner(spec, spec.oracle_step), "oracle")
        record = {"key": key, "random_return": random.mean, "oracle_return": oracle.mean,
                  "random_returns": random.returns.tolist(), "oracle_returns": oracle.returns.tolist()}
        _write_json(path, record)
        return record


def _llm_config(config: BenchConfig, replay: bool):
    from synth.budget import Prices
    from synth.llm import LLMConfig

    prices = Prices(*config.prices) if config.prices else None
    if replay:
        return LLMConfig(model=config.model, base_url=REPLAY_URL, max_retries=0, prices=prices,
                         max_concurrency=config.concurrency)
    return LLMConfig(model=config.model, base_url=config.base_url, api_key=config.api_key,
                     timeout=config.timeout, prices=prices, max_concurrency=config.concurrency)


def _synthesize_kwargs(method: Method) -> dict[str, Any]:
    if method.name == "gif-mcts":
        off = {"improve": "--no-improve" in method.flags, "fix": "--no-fix" in method.flags}
        return {"actions": tuple(a for a in ("generate", "improve", "fix") if not off.get(a, False)),
                "paper_faithful": "--paper-faithful" in method.flags}
    return {}


def run_task(task: Task, shared: _Shared, *, replay_from: Path | None = None) -> dict:
    """Runs one task to its record (written to record.json last: it marks the task finished)."""
    from cwm_jax import reference

    config, spec = shared.config, envs.make(task.env)
    directory = task.directory(shared.out)
    directory.mkdir(parents=True, exist_ok=True)
    usage: dict[str, Any] = {"calls": 0, "failed_calls": 0, "tokens": 0, "prompt_tokens": 0,
                             "completion_tokens": 0, "cost": 0.0, "http_requests": 0, "stop_reason": None,
                             "fits": 0, "fit_seconds": 0.0}
    if task.method.kind.needs_llm:
        from synth.harness import Sampling
        from synth.run import synthesize

        if replay_from is not None and not (directory / "cache.sqlite").exists():
            recorded = task.directory(replay_from) / "cache.sqlite"
            if recorded.exists():
                shutil.copy(recorded, directory / "cache.sqlite")
        result = synthesize(
            task.env, method=task.method.name, budget=config.budget, client=shared.client,
            out_dir=directory, concurrency=config.task_concurrency, resume=(directory / "checkpoint.json").exists(),
            seed=task.seed, sampling=Sampling(temperature=config.temperature, max_tokens=config.max_tokens),
            sandbox=shared.sandbox, description=config.description, value=config.value,
            fitter=None if NO_FIT in task.method.flags else shared.sandbox.fit, **_synthesize_kwargs(task.method))
        program = result.best_program
        summary = result.summary
        usage = {k: summary[k] for k in usage}
        usage["synth_seconds"] = summary["wall_seconds"]
    elif task.method.name == FIT_ONLY:
        program, fitted = _fit_reference(shared.sandbox, spec)
        usage.update(fitted)
    else:
        program = reference.source(spec)
        usage["synth_seconds"] = 0.0
    record: dict[str, Any] = {
        "env": task.env, "method": task.method.label, "seed": task.seed, "budget": config.budget, "value": config.value,
        "discrete": spec.discrete, **usage, "has_program": program is not None,
    }
    score_start = time.perf_counter()
    scored = (shared.sandbox.score(program, spec, splits=("train", "test"), counterexamples=0)
              if program is not None else None)
    record["score_seconds"] = round(time.perf_counter() - score_start, 3)
    valid = scored is not None and scored.valid
    for split in ("train", "test"):
        summary = scored.summaries[split] if valid else None
        # A task without a working program scores 0 (the paper counts failed CWMs as 0).
        record[f"{split}_accuracy"] = summary["accuracy"] if valid else 0.0
        record[f"{split}_weighted_accuracy"] = summary["weighted_accuracy"] if valid else 0.0
        record[f"{split}_strict_accuracy"] = summary["strict_accuracy"] if valid else 0.0
    record["error"] = None if valid or scored is None else scored.error
    record.update(_plan(shared, spec, program if valid else None))
    # Synthesis time counts every session of a resumed task (synthesize keeps it in its checkpoint).
    record["wall_seconds"] = round(record["synth_seconds"] + record["score_seconds"] + record["plan_seconds"], 3)
    _write_json(directory / "record.json", record)
    return record


def _fit_reference(sandbox, spec) -> tuple[str, dict[str, Any]]:
    """The reference CWM (textbook constants; for an "-unknown" variant, those of its base env)
    with its constants fitted to `spec`'s train split in the sandbox; the program and the fit's figures."""
    from cwm_jax import reference

    source = reference.source(spec)
    start = time.perf_counter()
    report = sandbox.fit(source, spec)
    seconds = round(time.perf_counter() - start, 3)
    fitted = report.valid and bool(report.changed)
    return (report.program if fitted else source), {
        "fits": int(fitted), "fit_seconds": seconds, "synth_seconds": seconds,
        "fit_changed": [dict(c) for c in report.changed] if fitted else [],
        "fit_error": None if report.valid else report.error}


def _plan(shared: _Shared, spec, program: str | None) -> dict[str, Any]:
    """Normalized return (paper Eq. 3) of the model's planner; 0 for a task without a model.

    `program` passed the sandbox; the planner runs the artifact the sandbox
    scored (`models.sandboxed_step`), never the program's Python. Tasks that found the same program share one evaluation: same
    program, same keys, same episodes.
    """
    import planners
    from cwm_jax import models

    if shared.keys is None:
        return {"normalized_return": None, "plan_seeds": 0, "plan_seconds": 0.0}
    start = time.perf_counter()
    with shared.plan_lock:
        base = shared.baselines(spec)
        model_return = None
        if program is not None:
            key = (spec.name, hashlib.sha256(program.encode()).hexdigest())
            if key not in shared.model_returns:
                step_fn, _ = models.sandboxed_step(program, spec)
                shared.model_returns[key] = None if step_fn is None else shared.evaluate(
                    spec, shared.planner(spec, step_fn), "model").mean
            model_return = shared.model_returns[key]
    random, oracle = base["random_return"], base["oracle_return"]
    solvable = planners.normalized_return(oracle, random, oracle) is not None
    if model_return is None:
        norm = 0.0 if solvable else None
    else:
        norm = planners.normalized_return(model_return, random, oracle)
    return {
        "normalized_return": norm, "model_return": model_return, "random_return": random,
        "oracle_return": oracle, "plan_seeds": shared.config.plan_seeds,
        "planner": shared.settings(spec)["planner"], "plan_seconds": round(time.perf_counter() - start, 3),
    }


# --------------------------------------------------------------------------- the benchmark


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
    _write_json(path, config.to_json())


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
    GPUs (synth/bench_ray.py).
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
        bench_ray.require_ray()
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
            if not _fatal(result):
                say(f"  {task.name}: FAILED: {type(result).__name__}: {result}")
            return not _fatal(result)
        records[task] = result
        say(f"  [{len(records)}/{len(tasks)}] {task.name}: {describe(result)}")
        return True

    if pending:
        replay = Path(replay_from) if replay_from is not None else None
        if ray_address is None:
            _run_local(config, out, pending, replay, finished)
        else:
            bench_ray.run_on_ray(ray_address, config, out, pending, replay, finished, say=say, gpus_per_task=ray_gpus)
    fatal = [exc for _, exc in failures if _fatal(exc)]
    if fatal:
        if replay_from is not None:
            raise UsageError(f"replay: a call is missing from the recorded caches in {replay_from} "
                             f"(nothing was sent): {fatal[0]}")
        raise fatal[0]
    if failures:
        names = "; ".join(f"{t.name} ({type(e).__name__}: {e})" for t, e in failures)
        raise RuntimeError(f"{len(failures)} task(s) failed (rerun with --resume to retry them): {names}")
    return [records[t] for t in tasks if t in records]


def llm_client(config: BenchConfig, replay: bool):
    """The LLM client the tasks of one process share (--concurrency bounds its calls); None without LLM methods."""
    if not config.needs_llm:
        return None
    from synth.llm import LLMClient

    return LLMClient(_llm_config(config, replay))


def _run_local(config: BenchConfig, out: Path, pending: list[Task], replay: Path | None,
               finished: Callable[[Task, dict | BaseException], bool]) -> None:
    """The tasks in threads of this process, sharing one sandbox and one LLM client."""
    from cwm_jax.sandbox import Sandbox

    # No warm-up list: a worker loads an env's splits when its first candidate comes (warming
    # every env at start-up would hold the first task back for all of them).
    with Sandbox(size=config.sandbox_workers or min(2, config.tasks_in_flight)) as box:
        shared = _Shared(config, out, box, llm_client(config, replay is not None))
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


def _fatal(error: BaseException) -> bool:
    """The endpoint is gone or does not serve the model (the LLM client's fatal errors)."""
    llm = sys.modules.get("synth.llm")  # not imported: no LLM method ran, no such error exists
    return llm is not None and isinstance(error, (llm.LLMUnavailable, llm.LLMModelNotFound))
