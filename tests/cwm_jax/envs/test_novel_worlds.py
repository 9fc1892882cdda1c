"""Generated worlds (cwm_jax/envs/novel): ids for any seed, determinism, exact references, descriptions.

The full checks are measured, not tested: `experiments/env_determinism.py
gymnax/Novel-Grid-<seed> ...` (the project's determinism test) and
`python -m cwm_jax bench --envs novel --methods reference` (references score
1.0 on recorded train and test splits); docs/environments.md has the figures.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cwm_jax import envs
from cwm_jax.commands import bench as bench_command
from cwm_jax.validate import loader
from cwm_jax.envs.novel import grid, physics

# Together these hold every mechanism of the library: Physics-4 two links, one actuated torque, dead-zone,
# saturation, Euler; Physics-2341 a point mass, midpoint with 2 substeps, walls, spring, field, coupling,
# friction, drag, box termination; Grid-4 key, door, hazard, teleporters, block; Grid-1234 ice, conveyor,
# teleporters, reward tile, block.
WORLDS = ["gymnax/Novel-Physics-4", "gymnax/Novel-Physics-2341", "gymnax/Novel-Grid-4", "gymnax/Novel-Grid-1234"]
STREAMS, STEPS = 8, 64


def test_any_seed_resolves_to_one_spec_and_other_ids_do_not():
    spec = envs.env_spec("novel-grid-98765")
    assert spec.id == "gymnax/Novel-Grid-98765" and envs.env_spec(" GYMNAX/NOVEL-GRID-98765") is spec
    assert envs.env_spec("gymnax/Novel-Physics-0").discrete is False and spec.num_actions == 4
    for bad in ("Novel-Grid-", "Novel-Grid--1", "Novel-Maze-1", "Novel-Grid-1x", "gymnax/Novel-Physics"):
        with pytest.raises(envs.UnknownEnvError, match="Novel-Grid-<seed>"):
            envs.env_spec(bad)
    assert bench_command.resolve_envs(["novel"]) == tuple(
        f"gymnax/Novel-{family}-{seed}" for family in ("Physics", "Grid") for seed in range(5))


def _visited(spec, env, params, key):
    """[STREAMS * STEPS] pre-step observations and actions of random and heuristic auto-resetting rollouts."""
    def run(key, heuristic):
        obs, state = env.reset_env(key, params)

        def body(carry, key):
            obs, state = carry
            k_act, k_reset = jax.random.split(key)
            action = jax.lax.cond(heuristic, lambda k: spec.heuristic_policy(k, obs), spec.random_action, k_act)
            next_obs, next_state, _, done, _ = env.step_env(k_act, state, action, params)
            reset_obs, reset_state = env.reset_env(k_reset, params)
            pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)
            return (pick(reset_obs, next_obs), pick(reset_state, next_state)), (obs, action)

        return jax.lax.scan(body, (obs, state), jax.random.split(key, STEPS))[1]

    keys = jax.random.split(key, STREAMS)
    obs, action = jax.vmap(run)(keys, jnp.arange(STREAMS) % 2 == 1)
    return obs.reshape(-1, spec.obs_dim), action.reshape((-1,) + spec.action_struct().shape)


@pytest.mark.parametrize("env_id", WORLDS)
def test_step_depends_on_the_observation_only_and_the_reference_is_exact(env_id):
    spec = envs.env_spec(env_id)
    reference = loader.load_cwm(spec.reference_source, spec)  # the validator and the contract checks
    env, params = spec.make_gymnax()

    @jax.jit
    def outcomes(key):
        obs, action = _visited(spec, env, params, key)
        oracle = jax.vmap(spec.oracle_step)(obs, action)
        # Another key and another step count: a world's step reads neither.
        other = jax.vmap(lambda o, a, k: env.step_env(k, spec.state_from_obs(o).replace(time=57), a, params))(
            obs, action, jax.random.split(jax.random.key(9), obs.shape[0]))
        return obs, oracle, (other[0], other[2], other[3]), jax.vmap(reference)(obs, action)

    obs, oracle, other, ref = outcomes(jax.random.key(0))
    assert np.isfinite(np.asarray(obs)).all()
    for name, a, b, c in zip(("next_state", "reward", "done"), oracle, other, ref):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{env_id}: {name} depends on key/time")
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c), err_msg=f"{env_id}: reference {name} differs")
    assert len(np.unique(np.asarray(obs), axis=0)) > 16, "the rollouts visit too few states"


def _numbers(world) -> set[float]:
    """Every drawn number of a world (its reference's constants), whole numbers below 10 left out
    (grid sizes and codes, which the observation shows anyway)."""
    found: set[float] = set()
    constants = world.constants() if isinstance(world, physics.PhysicsWorld) else grid_constants(world)
    for value in constants.values():
        for x in np.ravel(np.asarray(value, dtype=float)):
            if not (x == int(x) and abs(x) < 10):
                found.add(float(x))
    return found


def grid_constants(world):
    from cwm_jax.envs.novel import grid_source

    return grid_source._constants(world)


def _mentions(text: str, value: float) -> bool:
    forms = {f"{value:g}", f"{abs(value):g}", f"{value:.3g}", f"{abs(value):.3g}"}
    return any(re.search(rf"(?<![\w.]){re.escape(form)}(?![\d])", text) for form in forms)


def test_descriptions_depend_on_the_shape_only_and_hold_no_drawn_constant():
    for seed in range(40):
        for world, spec, text in (
            (w := physics.draw(seed), envs.env_spec(f"Novel-Physics-{seed}"), physics.describe(w.body, w.action_dim)),
            (g := grid.draw(seed), envs.env_spec(f"Novel-Grid-{seed}"), grid.describe(g.height, g.width)),
        ):
            assert spec.description == spec.description_for("docs") == text
            leaked = [x for x in _numbers(world) if _mentions(text, x)]
            assert not leaked, f"{spec.id}: the description gives {leaked}"
    # Words for mechanisms a world has are there whether or not it has them.
    assert "ice" in grid.describe(5, 5) and "quadratic drag" in physics.describe("cart", 1)
