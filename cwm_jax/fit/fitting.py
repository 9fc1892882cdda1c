"""Fits the numeric constants of a CWM to the recorded transitions of the train split.

The LLM writes the structure of the dynamics; the numbers are found here:

1. Constants: every module-level `NAME = <number>` (unary minus and
   expressions of literals such as `12 * 2 * math.pi / 360` included) becomes
   a parameter. The module body is re-executed on traced parameters, so
   derived constants (`TOTAL = A + B`) follow their inputs. Found on the AST:
   nothing runs to find them.
2. Gradient fit of the constants the loss depends on (nonzero Jacobian
   column), each written as c0 * exp(z): a smooth loss (state error per
   element scaled by the spread of that element's change, plus the reward
   error scaled by the reward's spread), several starts at once (`vmap`) with
   optax Adam, then optimistix Levenberg-Marquardt from the constants as
   written and from Adam's best end.
   (constants: `cwm_jax.fit.constants`; numerics: `cwm_jax.fit.optimize`)
3. Changes that are not needed are undone (a constant goes back to its old
   value if that does not lower train accuracy): constants that the data do
   not pin down stay as written.
4. While train accuracy is below 1.0, a bounded derivative-free 1-D search
   per constant on accuracy (grid, then a finer grid), for thresholds, clip
   bounds, reward levels and integer constants, whose gradient is zero
   almost everywhere. A move is kept only if it raises accuracy.
5. The fitted values are written back into the source (shortest text that
   round-trips to the float32 value), and the new program is validated and
   scored like any other; if it does not beat the input, the input is
   returned unchanged.

This executes the program: call it only inside a sandbox worker
(`cwm_jax.sandbox.Sandbox.fit`) or for trusted code.
"""

from __future__ import annotations

import ast
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from cwm_jax import envs
from cwm_jax.data import transitions as data
from cwm_jax.score import scoring
from cwm_jax.score.likelihood import LIKELIHOOD_VALUE
from cwm_jax.score.accuracy import Tolerance
from cwm_jax.validate import loader, validator
from cwm_jax.envs import EnvSpec
from cwm_jax.errors import CWMError
from cwm_jax.fit.constants import (
    Constant,
    find_constants,
    format_value,
    parametrised_code,
    step_factory,
    traceable,
    write_back,
)

__all__ = ["Accuracies", "FitReport", "fit_source", "fit_values"]


@dataclasses.dataclass(frozen=True)
class Accuracies:
    """Accuracy (the paper's Eq. 2) and strict accuracy on the train and held-out test splits."""

    train_accuracy: float
    test_accuracy: float
    train_strict_accuracy: float
    test_strict_accuracy: float

    @classmethod
    def from_summaries(cls, summaries: dict) -> Accuracies:
        return cls(
            train_accuracy=float(summaries["train"]["accuracy"]),
            test_accuracy=float(summaries["test"]["accuracy"]),
            train_strict_accuracy=float(summaries["train"]["strict_accuracy"]),
            test_strict_accuracy=float(summaries["test"]["strict_accuracy"]),
        )


