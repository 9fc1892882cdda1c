"""Stochastic MCTS (planners.stochastic_mcts) over mctx.stochastic_muzero_policy, on SlipperyGrid's dynamics.

One search of one batch of states (one compile); the real-environment comparison with 16 seeds is
`experiments/chance.py` (docs/chance.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cwm_jax.envs import slippery_grid
from cwm_jax.validate import chance
from planners.stochastic_mcts import StochasticMCTSConfig, make_stochastic_mcts_search

UP, RIGHT, DOWN = 0, 1, 2
# On the cliff's edge (a slide down is a fall), one row up (a slide down is harmless), above the goal.
STATES = [[2.0, 1.0], [2.0, 2.0], [2.0, 3.0], [1.0, 1.0], [1.0, 5.0]]


def value(key, state):
    del key
    return slippery_grid.distance_value(state, 0.9)


@pytest.fixture(scope="module")
def output():
    model = chance.ChanceModel(*slippery_grid.TRUE_MODEL)
    search = make_stochastic_mcts_search(model, StochasticMCTSConfig(num_actions=4, num_simulations=32),
                                         value_fn=value)
    return jax.jit(search)(jax.random.key(0), jnp.asarray(STATES, jnp.float32))


def test_chance_moves_the_plan_off_the_cliff_edge(output):
    # Without chance the edge is the best row: the leaf values say so, so only the outcomes move the plan up.
    assert float(value(None, jnp.array([2.0, 2.0]))) > float(value(None, jnp.array([1.0, 1.0])))
    np.testing.assert_array_equal(np.asarray(output.action), [UP, UP, UP, RIGHT, DOWN])


def test_each_step_is_a_decision_level_and_a_chance_level(output):
    tree = output.search_tree
    decision = np.asarray(tree.embeddings.is_decision_node)  # [B, nodes]
    assert decision[:, 0].all() and (~decision[:, 1:]).any(axis=1).all()  # the root decides, chance nodes follow
    expanded = np.asarray(tree.node_visits) > 0
    # every chance node (an afterstate) holds the parent's state; its outcomes lead to decision nodes
    assert (expanded & ~decision).sum() > 0 and (expanded & decision).sum() > decision.shape[0]
    visits = np.asarray(output.action_weights).sum(axis=1)
    np.testing.assert_allclose(visits, 1.0, rtol=1e-5)


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="num_simulations"):
        StochasticMCTSConfig(num_actions=4, num_simulations=0)
    with pytest.raises(ValueError, match="max_depth"):
        StochasticMCTSConfig(num_actions=4, max_depth=1)
