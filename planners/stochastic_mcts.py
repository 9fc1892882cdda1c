"""MCTS with chance: `mctx.stochastic_muzero_policy` over a model with explicit chance outcomes.

The model is any object with (unbatched functions, vmapped here)

    afterstate(state, action)          -> afterstate (a pytree)
    chance_log_probs(afterstate)       -> float32 [C], log-probabilities (-inf: impossible)
    outcome(afterstate, chance int32)  -> (next_state, reward, done)
    num_outcomes                       -> C (a static int)

(`cwm_jax.validate.chance.ChanceModel` is one; a deterministic model is
C = 1). Each real step is two tree levels: a decision node picks the action
(PUCT on uniform priors), its afterstate is a chance node whose children are
the C outcomes, visited in proportion to their probabilities (mctx's
quasi-random chance selection, so the probabilities must be the model's
own). Reward and discount sit on the chance -> state edge; terminal states
are absorbing (a done latch, as in `planners.mcts`). Both of mctx's
recurrent functions run at every expansion (mctx issue #79): a simulation
costs about two model calls and two leaf values (`experiments/speed.py
--stochastic` measures it).

Leaf values come from random rollouts through the model with sampled
outcomes, or from a value function you pass. A chance node's first value is
one sampled outcome's reward plus the discounted value of where it leads.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import chex
import jax
import jax.numpy as jnp
import mctx

from planners.base import PlanFn, ValueFn, build_config, call_step, select_tree, unbatched
from planners.rollout import rollout_return, zero_value

__all__ = [
    "ChanceModelLike",
    "StochasticEmbedding",
    "StochasticMCTSConfig",
    "make_sampled_step",
    "make_sampled_rollout_value",
    "make_stochastic_mcts_planner",
    "make_stochastic_mcts_search",
]


class ChanceModelLike(Protocol):
    """What the stochastic planner needs of a model (see the module docstring)."""

    num_outcomes: int

    def afterstate(self, state, action): ...

    def chance_log_probs(self, afterstate) -> jax.Array: ...

    def outcome(self, afterstate, chance: jax.Array): ...


@chex.dataclass(frozen=True)
class StochasticEmbedding:
    """What mctx stores per node: the state (decision nodes) or afterstate (chance nodes) and a done latch.

    Attributes:
      state: the model state at a decision node, the parent's at a chance node.
      afterstate: the afterstate at a chance node (zeros of its shape at a decision node).
      done: bool [B], True once an edge on the path from the root terminated.
    """

    state: Any
    afterstate: Any
    done: jax.Array


@chex.dataclass(frozen=True, kw_only=True, mappable_dataclass=False)
class StochasticMCTSConfig:
    """Settings of the stochastic MCTS planner (validated on construction).

    Attributes:
      num_actions: discrete actions, int32 in [0, num_actions).
      num_simulations: simulations per real step (each adds one node, a
        decision or a chance node).
      rollout_depth: leaf value = discounted return of a random rollout of at
        most this many steps with sampled outcomes; 0: value 0.
      num_rollouts: rollouts averaged per leaf.
      discount: per-step discount of the tree and the rollouts, in [0, 1].
      max_depth: maximum tree depth in levels (two per real step); default
        num_simulations.
      temperature: act on visit_counts**(1/temperature); 0 takes the most visited action.
      dirichlet_fraction: root exploration noise in [0, 1] (0: none).
      pb_c_init: PUCT exploration constant.
    """

    num_actions: int
    num_simulations: int = 64
    rollout_depth: int = 20
    num_rollouts: int = 4
    discount: float = 0.99
    max_depth: int | None = None
    temperature: float = 0.0
    dirichlet_fraction: float = 0.0
    pb_c_init: float = 1.25

    def __post_init__(self):
        checks = (
            (self.num_actions >= 1, f"num_actions must be >= 1, got {self.num_actions}"),
            (self.num_simulations >= 1, f"num_simulations must be >= 1, got {self.num_simulations}"),
            (self.rollout_depth >= 0, f"rollout_depth must be >= 0, got {self.rollout_depth}"),
            (self.num_rollouts >= 1, f"num_rollouts must be >= 1, got {self.num_rollouts}"),
            (0.0 <= self.discount <= 1.0, f"discount must be in [0, 1], got {self.discount}"),
            (self.max_depth is None or self.max_depth >= 2, f"max_depth must be >= 2, got {self.max_depth}"),
            (self.temperature >= 0.0, f"temperature must be >= 0, got {self.temperature}"),
            (0.0 <= self.dirichlet_fraction <= 1.0,
             f"dirichlet_fraction must be in [0, 1], got {self.dirichlet_fraction}"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"StochasticMCTSConfig: {message}")


def make_sampled_step(model: ChanceModelLike):
    """(key, state, action) -> (next_state, reward, done), the outcome drawn from the model's probabilities."""

    def step(key, state, action):
        after = model.afterstate(state, action)
        chance = jax.random.categorical(key, model.chance_log_probs(after)).astype(jnp.int32)
        return model.outcome(after, chance)

    return step


