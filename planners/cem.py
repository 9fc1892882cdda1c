"""The cross-entropy method (CEM) for continuous actions, jitted.

As in the paper (`cem_cwm.py`): sample `num_samples` action sequences of
length `horizon` from a diagonal Gaussian, clip them to the action box, score
each by its total reward under the model (stopping at done), refit the Gaussian
to the `num_elites` best, repeat `iterations` times, and return the best
sequence of the last iteration. Initial mean: the box midpoint; initial std:
max(|low|, |high|) / 2.

`make_cem_planner` replans every real step (closed loop, the default);
`open_loop_agent` executes whole plans before replanning, like the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from planners.base import Agent, PlanFn, StepFn, build_config
from planners.rollout import rollout_return

__all__ = [
    "CEMConfig",
    "CEMOutput",
    "CEMScoreFn",
    "CEMSearchFn",
    "make_cem_planner",
    "make_cem_search",
    "make_scored_cem_search",
    "open_loop_agent",
]


@chex.dataclass(frozen=True)
class CEMOutput:
    """Result of one CEM search.

    Attributes:
      actions: float32 [horizon, action_dim], the best sequence of the last
        iteration (what the planner executes).
      value: float32 [], its return under the model.
      mean: float32 [horizon, action_dim], the final sampling mean.
      std: float32 [horizon, action_dim], the final sampling std.
    """

    actions: jax.Array
    value: jax.Array
    mean: jax.Array
    std: jax.Array


# (key, state) -> CEMOutput.
CEMSearchFn = Callable[[jax.Array, Any], CEMOutput]


@chex.dataclass(frozen=True, kw_only=True, mappable_dataclass=False)
class CEMConfig:
    """The settings of a CEM planner (validated on construction; defaults are the paper's).

    Attributes:
      action_dim: size of the action vector; actions are float32 [action_dim].
      action_low, action_high: bounds of the action box (scalars or
        [action_dim]); samples are clipped to it.
      horizon: plan length T.
      iterations: CEM iterations.
      num_samples: sequences sampled per iteration.
      num_elites: best sequences the Gaussian is refitted to (<= num_samples).
      discount: per-step discount of the score, in [0, 1] (the paper sums
        rewards: 1.0).
      early_exit: stop each sequence's rollout at done (`lax.while_loop`);
        False scans all T steps with a done latch, which vectorises better
        over the samples.
      open_loop: execute each whole plan (`horizon` actions) before the next
        search, as the paper does; `make_cem_planner` then returns an `Agent`
        (`open_loop_agent(search, replan_every=horizon)`). False: replan
        every real step.
    """

    action_dim: int
    action_low: Any
    action_high: Any
    horizon: int = 100
    iterations: int = 20
    num_samples: int = 1000
    num_elites: int = 100
    discount: float = 1.0
    early_exit: bool = False
    open_loop: bool = False

    def __post_init__(self):
        checks = (
            (self.action_dim >= 1, f"action_dim must be >= 1, got {self.action_dim}"),
            (bool(np.all(np.asarray(self.action_low) <= np.asarray(self.action_high))),
             f"action_low must not exceed action_high, got {self.action_low} > {self.action_high}"),
            (self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}"),
            (self.iterations >= 1, f"iterations must be >= 1, got {self.iterations}"),
            (1 <= self.num_elites <= self.num_samples,
             f"need 1 <= num_elites <= num_samples, got {self.num_elites}, {self.num_samples}"),
            (0.0 <= self.discount <= 1.0, f"discount must be in [0, 1], got {self.discount}"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"CEMConfig: {message}")


class _CEMCarry(NamedTuple):
    mean: jax.Array  # float32 [horizon, action_dim]
    std: jax.Array  # float32 [horizon, action_dim]


# (key, state, samples float32 [S, horizon, action_dim]) -> scores float32 [S]: the model's return of each sample.
CEMScoreFn = Callable[[jax.Array, Any, jax.Array], jax.Array]


def make_cem_search(step_fn: StepFn, config: CEMConfig | None = None, **overrides) -> CEMSearchFn:
    """`search(key, state) -> CEMOutput` (one state; vmap it for a batch).

    Args:
      step_fn: the model on one state, action float32 [action_dim].
      config: a `CEMConfig`; None builds one from `overrides`.
      **overrides: `CEMConfig` fields, replacing those of `config`.
    """
    config = build_config(CEMConfig, config, overrides, "make_cem_search")

    def score(key, state, samples):
        del key
        return jax.vmap(lambda actions: rollout_return(step_fn, state, actions, discount=config.discount,
                                                       early_exit=config.early_exit))(samples)

    return make_scored_cem_search(score, config)


def make_scored_cem_search(score: CEMScoreFn, config: CEMConfig) -> CEMSearchFn:
    """CEM's loop around any scoring of the sampled sequences (`make_cem_search`: one model rollout each).

    `score` gets a fresh key per iteration (`planners.chance_cem` draws the
    outcomes of a model with chance from it).
    """
    horizon, action_dim = config.horizon, config.action_dim
    num_samples, num_elites = config.num_samples, config.num_elites
    low = jnp.broadcast_to(jnp.asarray(config.action_low, jnp.float32), (action_dim,))
    high = jnp.broadcast_to(jnp.asarray(config.action_high, jnp.float32), (action_dim,))
    init = _CEMCarry(
        mean=jnp.broadcast_to((low + high) / 2, (horizon, action_dim)),
        std=jnp.broadcast_to(jnp.maximum(jnp.abs(low), jnp.abs(high)) / 2, (horizon, action_dim)),
    )

    def search(key: jax.Array, state) -> CEMOutput:
        def iteration(carry: _CEMCarry, key):
            noise = jax.random.normal(key, (num_samples, horizon, action_dim), jnp.float32)
            samples = jnp.clip(carry.mean + carry.std * noise, low, high)
            scores = score(jax.random.fold_in(key, 1), state, samples)
            scores = jnp.where(jnp.isfinite(scores), scores, -jnp.inf)
            top_scores, top = jax.lax.top_k(scores, num_elites)
            elites = samples[top]
            return _CEMCarry(elites.mean(axis=0), elites.std(axis=0)), (elites[0], top_scores[0])

        keys = jax.random.split(key, config.iterations)
        final, (best, best_score) = jax.lax.scan(iteration, init, keys)
        return CEMOutput(actions=best[-1], value=best_score[-1], mean=final.mean, std=final.std)

    return search


def make_cem_planner(step_fn: StepFn, config: CEMConfig | None = None, **overrides) -> PlanFn | Agent:
    """A CEM planner that replans every step (closed loop), or every `horizon` steps with `open_loop`.

    Defaults are the paper's (`CEMConfig`): horizon 100, 20 iterations, 1000
    samples, 100 elites, undiscounted returns.

        make_cem_planner(step, CEMConfig(action_dim=1, action_low=-2.0, action_high=2.0))
        make_cem_planner(step, action_dim=1, action_low=-2.0, action_high=2.0)   # the same

    Returns:
      plan(key, state) -> action float32 [action_dim]: the first action of the
      best sequence. Pure; jit and vmap it freely. With `open_loop`: the
      `Agent` of `open_loop_agent` (for `planners.evaluate`).
    """
    config = build_config(CEMConfig, config, overrides, "make_cem_planner")
    search = make_cem_search(step_fn, config)
    if config.open_loop:
        return open_loop_agent(search, replan_every=config.horizon)

    def plan(key: jax.Array, state) -> jax.Array:
        return search(key, state).actions[0]

    return plan


def open_loop_agent(search: CEMSearchFn, *, replan_every: int) -> Agent:
    """An `Agent` that executes `replan_every` actions of each plan before replanning.

    `replan_every = horizon` is the paper's open-loop CEM: all T actions run
    before the next search.

    Args:
      search: from `make_cem_search` (or any (key, state) -> object with
        `.actions` [horizon, action_dim]).
      replan_every: 1 <= replan_every <= horizon.

    Returns:
      An `Agent` for `planners.evaluate`.
    """
    if replan_every < 1:
        raise ValueError(f"replan_every must be >= 1, got {replan_every}")

    def plan(key, state):
        actions = search(key, state).actions
        if actions.shape[0] < replan_every:
            raise ValueError(f"replan_every={replan_every} exceeds the horizon {actions.shape[0]}")
        return actions[:replan_every]

    def act(actions, i):
        return actions[i]

    return Agent(search=plan, act=act, period=replan_every)