@dataclasses.dataclass(frozen=True)
class FitReport:
    """The outcome of fitting one program.

    Attributes:
      valid: the input passed validation and the contract checks.
      error: why not (or why the fit could not run), else None.
      error_kind: as in `ScoreResult` ("validation", "timeout", ...).
      program: the fitted source; the input itself when nothing improved.
      before, after: accuracies of the input and of `program` (None if invalid).
      changed: [{"name", "old", "new"}] for each constant written back.
      constants: names of the constants that were parametrised.
      seconds: wall-clock time of the whole fit (scoring before and after included).
      exact: `program` has strict accuracy 1.0 on the train split.
      stages: seconds per stage ("compile+adam", "lm", "search", "score").
      confounded: groups of constant names whose effects on the train data
        are parallel at the fitted values (`optimize.confounded`): the data
        pin down a combination of them, not each value, so a fitted value
        may be far from the true one although the fit is exact.
      likelihood: for a program scored by likelihood (docs/chance.md), the
        mean log-likelihoods "train_before", "test_before", "train_after",
        "test_after"; empty otherwise.
    """

    valid: bool
    program: str
    error: str | None = None
    error_kind: str | None = None
    before: Accuracies | None = None
    after: Accuracies | None = None
    changed: tuple[dict, ...] = ()
    constants: tuple[str, ...] = ()
    seconds: float = 0.0
    exact: bool = False
    stages: dict = dataclasses.field(default_factory=dict)
    confounded: tuple[tuple[str, ...], ...] = ()
    likelihood: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def rejected(cls, source: str, error: CWMError, *, seconds: float = 0.0) -> FitReport:
        """The report for a program that was rejected before any fitting ran."""
        return cls(valid=False, program=source, error=str(error), error_kind=error.kind, seconds=seconds)

    def to_dict(self) -> dict:
        payload = dataclasses.asdict(self)
        payload["changed"] = [dict(item) for item in self.changed]
        payload["constants"] = list(self.constants)
        payload["confounded"] = [list(group) for group in self.confounded]
        return payload

    @classmethod
    def from_dict(cls, payload: dict) -> FitReport:
        """A FitReport from `to_dict()` output (e.g. a sandbox worker's JSON reply), checked field by field."""
        if not isinstance(payload, dict) or "valid" not in payload or "program" not in payload:
            raise ValueError("malformed fit report")

        def accuracies(value):
            return None if value is None else Accuracies(**{f.name: float(value[f.name])
                                                             for f in dataclasses.fields(Accuracies)})

        return cls(
            valid=bool(payload["valid"]),
            program=str(payload["program"]),
            error=None if payload.get("error") is None else str(payload["error"]),
            error_kind=None if payload.get("error_kind") is None else str(payload["error_kind"]),
            before=accuracies(payload.get("before")),
            after=accuracies(payload.get("after")),
            changed=tuple({"name": str(c["name"]), "old": float(c["old"]), "new": float(c["new"])}
                          for c in payload.get("changed") or ()),
            constants=tuple(str(name) for name in payload.get("constants") or ()),
            seconds=float(payload.get("seconds") or 0.0),
            exact=bool(payload.get("exact")),
            stages={str(k): float(v) for k, v in (payload.get("stages") or {}).items()},
            confounded=tuple(tuple(str(name) for name in group) for group in payload.get("confounded") or ()),
            likelihood={str(k): float(v) for k, v in (payload.get("likelihood") or {}).items()},
        )


# -- the fit -------------------------------------------------------------------


def _key_of(summary: dict) -> tuple[float, float]:
    return float(summary["strict_accuracy"]), float(summary["accuracy"])


def _improves(after: dict, before: dict) -> bool:
    """Neither strict accuracy nor accuracy is lower, and one is higher."""
    (strict_a, acc_a), (strict_b, acc_b) = _key_of(after), _key_of(before)
    return strict_a >= strict_b and acc_a >= acc_b and (strict_a, acc_a) != (strict_b, acc_b)


def _predicts_closer(tree: ast.Module, constants: list[Constant], values: np.ndarray, train: data.Transitions,
                     test: data.Transitions, log: Callable[[str], None]) -> bool:
    """For a fit that leaves the accuracies as they were (an approximate model): is its train loss lower by more
    than the ties of `optimize.Key` allow, and its held-out loss not higher?"""
    from cwm_jax.fit import optimize as opt

    make_step = step_factory(parametrised_code(tree, constants))
    initial = np.array([c.value for c in constants], np.float32)
    (train_before, train_after), (test_before, test_after) = (
        (problem.loss(initial), problem.loss(values))
        for problem in (opt.Problem(make_step, initial, split) for split in (train, test)))
    log(f"accuracy unchanged; mean squared scaled error train {train_before:.4g} -> {train_after:.4g}, "
        f"held-out {test_before:.4g} -> {test_after:.4g}")
    return opt.loss_bucket(train_after) > opt.loss_bucket(train_before) and test_after <= test_before


