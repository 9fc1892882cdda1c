"""The mctx policies the MCTS planner runs, behind one call.

`run_policy` calls `mctx.gumbel_muzero_policy`, `mctx.muzero_policy`, or,
for muzero without root noise (`dirichlet_fraction == 0`, the planner's
default), `muzero_without_noise`: the same search without drawing the
Dirichlet sample that a zero fraction discards. Drawing it costs a gamma
rejection-sampling loop per decision; skipping it made decisions 1.02-1.08x
faster on the 2-core CPU (CartPole, 25 simulations, batches 1 to 256,
docs/planning.md), with outputs identical bit for bit
(`tests/planners/test_mcts_speed.py`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import mctx

__all__ = ["muzero_without_noise", "run_policy"]


def _logits_from_probs(probs: jax.Array) -> jax.Array:
    """log(probs), with 0 mapped to log(tiny) (as mctx does)."""
    return jnp.log(jnp.maximum(probs, jnp.finfo(probs.dtype).tiny))


def _mask_invalid_actions(logits: jax.Array, invalid_actions: jax.Array | None) -> jax.Array:
    """Logits [B, A] with invalid actions at the finite minimum (as mctx does)."""
    if invalid_actions is None:
        return logits
    logits = logits - jnp.max(logits, axis=-1, keepdims=True)
    return jnp.where(invalid_actions, jnp.finfo(logits.dtype).min, logits)


def muzero_without_noise(
    params: Any,
    rng_key: jax.Array,
    root: mctx.RootFnOutput,
    recurrent_fn: mctx.RecurrentFn,
    num_simulations: int,
    invalid_actions: jax.Array | None = None,
    max_depth: int | None = None,
    *,
    qtransform: Any = mctx.qtransform_by_parent_and_siblings,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    temperature: float = 1.0,
) -> mctx.PolicyOutput:
    """`mctx.muzero_policy(..., dirichlet_fraction=0.0)`, without sampling the discarded noise.

    Same arguments (less the Dirichlet ones) and the same keys: the root
    prior becomes log(softmax(prior_logits)) masked, exactly what mctx mixes
    with a zero fraction of noise, and the action is sampled from the visit
    counts at `temperature` with mctx's key.

    Returns:
      mctx.PolicyOutput: action [B], action_weights [B, A], search_tree.
    """
    rng_key, _, search_key = jax.random.split(rng_key, 3)  # the middle key is mctx's Dirichlet key
    prior = _logits_from_probs(jax.nn.softmax(root.prior_logits))
    root = root.replace(prior_logits=_mask_invalid_actions(prior, invalid_actions))
    selection = functools.partial(
        mctx.muzero_action_selection, pb_c_base=pb_c_base, pb_c_init=pb_c_init, qtransform=qtransform
    )
    tree = mctx.search(
        params=params,
        rng_key=search_key,
        root=root,
        recurrent_fn=recurrent_fn,
        root_action_selection_fn=functools.partial(selection, depth=0),
        interior_action_selection_fn=selection,
        num_simulations=num_simulations,
        max_depth=max_depth,
        invalid_actions=invalid_actions,
    )
    weights = tree.summary().visit_probs
    logits = _logits_from_probs(weights)
    logits = logits - jnp.max(logits, keepdims=True, axis=-1)
    logits = logits / jnp.maximum(jnp.finfo(logits.dtype).tiny, temperature)
    return mctx.PolicyOutput(
        action=jax.random.categorical(rng_key, logits), action_weights=weights, search_tree=tree
    )


def run_policy(
    config,
    rng_key: jax.Array,
    root: mctx.RootFnOutput,
    recurrent_fn: mctx.RecurrentFn,
    invalid_actions: jax.Array | None,
) -> mctx.PolicyOutput:
    """The search `config` (a `planners.MCTSConfig`) asks for, from `root` ([B] rows)."""
    qtransform = {} if config.qtransform is None else {"qtransform": config.qtransform}
    common = dict(invalid_actions=invalid_actions, max_depth=config.max_depth, **qtransform)
    if config.policy == "gumbel":
        return mctx.gumbel_muzero_policy(
            None, rng_key, root, recurrent_fn, config.num_simulations,
            max_num_considered_actions=config.max_num_considered_actions,
            gumbel_scale=config.gumbel_scale, **common,
        )
    muzero = dict(pb_c_init=config.pb_c_init, temperature=config.temperature, **common)
    if config.dirichlet_fraction == 0.0:
        return muzero_without_noise(None, rng_key, root, recurrent_fn, config.num_simulations, **muzero)
    return mctx.muzero_policy(
        None, rng_key, root, recurrent_fn, config.num_simulations,
        dirichlet_fraction=config.dirichlet_fraction, **muzero,
    )
