"""Scoring arithmetic with hand-computed values: the paper's weighted metric,
terminal transitions, tolerances per component, splits scored apart."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from cwm_jax import reference
from cwm_jax.score import accuracy
from cwm_jax.data import transitions as data
from cwm_jax.validate import loader
from cwm_jax.score import scoring


def _transitions(state, next_state, reward, done) -> data.Transitions:
    state = np.asarray(state, np.float32)
    n = state.shape[0]
    return data.Transitions(
        state=state, action=np.zeros(n, np.int32), next_state=np.asarray(next_state, np.float32),
        reward=np.asarray(reward, np.float32), done=np.asarray(done, bool), episode=np.zeros(n, np.int32),
    )


def test_weighted_metric_scores_terminal_transitions_on_reward_and_done_only():
    # Five transitions with 2 state elements; rows 2-4 are terminal in the DATA
    # (recorded done), whatever the model predicts.
    recorded_done = [False, False, True, True, True]
    split = _transitions(np.zeros((5, 2)), np.zeros((5, 2)), [0, 0, 1, 1, -1], recorded_done)
    element_ok = np.array([[True, False], [True, True], [False, False], [True, True], [True, False]])
    reward_ok = np.array([True, True, True, False, True])
    done_ok = np.array([True, False, True, True, False])
    pred_done = np.array(recorded_done) == done_ok  # row 4 predicts "not done"
    comparison = accuracy.Comparison(element_ok=element_ok, reward_ok=reward_ok, done_ok=done_ok,
                                    pred_next_state=split.next_state, pred_reward=split.reward, pred_done=pred_done)
    report = accuracy.report_from_comparison(split, comparison)
    # Paper score per transition:
    #   non-terminal: (mean of element_ok + reward_ok + done_ok) / 3
    #   terminal:     0.5 * reward_ok + 0.5 * done_ok  (the state is not scored)
    #   row 0: (1/2 + 1 + 1) / 3 = 5/6        row 1: (1 + 1 + 0) / 3 = 2/3
    #   row 2: 0.5 + 0.5 = 1 (all state elements wrong, yet full credit)
    #   row 3: 0 + 0.5 = 1/2                  row 4: 0.5 + 0 = 1/2
    # Weights 1 / (count of the row's reward): rewards 0, 0, 1, 1, -1 -> 1/2, 1/2, 1/2, 1/2, 1.
    #   weighted = (5/12 + 1/3 + 1/2 + 1/4 + 1/2) / 3 = (24/12) / 3 = 2/3
    assert report.weighted_accuracy == pytest.approx(2 / 3, abs=1e-12)
    # Eq. 2 (state all-or-nothing, terminal rows scored like the others):
    #   (2/3 + 2/3 + 2/3 + 2/3 + 1/3) / 5 = 3/5
    assert report.accuracy == pytest.approx(3 / 5, abs=1e-12)
    assert report.state_accuracy == pytest.approx(2 / 5)
    assert report.reward_accuracy == pytest.approx(4 / 5)
    assert report.done_accuracy == pytest.approx(3 / 5)
    assert report.strict_accuracy == 0.0
    np.testing.assert_array_equal(report.state_ok, [False, True, False, True, False])
    np.testing.assert_array_equal(report.failures, [0, 1, 2, 3, 4])


def test_weighted_metric_gives_state_credit_per_element():
    # One non-terminal transition, 4 state elements of which 3 are right, and
    # one terminal transition of another reward class that is fully right.
    split = _transitions(np.zeros((2, 4)), np.zeros((2, 4)), [0, 1], [False, True])
    element_ok = np.array([[True, True, True, False], [True, True, True, True]])
    ones = np.ones(2, bool)
    report = accuracy.report_from_comparison(split, accuracy.Comparison(
        element_ok=element_ok, reward_ok=ones, done_ok=ones, pred_next_state=split.next_state, pred_reward=split.reward,
        pred_done=~ones))
    # Row 0: (3/4 + 1 + 1) / 3 = 11/12; row 1: 1. Equal weights: (11/12 + 1) / 2 = 23/24.
    assert report.weighted_accuracy == pytest.approx(23 / 24, abs=1e-12)
    # Eq. 2: row 0 (0 + 1 + 1) / 3 = 2/3, row 1: 1 -> 5/6.
    assert report.accuracy == pytest.approx(5 / 6, abs=1e-12)


def _echo_step(state, action):
    """Predicts next_state = state, reward = state[0], done = state[1] > 0."""
    del action
    return state, state[0], state[1] > 0


def test_state_and_reward_tolerances_are_applied_to_their_own_component():
    # The model echoes its input, so each row's predictions are its `state`.
    # State: relative tolerance only; reward: absolute tolerance only.
    tol = accuracy.Tolerance(state_rtol=0.1, state_atol=0.0, reward_rtol=0.0, reward_atol=0.25)
    split = _transitions(
        state=[[10.5, 0.0], [0.2, 0.0], [0.25, 1.0], [0.0, 0.0]],
        next_state=[[10.0, 0.0], [0.0, 0.0], [0.25, 1.0], [0.0, 0.0]],
        reward=[10.0, 0.0, 0.0, 0.0],
        done=[False, False, True, True],
    )
    report = accuracy.check(_echo_step, split, tolerance=tol)
    # Row 0: state |10.5 - 10| = 0.5 <= 0.1 * 10 (relative) -> right;
    #        reward |10.5 - 10| = 0.5 > 0.25 (absolute) -> wrong.
    # Row 1: state |0.2 - 0| = 0.2 > 0 + 0.1 * 0 -> wrong (no absolute slack);
    #        reward |0.2 - 0| = 0.2 <= 0.25 -> right.
    # Row 2: reward |0.25 - 0| = 0.25, exactly on the bound: counts as right.
    # Row 3: done predicted False, recorded True -> wrong; done is exact.
    # Swapping the state and reward tolerances, or rtol and atol, flips rows 0 and 1.
    np.testing.assert_array_equal(report.state_ok, [True, False, True, True])
    np.testing.assert_array_equal(report.reward_ok, [False, True, True, True])
    np.testing.assert_array_equal(report.done_ok, [True, True, True, False])
    np.testing.assert_array_equal(report.state_element_ok[1], [False, True])
    np.testing.assert_allclose(report.pred_reward, [10.5, 0.2, 0.25, 0.0])


def test_counterexample_names_the_wrong_elements_and_components():
    split = _transitions(
        state=[[1.0, 0.0, 3.0], [2.0, 0.0, 5.0]],
        next_state=[[1.0, 0.0, 3.0], [2.0, 0.5, 6.0]],
        reward=[1.0, 1.0],
        done=[False, True],
    )
    report = accuracy.check(_echo_step, split)
    [example] = accuracy.counterexamples(report, split, k=5)
    # Row 0 is right; row 1 has elements 1 and 2 wrong, reward 2 != 1, done False != True.
    assert example.index == 1
    assert example.wrong_state_elements == (1, 2)
    assert example.failed == ("next_state", "reward", "done")
    text = accuracy.format_counterexample(example)
    # Floats are printed with 7 significant digits, integer actions as integers.
    assert "  state:                [2, 0, 5]\n  action:               0\n" in text
    assert "expected next_state:  [2, 0.5, 6]" in text
    assert "wrong next_state elements: [1] expected 0.5 got 0, [2] expected 6 got 5" in text
    assert "expected done: True, predicted done: False  <-- wrong" in text


@pytest.fixture(scope="module")
def cartpole_splits():
    return data.load_split("CartPole", "train"), data.load_split("CartPole", "test")


def test_each_split_is_scored_on_its_own_transitions(cartpole_splits):
    # A gravity mutant fails some transitions of each split, in different amounts.
    mutant = reference.source("CartPole").replace("GRAVITY = 9.8", "GRAVITY = 9.81")
    result = scoring.score_source(mutant, "CartPole", splits=("train", "test"), counterexamples=0)
    step = loader.load_cwm(mutant, "CartPole")
    for name, split in zip(("train", "test"), cartpole_splits):
        alone = accuracy.check(step, split).summary()
        assert result.summaries[name] == pytest.approx(alone), name
        assert alone["n_transitions"] == len(split) and alone["accuracy"] < 1.0
    assert result.summaries["train"] != result.summaries["test"]
    assert result.value == result.summaries["train"]["accuracy"]


def assert_splits_disjoint(train: data.Transitions, test: data.Transitions) -> None:
    """No recorded state of one split appears (bit for bit) in the other."""
    train_rows = {row.tobytes() for row in np.ascontiguousarray(train.state)}
    shared = [i for i, row in enumerate(np.ascontiguousarray(test.state)) if row.tobytes() in train_rows]
    assert not shared, f"{len(shared)} test states also appear in train, e.g. test #{shared[0]}"


def test_train_and_test_splits_share_no_state(cartpole_splits):
    train, test = cartpole_splits
    assert_splits_disjoint(train, test)
    # The check is strict: a test split that equals train but for one state fails it.
    almost = data.Transitions(train.state.copy(), *train[1:])
    almost.state[0, 0] += 1.0
    with pytest.raises(AssertionError):
        assert_splits_disjoint(train, almost)


def test_tolerance_boundary_is_inclusive_and_nan_is_never_close():
    predicted = jnp.array([1.5, 2.0, jnp.nan, jnp.inf], jnp.float32)
    expected = jnp.array([1.0, 1.0, jnp.nan, jnp.inf], jnp.float32)
    # |1.5 - 1| = 0.5 = 0.25 + 0.25 * 1: on the bound; |2 - 1| = 1 > 0.5.
    close = np.asarray(accuracy._close(predicted, expected, 0.25, 0.25))
    np.testing.assert_array_equal(close, [True, False, False, False])


def test_vectors_print_floats_to_7_digits_and_integers_exactly():
    assert accuracy._vector(np.array([0.1, 1 / 3], np.float32)) == "[0.1, 0.3333333]"
    assert accuracy._vector(np.array([3, -1], np.int32)) == "[3, -1]"
    assert accuracy._vector(np.array(True)) == "[True]"


def test_an_empty_split_is_an_error_and_reports_are_frozen():
    empty = _transitions(np.zeros((0, 2)), np.zeros((0, 2)), [], [])
    nothing = accuracy.Comparison(element_ok=np.zeros((0, 2), bool), reward_ok=np.zeros(0, bool),
                                  done_ok=np.zeros(0, bool), pred_next_state=empty.next_state,
                                  pred_reward=empty.reward, pred_done=empty.done)
    with pytest.raises(ValueError, match="no transitions"):
        accuracy.report_from_comparison(empty, nothing)
    split = _transitions(np.zeros((1, 1)), np.zeros((1, 1)), [0], [False])
    ones = np.ones(1, bool)
    report = accuracy.report_from_comparison(split, accuracy.Comparison(
        element_ok=ones[:, None], reward_ok=ones, done_ok=ones, pred_next_state=split.next_state,
        pred_reward=split.reward, pred_done=~ones))
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.accuracy = 0.0