def make_sampled_rollout_value(model: ChanceModelLike, num_actions: int, *, depth: int, discount: float,
                               num_rollouts: int = 1) -> ValueFn:
    """value(key, state): mean discounted return of `num_rollouts` uniformly random rollouts, outcomes sampled."""
    sample = make_sampled_step(model)

    def step(state, packed):  # packed: uint32 [1 + key size], the action then the outcome's key data
        return sample(jax.random.wrap_key_data(packed[1:]), state, packed[0].astype(jnp.int32))

    def one(key, state):
        action_key, chance_key = jax.random.split(key)
        actions = jax.random.randint(action_key, (depth, 1), 0, num_actions, dtype=jnp.int32).astype(jnp.uint32)
        packed = jnp.concatenate([actions, jax.random.key_data(jax.random.split(chance_key, depth))], axis=1)
        return rollout_return(step, state, packed, discount=discount, early_exit=False)

    def value(key, state):
        if depth == 0:
            return jnp.zeros((), jnp.float32)
        return jax.vmap(one, in_axes=(0, None))(jax.random.split(key, num_rollouts), state).mean()

    return value


def _masked(done: jax.Array, value: jax.Array) -> jax.Array:
    return jnp.where(done | ~jnp.isfinite(value), 0.0, value).astype(jnp.float32)


def make_stochastic_mcts_search(model: ChanceModelLike, config: StochasticMCTSConfig | None = None, *,
                                value_fn: ValueFn | None = None, **overrides):
    """Batched search: `search(key, states [B, ...]) -> mctx.PolicyOutput` (action [B], action_weights [B, A])."""
    config = build_config(StochasticMCTSConfig, config, overrides, "make_stochastic_mcts_search")
    if value_fn is None:
        value_fn = (make_sampled_rollout_value(model, config.num_actions, depth=config.rollout_depth,
                                               discount=config.discount, num_rollouts=config.num_rollouts)
                    if config.rollout_depth > 0 else zero_value)
    count = int(model.num_outcomes)
    sample = make_sampled_step(model)
    blocked = jnp.where(jnp.arange(count) == 0, 0.0, -jnp.inf)  # below a terminal state: outcome 0 only

    def values(key, states, done):
        return _masked(done, jax.vmap(value_fn)(jax.random.split(key, done.shape[0]), states))

    def decision_recurrent_fn(params, rng_key, action, embedding: StochasticEmbedding):
        del params
        batch = action.shape[0]
        after = jax.vmap(model.afterstate)(embedding.state, action)
        logits = jax.vmap(model.chance_log_probs)(after).astype(jnp.float32)
        logits = jnp.where(embedding.done[:, None], blocked, logits)
        sample_key, value_key = jax.random.split(rng_key)
        next_state, reward, done = jax.vmap(lambda k, s, a: call_step(functools.partial(sample, k), s, a))(
            jax.random.split(sample_key, batch), embedding.state, action)
        done = done | embedding.done
        afterstate_value = _masked(embedding.done, reward + config.discount * values(value_key, next_state, done))
        return (mctx.DecisionRecurrentFnOutput(chance_logits=logits, afterstate_value=afterstate_value),
                StochasticEmbedding(state=embedding.state, afterstate=after, done=embedding.done))

    def chance_recurrent_fn(params, rng_key, chance, embedding: StochasticEmbedding):
        del params
        def resolve(state, after, outcome):  # call_step types the next state like `state`
            return call_step(lambda _, a: model.outcome(a, outcome), state, after)

        next_state, reward, done = jax.vmap(resolve)(embedding.state, embedding.afterstate, chance.astype(jnp.int32))
        was_done = embedding.done
        next_state = jax.vmap(select_tree)(was_done, embedding.state, next_state)
        done = was_done | done
        output = mctx.ChanceRecurrentFnOutput(
            action_logits=jnp.zeros((chance.shape[0], config.num_actions), jnp.float32),
            value=values(rng_key, next_state, done),
            reward=jnp.where(was_done | ~jnp.isfinite(reward), 0.0, reward),
            discount=jnp.where(done, 0.0, jnp.float32(config.discount)))
        return output, StochasticEmbedding(state=next_state, afterstate=embedding.afterstate, done=done)

    def search(key: jax.Array, states) -> mctx.PolicyOutput:
        batch = jax.tree.leaves(states)[0].shape[0]
        root_key, search_key = jax.random.split(key)
        done = jnp.zeros((batch,), jnp.bool_)
        after = jax.eval_shape(jax.vmap(model.afterstate), states, jnp.zeros((batch,), jnp.int32))
        root = mctx.RootFnOutput(
            prior_logits=jnp.zeros((batch, config.num_actions), jnp.float32),
            value=values(root_key, states, done),
            embedding=StochasticEmbedding(state=states, afterstate=jax.tree.map(
                lambda s: jnp.zeros(s.shape, s.dtype), after), done=done))
        return mctx.stochastic_muzero_policy(
            None, search_key, root, decision_recurrent_fn, chance_recurrent_fn, config.num_simulations,
            max_depth=config.max_depth, dirichlet_fraction=config.dirichlet_fraction, pb_c_init=config.pb_c_init,
            temperature=config.temperature)

    return search


def make_stochastic_mcts_planner(model: ChanceModelLike, config: StochasticMCTSConfig | None = None, *,
                                 value_fn: ValueFn | None = None, **overrides) -> PlanFn:
    """plan(key, state) -> action int32 [], by stochastic MCTS on `model`; pure, jit and vmap it.

        make_stochastic_mcts_planner(model, num_actions=4, num_simulations=64)
    """
    search = make_stochastic_mcts_search(model, config, value_fn=value_fn, **overrides)
    return unbatched(lambda key, states: search(key, states).action.astype(jnp.int32))
