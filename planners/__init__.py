"""Planners over a model `step(state, action) -> (next_state, reward, done)`.

Importable into any JAX RL code; nothing here depends on the rest of cwm-jax.
Every factory returns a pure `plan(key, state) -> action` on ONE state, to be
`jax.jit`-ed and `jax.vmap`-ed by the caller:

    import jax, planners
    plan = planners.make_mcts_planner(step, num_actions=2)   # or (step, planners.MCTSConfig(num_actions=2))
    actions = jax.jit(jax.vmap(plan))(keys, states)        # [B]

The same code plans with a Code World Model and with the true dynamics
(`EnvSpec.oracle_step`).
"""

from planners.base import (
    ActionMaskFn,
    ActionSequenceFn,
    Agent,
    PlanFn,
    PriorFn,
    StepFn,
    ValueFn,
    as_agent,
    unbatched,
)
from planners.cem import CEMConfig, CEMOutput, make_cem_planner, make_cem_search, open_loop_agent
from planners.chance_cem import make_chance_cem_planner, make_chance_cem_search
from planners.episode import EnvStep, Transition, env_functions, rollout
from planners.evaluate import (
    EpisodeResult,
    evaluate,
    make_episode_fn,
    make_evaluate,
    normalized_return,
    random_policy,
    seed_keys,
)
from planners.mcts import Embedding, MCTSConfig, make_mcts_planner, make_mcts_search, make_recurrent_fn
from planners.ppo import PPOConfig, make_train
from planners.stochastic_mcts import (
    StochasticMCTSConfig,
    make_sampled_rollout_value,
    make_sampled_step,
    make_stochastic_mcts_planner,
    make_stochastic_mcts_search,
)
from planners.rollout import (
    make_rollout_value,
    rollout_return,
    uniform_box_actions,
    uniform_discrete_actions,
    zero_value,
)
from planners.sharding import seed_mesh, shard_over_devices

__all__ = [
    # model and planner interfaces
    "ActionMaskFn",
    "ActionSequenceFn",
    "Agent",
    "PlanFn",
    "PriorFn",
    "StepFn",
    "ValueFn",
    "as_agent",
    "unbatched",
    # MCTS (mctx)
    "Embedding",
    "MCTSConfig",
    "make_mcts_planner",
    "make_mcts_search",
    "make_recurrent_fn",
    # stochastic MCTS (mctx stochastic MuZero; models with chance, docs/chance.md)
    "StochasticMCTSConfig",
    "make_sampled_rollout_value",
    "make_sampled_step",
    "make_stochastic_mcts_planner",
    "make_stochastic_mcts_search",
    # CEM
    "CEMConfig",
    "CEMOutput",
    "make_cem_planner",
    "make_cem_search",
    "open_loop_agent",
    # CEM with chance (returns averaged over sampled outcomes, docs/chance.md)
    "make_chance_cem_planner",
    "make_chance_cem_search",
    # PPO (planners.ppo: value_fn/prior_fn for MCTS, save/load)
    "PPOConfig",
    "make_train",
    # rollouts and values
    "make_rollout_value",
    "rollout_return",
    "uniform_box_actions",
    "uniform_discrete_actions",
    "zero_value",
    # the episode loop (planners.episode)
    "EnvStep",
    "Transition",
    "env_functions",
    "rollout",
    # evaluation
    "EpisodeResult",
    "evaluate",
    "make_episode_fn",
    "make_evaluate",
    "normalized_return",
    "random_policy",
    "seed_keys",
    # devices
    "seed_mesh",
    "shard_over_devices",
]
