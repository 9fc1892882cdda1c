"""Planning with a chance model (docs/chance.md): stochastic MCTS for `plan` and the benchmark.

A chance model (`cwm_jax.validate.chance.ChanceModel`: a chance program's
exported artifacts, a trusted reference, or an environment's true chance
model, `EnvSpec.chance_oracle`) plans with `planners.make_stochastic_mcts_planner`
(mctx's stochastic MuZero search) at the MCTS settings of the environment:
its simulations, random rollouts with sampled outcomes of `rollout_depth`
steps, `num_rollouts` of them per leaf, its discount. The oracle of a random
environment is the same planner with the true chance model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from cwm_jax.envs import EnvSpec
from cwm_jax.planning import Baselines, Evaluation, evaluate
from cwm_jax.validate.chance import ChanceModel

if TYPE_CHECKING:
    from cwm_jax.planning import PlannerConfig

__all__ = ["chance_baselines", "is_chance_model", "make_chance_planner", "oracle_chance_model"]


def is_chance_model(model: Any) -> bool:
    """Whether a loaded model is a chance model (else a deterministic step)."""
    return isinstance(model, ChanceModel)


def oracle_chance_model(spec: EnvSpec) -> ChanceModel | None:
    """The true dynamics of a random environment as a chance model, or None where none is known."""
    return None if spec.chance_oracle is None else ChanceModel(*spec.chance_oracle())


def make_chance_planner(spec: EnvSpec, model: ChanceModel, config: PlannerConfig) -> Callable:
    """policy(key, state) -> action: stochastic MCTS on `model` at `config`'s MCTS settings."""
    import planners

    if spec.num_actions is None:
        raise ValueError(f"{spec.id} has continuous actions: stochastic MCTS plans discrete ones only")
    return planners.make_stochastic_mcts_planner(
        model, num_actions=spec.num_actions, num_simulations=config.num_simulations,
        rollout_depth=config.rollout_depth, num_rollouts=config.num_rollouts, discount=config.discount)


def chance_baselines(spec: EnvSpec, config: PlannerConfig, keys, say: Callable[[str], None], *, mesh=None,
                     oracle: Evaluation | None = None) -> Baselines:
    """Random actions, and stochastic MCTS on the true chance model (NaN returns where none is known)."""
    import planners

    random = evaluate(spec, planners.random_policy(spec.random_action), keys, "random", say, mesh=mesh)
    if oracle is None:
        truth = oracle_chance_model(spec)
        if truth is None:
            say(f"  oracle: none: no true chance model of {spec.id} is known, so the normalized return is N/A")
            n = int(keys.shape[0])
            oracle = Evaluation("oracle", np.full(n, np.nan), np.zeros(n, np.int64), 0.0, 0.0)
        else:
            say(f"  oracle: the true chance model of {spec.id}, planned with the same stochastic MCTS")
            oracle = evaluate(spec, make_chance_planner(spec, truth, config), keys, "oracle", say, mesh=mesh)
    return Baselines(random=random, oracle=dataclasses.replace(oracle, label="oracle"))
