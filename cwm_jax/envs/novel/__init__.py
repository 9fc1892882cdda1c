"""Generated worlds whose rules no model remembers: "gymnax/Novel-Physics-<seed>", "gymnax/Novel-Grid-<seed>",
and with chance, "gymnax/Novel-Chance-<seed>" (a grid whose moves slip: `chance_grid`).

Any non-negative seed names a world; the registry resolves these ids through
`spec_for` (its pattern hook). Each world comes with its reference CWM, the
generator's own source for its rules (`EnvSpec.reference_source`): it passes
the validator and scores 1.0, so it is the upper bound of a benchmark on the
world and the ground truth of its tests. The description says what the
observation and the actions are and which kinds of mechanism may exist,
never which are active nor their constants.

    spec = cwm_jax.env_spec("gymnax/Novel-Grid-3")
    env, params = spec.make_gymnax()
"""

from __future__ import annotations

import functools
import hashlib
import re

from cwm_jax.envs.novel import chance_grid, grid, grid_source, physics
from cwm_jax.envs.spec import EnvSpec

__all__ = ["BENCH_SEEDS", "FAMILIES", "GENERATOR_VERSION", "bench_ids", "chance_ids", "spec_for"]

FAMILIES = ("Physics", "Grid")
BENCH_SEEDS = range(5)  # `--envs novel`: seeds 0-4 of each family
GENERATOR_VERSION = 1  # bump when a seed's world changes: cached transitions are then collected again
_PATTERN = re.compile(r"^(?:gymnax/)?novel-(physics|grid|chance)-(\d{1,9})$", re.IGNORECASE)


def bench_ids() -> tuple[str, ...]:
    """The ids `--envs novel` stands for."""
    return tuple(f"gymnax/Novel-{family}-{seed}" for family in FAMILIES for seed in BENCH_SEEDS)


def chance_ids() -> tuple[str, ...]:
    """Seeds 0-4 of the chance family (`--envs novel-chance`): grids whose moves slip, scored by likelihood."""
    return tuple(f"gymnax/Novel-Chance-{seed}" for seed in BENCH_SEEDS)


def spec_for(env_id: str) -> EnvSpec | None:
    """The spec of a generated world's id (any case, with or without "gymnax/"), or None if it is not one."""
    match = _PATTERN.match(env_id.strip())
    if match is None:
        return None
    return _spec(match.group(1).lower(), int(match.group(2)))


@functools.cache
def _spec(family: str, seed: int) -> EnvSpec:
    if family == "physics":
        world = physics.draw(seed)
        name, source = f"Novel-Physics-{seed}", world.source()
        description = physics.describe(world.body, world.action_dim)
        space = {"action_dim": world.action_dim, "action_low": -1.0, "action_high": 1.0}
        make = functools.cache(lambda: _env(world, name, 2 * world.n, physics.MAX_STEPS, action_dim=world.action_dim))
        obs_shape = (2 * world.n,)
    elif family == "chance":
        world = chance_grid.draw(seed)
        name, source = f"Novel-Chance-{seed}", chance_grid.source(world)
        description = chance_grid.describe(world.grid.height, world.grid.width)
        space = {"num_actions": len(grid.ACTIONS), "stochastic": True,
                 "chance_oracle": functools.partial(chance_grid.true_model, world)}
        make = functools.cache(lambda: _env(world, name, world.grid.obs_dim, grid.MAX_STEPS,
                                            num_actions=len(grid.ACTIONS)))
        obs_shape = (world.grid.obs_dim,)
    else:
        world = grid.draw(seed)
        name, source = f"Novel-Grid-{seed}", grid_source.source(world)
        description = grid.describe(world.height, world.width)
        space = {"num_actions": len(grid.ACTIONS)}
        make = functools.cache(lambda: _env(world, name, world.obs_dim, grid.MAX_STEPS,
                                            num_actions=len(grid.ACTIONS)))
        obs_shape = (world.obs_dim,)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return EnvSpec(
        name=name, gymnax_id=name, description=description, docs_description=description, obs_shape=obs_shape,
        state_from_obs=_state_from_obs, heuristic_policy=world.heuristic, reference="", reference_source=source,
        make_env=make, data_version=f"novel-{GENERATOR_VERSION}-{digest}", **space)


def _env(world, name: str, obs_dim: int, max_steps: int, **space):
    from cwm_jax.envs.novel.world_env import ChanceNovelEnv, NovelEnv  # lazily: gymnax only when an env is built

    kind = ChanceNovelEnv if isinstance(world, chance_grid.ChanceGridWorld) else NovelEnv
    env = kind(world, name, obs_dim=obs_dim, max_steps=max_steps, **space)
    return env, env.default_params


def _state_from_obs(obs):
    import jax.numpy as jnp

    from cwm_jax.envs.novel.world_env import NovelState

    return NovelState(time=jnp.int32(0), obs=jnp.asarray(obs, jnp.float32))
