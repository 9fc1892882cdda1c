"""CEM with chance (planners.chance_cem): returns averaged over sampled outcomes, not the likeliest one trusted."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cwm_jax.validate.chance import mode_step
from planners import make_cem_planner, make_chance_cem_planner, make_chance_cem_search

SETTINGS = {"action_dim": 1, "action_low": -1.0, "action_high": 1.0, "horizon": 1, "iterations": 4,
            "num_samples": 64, "num_elites": 8}


class Gamble(NamedTuple):
    """One bet: an action > 0 wins +1 with probability 0.6 (the most likely outcome) and loses 5 with 0.4
    (mean -2.4); an action <= 0 keeps 0. The episode ends either way."""

    num_outcomes: int = 2

    def afterstate(self, state, action):
        return jnp.concatenate([state, action])

    def chance_log_probs(self, afterstate):
        del afterstate
        return jnp.log(jnp.array([0.6, 0.4], jnp.float32))

    def outcome(self, afterstate, chance):
        bet = afterstate[1] > 0.0
        reward = jnp.where(bet, jnp.where(chance == 0, 1.0, -5.0), 0.0)
        return afterstate[:1], reward.astype(jnp.float32), jnp.bool_(True)


def test_averaging_over_outcomes_declines_a_bet_the_most_likely_outcome_takes():
    keys = jax.random.split(jax.random.key(0), 8)
    states = jnp.zeros((8, 1), jnp.float32)
    averaged = jax.jit(jax.vmap(make_chance_cem_planner(Gamble(), num_outcome_samples=16, **SETTINGS)))(keys, states)
    trusting = jax.jit(jax.vmap(make_cem_planner(mode_step(Gamble()), **SETTINGS)))(keys, states)
    assert (np.asarray(averaged) <= 0.0).all(), averaged  # declines: mean -2.4 < 0
    assert (np.asarray(trusting) > 0.0).all(), trusting  # bets: the likeliest outcome is +1


def test_the_score_is_the_mean_over_outcome_draws_and_one_draw_is_a_sample():
    forced = {**SETTINGS, "action_low": 0.5, "iterations": 1}  # every candidate bets

    def values(samples, keys):
        search = make_chance_cem_search(Gamble(), num_outcome_samples=samples, **forced)
        return np.asarray(jax.jit(jax.vmap(search))(keys, jnp.zeros((len(keys), 1), jnp.float32)).value)

    (mean,) = values(4096, jax.random.key(1)[None])
    assert mean == pytest.approx(0.6 - 0.4 * 5.0, abs=0.2)  # the mean (4 standard errors)
    assert set(values(1, jax.random.split(jax.random.key(2), 12)).tolist()) == {1.0, -5.0}  # one draw: one outcome
    with pytest.raises(ValueError, match="num_outcome_samples"):
        make_chance_cem_search(Gamble(), num_outcome_samples=0, **SETTINGS)
