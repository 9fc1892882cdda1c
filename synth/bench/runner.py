"""One benchmark task (env, method, seed): synthesize (or take the reference), score, plan.

A task synthesizes a CWM with `synth.search.run.synthesize` (or takes the
hand-written reference, or fits its constants: `fit-only`), scores the best
program on the train and held-out test splits in the sandbox, and plans with
it in the real environment (the registry's planner for the action space,
`cwm_jax.planning`, the seeds split over all local devices), next to the
random policy and the same planner on the true dynamics (the baselines,
computed once per env and cached in baselines/<Env>.json).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from cwm_jax import envs
from synth.bench.config import BenchConfig, Task, write_json
from synth.bench.methods import FIT_ONLY

__all__ = ["REPLAY_URL", "TaskResources", "fit_reference", "llm_client", "llm_config", "plan_task", "run_task"]

# Where replayed requests go: a closed port, so a response missing from the
# recorded caches fails at once (LLMUnavailable) and nothing is sent anywhere.
REPLAY_URL = "http://127.0.0.1:9/v1"


class TaskResources:
    """What the concurrent tasks share: the sandbox, the LLM client, the devices, the baselines."""

    def __init__(self, config: BenchConfig, out: Path, sandbox, client=None):
        import jax

        import planners

        self.config, self.out, self.sandbox = config, out, sandbox
        self.client = client  # synth.llm.client.LLMClient whose max_concurrency is --concurrency; None without LLM methods
        self.plan_lock = threading.Lock()  # one evaluation at a time: each uses every device
        count = config.devices or len(jax.devices())
        self.mesh = planners.seed_mesh(count) if count > 1 else None
        self.keys = planners.seed_keys(config.plan_seeds) if config.plan_seeds else None
        self.model_returns: dict[tuple[str, str], float] = {}  # (env, program hash) -> mean return

    def planner_config(self, spec):
        """The planner config of `spec`: the registry's defaults with the benchmark's planner options."""
        from cwm_jax.planning import config_from_options

        return config_from_options(spec, self.config.plan)

    def evaluate(self, spec, policy, label: str):
        """One timed evaluation of `policy` over the plan seeds (quiet: the benchmark prints per task)."""
        from cwm_jax.planning import evaluate

        return evaluate(spec, policy, self.keys, label, lambda text: None, mesh=self.mesh)

    def planner(self, spec, model):
        """The planner of a model: stochastic MCTS for a chance model (`cwm_jax.chance_planning`), else the registry's."""
        from cwm_jax.chance_planning import is_chance_model, make_chance_planner
        from cwm_jax.planning import make_planner

        if is_chance_model(model):
            return make_chance_planner(spec, model, self.planner_config(spec))
        return make_planner(spec, model, self.planner_config(spec))

    def baselines(self, spec) -> dict:
        """Random and oracle returns for `spec` (call with plan_lock held); cached in baselines/."""
        from cwm_jax.planning import evaluate_baselines, settings_record

        path = self.out / "baselines" / f"{spec.name}.json"
        config = self.planner_config(spec)
        key = {"settings": settings_record(config), "plan_seeds": self.config.plan_seeds}
        if path.exists():
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                return cached
        if spec.stochastic:  # the oracle is stochastic MCTS on the true chance model, where one is known
            from cwm_jax.chance_planning import chance_baselines

            base = chance_baselines(spec, config, self.keys, lambda text: None, mesh=self.mesh)
        else:
            base = evaluate_baselines(spec, config, self.keys, lambda text: None, mesh=self.mesh)
        record = {"key": key, "random_return": base.random.mean, "oracle_return": base.oracle.mean,
                  "random_returns": base.random.returns.tolist(), "oracle_returns": base.oracle.returns.tolist()}
        write_json(path, record)
        return record


def llm_config(config: BenchConfig, replay: bool):
    """The LLM endpoint of the tasks: the configured one, or (replay) a closed port behind the recorded caches."""
    from synth.llm.budget import Prices
    from synth.llm.client import LLMConfig

    prices = Prices(*config.prices) if config.prices else None
    if replay:
        return LLMConfig(model=config.model, base_url=REPLAY_URL, max_retries=0, prices=prices,
                         max_concurrency=config.concurrency)
    return LLMConfig(model=config.model, base_url=config.base_url, api_key=config.api_key,
                     timeout=config.timeout, prices=prices, max_concurrency=config.concurrency)