def fit_values(tree: ast.Module, constants: list[Constant], spec: EnvSpec, train: data.Transitions,
               expected_strict: int, settings, log: Callable[[str], None],
               tolerance: Tolerance = Tolerance()) -> tuple[list[Constant], np.ndarray, dict, list[list[str]]]:
    """Fitted float32 values [P] of `constants` (those that can be parameters), stage seconds, confounded groups.

    `expected_strict` (transitions the program as written gets right) checks
    that the parametrised program computes what the program does; integer
    constants are dropped if it does not.
    """
    from cwm_jax.fit import optimize as opt

    stages: dict[str, float] = {}
    clock = time.perf_counter()
    for subset in (constants, [c for c in constants if not c.is_int]):
        if not subset:
            return [], np.zeros((0,), np.float32), stages, []
        problem = opt.Problem(step_factory(parametrised_code(tree, subset)),
                              np.array([c.value for c in subset], np.float32), train, tolerance)
        current = problem.evaluate(problem.initial)[0]
        if current.strict == expected_strict:
            break
    else:
        log("the program with parametrised constants does not reproduce the program; nothing fitted")
        return [], np.zeros((0,), np.float32), stages, []
    constants, params = subset, problem.initial.copy()
    stages["compile"] = time.perf_counter() - clock
    if current.strict == problem.n:
        return constants, params, stages, []
    is_int = np.array([c.is_int for c in constants])
    clock = time.perf_counter()
    index = np.flatnonzero(problem.sensitive(params) & ~is_int)
    stages["jacobian"] = time.perf_counter() - clock
    log(f"{len(constants)} constants, {len(index)} with a gradient: "
        + ", ".join(constants[i].name for i in index))
    if len(index):
        candidates, fit_stages = opt.gradient_fit(problem, params, index, settings, log)
        stages.update(fit_stages)
        for candidate, key in zip(candidates, problem.evaluate(np.stack(candidates))):
            if key > current:  # candidates come nearest-first: a tie keeps the nearer one
                params, current = candidate, key
    # Undo changes the data do not need, so constants they do not pin down stay as written.
    clock = time.perf_counter()
    for i in np.flatnonzero(params != problem.initial):
        trial = params.copy()
        trial[i] = problem.initial[i]
        key = problem.evaluate(trial)[0]
        if key >= current:
            params, current = trial, key
    stages["revert"] = time.perf_counter() - clock
    clock = time.perf_counter()
    if current.strict < problem.n:
        order = sorted(range(len(constants)), key=lambda i: i in set(index.tolist()))  # zero-gradient first
        for i in order:
            params, current = opt.search_constant(problem, params, i, bool(is_int[i]), current)
            if current.strict == problem.n:
                break
        stages["search"] = time.perf_counter() - clock
        log(f"derivative-free search: {current.strict}/{problem.n} train transitions right "
            f"({stages['search']:.1f} s)")
    moved = set(np.flatnonzero(params != problem.initial).tolist())
    groups = [[constants[i].name for i in group]
              for group in opt.confounded(problem, params, index) if moved & set(group)]
    return constants, params, stages, groups


def fit_source(source: str, env: str | EnvSpec, *, settings=None, log: Callable[[str], None] | None = None,
               load_split: Callable[[EnvSpec, str], data.Transitions] | None = None,
               tolerance: Tolerance = Tolerance()) -> FitReport:
    """Fits the constants of CWM `source` to the train split of `env` (runs the program: sandbox only).

    Args:
      source: CWM module text.
      env: environment id or spec.
      settings: `cwm_jax.fit.optimize.FitSettings` (None: defaults).
      log: called with one line per stage (progress for a user).
      load_split: where the train and test transitions come from, as in
        `scoring.score_source` (default `data.load_split`).
      tolerance: what counts as right, in the accuracy the fit maximises and
        in the scores before and after it.

    Returns:
      A FitReport; `program` never scores lower than `source` on the train split.
    """
    from cwm_jax.fit import optimize as opt

    start = time.perf_counter()
    log = log or (lambda line: None)
    settings = settings or opt.FitSettings()
    spec = envs.env_spec(env)
    load_split = load_split or data.load_split
    clock = time.perf_counter()
    before = scoring.score_source(source, spec, splits=("train", "test"), counterexamples=0, load_split=load_split,
                                  tolerance=tolerance)
    stages = {"score": time.perf_counter() - clock}
    if not before.valid:
        return FitReport(valid=False, program=source, error=before.error, error_kind=before.error_kind,
                         seconds=time.perf_counter() - start)
    try:
        if LIKELIHOOD_VALUE in before.summary:
            return _fit_likelihood(source, spec, before, log, load_split, start, stages, tolerance=tolerance)
        return _fit_scored(source, spec, before, settings, log, load_split, start, stages, tolerance=tolerance)
    except Exception as exc:  # noqa: BLE001 - the program runs while fitted: its failure is a rejection
        return FitReport(valid=False, program=source, error=f"fitting the constants failed: {type(exc).__name__}: "
                                                           f"{str(exc)[:400]}", error_kind="runtime",
                         seconds=time.perf_counter() - start)


