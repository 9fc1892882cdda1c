"""One synthesis run: method + harness + outputs in a directory.

Writes to `out_dir`:
- `best.py`: the best program, byte for byte the text that was scored (a CWM
  file for `python -m cwm_jax check` and `experiments/plan.py --model`),
  absent if no program was valid;
- `summary.json`: method, description level, tolerance, budget, calls, fits, tokens, wall seconds, the
  search value of the best program on train (`train_accuracy`) and held-out
  test (`test_accuracy`), and both values side by side
  (`values: {train: {paper, strict}, test: {paper, strict}}`);
- `tree.jsonl`: one line per node (rewritten at the end with final visits);
  `tree.html`: a picture of the tree;
- `checkpoint.json` (resume state) and `cache.sqlite` (every LLM response;
  `cache=` another path shares one across runs).
An interrupted run (Ctrl-C) writes all of these so far and raises
`SynthesisInterrupted`; `resume=True` continues it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

from cwm_jax import envs
from cwm_jax.score.likelihood import LIKELIHOOD_VALUE
from cwm_jax.score.accuracy import Tolerance
from cwm_jax.sandbox import Sandbox
from synth.search.harness import Harness
from synth.search.methods import make_method
from synth.search.protocol import Fitter, Sampling
from synth.llm.budget import Budget
from synth.llm.client import LLMClient, LLMConfig
from synth.search.tree_page import tree_html
from synth.search.node import VALUE_METRICS

__all__ = ["FEEDBACK_TRANSITIONS", "SynthesisInterrupted", "SynthesisResult", "check_resumed_tolerance", "synthesize"]

# Beyond the paper: the improve prompt's failing transitions, each wrong in another way (docs/search.md).
FEEDBACK_TRANSITIONS = 3


@dataclasses.dataclass(frozen=True)
class SynthesisResult:
    summary: dict
    best_program: str | None
    out_dir: Path


class SynthesisInterrupted(Exception):
    """Ctrl-C during a run; the outputs so far are written (`result`) and the checkpoint allows resume."""

    def __init__(self, result: SynthesisResult):
        super().__init__(f"interrupted; outputs so far are in {result.out_dir}")
        self.result = result


def synthesize(
    env: str | envs.EnvSpec,
    *,
    method: str,
    budget: int,
    llm: LLMConfig | None = None,
    out_dir: str | Path,
    concurrency: int = 1,
    resume: bool = False,
    seed: int = 0,
    sampling: Sampling = Sampling(),
    ablations: tuple[str, ...] = (),
    limits: Budget | None = None,
    sandbox: Sandbox | None = None,
    on_node: Callable[[Harness, object], None] | None = None,
    value: str = "paper",
    paper_faithful: bool = False,
    fitter: Callable[..., object] | None = None,
    cache: str | Path | None = None,
    description: str = "full",
    client: LLMClient | None = None,
    tolerance: Tolerance = Tolerance(),
) -> SynthesisResult:
    """Runs a search and writes its outputs; see the module docstring.

    Args:
      env: environment id or spec.
      method: a key of `synth.search.methods.SEARCH_METHODS` ("gif-mcts",
        "worldcoder", "zero-shot").
      budget: LLM calls.
      llm: endpoint and model (default: those of `client`).
      out_dir: output directory (created).
      concurrency: LLM calls in flight at once.
      resume: continue from out_dir/checkpoint.json if it exists.
      seed: seeds the search's random choices.
      sampling: sampling parameters of every call.
      ablations: flags of the method's ablations, e.g. ("--no-fix",) for
        GIF-MCTS without the fix action (`SearchMethod.ablations`).
      limits: token and cost limits of this session (the call budget is
        `budget`); a run that reaches one stops cleanly and can be resumed.
      sandbox: scores candidates; a private one is started if None.
      on_node: progress callback after every node.
      value: the search value, "paper" (reward-weighted, per-element credit)
        or "strict" (fraction of transitions entirely right).
      paper_faithful: the paper's search: GIF-MCTS's exact value rule (no
        plateau detection, no improve forced after a plateau, the paper's
        prefix prompt), and every method's improve prompt shows only the
        first failing transition (default: up to FEEDBACK_TRANSITIONS
        transitions wrong in different ways, and a summary).
      fitter: (program source, env spec, *, tolerance) -> FitReport (`Sandbox.fit`); fits the constants of
        every working program below strict train accuracy 1.0 (a "fit" node,
        no LLM call). None: no fit step, the paper's behaviour.
      cache: the response cache file (default out_dir/cache.sqlite); a shared
        one replays the same run elsewhere with no request.
      description: how much the prompts say about the environment, one of
        `cwm_jax.envs.DESCRIPTION_LEVELS`: "full" (every constant and quirk)
        or "docs" (the Gymnasium documentation level, as in the paper).
      client: an LLM client shared with other runs in flight (the benchmark's):
        this run sends through `client.sharing(...)`, under the client's
        concurrency limit over all runs, with its own cache and budget. The
        cache stays per run because its key is the prompt and the sample
        index within the run, not the seed: seeds ask the same first prompt,
        and one shared cache would give every seed the same first answer.
      tolerance: how close a predicted state and reward must be to count as
        right, for every score of the run (train and test); recorded in
        summary.json. A resume must use the tolerance the run started with.
    """
    if llm is None:
        if client is None:
            raise ValueError("synthesize needs llm= (endpoint and model) or client=")
        llm = client.config
    spec = envs.env_spec(env)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not resume and (out / "checkpoint.json").exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if value not in VALUE_METRICS:
        raise ValueError(f"value must be one of {', '.join(VALUE_METRICS)}, got {value!r}")
    if resume:
        check_resumed_tolerance(out, tolerance)
    # The prompts see the description at the chosen level; scoring and fitting use `spec` as it is.
    prompt_spec = dataclasses.replace(spec, description=spec.description_for(description))
    search = make_method(method, prompt_spec, seed=seed, ablations=ablations, paper_faithful=paper_faithful)
    own_sandbox = sandbox is None
    box = sandbox or Sandbox(warm_envs=[spec])
    started = time.perf_counter()
    cache_file = Path(cache) if cache is not None else out / "cache.sqlite"
    client = (client.sharing(cache=cache_file, budget=limits) if client is not None
              else LLMClient(llm, cache=cache_file, budget=limits))
    fit: Fitter | None = (lambda source: fitter(source, spec, tolerance=tolerance)) if fitter is not None else None
    # What an improve prompt shows: the paper's first failing transition, or (beyond the paper) up to
    # FEEDBACK_TRANSITIONS transitions wrong in different ways and a summary of what is wrong how often.
    feedback = ({"counterexamples": 1, "feedback": "first"} if paper_faithful
                else {"counterexamples": FEEDBACK_TRANSITIONS, "feedback": "diverse"})
    interrupted = False
    try:
        harness = Harness(
            client, lambda source: box.score(source, spec, splits=("train",), tolerance=tolerance, **feedback),
            budget=budget, out_dir=out, concurrency=concurrency, sampling=sampling, on_node=on_node,
            value_metric=value, fit=fit)
        resumed = harness.resume(search) if resume else False
        if not resumed:
            (out / "tree.jsonl").write_text("")
        try:
            asyncio.run(_run(harness, client, search))
        except KeyboardInterrupt:
            interrupted = True
            harness.stop_reason = "interrupted"
        harness.rewrite_log(search)
        best = harness.best(search)
        test = (box.score(best.program, spec, splits=("test",), counterexamples=0, tolerance=tolerance)
                if best else None)
    finally:
        if own_sandbox:
            box.close()
    usage = client.usage()
    test_summary = test.summary if test and test.valid else None
    values = {
        "train": {name: best.metrics.get(name) for name in VALUE_METRICS} if best else None,
        "test": {name: float(test_summary.get(LIKELIHOOD_VALUE, test_summary[key]))  # likelihood: docs/chance.md
                 for name, key in VALUE_METRICS.items()} if test_summary else None,
    }
    summary = {
        "env": spec.id,
        "method": method,
        "budget": budget,
        "calls": harness.calls,
        "failed_calls": harness.failed_calls,
        "fits": harness.fits,
        "fit_attempts": harness.fit_attempts,
        "fit_seconds": round(harness.fit_seconds, 3),
        "fit_nodes": [n.id for n in search.nodes if n.action == "fit"],
        "http_requests": usage.http_requests,
        "cached_responses": usage.cached,
        "prompt_tokens": harness.prompt_tokens,
        "completion_tokens": harness.completion_tokens,
        "tokens": harness.tokens,
        "cost": usage.cost,
        "wall_seconds": round(harness.seconds, 3),
        "llm_seconds": round(harness.llm_seconds, 3),
        "scoring_seconds": round(harness.score_seconds, 3),
        "this_session_seconds": round(time.perf_counter() - started, 3),
        "stop_reason": harness.stop_reason,
        "resumed": resumed,
        "nodes": len(search.nodes) - 1,
        "best_node": best.id if best else None,
        "best_action": best.action if best else None,
        "value": value,
        "paper_faithful": paper_faithful,
        "description": description,
        "tolerance": tolerance._asdict(),
        "train_accuracy": best.value if best else None,
        "test_accuracy": values["test"][value] if values["test"] else None,
        "values": values,
        "test": test_summary,
        "model": llm.model,
        "base_url": client.base_url,
        "concurrency": concurrency,
        "seed": seed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "tree.html").write_text(tree_html(search.nodes, best, title=f"{method} on {spec.id}",
                                                       log_fields=search.log_fields))
    if best:  # byte for byte the program that was scored; where it came from is in summary.json
        (out / "best.py").write_bytes(best.program.encode("utf-8"))
    result = SynthesisResult(summary=summary, best_program=best.program if best else None, out_dir=out)
    if interrupted:
        raise SynthesisInterrupted(result)
    return result


def check_resumed_tolerance(out: Path, tolerance: Tolerance) -> None:
    """Raises if the run in `out` was scored with another tolerance (its values would not compare)."""
    try:
        recorded = json.loads((out / "summary.json").read_text()).get("tolerance")
    except (OSError, ValueError):
        return  # no summary yet (a killed first session): nothing recorded to compare with
    if recorded is not None and Tolerance(**recorded) != tolerance:
        raise ValueError(f"the run in {out} was scored with tolerance {recorded}, not {tolerance._asdict()}; "
                         "resume it with the same tolerance")


async def _run(harness: Harness, client: LLMClient, search) -> None:
    try:
        await harness.run(search)
    finally:
        await client.aclose()
