"""Scoring a CWM against recorded transitions: one jitted, vmapped call.

Per transition, three components are checked:
- next state: every element within `atol + rtol * |expected|` (np.isclose);
- reward: within its own tolerance (continuous rewards are never bit-exact);
- done: exact.

Default tolerances are rtol = atol = 1e-5 for both, chosen by measurement on
the CartPole train split (`tests/cwm_jax/score/test_accuracy.py`): an algebraically
equivalent float32 rewrite of the true dynamics differs by at most 1.2e-7
(1% of the tolerance), while gravity 9.81 instead of 9.8 (a 0.1% error)
differs by up to 6.6e-5 and fails on 7% of the transitions. At 1e-4 that
mutant would score 1.0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cwm_jax.data.transitions import Transitions
from cwm_jax.envs import StepFn


__all__ = [
    "AccuracyReport",
    "Comparison",
    "Counterexample",
    "Tolerance",
    "check",
    "compare",
    "correctness_digest",
    "counterexamples",
    "failure_summary",
    "format_counterexamples",
    "make_checker",
    "report_from_comparison",
]


class _ToleranceFields(NamedTuple):
    state_rtol: float
    state_atol: float
    reward_rtol: float
    reward_atol: float


class Tolerance(_ToleranceFields):
    """How close a predicted state and reward must be to count as right: |pred - true| <= atol + rtol * |true|.

    The one place a tolerance is checked: every field must be a finite number
    >= 0 (a negative one would reject every prediction, a NaN or infinite one
    accept any), else ValueError naming the field. `Tolerance.uniform(tol)`
    sets all four (what `--tolerance TOL` means).
    """

    __slots__ = ()

    def __new__(cls, state_rtol: float = 1e-5, state_atol: float = 1e-5, reward_rtol: float = 1e-5,
                reward_atol: float = 1e-5):
        values = {"state_rtol": state_rtol, "state_atol": state_atol, "reward_rtol": reward_rtol,
                  "reward_atol": reward_atol}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"tolerance {name} must be a finite number >= 0, got {value!r}")
        return super().__new__(cls, *(float(v) for v in values.values()))

    @classmethod
    def uniform(cls, tolerance: float) -> Tolerance:
        """rtol = atol = `tolerance` for the state and the reward."""
        return cls(tolerance, tolerance, tolerance, tolerance)


@dataclasses.dataclass(frozen=True)
class AccuracyReport:
    """How well a CWM predicts N transitions.

    Summary figures (floats in [0, 1]):
      accuracy: mean over transitions of (state_ok + reward_ok + done_ok) / 3,
        the paper's Eq. 2 (state counted all-or-nothing).
      strict_accuracy: fraction with all three components right.
      state_accuracy, reward_accuracy, done_accuracy: each component alone.
      weighted_accuracy: the paper code's search value: per-element state
        credit, terminal transitions scored on reward and done only, and each
        transition weighted by the inverse frequency of its reward value.
      non_finite: transitions whose predicted next state or reward holds a
        NaN or an infinity (they count as wrong; reported so that a model
        that breaks down on some inputs is not mistaken for a merely inexact one).

    Per transition (numpy, [N] unless noted): state_ok, reward_ok, done_ok,
    state_element_ok [N, obs_dim], and the predictions pred_next_state
    [N, obs_dim], pred_reward, pred_done.
    """

    accuracy: float
    strict_accuracy: float
    state_accuracy: float
    reward_accuracy: float
    done_accuracy: float
    weighted_accuracy: float
    n_transitions: int
    non_finite: int
    state_ok: np.ndarray
    reward_ok: np.ndarray
    done_ok: np.ndarray
    state_element_ok: np.ndarray
    pred_next_state: np.ndarray
    pred_reward: np.ndarray
    pred_done: np.ndarray

    def summary(self) -> dict:
        """The figures as plain JSON-ready values."""
        return {
            "accuracy": self.accuracy,
            "strict_accuracy": self.strict_accuracy,
            "state_accuracy": self.state_accuracy,
            "reward_accuracy": self.reward_accuracy,
            "done_accuracy": self.done_accuracy,
            "weighted_accuracy": self.weighted_accuracy,
            "n_transitions": self.n_transitions,
            "non_finite": self.non_finite,
        }

    @property
    def failures(self) -> np.ndarray:
        """int [F]: indices of transitions with any wrong component, in order."""
        return np.flatnonzero(~(self.state_ok & self.reward_ok & self.done_ok))


def _close(predicted: jax.Array, expected: jax.Array, rtol: float, atol: float) -> jax.Array:
    # NaN or inf predictions compare False, so they never count as right.
    return jnp.abs(predicted - expected) <= atol + rtol * jnp.abs(expected)


@chex.dataclass(frozen=True)
class Comparison:
    """What `compare` found, per transition.

    Attributes:
      element_ok: bool [N, obs_dim], each next-state element within tolerance.
      reward_ok: bool [N]; done_ok: bool [N].
      pred_next_state: float32 [N, obs_dim]; pred_reward: float32 [N];
      pred_done: bool [N], the CWM's predictions.
    """

    element_ok: jax.Array
    reward_ok: jax.Array
    done_ok: jax.Array
    pred_next_state: jax.Array
    pred_reward: jax.Array
    pred_done: jax.Array


def compare(step: StepFn, tolerance: Tolerance, state, action, next_state, reward, done) -> Comparison:
    """Per-transition comparison of `step` against recorded data (traceable).

    Args:
      step: a CWM step function.
      tolerance: tolerances for the state and the reward.
      state: float32 [N, obs_dim]; action: [N] or [N, action_dim];
      next_state: float32 [N, obs_dim]; reward: float32 [N]; done: bool [N].
    """
    pred_next, pred_reward, pred_done = jax.vmap(step)(state, action)
    return Comparison(
        element_ok=_close(pred_next, next_state, tolerance.state_rtol, tolerance.state_atol),
        reward_ok=_close(pred_reward, reward, tolerance.reward_rtol, tolerance.reward_atol),
        done_ok=pred_done == done,
        pred_next_state=pred_next, pred_reward=pred_reward, pred_done=pred_done,
    )


def make_checker(step: StepFn, tolerance: Tolerance = Tolerance()):
    """A jitted `(state, action, next_state, reward, done) -> compare(...)` for one CWM.

    Compile once per CWM and reuse it across splits of the same shapes.
    """
    return jax.jit(lambda *data: compare(step, tolerance, *data))


def _reward_class_weights(reward: np.ndarray) -> np.ndarray:
    """Weight of each transition: 1 / (count of transitions with its reward value)."""
    _, inverse, counts = np.unique(reward, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def report_from_comparison(data: Transitions, comparison: Comparison) -> AccuracyReport:
    """Summary figures from the output of `compare` on `data`."""
    element_ok, reward_ok, done_ok, pred_next, pred_reward, pred_done = (
        np.asarray(x) for x in (comparison.element_ok, comparison.reward_ok, comparison.done_ok,
                                comparison.pred_next_state, comparison.pred_reward, comparison.pred_done))
    n = len(data)
    if n == 0:
        raise ValueError("no transitions to check")
    state_ok = element_ok.all(axis=1)
    per_transition = (state_ok.astype(np.float64) + reward_ok + done_ok) / 3.0
    terminal = np.asarray(data.done, bool)
    paper_score = np.where(
        terminal,
        0.5 * reward_ok + 0.5 * done_ok,
        (element_ok.mean(axis=1) + reward_ok + done_ok) / 3.0,
    )
    weights = _reward_class_weights(np.asarray(data.reward))
    return AccuracyReport(
        accuracy=float(per_transition.mean()),
        strict_accuracy=float((state_ok & reward_ok & done_ok).mean()),
        state_accuracy=float(state_ok.mean()),
        reward_accuracy=float(reward_ok.mean()),
        done_accuracy=float(done_ok.mean()),
        weighted_accuracy=float((weights * paper_score).sum() / weights.sum()),
        n_transitions=n,
        non_finite=int((~np.isfinite(pred_next).all(axis=1) | ~np.isfinite(pred_reward)).sum()),
        state_ok=state_ok,
        reward_ok=reward_ok,
        done_ok=done_ok,
        state_element_ok=element_ok,
        pred_next_state=pred_next,
        pred_reward=pred_reward,
        pred_done=pred_done,
    )


def check(step: StepFn, data: Transitions, *, tolerance: Tolerance = Tolerance()) -> AccuracyReport:
    """Scores `step` on all transitions of `data` in one jitted, vmapped call."""
    checker = make_checker(step, tolerance)
    comparison = checker(data.state, data.action, data.next_state, data.reward, data.done)
    return report_from_comparison(data, comparison)


@dataclasses.dataclass(frozen=True)
class Counterexample:
    """One transition the CWM gets wrong."""

    index: int
    state: np.ndarray
    action: np.ndarray
    expected_next_state: np.ndarray
    predicted_next_state: np.ndarray
    expected_reward: float
    predicted_reward: float
    expected_done: bool
    predicted_done: bool
    wrong_state_elements: tuple[int, ...]
    failed: tuple[str, ...]  # subset of ("next_state", "reward", "done")


def _kind(report: AccuracyReport, i: int) -> tuple:
    """How transition i is wrong: which components, and which state elements."""
    return (bool(report.state_ok[i]), bool(report.reward_ok[i]), bool(report.done_ok[i]),
            tuple(np.flatnonzero(~report.state_element_ok[i]).tolist()))


def counterexamples(report: AccuracyReport, data: Transitions, k: int = 1, *,
                    diverse: bool = False) -> list[Counterexample]:
    """The first `k` failing transitions, in data order.

    With `diverse`, the first failing transition and then only transitions
    wrong in another way than every one already picked (other wrong
    components, or other wrong state elements), up to `k` in all: one row per
    kind of mistake, so a model sees the patterns rather than one row.
    """
    picked: list[int] = []
    kinds: set[tuple] = set()
    for i in report.failures:
        if len(picked) == k:
            break
        i = int(i)
        if diverse:
            kind = _kind(report, i)
            if kind in kinds:
                continue
            kinds.add(kind)
        picked.append(i)
    return [_counterexample(report, data, i) for i in picked]


def _counterexample(report: AccuracyReport, data: Transitions, i: int) -> Counterexample:
    failed = tuple(name for name, ok in (("next_state", report.state_ok[i]), ("reward", report.reward_ok[i]),
                                         ("done", report.done_ok[i])) if not ok)
    return Counterexample(
        index=i,
        state=np.asarray(data.state[i]),
        action=np.asarray(data.action[i]),
        expected_next_state=np.asarray(data.next_state[i]),
        predicted_next_state=report.pred_next_state[i],
        expected_reward=float(data.reward[i]),
        predicted_reward=float(report.pred_reward[i]),
        expected_done=bool(data.done[i]),
        predicted_done=bool(report.pred_done[i]),
        wrong_state_elements=tuple(int(j) for j in np.flatnonzero(~report.state_element_ok[i])),
        failed=failed,
    )


def failure_summary(report: AccuracyReport, *, max_elements: int = 8) -> str:
    """Which components and state elements are wrong, and how often, over all transitions ('' if none)."""
    wrong = report.failures.size
    if not wrong:
        return ""
    n = report.n_transitions
    per_element = (~report.state_element_ok).sum(axis=0)
    ranked = [int(j) for j in np.argsort(-per_element, kind="stable") if per_element[j]]
    elements = ", ".join(f"[{j}] in {int(per_element[j])}" for j in ranked[:max_elements])
    if len(ranked) > max_elements:
        elements += f", and {len(ranked) - max_elements} more elements"
    early = int((report.pred_done & ~report.done_ok).sum())
    state_wrong = int((~report.state_ok).sum())
    parts = [f"next_state in {state_wrong}" + (f" (wrong elements: {elements})" if state_wrong else ""),
             f"reward in {int((~report.reward_ok).sum())}",
             f"done in {int((~report.done_ok).sum())}"
             + (f" ({early} predicted done wrongly, {int((~report.done_ok).sum()) - early} missed)"
                if not report.done_ok.all() else "")]
    return (f"Summary: {wrong} of the {n} transitions ({100 * wrong / n:.1f}%) are predicted wrongly; "
            f"wrong {', '.join(parts)}.")


def correctness_digest(report: AccuracyReport) -> str:
    """A digest of which transitions, components and state elements are right: two programs with the
    same one agree everywhere the data can tell, whatever their float noise or signed zeros."""
    bits = np.concatenate([report.state_element_ok.ravel(), report.reward_ok, report.done_ok]).astype(bool)
    return hashlib.sha256(np.packbits(bits).tobytes() + str(bits.size).encode()).hexdigest()[:16]


def _vector(x: np.ndarray) -> str:
    x = np.atleast_1d(np.asarray(x))
    if x.dtype.kind in "iub":
        return "[" + ", ".join(str(v) for v in x.tolist()) + "]"
    return "[" + ", ".join(f"{v:.7g}" for v in x.tolist()) + "]"


def format_counterexample(example: Counterexample) -> str:
    """A failing transition as text for an LLM: inputs, expected, predicted, what is wrong."""
    action = example.action.tolist() if example.action.ndim else example.action.item()
    lines = [
        f"Transition #{example.index} is predicted wrongly ({', '.join(example.failed)} wrong).",
        f"  state:                {_vector(example.state)}",
        f"  action:               {action}",
        f"  expected next_state:  {_vector(example.expected_next_state)}",
        f"  predicted next_state: {_vector(example.predicted_next_state)}",
    ]
    if example.wrong_state_elements:
        details = ", ".join(
            f"[{j}] expected {example.expected_next_state[j]:.7g} got {example.predicted_next_state[j]:.7g}"
            for j in example.wrong_state_elements
        )
        lines.append(f"  wrong next_state elements: {details}")
    lines += [
        f"  expected reward: {example.expected_reward:.7g}, predicted reward: {example.predicted_reward:.7g}"
        + ("  <-- wrong" if "reward" in example.failed else ""),
        f"  expected done: {example.expected_done}, predicted done: {example.predicted_done}"
        + ("  <-- wrong" if "done" in example.failed else ""),
    ]
    return "\n".join(lines)


def format_counterexamples(examples: list[Counterexample], summary: str = "") -> str:
    """Counterexamples separated by blank lines, the first one apart, then `summary`; '' if none."""
    if not examples:
        return ""
    text = format_counterexample(examples[0])
    if len(examples) > 1:
        text += "\n\nMore transitions it gets wrong:\n\n" + "\n\n".join(
            format_counterexample(e) for e in examples[1:])
    return text + (f"\n\n{summary}" if summary else "")
