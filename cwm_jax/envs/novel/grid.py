"""Generated grid worlds: "gymnax/Novel-Grid-<seed>".

A seed draws the grid's size, its walls, a start and a goal, and tiles from
a library of mechanisms: ice (the agent slides on until something stops it),
conveyors (one cell along the belt), a teleporter pair, a key and a door,
hazards (back to the start), reward tiles and pushable blocks. Every tile
kind except floor and wall gets a code drawn per world, so the codes tell a
model nothing: what each code does has to be learned from the data.

The observation is the whole state: [row, col, has_key, then the grid's
codes row by row]. `GridWorld.step` is the world's dynamics (JAX);
`grid_source.source(world)` writes the same rules as a reference CWM.
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque

import jax
import jax.numpy as jnp

__all__ = ["ACTIONS", "FLOOR", "GridWorld", "KINDS", "WALL", "describe", "draw"]

FLOOR, WALL = 0, 1
# action -> (row change, column change): up, right, down, left
ACTIONS = ((-1, 0), (0, 1), (1, 0), (0, -1))
# Tile kinds a world may hold besides floor, wall and the goal (one code each; a conveyor one per direction).
KINDS = ("ice", "conveyor", "teleporter", "key", "hazard", "reward", "block")
MAX_STEPS = 100


@dataclasses.dataclass(frozen=True)
class GridWorld:
    """One generated grid; `step(state [3 + H*W], action int32 []) -> (next_state, reward [], done [])`.

    codes: tile name -> code ("goal", "ice", "conveyor up"..., "teleporter",
    "key", "door", "hazard", "reward", "block"); layout: the grid's codes at
    reset, row by row; teleporters: the pair's two cells, or None.
    """

    seed: int
    height: int
    width: int
    codes: tuple[tuple[str, int], ...]
    layout: tuple[int, ...]
    start: tuple[int, int]
    teleporters: tuple[tuple[int, int], tuple[int, int]] | None
    step_reward: float
    goal_reward: float
    tile_reward: float
    hazard_penalty: float

    @property
    def code(self) -> dict[str, int]:
        return dict(self.codes)

    @property
    def obs_dim(self) -> int:
        return 3 + self.height * self.width

    @property
    def starts(self) -> tuple[tuple[int, int], ...]:
        """Cells an episode may start in: floor cells."""
        return tuple(divmod(i, self.width) for i, c in enumerate(self.layout) if c == FLOOR)

    # -- the dynamics (JAX) -------------------------------------------------------------

    def _cell(self, grid, r, c):
        """The code at (r, c); WALL outside the grid."""
        inside = (r >= 0) & (r < self.height) & (c >= 0) & (c < self.width)
        index = jnp.clip(r, 0, self.height - 1) * self.width + jnp.clip(c, 0, self.width - 1)
        return jnp.where(inside, grid[index], float(WALL))

    def _blocks_sliding(self, tile):
        """Tiles that stop a slide or a conveyor: walls, closed doors, blocks."""
        code = self.code
        stops = tile == WALL
        for name in ("door", "block"):
            if name in code:
                stops = stops | (tile == code[name])
        return stops

    def step(self, state: jax.Array, action: jax.Array):
        code, w = self.code, self.width
        r, c = state[0].astype(jnp.int32), state[1].astype(jnp.int32)
        has_key, grid = state[2], state[3:]
        dr = jnp.array([d[0] for d in ACTIONS])[action]
        dc = jnp.array([d[1] for d in ACTIONS])[action]
        tr, tc = r + dr, c + dc
        target = self._cell(grid, tr, tc)
        move = target != WALL
        if "block" in code:
            beyond = self._cell(grid, tr + dr, tc + dc)
            push = (target == code["block"]) & (beyond == FLOOR)
            move = move & ((target != code["block"]) | push)
            grid = _put(grid, push, (tr + dr) * w + tc + dc, code["block"])
            grid = _put(grid, push, tr * w + tc, FLOOR)
        if "door" in code:
            opens = (target == code["door"]) & (has_key > 0.5)
            move = move & ((target != code["door"]) | opens)
            grid = _put(grid, opens, tr * w + tc, FLOOR)
            has_key = jnp.where(opens, 0.0, has_key)
        r, c = jnp.where(move, tr, r), jnp.where(move, tc, c)
        if "ice" in code:
            for _ in range(max(self.height, self.width)):
                slide = move & (self._cell(grid, r, c) == code["ice"])
                slide = slide & ~self._blocks_sliding(self._cell(grid, r + dr, c + dc))
                r, c = jnp.where(slide, r + dr, r), jnp.where(slide, c + dc, c)
        here = self._cell(grid, r, c)
        for k, (name, (br, bc)) in enumerate(zip(("up", "right", "down", "left"), ACTIONS)):
            if f"conveyor {name}" in code:
                carry = (here == code[f"conveyor {name}"]) & ~self._blocks_sliding(self._cell(grid, r + br, c + bc))
                r, c = jnp.where(carry, r + br, r), jnp.where(carry, c + bc, c)
        if self.teleporters is not None:
            (ar, ac), (br, bc) = self.teleporters
            at_a, at_b = (r == ar) & (c == ac), (r == br) & (c == bc)
            r, c = jnp.where(at_a, br, jnp.where(at_b, ar, r)), jnp.where(at_a, bc, jnp.where(at_b, ac, c))
        here = self._cell(grid, r, c)
        reward = jnp.float32(self.step_reward)
        if "key" in code:
            pick = here == code["key"]
            has_key = jnp.where(pick, 1.0, has_key)
            grid = _put(grid, pick, r * w + c, FLOOR)
        if "hazard" in code:
            hit = here == code["hazard"]
            reward = reward + jnp.where(hit, self.hazard_penalty, 0.0)
            r, c = jnp.where(hit, self.start[0], r), jnp.where(hit, self.start[1], c)
        if "reward" in code:
            reward = reward + jnp.where(here == code["reward"], self.tile_reward, 0.0)
        done = here == code["goal"]
        reward = reward + jnp.where(done, self.goal_reward, 0.0)
        head = jnp.stack([r.astype(jnp.float32), c.astype(jnp.float32), has_key])
        return jnp.concatenate([head, grid]).astype(jnp.float32), reward.astype(jnp.float32), done

    def reset(self, key: jax.Array) -> jax.Array:
        starts = jnp.array(self.starts, jnp.float32)
        cell = starts[jax.random.randint(key, (), 0, len(self.starts))]
        return jnp.concatenate([cell, jnp.zeros((1,)), jnp.array(self.layout, jnp.float32)])

    def heuristic(self, key: jax.Array, obs: jax.Array) -> jax.Array:
        """Towards the goal along the longer axis; 30% random actions."""
        goal = self.layout.index(self.code["goal"])
        gr, gc = divmod(goal, self.width)
        drow, dcol = gr - obs[0], gc - obs[1]
        vertical = jnp.abs(drow) >= jnp.abs(dcol)
        greedy = jnp.where(vertical, jnp.where(drow < 0, 0, 2), jnp.where(dcol > 0, 1, 3)).astype(jnp.int32)
        explore, pick = jax.random.split(key)
        random_action = jax.random.randint(pick, (), 0, len(ACTIONS), dtype=jnp.int32)
        return jnp.where(jax.random.uniform(explore) < 0.3, random_action, greedy)


def _put(grid: jax.Array, where: jax.Array, index: jax.Array, code: int) -> jax.Array:
    """`grid` with `code` at `index` where `where` holds (an index outside the grid changes nothing)."""
    return jnp.where(where & (jnp.arange(grid.shape[0]) == index), float(code), grid)


def _reachable(height: int, width: int, layout: list[int], start: tuple[int, int], goal: int) -> bool:
    """Whether the goal can be walked to from the start over floor, avoiding every other tile."""
    seen, todo = {start}, deque([start])
    while todo:
        r, c = todo.popleft()
        if r * width + c == goal:
            return True
        for dr, dc in ACTIONS:
            nr, nc = r + dr, c + dc
            if 0 <= nr < height and 0 <= nc < width and (nr, nc) not in seen \
                    and (layout[nr * width + nc] == FLOOR or nr * width + nc == goal):
                seen.add((nr, nc))
                todo.append((nr, nc))
    return False


def _num(rng: random.Random, low: float, high: float) -> float:
    return float(f"{rng.uniform(low, high):.3g}")


def draw(seed: int) -> GridWorld:
    """The world of `seed`: size, walls, tiles, codes and rewards all come from a generator seeded with it."""
    rng = random.Random(f"novel-grid-{seed}")
    height, width = rng.choice((5, 6, 7)), rng.choice((5, 6, 7))
    kinds = [k for k in KINDS if rng.random() < 0.5] or rng.sample(KINDS, 2)
    if len(kinds) == 1:
        kinds.append(rng.choice([k for k in KINDS if k not in kinds]))
    names = ["goal"]
    for kind in kinds:
        if kind == "conveyor":
            names += [f"conveyor {d}" for d in rng.sample(("up", "right", "down", "left"), rng.choice((1, 2)))]
        elif kind == "key":
            names += ["key", "door"]
        else:
            names.append(kind)
    codes = list(range(2, 2 + len(names)))
    rng.shuffle(codes)
    code = dict(zip(names, codes))
    counts = {"ice": (3, 6), "teleporter": (2, 2), "key": (1, 1), "door": (1, 1), "hazard": (1, 3),
              "reward": (1, 2), "block": (1, 2), "goal": (1, 1)}
    for _ in range(1000):  # redraw the layout until the goal can be walked to
        cells = [(r, c) for r in range(height) for c in range(width)]
        rng.shuffle(cells)
        start, layout = cells.pop(), [FLOOR] * (height * width)
        for name in names:
            low, high = counts.get(name, (1, 3))
            for _ in range(rng.randint(low, high)):
                r, c = cells.pop()
                layout[r * width + c] = code[name]
        for r, c in cells:
            if rng.random() < 0.15:
                layout[r * width + c] = WALL
        if _reachable(height, width, layout, start, layout.index(code["goal"])):
            break
    else:  # pragma: no cover - 1000 failed layouts would be a bug in the drawing
        raise RuntimeError(f"no layout for grid world {seed}")
    pair = [divmod(i, width) for i, t in enumerate(layout) if t == code.get("teleporter")]
    return GridWorld(
        seed=seed, height=height, width=width, codes=tuple(sorted(code.items(), key=lambda kv: kv[1])),
        layout=tuple(layout), start=start, teleporters=(pair[0], pair[1]) if pair else None,
        step_reward=rng.choice((0.0, -0.01, -0.05, -0.1)), goal_reward=_num(rng, 1.0, 10.0),
        tile_reward=_num(rng, 0.1, 1.0), hazard_penalty=-_num(rng, 0.5, 2.0))


def describe(height: int, width: int) -> str:
    """The description of every grid world of this size: it depends on nothing else."""
    return f"""\
