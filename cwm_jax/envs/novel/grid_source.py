"""The reference CWM of a generated grid world: its rules as source in the CWM subset.

Written independently of `GridWorld.step` (the world's JAX dynamics) from
the same drawn world, so the tests that compare them check both.
"""

from __future__ import annotations

from cwm_jax.envs.novel.grid import ACTIONS, FLOOR, WALL, GridWorld
from cwm_jax.envs.novel.mechanisms import constant_lines

__all__ = ["source"]

_DIRECTIONS = dict(zip(("up", "right", "down", "left"), ACTIONS))


def _constant_name(tile: str) -> str:
    return "REWARD_TILE" if tile == "reward" else tile.upper().replace(" ", "_")


def _constants(world: GridWorld) -> dict:
    found: dict = {"HEIGHT": world.height, "WIDTH": world.width, "FLOOR": FLOOR, "WALL": WALL}
    found.update({_constant_name(name): code for name, code in world.codes})
    found["START"] = world.start
    if world.teleporters is not None:
        found["TELEPORTER_A"], found["TELEPORTER_B"] = world.teleporters
    found.update({"STEP_REWARD": world.step_reward, "GOAL_REWARD": world.goal_reward})
    if "reward" in world.code:
        found["TILE_REWARD"] = world.tile_reward
    if "hazard" in world.code:
        found["HAZARD_PENALTY"] = world.hazard_penalty
    found["ROW_STEP"] = tuple(d[0] for d in ACTIONS)
    found["COL_STEP"] = tuple(d[1] for d in ACTIONS)
    return found


def _helpers(world: GridWorld) -> list[str]:
    stops = " | ".join(f"(tile == {name})" for name in ("WALL", "DOOR", "BLOCK")
                       if name == "WALL" or name.lower() in world.code)
    return [
        "def _cell(grid, r, c):",
        "    inside = (r >= 0) & (r < HEIGHT) & (c >= 0) & (c < WIDTH)",
        "    index = jnp.clip(r, 0, HEIGHT - 1) * WIDTH + jnp.clip(c, 0, WIDTH - 1)",
        "    return jnp.where(inside, grid[index], WALL)",
        "", "",
        "def _put(grid, where, index, code):",
        "    return jnp.where(where & (jnp.arange(HEIGHT * WIDTH) == index), code, grid)",
        "", "",
        "def _stops(tile):",
        f"    return {stops}",
    ]


def _moves(world: GridWorld) -> list[str]:
    code = world.code
    lines = [
        "    r = state[0].astype(jnp.int32)",
        "    c = state[1].astype(jnp.int32)",
        "    has_key = state[2]",
        "    grid = state[3:]",
        "    dr = jnp.array(ROW_STEP)[action]",
        "    dc = jnp.array(COL_STEP)[action]",
        "    tr = r + dr",
        "    tc = c + dc",
        "    target = _cell(grid, tr, tc)",
        "    move = target != WALL",
    ]
    if "block" in code:
        lines += [
            "    beyond = _cell(grid, tr + dr, tc + dc)",
            "    push = (target == BLOCK) & (beyond == FLOOR)",
            "    move = move & ((target != BLOCK) | push)",
            "    grid = _put(grid, push, (tr + dr) * WIDTH + tc + dc, BLOCK)",
            "    grid = _put(grid, push, tr * WIDTH + tc, FLOOR)",
        ]
    if "door" in code:
        lines += [
            "    opens = (target == DOOR) & (has_key > 0.5)",
            "    move = move & ((target != DOOR) | opens)",
            "    grid = _put(grid, opens, tr * WIDTH + tc, FLOOR)",
            "    has_key = jnp.where(opens, 0.0, has_key)",
        ]
    lines += ["    r = jnp.where(move, tr, r)", "    c = jnp.where(move, tc, c)"]
    if "ice" in code:
        lines += [
            f"    for _ in range({max(world.height, world.width)}):",
            "        slide = move & (_cell(grid, r, c) == ICE) & ~_stops(_cell(grid, r + dr, c + dc))",
            "        r = jnp.where(slide, r + dr, r)",
            "        c = jnp.where(slide, c + dc, c)",
        ]
    lines.append("    here = _cell(grid, r, c)")
    for name, (row, col) in _DIRECTIONS.items():
        if f"conveyor {name}" in code:
            lines += [
                f"    carry = (here == CONVEYOR_{name.upper()}) & ~_stops(_cell(grid, r + {row}, c + {col}))",
                f"    r = jnp.where(carry, r + {row}, r)",
                f"    c = jnp.where(carry, c + {col}, c)",
            ]
    if world.teleporters is not None:
        lines += [
            "    at_a = (r == TELEPORTER_A[0]) & (c == TELEPORTER_A[1])",
            "    at_b = (r == TELEPORTER_B[0]) & (c == TELEPORTER_B[1])",
            "    new_r = jnp.where(at_a, TELEPORTER_B[0], jnp.where(at_b, TELEPORTER_A[0], r))",
            "    c = jnp.where(at_a, TELEPORTER_B[1], jnp.where(at_b, TELEPORTER_A[1], c))",
            "    r = new_r",
        ]
    return lines


def _outcome(world: GridWorld) -> list[str]:
    code = world.code
    lines = ["    here = _cell(grid, r, c)", "    reward = jnp.float32(STEP_REWARD)"]
    if "key" in code:
        lines += [
            "    pick = here == KEY",
            "    has_key = jnp.where(pick, 1.0, has_key)",
            "    grid = _put(grid, pick, r * WIDTH + c, FLOOR)",
        ]
    if "hazard" in code:
        lines += [
            "    hit = here == HAZARD",
            "    reward = reward + jnp.where(hit, HAZARD_PENALTY, 0.0)",
            "    r = jnp.where(hit, START[0], r)",
            "    c = jnp.where(hit, START[1], c)",
        ]
    if "reward" in code:
        lines.append("    reward = reward + jnp.where(here == REWARD_TILE, TILE_REWARD, 0.0)")
    lines += [
        "    done = here == GOAL",
        "    reward = reward + jnp.where(done, GOAL_REWARD, 0.0)",
        "    head = jnp.stack([r.astype(jnp.float32), c.astype(jnp.float32), has_key])",
        "    return jnp.concatenate([head, grid]).astype(jnp.float32), reward.astype(jnp.float32), done",
    ]
    return lines


def source(world: GridWorld) -> str:
    """The reference CWM of `world`."""
    lines = [f'"""Reference CWM of gymnax/Novel-Grid-{world.seed} (written by the generator)."""', "",
             "import jax.numpy as jnp", ""]
    lines += constant_lines(_constants(world))
    lines += ["", ""] + _helpers(world) + ["", "", "def step(state, action):"]
    lines += _moves(world) + _outcome(world) + [""]
    return "\n".join(lines)
