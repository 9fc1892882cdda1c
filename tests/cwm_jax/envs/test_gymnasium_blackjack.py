"""gymnasium/Blackjack-v1 with chance: the reference chance CWM against gymnasium's own rules and the real env."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cwm_jax import envs, reference
from cwm_jax.data import transitions as data
from cwm_jax.envs import gymnasium_blackjack as blackjack
from cwm_jax.fit import fitting
from cwm_jax.score import likelihood
from cwm_jax.validate import chance

ENV = "gymnasium/Blackjack-v1"
# Every observation a game can show (a usable ace means a sum of 12 or more), both actions.
PAIRS = np.array([(s, d, u, a) for s in range(4, 22) for d in range(1, 11) for u in range(2) for a in range(2)
                  if not u or s >= 12])


@pytest.fixture(scope="module")
def spec():
    return envs.env_spec(ENV)


@pytest.fixture(scope="module")
def models(spec):
    return {"reference": chance.load_chance_cwm(reference.source(spec), spec),
            "true": blackjack.table_model(),
            "deterministic": chance.load_chance_cwm(reference.deterministic_source(spec), spec)}


def test_the_reference_is_the_true_model_on_every_observation(models):
    tables = jax.jit(jax.vmap(lambda s, a: chance.outcome_table(models["reference"], s, a)))(
        PAIRS[:, :3].astype(np.float32), PAIRS[:, 3].astype(np.int32))
    truth = blackjack.true_table()
    at = tuple(PAIRS.T)
    np.testing.assert_allclose(np.exp(tables.log_prob), np.exp(truth.log_prob[at]), atol=1e-6)
    possible = np.isfinite(truth.log_prob[at])
    assert possible[PAIRS[:, 3] == 1].all() and (possible[PAIRS[:, 3] == 0].sum(axis=1) >= 2).all()
    np.testing.assert_array_equal(np.asarray(tables.next_state)[possible], truth.next_state[at][possible])
    np.testing.assert_array_equal(np.asarray(tables.reward)[possible], truth.reward[at][possible])
    np.testing.assert_array_equal(np.asarray(tables.done)[possible], truth.done[at][possible])


@pytest.mark.parametrize("observation, action", [((16, 6, 0), 0), ((20, 10, 0), 0), ((18, 1, 1), 0),
                                                 ((12, 1, 1), 1), ((15, 3, 0), 1)])
def test_the_enumeration_is_the_real_env_by_sampling(observation, action):
    n = 6000
    counts = blackjack.sample_real(observation, action, n, seed=sum(observation))
    truth = blackjack.true_table()
    at = (*observation, action)
    expected = {}
    for p, next_state, reward, done in zip(np.exp(truth.log_prob[at]), truth.next_state[at], truth.reward[at],
                                           truth.done[at]):
        if p > 0:
            key = (tuple(int(x) for x in next_state), float(reward), bool(done))
            expected[key] = expected.get(key, 0.0) + float(p)
    assert set(counts) <= set(expected)
    for key, p in expected.items():
        assert abs(counts.get(key, 0) / n - p) < 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9, (key, counts.get(key), p)


def test_exact_dynamic_programming_gives_the_known_optimal_return():
    values, actions = blackjack.optimal_values()
    start = blackjack.start_distribution()
    assert start.sum() == pytest.approx(1.0)
    assert (start * values).sum() == pytest.approx(-0.0466, abs=5e-4)  # Sutton & Barto's rules, infinite deck
    assert actions[12, 4:7, 0].tolist() == [0, 0, 0] and actions[12, 2, 0] == 1 and actions[16, 7, 0] == 1
    assert blackjack.policy_return(actions.astype(float)) == pytest.approx((start * values).sum())


def test_the_likelihood_tells_the_models_apart(spec, models):
    test = data.load_split(spec, "test")
    reports = {name: likelihood.likelihood(model, test).summary() for name, model in models.items()}
    assert reports["reference"]["support_accuracy"] == 1.0
    assert reports["reference"]["log_likelihood"] == pytest.approx(reports["true"]["log_likelihood"], abs=1e-5)
    # impossible outcomes (the reference's unused stick outcomes repeat a win) are not calibration events
    assert reports["reference"]["calibration_error"] == pytest.approx(reports["true"]["calibration_error"], abs=1e-6)
    assert reports["deterministic"]["support_accuracy"] < 0.8
    assert reports["deterministic"]["log_likelihood"] < reports["reference"]["log_likelihood"] - 1.0


def test_the_fit_repairs_a_wrong_ten_weight(spec):
    n = 300  # ~400 transitions per split: the ten's probability to about +-0.03 (the experiment uses more)
    splits = {name: data.Transitions(**blackjack.record_random(n, first_seed=base))
              for name, base in (("train", 7_000), ("test", 8_000))}
    wrong = reference.source(spec).replace("TEN_WEIGHT = 4.0", "TEN_WEIGHT = 2.0")
    assert wrong != reference.source(spec)
    report = fitting.fit_source(wrong, spec, load_split=lambda s, name: splits[name])
    (change,) = report.changed
    ten = change["new"] / (9.0 + change["new"])
    hits = int((splits["train"].action == 1).sum())
    assert abs(ten - 4 / 13) < 3.0 * np.sqrt(4 / 13 * 9 / 13 / hits)
    assert report.likelihood["test_after"] > report.likelihood["test_before"]
    assert report.likelihood["train_after"] > report.likelihood["train_before"]