A generated world of the grid family, made for this benchmark: no textbook
describes it, so its rules must be learned from the recorded transitions.
An agent moves on a grid of {height} rows and {width} columns.

Observation (state), a float32 vector of {3 + height * width} elements:
  0  the agent's row (0 is the top row), a whole number
  1  the agent's column (0 is the left column), a whole number
  2  1.0 while the agent holds a key, else 0.0
  3 + {width} * row + column: the code of the tile in that cell (a whole
     number). 0 is empty floor and 1 is a wall (the agent cannot enter it).
     Codes 2 and up are the other tile kinds; which kind each code stands
     for is drawn anew for every world and is not given. The agent's own
     cell shows the tile under it.

Actions, an integer: 0 up, 1 right, 2 down, 3 left (one cell). The agent
cannot leave the grid: a move out of it, or into a wall, leaves it where it
is.

Dynamics: deterministic; nothing random happens within an episode. Besides
floor and walls, a world holds a goal and any subset of these KINDS of tile
(which ones, where, and what they are worth is part of the world): ice, on
which the agent keeps sliding in the direction it moved until something
stops it; conveyors, which carry the agent one cell in their own direction;
a pair of teleporters, which send the agent to each other; a key, picked up
by stepping on it, and a door that the key opens (using the key up); hazards,
which send the agent back to a fixed start cell; reward tiles; and blocks
that the agent pushes one cell ahead when the cell behind them is free.
Tiles that the agent changes (a picked key, an opened door, a pushed block)
change in the observed grid.

Reward: a constant per step (possibly 0), plus amounts for the tiles the
agent ends its step on: the goal, reward tiles, hazards (negative).

Termination (done): the agent ends its step on the goal. Episodes are also
cut after {MAX_STEPS} steps, but that time limit is not part of the dynamics.
"""
