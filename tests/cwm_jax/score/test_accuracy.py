"""Accuracy checking: tolerances chosen by measurement, components, counterexamples."""

import numpy as np
import pytest

from cwm_jax import reference
from cwm_jax.score import accuracy
from cwm_jax.data import transitions as data
from cwm_jax.validate import loader

CARTPOLE = reference.source("CartPole")

# The true CartPole dynamics, rewritten in an algebraically equivalent way
# (other operation order, explicit divisions, degrees to radians via math).
EQUIVALENT_CARTPOLE = '''
import math
import jax.numpy as jnp

def step(state, action):
    x, v, th, w = state[0], state[1], state[2], state[3]
    f = 20.0 * action - 10.0
    c = jnp.cos(th)
    s = jnp.sin(th)
    tmp = f / 1.1 + 0.05 * w * w * s / 1.1
    alpha = (9.8 * s - c * tmp) / (0.5 * 4.0 / 3.0 - 0.5 * 0.1 * c * c / 1.1)
    acc = tmp - 0.05 * alpha * c / 1.1
    nxt = jnp.array([x + 0.02 * v, v + 0.02 * acc, th + 0.02 * w, w + 0.02 * alpha], dtype=jnp.float32)
    limit = math.radians(12.0)
    done = jnp.logical_or(jnp.abs(nxt[0]) > 2.4, jnp.abs(nxt[2]) > limit)
    return nxt, jnp.float32(1.0), done
'''


@pytest.fixture(scope="module")
def train():
    return data.load_split("CartPole", "train")


def _score(source, split_data, tol=1e-5):
    step = loader.load_cwm(source, "CartPole")
    return accuracy.check(step, split_data, tolerance=accuracy.Tolerance(tol, tol, tol, tol))


def test_equivalent_formulation_is_accepted(train):
    report = _score(EQUIVALENT_CARTPOLE, train)
    assert report.strict_accuracy == 1.0


def test_tolerance_catches_a_tenth_of_a_percent_in_gravity(train):
    mutant = CARTPOLE.replace("GRAVITY = 9.8", "GRAVITY = 9.81")
    assert _score(mutant, train, 1e-5).accuracy < 1.0
    # The looser tolerance does not: this is why the default is 1e-5.
    assert _score(mutant, train, 1e-4).accuracy == 1.0


def test_components_and_counterexample(train):
    mutant = CARTPOLE.replace("jnp.float32(1.0), done", "jnp.float32(0.5), done")
    report = _score(mutant, train)
    assert report.reward_accuracy == 0.0
    assert report.state_accuracy == 1.0 and report.done_accuracy == 1.0
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.strict_accuracy == 0.0
    [example] = accuracy.counterexamples(report, train, k=1)
    assert example.index == 0 and example.failed == ("reward",)
    text = accuracy.format_counterexamples([example])
    assert "expected reward: 1, predicted reward: 0.5  <-- wrong" in text
    assert "action:" in text and "expected next_state:" in text


def test_nan_predictions_never_count_as_right(train):
    step = loader.load_reference("CartPole")

    def nan_step(state, action):
        next_state, reward, done = step(state, action)
        return next_state * np.float32("nan"), reward, done

    report = accuracy.check(nan_step, train)
    assert report.state_accuracy == 0.0


def test_weighted_accuracy_weights_reward_classes():
    # Two reward classes: 3 transitions with reward 0, 1 with reward 1.
    n = 4
    split = data.Transitions(
        state=np.zeros((n, 1), np.float32), action=np.zeros(n, np.int32),
        next_state=np.zeros((n, 1), np.float32), reward=np.array([0, 0, 0, 1], np.float32),
        done=np.zeros(n, bool), episode=np.zeros(n, np.int32),
    )
    wrong_rare_reward = accuracy.Comparison(
        element_ok=np.ones((n, 1), bool), reward_ok=np.array([True, True, True, False]), done_ok=np.ones(n, bool),
        pred_next_state=split.next_state, pred_reward=np.zeros(n, np.float32), pred_done=np.zeros(n, bool))
    report = accuracy.report_from_comparison(split, wrong_rare_reward)
    assert report.accuracy == pytest.approx((3 * 1 + 2 / 3) / 4)
    # The rare class carries half of the weight: (1 + 2/3) / 2.
    assert report.weighted_accuracy == pytest.approx((1 + 2 / 3) / 2)


def _hand_report(pred_reward):
    """Six transitions [obs_dim 2]: element 1 wrong in #1 and #2, element 0 in #3, reward in #4, done in #5."""
    t, f = True, False
    split = data.Transitions(
        state=np.zeros((6, 2), np.float32), action=np.zeros(6, np.int32), next_state=np.ones((6, 2), np.float32),
        reward=np.zeros(6, np.float32), done=np.array([f, f, f, f, f, t]), episode=np.zeros(6, np.int32))
    element_ok = np.array([[t, t], [t, f], [t, f], [f, t], [t, t], [t, t]])
    reward_ok, done_ok = np.array([t, t, t, t, f, t]), np.array([t, t, t, t, t, f])
    pred_done = np.zeros(6, bool)
    comparison = accuracy.Comparison(element_ok=element_ok, reward_ok=reward_ok, done_ok=done_ok,
                                     pred_next_state=np.ones((6, 2), np.float32), pred_reward=pred_reward,
                                     pred_done=pred_done)
    return accuracy.report_from_comparison(split, comparison), split


def test_diverse_counterexamples_show_one_transition_per_kind_of_mistake_and_a_summary():
    report, split = _hand_report(np.zeros(6, np.float32))
    assert [e.index for e in accuracy.counterexamples(report, split, 3)] == [1, 2, 3]
    assert [e.index for e in accuracy.counterexamples(report, split, 3, diverse=True)] == [1, 3, 4]
    summary = accuracy.failure_summary(report)
    assert summary == ("Summary: 5 of the 6 transitions (83.3%) are predicted wrongly; wrong next_state in 3 "
                       "(wrong elements: [1] in 2, [0] in 1), reward in 1, done in 1 (0 predicted done wrongly, "
                       "1 missed).")
    text = accuracy.format_counterexamples(accuracy.counterexamples(report, split, 3, diverse=True), summary)
    assert text.startswith("Transition #1 ") and text.count("Transition #") == 3 and text.endswith(summary)
    # The digest of what is right ignores the predicted values, and sees every flipped element.
    assert accuracy.correctness_digest(report) == accuracy.correctness_digest(_hand_report(np.ones(6, np.float32))[0])
    flipped = accuracy.AccuracyReport(**{**report.__dict__, "reward_ok": np.ones(6, bool)})
    assert accuracy.correctness_digest(flipped) != accuracy.correctness_digest(report)
