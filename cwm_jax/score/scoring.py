"""Validate, load and score CWM source in the current process.

This is what a sandbox worker runs for each candidate; call it directly only
for trusted code (the hand-written references, tests).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from cwm_jax import envs
from cwm_jax.data import transitions as data
from cwm_jax.sandbox import artifact
from cwm_jax.score import accuracy, likelihood
from cwm_jax.validate import chance, loader, validator
from cwm_jax.envs import EnvSpec
from cwm_jax.errors import CWMError

__all__ = ["FEEDBACK", "ScoreResult", "rejected", "score_source"]


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring one candidate program.

    Attributes:
      valid: the program passed validation and the contract checks.
      error: the rejection message (fit for an LLM's Fix prompt), or None.
      error_kind: "syntax", "validation", "load", "contract", "runtime",
        "resource", or from the sandbox "timeout", "memory", "crash".
      error_line: line of the program the error points at, if any.
      summaries: split name -> AccuracyReport.summary() for each scored split.
      counterexamples: the first failing transitions of the first split,
        formatted for an LLM ('' if none failed); with feedback "diverse",
        the first one, others wrong in other ways, and a summary.
      fingerprint: a digest of which transitions, components and elements of
        the first split are right (`accuracy.correctness_digest`): equal for
        programs that agree everywhere the data can tell.
      seconds: wall-clock time spent.
      artifact: when asked for (`export=True`), the scored program as a
        serialized StableHLO artifact, base64 (`cwm_jax.sandbox.artifact`): what the
        caller runs instead of the program's Python.
    """

    valid: bool
    error: str | None = None
    error_kind: str | None = None
    error_line: int | None = None
    summaries: dict[str, dict] = dataclasses.field(default_factory=dict)
    counterexamples: str = ""
    fingerprint: str = ""
    seconds: float = 0.0
    artifact: str = ""

    @property
    def summary(self) -> dict | None:
        """Summary of the first scored split."""
        return next(iter(self.summaries.values()), None)

    @property
    def value(self) -> float:
        """Accuracy on the first scored split (its likelihood value when scored by likelihood); 0 if invalid."""
        if not (self.valid and self.summary):
            return 0.0
        return float(self.summary.get(likelihood.LIKELIHOOD_VALUE, self.summary["accuracy"]))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# What a failing program's feedback shows (`score_source(feedback=...)`).
FEEDBACK = ("first", "diverse")


def rejected(error: CWMError, seconds: float = 0.0) -> ScoreResult:
    return ScoreResult(
        valid=False, error=str(error), error_kind=error.kind, error_line=error.line, seconds=seconds
    )


def score_source(
    source: str,
    env: str | EnvSpec,
    *,
    splits: tuple[str, ...] = ("train",),
    counterexamples: int = 1,
    tolerance: accuracy.Tolerance = accuracy.Tolerance(),
    load_split: Callable[[EnvSpec, str], data.Transitions] | None = None,
    export: bool = False,
    feedback: str = "first",
) -> ScoreResult:
    """Loads `source` as a CWM and scores it on the given splits in one call.

    `feedback` chooses the counterexamples: "first" (the paper's: the first
    `counterexamples` failing transitions) or "diverse" (the first one, then
    only transitions wrong in another way, up to `counterexamples`, and a
    summary of which components and elements are wrong how often).

    The splits are concatenated so that checking all of them is a single
    jitted, vmapped call (one compile per program). `load_split(spec, split)`
    gives their transitions: `data.load_split` by default; a sandbox worker
    passes its in-memory cache (`cwm_jax.sandbox.worker_main.SplitCache`).
    `step` is traced once more, vmapped and exported (`cwm_jax.sandbox.artifact`), and
    that artifact is what is scored; `export=True` returns it in the result.
    Any failure of the program (exporting, compiling, running, formatting its
    counterexamples) is a rejection, never an exception.
    """
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback must be one of {', '.join(FEEDBACK)}, got {feedback!r}")
    start = time.perf_counter()
    spec = envs.env_spec(env)
    load_split = load_split or data.load_split
    parts = [load_split(spec, split) for split in splits]  # a failure here is the sandbox's, not the program's
    try:
        if spec.stochastic or loader.is_chance_program(validator.validate(source)):
            return _score_by_likelihood(source, spec, splits, parts, counterexamples, tolerance, export, start)
        step = loader.load_cwm(source, spec)
    except CWMError as exc:
        return rejected(exc, time.perf_counter() - start)
    try:
        return _score(step, spec, splits, parts, counterexamples, tolerance, export, feedback, start)
    except CWMError as exc:
        return rejected(exc, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - untrusted code may fail while exporting, compiling or running
        error = loader.CWMRuntimeError(f"`step` failed while scoring: {type(exc).__name__}: {exc}"[:600])
        return rejected(error, time.perf_counter() - start)


def _score_by_likelihood(source, spec, splits, parts, counterexamples, tolerance, export, start) -> ScoreResult:
    """A stochastic environment or a program with chance: scored by likelihood (`cwm_jax.score.likelihood`).

    Runs the program's Python (the worker is the sandbox). With `export`, its
    three functions are exported first (`cwm_jax.sandbox.chance_artifact`)
    and the exported ones are what is scored and returned.
    """
    from cwm_jax.sandbox import chance_artifact

    model = chance.load_chance_cwm(source, spec)
    text = ""
    try:
        if export:
            text = chance_artifact.encode_chance(chance_artifact.export_chance(model, spec), model.num_outcomes)
            model = chance_artifact.exported_chance(text, spec)
        summaries, examples = likelihood.score_model(model, splits, parts, tolerance=tolerance,
                                                     counterexamples=counterexamples)
    except Exception as exc:  # noqa: BLE001 - untrusted code may fail while exporting, compiling or running
        raise loader.CWMRuntimeError(f"the chance functions failed while scoring: {type(exc).__name__}: "
                                     f"{exc}"[:600]) from None
    return ScoreResult(valid=True, summaries=summaries, counterexamples=examples,
                       seconds=time.perf_counter() - start, artifact=text)


def _score(step, spec: EnvSpec, splits, parts, counterexamples: int, tolerance, export: bool, feedback: str,
           start: float) -> ScoreResult:
    """Exports `step` once and scores that artifact: what is scored is what a caller runs."""
    exported = artifact.export_step(step, spec)
    run = artifact.exported_step(exported, spec)
    merged = data.Transitions(*(np.concatenate(fields) for fields in zip(*parts)))
    report = accuracy.check(run, merged, tolerance=tolerance)
    summaries, examples, fingerprint, offset = {}, "", "", 0
    for split, part in zip(splits, parts):
        index = np.arange(offset, offset + len(part))
        offset += len(part)
        split_report = accuracy.report_from_comparison(part, accuracy.Comparison(
            element_ok=report.state_element_ok[index], reward_ok=report.reward_ok[index],
            done_ok=report.done_ok[index], pred_next_state=report.pred_next_state[index],
            pred_reward=report.pred_reward[index], pred_done=report.pred_done[index]))
        summaries[split] = split_report.summary()
        if not fingerprint:
            fingerprint = accuracy.correctness_digest(split_report)
            if counterexamples > 0:
                diverse = feedback == "diverse"
                examples = accuracy.format_counterexamples(
                    accuracy.counterexamples(split_report, part, counterexamples, diverse=diverse),
                    accuracy.failure_summary(split_report) if diverse else "")
    return ScoreResult(valid=True, summaries=summaries, counterexamples=examples, fingerprint=fingerprint,
                       seconds=time.perf_counter() - start, artifact=artifact.encode(exported) if export else "")
