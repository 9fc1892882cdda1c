"""The speed changes of issue 24 leave results unchanged: same keys, same values, same actions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest

import planners
from planners.mctx_policies import muzero_without_noise
from planners.mcts import Embedding, make_recurrent_fn


def chain(state, action):
    """A 1-D walk: +-0.3 per step, reward = position, done beyond |x| > 1."""
    x = state[0] + jnp.where(action == 1, 0.3, -0.3)
    return jnp.stack([x, state[1] + 1.0]), x, jnp.abs(x) > 1.0


STATES = jnp.stack([jnp.linspace(-0.9, 0.9, 6), jnp.zeros(6)], axis=1)  # [6, 2]


@pytest.mark.parametrize("early_exit", [True, False])
def test_rollout_unroll_gives_the_same_returns(early_exit):
    actions = jax.random.randint(jax.random.key(0), (6, 13), 0, 2)

    def returns(unroll):
        fn = lambda s, a: planners.rollout_return(chain, s, a, discount=0.9, early_exit=early_exit, unroll=unroll)  # noqa: E731
        return np.asarray(jax.jit(jax.vmap(fn))(STATES, actions))

    base = returns(1)
    assert np.isfinite(base).all() and len(set(base.tolist())) > 3  # the rows end at different steps
    for unroll in (4,):  # 13 steps: 3 full iterations and a partial one
        if early_exit:  # the while loop: bit for bit
            np.testing.assert_array_equal(returns(unroll), base)
        else:  # an unrolled scan compiles differently: equal up to float32 rounding
            np.testing.assert_allclose(returns(unroll), base, rtol=1e-6)


def _root_and_recurrent_fn():
    value_fn = planners.make_rollout_value(chain, planners.uniform_discrete_actions(2), depth=4)
    recurrent_fn = make_recurrent_fn(chain, num_actions=2, discount=0.9, value_fn=value_fn)
    root = mctx.RootFnOutput(
        prior_logits=jnp.array([[0.0, 0.0], [0.5, -0.5], [0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]),
        value=jnp.zeros(6),
        embedding=Embedding(state=STATES, done=jnp.zeros(6, jnp.bool_)),
    )
    return root, recurrent_fn


def test_muzero_without_noise_is_mctx_muzero_with_zero_dirichlet_fraction():
    root, recurrent_fn = _root_and_recurrent_fn()
    invalid = jnp.zeros((6, 2), jnp.bool_).at[5, 0].set(True)

    @jax.jit
    def both(key):
        kwargs = dict(invalid_actions=invalid, max_depth=6, temperature=1.0)  # samples with mctx's key
        ours = muzero_without_noise(None, key, root, recurrent_fn, 8, **kwargs)
        theirs = mctx.muzero_policy(None, key, root, recurrent_fn, 8, dirichlet_fraction=0.0, **kwargs)
        return ours, theirs

    for seed in range(3):
        ours, theirs = both(jax.random.key(seed))
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(ours.action[5]) == 1  # the root mask applies


def test_planner_actions_do_not_depend_on_the_rollout_unroll():
    searches = [planners.make_mcts_search(chain, num_actions=2, num_simulations=6, rollout_depth=7,
                                          rollout_unroll=unroll) for unroll in (1, 3)]
    outs = jax.jit(lambda key: [search(key, STATES) for search in searches])(jax.random.key(4))
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="rollout_unroll"):
        planners.MCTSConfig(num_actions=2, rollout_unroll=0)


def test_the_scaling_benchmark_counts_loops_and_depths():
    import sys
    from pathlib import Path

    experiments = str(Path(__file__).resolve().parents[2] / "experiments")
    if experiments not in sys.path:
        sys.path.append(experiments)
    from speed_scaling import _node_depths, hlo_loops

    # mctx parents [B, N]: -1 for the root; a node's parent has a smaller index.
    parents = np.array([[-1, 0, 0, 1, 3], [-1, 0, 1, 2, 3]])
    np.testing.assert_array_equal(_node_depths(parents), [[0, 1, 1, 2, 3], [0, 1, 2, 3, 4]])

    def two_loops(x):
        x = jax.lax.fori_loop(0, 7, lambda i, y: jnp.sin(y) * 2.0, x)
        return jax.lax.while_loop(lambda y: y.sum() < 100.0, lambda y: y * 3.0 + 1.0, x)

    text = jax.jit(two_loops).lower(jnp.ones(3)).compile().as_text()
    loops = hlo_loops(text)
    assert loops["while_loops"] == 2 and loops["known_trip_count"] == 1 and loops["rng_loops"] == 0
    assert sorted(loop["trip_count"] or 0 for loop in loops["model_loops"]) == [0, 7]
    assert min(loop["body_instructions"] for loop in loops["model_loops"]) >= 1