def _fit_scored(source: str, spec: EnvSpec, before, settings, log, load_split, start: float,
                stages: dict, *, tolerance: Tolerance) -> FitReport:
    """`fit_source` past the first score: find, fit and write back the constants, score the result."""
    before_acc = Accuracies.from_summaries(before.summaries)

    def unchanged(constants=()) -> FitReport:
        return FitReport(valid=True, program=source, before=before_acc, after=before_acc,
                         constants=tuple(c.name for c in constants), seconds=time.perf_counter() - start,
                         exact=before_acc.train_strict_accuracy == 1.0, stages=stages)

    clock = time.perf_counter()
    tree = validator.validate(source)
    constants = traceable(tree, find_constants(tree), spec)
    stages["constants"] = time.perf_counter() - clock
    log(f"train strict accuracy {before_acc.train_strict_accuracy:.4f}; constants: "
        + (", ".join(c.name for c in constants) or "none"))
    if before_acc.train_strict_accuracy == 1.0 or not constants:
        return unchanged(constants)
    train = load_split(spec, "train")
    expected = int(round(before.summaries["train"]["strict_accuracy"] * len(train)))
    constants, values, fit_stages, confounded = fit_values(tree, constants, spec, train, expected, settings, log,
                                                           tolerance)
    stages.update(fit_stages)
    changes = {c.name: float(v) for c, v in zip(constants, values) if np.float32(v) != np.float32(c.value)}
    if not changes:
        return unchanged(constants)
    program = write_back(source, constants, changes)
    clock = time.perf_counter()
    after = scoring.score_source(program, spec, splits=("train", "test"), counterexamples=0, load_split=load_split,
                                 tolerance=tolerance)
    stages["score"] += time.perf_counter() - clock
    if not after.valid or not (_improves(after.summaries["train"], before.summaries["train"])
                               or (_key_of(after.summaries["train"]) == _key_of(before.summaries["train"])
                                   and _predicts_closer(tree, constants, values, train, load_split(spec, "test"),
                                                        log))):
        log("the fitted program does not score higher on train; keeping the input")
        return unchanged(constants)
    after_acc = Accuracies.from_summaries(after.summaries)
    by_name = {c.name: c for c in constants}
    changed = tuple({"name": name, "old": by_name[name].value, "new": float(format_value(new, by_name[name].is_int))}
                    for name, new in changes.items())
    return FitReport(valid=True, program=program, before=before_acc, after=after_acc, changed=changed,
                     constants=tuple(by_name), seconds=time.perf_counter() - start,
                     exact=after_acc.train_strict_accuracy == 1.0, stages=stages,
                     confounded=tuple(tuple(group) for group in confounded))


def _fit_likelihood(source: str, spec: EnvSpec, before, log, load_split, start: float, stages: dict, *,
                    tolerance: Tolerance) -> FitReport:
    """`fit_source` for a program scored by likelihood: `cwm_jax.fit.likelihood_fit`, kept only if the train
    likelihood rises and the held-out likelihood does not fall."""
    from cwm_jax.fit import likelihood_fit

    before_acc = Accuracies.from_summaries(before.summaries)
    figures = {f"{split}_before": before.summaries[split]["log_likelihood"] for split in ("train", "test")}

    def unchanged(constants=()) -> FitReport:
        return FitReport(valid=True, program=source, before=before_acc, after=before_acc,
                         constants=tuple(c.name for c in constants), seconds=time.perf_counter() - start,
                         stages=stages, likelihood={**figures, "train_after": figures["train_before"],
                                                    "test_after": figures["test_before"]})

    tree = validator.validate(source)
    if not loader.is_chance_program(tree):
        log("a program without chance functions: no probabilities to fit")
        return unchanged()
    clock = time.perf_counter()
    constants, values = likelihood_fit.fit_chance_values(
        tree, find_constants(tree), spec, load_split(spec, "train"), before.summaries["train"]["num_outcomes"],
        log=log)
    stages["likelihood"] = time.perf_counter() - clock
    changes = {c.name: float(v) for c, v in zip(constants, values) if np.float32(v) != np.float32(c.value)}
    if not changes:
        return unchanged(constants)
    program = write_back(source, constants, changes)
    after = scoring.score_source(program, spec, splits=("train", "test"), counterexamples=0, load_split=load_split,
                                 tolerance=tolerance)
    if not after.valid:
        return unchanged(constants)
    after_figures = {f"{split}_after": after.summaries[split]["log_likelihood"] for split in ("train", "test")}
    if (after_figures["train_after"] <= figures["train_before"]
            or after_figures["test_after"] < figures["test_before"]):
        log("the fitted program is not more likely on train, or less likely on test; keeping the input")
        return unchanged(constants)
    by_name = {c.name: c for c in constants}
    changed = tuple({"name": name, "old": by_name[name].value, "new": float(format_value(new))}
                    for name, new in changes.items())
    return FitReport(valid=True, program=program, before=before_acc, after=Accuracies.from_summaries(after.summaries),
                     changed=changed, constants=tuple(by_name), seconds=time.perf_counter() - start, stages=stages,
                     likelihood={**figures, **after_figures})