def llm_client(config: BenchConfig, replay: bool):
    """The LLM client the tasks of one process share (--concurrency bounds its calls); None without LLM methods."""
    if not config.needs_llm:
        return None
    from synth.llm.client import LLMClient

    return LLMClient(llm_config(config, replay))


def run_task(task: Task, shared: TaskResources, *, replay_from: Path | None = None) -> dict:
    """Runs one task to its record (written to record.json last: it marks the task finished)."""
    from cwm_jax import reference

    config, spec = shared.config, envs.make(task.env)
    directory = task.directory(shared.out)
    directory.mkdir(parents=True, exist_ok=True)
    usage: dict[str, Any] = {"calls": 0, "failed_calls": 0, "tokens": 0, "prompt_tokens": 0,
                             "completion_tokens": 0, "cost": 0.0, "http_requests": 0, "stop_reason": None,
                             "fits": 0, "fit_seconds": 0.0}
    if task.method.kind.needs_llm:
        from synth.search.protocol import Sampling
        from synth.search.run import synthesize

        if replay_from is not None and not (directory / "cache.sqlite").exists():
            recorded = task.directory(replay_from) / "cache.sqlite"
            if recorded.exists():
                shutil.copy(recorded, directory / "cache.sqlite")
        result = synthesize(
            task.env, method=task.method.name, budget=config.budget, client=shared.client,
            out_dir=directory, concurrency=config.task_concurrency, resume=(directory / "checkpoint.json").exists(),
            seed=task.seed, sampling=Sampling(temperature=config.temperature, max_tokens=config.max_tokens),
            sandbox=shared.sandbox, description=config.description, value=config.value,
            fitter=shared.sandbox.fit if task.method.fits else None, ablations=task.method.ablations,
            paper_faithful=task.method.paper_faithful)
        program = result.best_program
        summary = result.summary
        usage = {k: summary[k] for k in usage}
        usage["synth_seconds"] = summary["wall_seconds"]
    elif not reference.has_reference(spec):  # a row with N/A and the reason; its baselines are still measured
        program = None
        usage.update(synth_seconds=0.0, note=f"no reference CWM: {_why_no_reference(spec)}")
    elif task.method.name == FIT_ONLY:
        program, fitted = fit_reference(shared.sandbox, spec)
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
    if valid and spec.stochastic:  # a chance program: its likelihood says what its most likely outcome cannot
        test = scored.summaries["test"]
        record["note"] = (f"chance program: held-out log-likelihood {test['log_likelihood']:.3f}, support "
                          f"{test['support_accuracy']:.2f} (docs/chance.md); the accuracies are its most likely "
                          "outcome's; planned with stochastic MCTS")
    record.update(plan_task(shared, spec, program if valid else None))
    if program is None and record.get("note"):  # nothing was scored or planned: N/A, not the 0 of a failed CWM
        record.update({f"{split}_{kind}": None for split in ("train", "test")
                       for kind in ("accuracy", "weighted_accuracy", "strict_accuracy")}, normalized_return=None)
    # Synthesis time counts every session of a resumed task (synthesize keeps it in its checkpoint).
    record["wall_seconds"] = round(record["synth_seconds"] + record["score_seconds"] + record["plan_seconds"], 3)
    write_json(directory / "record.json", record)
    return record


def _why_no_reference(spec) -> str:
    from cwm_jax.envs import cwmb

    found = cwmb.entry(spec.name) if spec.source == "gymnasium" else None
    return found.why_no_reference if found is not None else "none is written for this environment"


def fit_reference(sandbox, spec) -> tuple[str, dict[str, Any]]:
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


def plan_task(shared: TaskResources, spec, program: str | None) -> dict[str, Any]:
    """Normalized return (paper Eq. 3) of the model's planner; 0 for a task without a model.

    `program` passed the sandbox; the planner runs the artifact the sandbox
    scored (`models.sandboxed_step`), never the program's Python. Tasks that found the same program share one evaluation: same
    program, same keys, same episodes.
    """
    from cwm_jax import models
    from cwm_jax.planning import normalized_return, planner_of

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
    return {
        "normalized_return": normalized_return(model_return, random, oracle), "model_return": model_return,
        "random_return": random, "oracle_return": oracle, "plan_seeds": shared.config.plan_seeds,
        "planner": planner_of(shared.planner_config(spec)).name, "plan_seconds": round(time.perf_counter() - start, 3),
    }
