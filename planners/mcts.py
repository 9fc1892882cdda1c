"""MCTS with mctx over a deterministic model `step(state, action)`.

The model is wrapped as an mctx `recurrent_fn` whose embedding carries the
model state plus a done latch, so terminal states are absorbing: below a
terminal node every edge has reward 0 and discount 0 and every node value 0,
so nothing past a termination reaches a Q-value. Leaf values come from random
rollouts (which stop at done) or from a value function you pass; priors are
uniform or come from a prior function you pass; an optional action mask
applies at the root (mctx `invalid_actions`) and inside the tree (prior
logits of -1e9).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import mctx

from planners.base import (
    ActionMaskFn,
    PlanFn,
    PriorFn,
    StepFn,
    ValueFn,
    build_config,
    call_step,
    check_num_actions,
    unbatched,
)
from planners.mctx_policies import run_policy
from planners.rollout import make_rollout_value, uniform_discrete_actions, zero_value

__all__ = [
    "INVALID_LOGIT",
    "POLICIES",
    "ROLLOUT_UNROLL",
    "Embedding",
    "MCTSConfig",
    "SearchFn",
    "make_mcts_planner",
    "make_mcts_search",
    "make_recurrent_fn",
    "rollout_unroll",
]

# Default `MCTSConfig.rollout_unroll` per JAX backend (`jax.default_backend()`).
# cpu: 1, measured (docs/planning.md: unroll 2-8 won 10% at batch 16 and lost
# up to 20% at batches 1 and 256). gpu: 8, NOT measured (no GPU was lent): a
# GPU pays a launch and a predicate read per loop iteration, which unrolling
# divides; `speed.py plan --scaling` on a GPU compares it with 1.
ROLLOUT_UNROLL = {"cpu": 1, "gpu": 8}

# Logit of an illegal action inside the tree (mctx issue #29).
INVALID_LOGIT = -1e9

POLICIES = ("muzero", "gumbel")

# (key, states [B, ...]) -> mctx.PolicyOutput (action [B], action_weights [B, A], search_tree).
SearchFn = Callable[[jax.Array, Any], mctx.PolicyOutput]


@chex.dataclass(frozen=True)
class Embedding:
    """What mctx stores per tree node.

    Attributes:
      state: the model state, a pytree with leaves [B, ...].
      done: bool [B], True once an edge on the path from the root terminated.
    """

    state: Any
    done: jax.Array


def _prior_logits(
    states, *, num_actions: int, prior_fn: PriorFn | None, action_mask_fn: ActionMaskFn | None
) -> jax.Array:
    """Prior logits [B, num_actions] for states [B, ...]; illegal actions get -1e9."""
    batch = jax.tree.leaves(states)[0].shape[0]
    if prior_fn is None:
        logits = jnp.zeros((batch, num_actions), jnp.float32)
    else:
        logits = jax.vmap(prior_fn)(states).astype(jnp.float32)
        chex.assert_shape(logits, (batch, num_actions))
    if action_mask_fn is not None:
        valid = jax.vmap(action_mask_fn)(states)
        chex.assert_shape(valid, (batch, num_actions))
        logits = jnp.where(valid, logits, INVALID_LOGIT)
    return logits


def make_recurrent_fn(
    step_fn: StepFn,
    *,
    num_actions: int,
    discount: float,
    value_fn: ValueFn,
    prior_fn: PriorFn | None = None,
    action_mask_fn: ActionMaskFn | None = None,
    tie_break_noise: float = 0.0,
) -> mctx.RecurrentFn:
    """The mctx `recurrent_fn` of a model, with absorbing terminal states.

    For a parent embedding (state, done) and action a:
      next_state, r, d = step_fn(state, a)      (frozen at state if done)
      reward   = 0 if done else r
      done'    = done or d
      discount = 0 if done' else `discount`
      value    = 0 if done' else value_fn(key, next_state)

    Non-finite rewards and values (a broken model) count as 0. With
    `tie_break_noise > 0`, Gumbel noise of that scale is added to the prior
    logits of every new node, so that equal priors are not always broken
    towards action 0 (see `make_mcts_planner`).

    Returns:
      recurrent_fn(params, rng_key, action [B], embedding) ->
        (mctx.RecurrentFnOutput with reward/discount/value [B] and
         prior_logits [B, num_actions], next Embedding).
    """

    def recurrent_fn(params, rng_key, action, embedding: Embedding):
        del params
        batch = action.shape[0]
        next_state, reward, done = jax.vmap(functools.partial(call_step, step_fn))(
            embedding.state, action
        )
        was_done = embedding.done
        reward = jnp.where(was_done | ~jnp.isfinite(reward), 0.0, reward)
        next_state = jax.tree.map(
            lambda old, new: jnp.where(was_done.reshape((batch,) + (1,) * (old.ndim - 1)), old, new),
            embedding.state,
            next_state,
        )
        done = was_done | done
        value_key, noise_key = jax.random.split(rng_key) if tie_break_noise > 0 else (rng_key, None)
        value = jax.vmap(value_fn)(jax.random.split(value_key, batch), next_state)
        value = jnp.where(done | ~jnp.isfinite(value), 0.0, value.astype(jnp.float32))
        logits = _prior_logits(
            next_state, num_actions=num_actions, prior_fn=prior_fn, action_mask_fn=action_mask_fn
        )
        if tie_break_noise > 0:
            logits = logits + tie_break_noise * jax.random.gumbel(noise_key, logits.shape)
        output = mctx.RecurrentFnOutput(
            reward=reward,
            discount=jnp.where(done, 0.0, jnp.float32(discount)),
            prior_logits=logits,
            value=value,
        )
        return output, Embedding(state=next_state, done=done)

    return recurrent_fn


@chex.dataclass(frozen=True, kw_only=True, mappable_dataclass=False)
class MCTSConfig:
    """The settings of an MCTS planner (validated on construction; defaults are the paper's).

    Attributes:
      num_actions: size of the discrete action space; actions are int32 in
        [0, num_actions).
      num_simulations: simulations per call (per real step).
      policy: "muzero" (`mctx.muzero_policy`, PUCT selection, acts on visit
        counts) or "gumbel" (`mctx.gumbel_muzero_policy`, sequential halving
        with Gumbel noise at the root).
      rollout_depth: leaf value = the discounted return of a uniformly random
        rollout of at most this many steps, stopping at done. 0: value 0.
        Ignored when a `value_fn` is given.
      num_rollouts: random rollouts averaged per leaf (the paper: 1).
      discount: per-step discount of the tree and of the rollouts, in [0, 1].
      max_depth: maximum tree depth (default: num_simulations).
      temperature: muzero only; act on visit_counts**(1/temperature). 0 (the
        default) takes the most visited action.
      dirichlet_fraction: muzero only; root exploration noise in [0, 1] (0:
        none, which suits planning with a fixed model).
      pb_c_init: muzero only; PUCT exploration constant.
      gumbel_scale: gumbel only; scale of the root Gumbel noise (0 makes the
        search deterministic given the rollout keys).
      max_num_considered_actions: gumbel only.
      qtransform: override mctx's default Q transform of the policy.
      rollout_early_exit: end each rollout loop at done (see
        `planners.rollout.make_rollout_value`; default: only for a single
        rollout per leaf).
      rollout_unroll: model steps per iteration of each rollout loop
        (`planners.rollout.rollout_return`); the values are the same, only
        the number of sequential loop iterations changes. Default (None):
        `ROLLOUT_UNROLL` for the backend `jax.default_backend()` names.
      tie_break_noise: scale of Gumbel noise added to the prior logits of
        interior nodes. mctx's Gumbel interior selection is deterministic and
        breaks ties towards action 0; with uniform priors that biases whole
        subtrees (measured on CartPole: 90% of root choices went to action 1
        whatever the state, and the episode return fell from ~400 to ~115).
        Default (None): 1e-3 for "gumbel" (enough to randomise ties, too
        small to change the priors), 0 for "muzero" (mctx already breaks its
        ties randomly).
    """

    num_actions: int
    num_simulations: int = 25
    policy: str = "muzero"
    rollout_depth: int = 100
    num_rollouts: int = 1
    discount: float = 0.99
    max_depth: int | None = None
    temperature: float = 0.0
    dirichlet_fraction: float = 0.0
    pb_c_init: float = 1.25
    gumbel_scale: float = 1.0
    max_num_considered_actions: int = 16
    qtransform: Callable | None = None
    rollout_early_exit: bool | None = None
    rollout_unroll: int | None = None
    tie_break_noise: float | None = None

    def __post_init__(self):
        checks = (
            (self.policy in POLICIES, f"policy must be one of {POLICIES}, got {self.policy!r}"),
            (self.num_actions >= 1, f"num_actions must be >= 1, got {self.num_actions}"),
            (self.num_simulations >= 1, f"num_simulations must be >= 1, got {self.num_simulations}"),
            (self.rollout_depth >= 0, f"rollout_depth must be >= 0, got {self.rollout_depth}"),
            (self.num_rollouts >= 1, f"num_rollouts must be >= 1, got {self.num_rollouts}"),
            (0.0 <= self.discount <= 1.0, f"discount must be in [0, 1], got {self.discount}"),
            (self.max_depth is None or self.max_depth >= 1, f"max_depth must be >= 1, got {self.max_depth}"),
            (self.temperature >= 0.0, f"temperature must be >= 0, got {self.temperature}"),
            (0.0 <= self.dirichlet_fraction <= 1.0,
             f"dirichlet_fraction must be in [0, 1], got {self.dirichlet_fraction}"),
            (self.max_num_considered_actions >= 1,
             f"max_num_considered_actions must be >= 1, got {self.max_num_considered_actions}"),
            (self.rollout_unroll is None or self.rollout_unroll >= 1,
             f"rollout_unroll must be >= 1, got {self.rollout_unroll}"),
            (self.tie_break_noise is None or self.tie_break_noise >= 0.0,
             f"tie_break_noise must be >= 0, got {self.tie_break_noise}"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"MCTSConfig: {message}")


def rollout_unroll(config: MCTSConfig) -> int:
    """`config.rollout_unroll`, or the default of the current backend (`ROLLOUT_UNROLL`; 1 if unlisted)."""
    if config.rollout_unroll is not None:
        return config.rollout_unroll
    return ROLLOUT_UNROLL.get(jax.default_backend(), 1)


def make_mcts_search(
    step_fn: StepFn,
    config: MCTSConfig | None = None,
    *,
    value_fn: ValueFn | None = None,
    prior_fn: PriorFn | None = None,
    action_mask_fn: ActionMaskFn | None = None,
    **overrides,
) -> SearchFn:
    """Batched MCTS: `search(key, states) -> mctx.PolicyOutput`.

    Arguments as in `make_mcts_planner`. `states` has leaves [B, ...]; the
    output has `action` int32 [B], `action_weights` [B, num_actions] and the
    `search_tree` (see `mctx.Tree.summary()`).
    """
    config = build_config(MCTSConfig, config, overrides, "make_mcts_search")
    check_num_actions(step_fn, config.num_actions)
    if value_fn is None:
        value_fn = (
            make_rollout_value(
                step_fn,
                uniform_discrete_actions(config.num_actions),
                depth=config.rollout_depth,
                discount=config.discount,
                num_rollouts=config.num_rollouts,
                early_exit=config.rollout_early_exit,
                unroll=rollout_unroll(config),
            )
            if config.rollout_depth > 0
            else zero_value
        )
    logits_fn = functools.partial(
        _prior_logits, num_actions=config.num_actions, prior_fn=prior_fn, action_mask_fn=action_mask_fn
    )
    tie_break_noise = config.tie_break_noise
    if tie_break_noise is None:
        tie_break_noise = 1e-3 if config.policy == "gumbel" else 0.0
    recurrent_fn = make_recurrent_fn(
        step_fn,
        num_actions=config.num_actions,
        discount=config.discount,
        value_fn=value_fn,
        prior_fn=prior_fn,
        action_mask_fn=action_mask_fn,
        tie_break_noise=tie_break_noise,
    )

    def search(key: jax.Array, states) -> mctx.PolicyOutput:
        batch = jax.tree.leaves(states)[0].shape[0]
        root_key, search_key = jax.random.split(key)
        root_value = jax.vmap(value_fn)(jax.random.split(root_key, batch), states)
        root = mctx.RootFnOutput(
            prior_logits=logits_fn(states),
            value=jnp.where(jnp.isfinite(root_value), root_value, 0.0).astype(jnp.float32),
            embedding=Embedding(state=states, done=jnp.zeros((batch,), jnp.bool_)),
        )
        invalid_actions = None
        if action_mask_fn is not None:
            invalid_actions = ~jax.vmap(action_mask_fn)(states)
        return run_policy(config, search_key, root, recurrent_fn, invalid_actions)

    return search


def make_mcts_planner(
    step_fn: StepFn,
    config: MCTSConfig | None = None,
    *,
    value_fn: ValueFn | None = None,
    prior_fn: PriorFn | None = None,
    action_mask_fn: ActionMaskFn | None = None,
    **overrides,
) -> PlanFn:
    """An MCTS planner for a discrete-action model, on mctx.

    A fresh tree is built on every call (as in the paper). The defaults are
    the paper's (`MCTSConfig`): 25 simulations, random rollouts of up to 100
    steps, discount 0.99.

        make_mcts_planner(step, MCTSConfig(num_actions=2, rollout_depth=20))
        make_mcts_planner(step, num_actions=2, rollout_depth=20)      # the same
        make_mcts_planner(step, config, num_simulations=50)           # config with one field replaced

    Args:
      step_fn: the model, `step(state, action) -> (next_state, reward, done)`
        on ONE state, with action an int32 scalar. A CWM or
        `EnvSpec.oracle_step`. If it declares its action count (an attribute
        `num_actions`, as a loaded CWM and `EnvSpec.oracle_step` do), it must
        equal `config.num_actions`; a plain function cannot be checked, and
        actions >= its real count reach it unchecked.
      config: an `MCTSConfig`; None builds one from `overrides`.
      value_fn: (key, state) -> float32 [], replaces the rollouts.
      prior_fn: state -> float32 [num_actions] prior logits (default uniform).
      action_mask_fn: state -> bool [num_actions], True where legal; illegal
        actions are masked at the root and inside the tree.
      **overrides: `MCTSConfig` fields, replacing those of `config`.

    Returns:
      plan(key, state) -> action int32 [], pure; jit and vmap it freely
      (vmap over keys [B] and states [B, ...] gives actions [B]).
    """
    search = make_mcts_search(
        step_fn, config, value_fn=value_fn, prior_fn=prior_fn, action_mask_fn=action_mask_fn, **overrides
    )
    return unbatched(lambda key, states: search(key, states).action.astype(jnp.int32))
