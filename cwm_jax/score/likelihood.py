"""Scoring a CWM with chance by likelihood: one jitted, vmapped call over the recorded transitions.

Exact match rewards guessing the most likely outcome. Here, per transition,
the model's probability of what was recorded is the total probability of the
outcomes whose (next_state, reward, done) match the recording (the same
tolerances as `accuracy.compare`): the chance outcome itself is not recorded,
so it is marginalised out. Figures per split:

- log_likelihood: mean over transitions of log P(recorded), each floored at
  log(PROBABILITY_FLOOR), so one impossible transition cannot make the mean
  -inf (raw_log_likelihood keeps the -inf; n_unsupported counts them);
- support_accuracy: fraction of transitions the model gives non-zero probability;
- calibration_error: expected calibration error (ECE) of the model's
  outcome probabilities over CALIBRATION_BINS bins: each distinct predicted
  result of a transition is an event with the summed probability of the
  outcomes that predict it, and it happened when it matches the recording;
  `calibration_table` gives the reliability diagram's points;
- likelihood_value, the search's value in [0, 1]: exp(log_likelihood), the
  geometric mean probability of the recorded transitions. A perfect model of
  a random world stays below 1 (at exp(-H), H the recorded outcomes'
  conditional entropy), so only comparisons between programs mean anything;
  a model that gives every recorded transition probability 1 scores 1.0;
- the paper's accuracy figures, of the most likely outcome (`chance.mode_step`).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from cwm_jax.data.transitions import Transitions
from cwm_jax.score import accuracy
from cwm_jax.validate.chance import ChanceModel, mode_step, outcome_table

__all__ = [
    "CALIBRATION_BINS",
    "LIKELIHOOD_VALUE",
    "PROBABILITY_FLOOR",
    "LikelihoodReport",
    "calibration_table",
    "format_least_likely",
    "likelihood",
    "score_model",
    "transition_log_probs",
]

PROBABILITY_FLOOR = 1e-3
CALIBRATION_BINS = 10
LIKELIHOOD_VALUE = "likelihood_value"  # the summary key of the search value


@dataclasses.dataclass(frozen=True)
class LikelihoodReport:
    """How likely a chance model finds N recorded transitions.

    Per transition (numpy): log_prob [N] (-inf where unsupported); per
    (transition, outcome): event_prob [N, C] (probability of the outcome's
    predicted result), hit [N, C] (that result matches the recording),
    weight [N, C] (1 / number of outcomes predicting the same result; 0 for
    impossible outcomes), and the outcome table's predictions.
    """

    log_prob: np.ndarray
    event_prob: np.ndarray
    hit: np.ndarray
    weight: np.ndarray
    pred_next_state: np.ndarray
    pred_reward: np.ndarray
    pred_done: np.ndarray
    outcome_prob: np.ndarray

    def summary(self) -> dict:
        floored = np.maximum(self.log_prob, math.log(PROBABILITY_FLOOR))
        supported = np.isfinite(self.log_prob)
        return {
            "log_likelihood": float(floored.mean()),
            "raw_log_likelihood": float(self.log_prob.mean()),
            "support_accuracy": float(supported.mean()),
            "n_unsupported": int((~supported).sum()),
            "calibration_error": float(calibration_table(self)[3]),
            "num_outcomes": int(self.event_prob.shape[1]),
            LIKELIHOOD_VALUE: float(np.exp(floored.mean())),
        }


def transition_log_probs(model: ChanceModel, tolerance: accuracy.Tolerance, state, action, next_state, reward,
                         done) -> dict:
    """Per transition, log P(recorded) marginalised over outcomes, and the calibration events (traceable).

    Args:
      state: float32 [N, obs_dim]; action [N] or [N, action_dim]; next_state
        float32 [N, obs_dim]; reward float32 [N]; done bool [N].
    """
    table = jax.vmap(lambda s, a: outcome_table(model, s, a))(state, action)
    count = model.num_outcomes

    def matches(pred_next, pred_reward, pred_done):  # [N, ...] of one outcome -> bool [N]
        c = accuracy.compare(lambda pred, _: pred, tolerance, (pred_next, pred_reward, pred_done), action,
                             next_state, reward, done)
        return c.element_ok.all(axis=-1) & c.reward_ok & c.done_ok

    hit = jax.vmap(matches, in_axes=(1, 1, 1), out_axes=1)(table.next_state, table.reward, table.done)  # [N, C]
    log_prob = jax.nn.logsumexp(jnp.where(hit, table.log_prob, -jnp.inf), axis=1)
    same = ((table.next_state[:, :, None] == table.next_state[:, None, :]).all(axis=-1)
            & (table.reward[:, :, None] == table.reward[:, None, :])
            & (table.done[:, :, None] == table.done[:, None, :]))  # [N, C, C]
    prob = jnp.exp(table.log_prob)
    event_prob = jnp.einsum("ncd,nd->nc", same.astype(jnp.float32), prob)
    possible_same = (same & (prob > 0)[:, None, :]).sum(axis=2)  # an event's possible outcomes (itself included)
    weight = jnp.where(prob > 0, 1.0 / jnp.maximum(possible_same, 1), 0.0) if count > 1 else jnp.ones_like(prob)
    return {"log_prob": log_prob, "event_prob": event_prob, "hit": hit, "weight": weight,
            "pred_next_state": table.next_state, "pred_reward": table.reward, "pred_done": table.done,
            "outcome_prob": prob}


def likelihood(model: ChanceModel, data: Transitions, *,
               tolerance: accuracy.Tolerance = accuracy.Tolerance()) -> LikelihoodReport:
    """Scores `model` on all transitions of `data` in one jitted, vmapped call."""
    run = jax.jit(lambda *fields: transition_log_probs(model, tolerance, *fields))
    out = run(data.state, data.action, data.next_state, data.reward, data.done)
    return LikelihoodReport(**{name: np.asarray(value) for name, value in out.items()})


def calibration_table(report: LikelihoodReport, bins: int = CALIBRATION_BINS):
    """(mean predicted probability [bins], observed frequency [bins], weight [bins], ECE) of the events.

    Empty bins hold NaN and weight 0. ECE = sum over bins of weight share x
    |observed - predicted|.
    """
    p, hit, w = report.event_prob.ravel(), report.hit.ravel().astype(np.float64), report.weight.ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = np.bincount(index, w, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(index, w * p, bins) / total
        observed = np.bincount(index, w * hit, bins) / total
    gaps = np.where(total > 0, np.abs(observed - predicted), 0.0)
    ece = float((total * gaps).sum() / max(total.sum(), 1e-12))
    return predicted, observed, total, ece


def format_least_likely(report: LikelihoodReport, data: Transitions, k: int = 1) -> str:
    """The `k` recorded transitions the model finds least likely (impossible ones first), with its outcomes."""
    blocks = []
    for i in np.argsort(report.log_prob, kind="stable")[:k]:
        action = np.asarray(data.action[i])
        p = float(np.exp(report.log_prob[i]))
        verdict = ("is impossible under the model (no outcome with non-zero probability produces it)" if p == 0
                   else f"has probability {p:.4g} under the model, the least of all recorded transitions")
        lines = [f"Transition #{int(i)} {verdict}.",
                 f"  state:  {np.array2string(np.asarray(data.state[i]), precision=7)}",
                 f"  action: {action.tolist() if action.ndim else action.item()}",
                 f"  recorded: next_state {np.array2string(np.asarray(data.next_state[i]), precision=7)}, "
                 f"reward {float(data.reward[i]):.7g}, done {bool(data.done[i])}",
                 "  the model's outcomes:"]
        for c in range(report.outcome_prob.shape[1]):
            lines.append(f"    outcome {c} (probability {report.outcome_prob[i, c]:.4g}): next_state "
                         f"{np.array2string(report.pred_next_state[i, c], precision=7)}, reward "
                         f"{float(report.pred_reward[i, c]):.7g}, done {bool(report.pred_done[i, c])}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def score_model(model: ChanceModel, splits, parts, *, tolerance: accuracy.Tolerance = accuracy.Tolerance(),
                counterexamples: int = 1) -> tuple[dict, str]:
    """(split -> summary, counterexample text) of a chance model on each split's transitions.

    One compiled call over all splits together. A summary holds the
    likelihood figures (`LikelihoodReport.summary`) and, for comparison, the
    paper's accuracy figures of the most likely outcome. The counterexamples
    are the least likely recorded transitions (impossible ones first).
    """
    step = mode_step(model)

    def run(*fields):
        return transition_log_probs(model, tolerance, *fields), accuracy.compare(step, tolerance, *fields)

    merged = Transitions(*(np.concatenate(fields) for fields in zip(*parts)))
    out, comparison = jax.jit(run)(merged.state, merged.action, merged.next_state, merged.reward, merged.done)
    out, comparison = jax.tree.map(np.asarray, out), jax.tree.map(np.asarray, comparison)
    summaries, examples, offset = {}, "", 0
    for split, part in zip(splits, parts):
        index = slice(offset, offset + len(part))
        offset += len(part)
        report = LikelihoodReport(**{name: value[index] for name, value in out.items()})
        paper = accuracy.report_from_comparison(part, jax.tree.map(lambda x: x[index], comparison))
        summaries[split] = {**paper.summary(), **report.summary()}
        if not examples and counterexamples > 0:
            examples = format_least_likely(report, part, counterexamples)
    return summaries, examples
