"""The chance family of generated worlds: "gymnax/Novel-Chance-<seed>", a grid world whose moves slip.

The grid of `Novel-Grid-<seed>` (same walls, tiles, codes and rewards), but
a move goes where it was sent only with probability 1 - SLIP; with SLIP / 2
each it goes to one side instead (up slips right or left, right slips down
or up), and the world's rules then apply to the move actually made. SLIP is
drawn from the seed (0.1 to 0.35) and never given. The reference CWM is the
grid's generated source with its `step` renamed `grid_step`, wrapped in the
chance contract (docs/chance.md): afterstate = the state and the action,
three outcomes (as sent, slipped to one side, to the other), and `grid_step` of
the action the outcome makes. The environment itself steps the grid's own
implementation (`grid.GridWorld.step`, through `world_env.ChanceNovelEnv`), so the reference's probabilities can
be checked against it independently.
"""

from __future__ import annotations

import dataclasses
import random

import jax
import jax.numpy as jnp

from cwm_jax.envs.novel import grid, grid_source

__all__ = ["SIDEWAYS", "ChanceGridWorld", "describe", "draw", "sideways", "source", "true_model"]

# Outcome k of action a moves in direction SIDEWAYS[a][k]: as sent, its right-hand side, its left-hand side.
SIDEWAYS = tuple((a, (a + 1) % 4, (a + 3) % 4) for a in range(len(grid.ACTIONS)))


@dataclasses.dataclass(frozen=True)
class ChanceGridWorld:
    """A grid world (`grid.GridWorld`) whose moves slip sideways with probability `slip`."""

    grid: grid.GridWorld
    slip: float

    @property
    def seed(self) -> int:
        return self.grid.seed

    def probabilities(self) -> jax.Array:
        """float32 [3]: as sent, slipped right, slipped left."""
        return jnp.array([1.0 - self.slip, self.slip / 2, self.slip / 2], jnp.float32)

    def step(self, key: jax.Array, state: jax.Array, action: jax.Array):
        """One random step: the outcome drawn with `probabilities`, then the grid's rules on the move made."""
        chance = jax.random.choice(key, 3, p=self.probabilities())
        return self.grid.step(state, sideways(action, chance))

    def reset(self, key: jax.Array) -> jax.Array:
        return self.grid.reset(key)

    def heuristic(self, key: jax.Array, obs: jax.Array) -> jax.Array:
        return self.grid.heuristic(key, obs)


def sideways(action: jax.Array, chance: jax.Array) -> jax.Array:
    """int32 []: the direction moved when `action` meets outcome `chance` (0 as sent, 1 right of it, 2 left)."""
    return jnp.array(SIDEWAYS, jnp.int32)[action, chance]


def true_model(world: ChanceGridWorld) -> tuple:
    """(afterstate, chance_log_probs, outcome, 3): the world's own dynamics as a chance model (`EnvSpec.chance_oracle`)."""

    def afterstate(state, action):
        return jnp.concatenate([state, jnp.stack([jnp.asarray(action, jnp.float32)])])

    def chance_log_probs(after):
        return jnp.log(world.probabilities())

    def outcome(after, chance):
        return world.grid.step(after[:-1], sideways(after[-1].astype(jnp.int32), chance))

    return afterstate, chance_log_probs, outcome, 3


def draw(seed: int) -> ChanceGridWorld:
    """The chance world of `seed`: Novel-Grid-<seed>'s grid and a slip probability from its own generator."""
    rng = random.Random(f"novel-chance-{seed}")
    return ChanceGridWorld(grid=grid.draw(seed), slip=float(f"{rng.uniform(0.1, 0.35):.3g}"))


def source(world: ChanceGridWorld) -> str:
    """The reference chance CWM of `world` (the grid's generated rules as `grid_step`, plus the three chance functions)."""
    rules = grid_source.source(world.grid)
    header = f'"""Reference CWM of gymnax/Novel-Grid-{world.seed} (written by the generator)."""'
    if not rules.startswith(header) or rules.count("\ndef step(state, action):") != 1:  # pragma: no cover
        raise RuntimeError(f"the grid source of world {world.seed} changed shape: update chance_grid.source")
    rules = rules.replace(header, f'"""Reference chance CWM of gymnax/Novel-Chance-{world.seed} '
                                  '(written by the generator)."""', 1)
    rules = rules.replace("\ndef step(state, action):", "\ndef grid_step(state, action):")
    return rules + f'''

SLIP = {world.slip!r}
SIDEWAYS = {SIDEWAYS!r}


def afterstate(state, action):
    return jnp.concatenate([state, jnp.stack([jnp.asarray(action, jnp.float32)])])


def chance_log_probs(afterstate):
    return jnp.log(jnp.array([1.0 - SLIP, SLIP / 2, SLIP / 2]))


def outcome(afterstate, chance):
    action = afterstate[-1].astype(jnp.int32)
    return grid_step(afterstate[:-1], jnp.array(SIDEWAYS)[action, chance])
'''


def describe(height: int, width: int) -> str:
    """The grid's description, plus that moves are random (never how likely a slip is)."""
    return grid.describe(height, width).rstrip() + """

Chance: moves are random. A move sometimes does not go where it was sent:
the agent may slip to one side of it instead (how often is not given),
and the world's rules then apply to the move it made. Everything else is
as described. A CWM of this world says how likely each outcome is (the
chance contract below)."""
