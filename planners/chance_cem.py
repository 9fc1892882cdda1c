"""CEM with chance: each candidate's return averaged over sampled outcome sequences (docs/chance.md).

The model has explicit chance (`planners.stochastic_mcts.ChanceModelLike`:
`afterstate`, `chance_log_probs`, `outcome`, `num_outcomes`). The CEM loop is
`planners.cem`'s; only the score changes: each sampled action sequence is
rolled out `num_outcome_samples` times through the model, the outcome of
every step drawn from the model's probabilities, and scored by the mean
return. Every candidate of one iteration meets the same outcome draws
(common random numbers: one key per rollout and step, shared), so candidates
are compared on the same luck and the ranking is less noisy than the
returns. Planning on the most likely outcome instead (`make_cem_search` on
the mode) plans as if luck were certain.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from planners.base import Agent, PlanFn, build_config
from planners.cem import CEMConfig, CEMSearchFn, make_scored_cem_search, open_loop_agent
from planners.rollout import rollout_return
from planners.stochastic_mcts import ChanceModelLike, make_sampled_step

__all__ = ["make_chance_cem_planner", "make_chance_cem_search"]


def make_chance_cem_search(model: ChanceModelLike, config: CEMConfig | None = None, *,
                           num_outcome_samples: int = 8, **overrides) -> CEMSearchFn:
    """`search(key, state) -> CEMOutput`: CEM scoring each sequence by its mean return over sampled outcomes.

    Args:
      model: a model with chance; actions float32 [action_dim].
      config: a `CEMConfig`; None builds one from `overrides`.
      num_outcome_samples: K, outcome sequences per candidate (>= 1). The
        cost of a search is K times `make_cem_search`'s.
      **overrides: `CEMConfig` fields.
    """
    if num_outcome_samples < 1:
        raise ValueError(f"num_outcome_samples must be >= 1, got {num_outcome_samples}")
    config = build_config(CEMConfig, config, overrides, "make_chance_cem_search")
    sample = make_sampled_step(model)
    action_dim = config.action_dim

    def step(state, packed):  # packed: uint32 [action_dim + key size], the action's bits then the outcome's key
        action = jax.lax.bitcast_convert_type(packed[:action_dim], jnp.float32)
        return sample(jax.random.wrap_key_data(packed[action_dim:]), state, action)

    def one(state, actions, keys):  # actions float32 [T, action_dim], keys [T]: one rollout's return
        packed = jnp.concatenate([jax.lax.bitcast_convert_type(actions, jnp.uint32), jax.random.key_data(keys)],
                                 axis=1)
        return rollout_return(step, state, packed, discount=config.discount, early_exit=config.early_exit)

    def score(key, state, samples):  # samples [S, T, action_dim] -> float32 [S]
        keys = jax.random.split(key, (num_outcome_samples, config.horizon))  # shared by every candidate
        returns = jax.vmap(jax.vmap(one, in_axes=(None, None, 0)), in_axes=(None, 0, None))(state, samples, keys)
        return returns.mean(axis=1)

    return make_scored_cem_search(score, config)


def make_chance_cem_planner(model: ChanceModelLike, config: CEMConfig | None = None, *,
                            num_outcome_samples: int = 8, **overrides) -> PlanFn | Agent:
    """plan(key, state) -> action float32 [action_dim], the first action of chance-averaged CEM's best sequence.

        make_chance_cem_planner(model, action_dim=1, action_low=-1.0, action_high=1.0, num_outcome_samples=16)

    With `open_loop` in the config: an `Agent` executing whole plans, as `make_cem_planner`.
    """
    config = build_config(CEMConfig, config, overrides, "make_chance_cem_planner")
    search = make_chance_cem_search(model, config, num_outcome_samples=num_outcome_samples)
    if config.open_loop:
        return open_loop_agent(search, replan_every=config.horizon)

    def plan(key: jax.Array, state) -> jax.Array:
        return search(key, state).actions[0]

    return plan
