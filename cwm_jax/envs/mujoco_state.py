"""The state of gymnasium's MuJoCo tasks (CWMB): set from an observation, saved and restored, probed for hidden parts.

`SETTERS` put an unwrapped MuJoCo env into the state an observation shows
(`gymnasium_source.STATE_SETTERS` takes them, so the oracle of `plan` and
`real_step` exist for these tasks). What the observation leaves out is set
to a fixed value: the x (and y) position of the locomotion tasks (0: their
dynamics do not depend on it, `hidden_coordinates` measures it), the
object's and the target's velocities (0). Clipped velocities (Hopper,
Walker2d, InvertedDoublePendulum clip to +-10) are set to the clipped value.

`hidden_coordinates` is the determinism test's "hidden" probe for MuJoCo
(docs/environments.md, test 2): it moves one coordinate of qpos or qvel at
a time, keeps the moves that leave the observation unchanged, and measures
whether the step's outcome changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["SETTERS", "hidden_coordinates", "is_mujoco", "restore", "snapshot"]


def is_mujoco(inner: Any) -> bool:
    """Whether an unwrapped gymnasium env is a MuJoCo one (has `model`, `data` and `set_state`)."""
    return hasattr(inner, "model") and hasattr(inner, "data") and hasattr(inner, "set_state")


def snapshot(inner: Any) -> Any:
    """The full integration state of an unwrapped env: MuJoCo's `mjSTATE_INTEGRATION`, else a copy of `.state`."""
    if is_mujoco(inner):
        import mujoco

        which = mujoco.mjtState.mjSTATE_INTEGRATION
        saved = np.empty(mujoco.mj_stateSize(inner.model, which))
        mujoco.mj_getState(inner.model, inner.data, saved, which)
        return saved
    return np.array(inner.state, copy=True)


def restore(inner: Any, saved: Any) -> None:
    """Puts an unwrapped env back into a `snapshot`."""
    if is_mujoco(inner):
        import mujoco

        mujoco.mj_setState(inner.model, inner.data, saved, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(inner.model, inner.data)
    else:
        inner.state = np.array(saved, copy=True)


def _angle(sin: float, cos: float) -> float:
    return float(np.arctan2(sin, cos))


def _leading(skip: int) -> Callable[[Any, np.ndarray], None]:
    """Observations that start with qpos[skip:] then qvel: the first `skip` positions (x, y) are set to 0."""

    def set_state(env: Any, obs: np.ndarray) -> None:
        obs = np.asarray(obs, np.float64)
        nq, nv = env.model.nq, env.model.nv
        env.set_state(np.concatenate([np.zeros(skip), obs[:nq - skip]]), obs[nq - skip:nq - skip + nv].copy())

    return set_state


def _reacher(env: Any, obs: np.ndarray) -> None:
    """[cos q0, cos q1, sin q0, sin q1, target x, y, qvel0, qvel1, fingertip - target]; the target does not move."""
    obs = np.asarray(obs, np.float64)
    qpos = np.array([_angle(obs[2], obs[0]), _angle(obs[3], obs[1]), obs[4], obs[5]])
    env.set_state(qpos, np.array([obs[6], obs[7], 0.0, 0.0]))


def _inverted_double_pendulum(env: Any, obs: np.ndarray) -> None:
    """[cart x, sin q1, sin q2, cos q1, cos q2, clip(qvel), clip(qfrc_constraint)]."""
    obs = np.asarray(obs, np.float64)
    qpos = np.array([obs[0], _angle(obs[1], obs[3]), _angle(obs[2], obs[4])])
    env.set_state(qpos, obs[5:8].copy())


def _pusher(env: Any, obs: np.ndarray) -> None:
    """[qpos[:7], qvel[:7], tips_arm xyz, object xyz, goal xyz]; the object's velocity is not observed (0)."""
    obs = np.asarray(obs, np.float64)
    qpos, qvel = np.zeros(env.model.nq), np.zeros(env.model.nv)
    qpos[:7], qvel[:7] = obs[:7], obs[7:14]
    env.set_state(qpos, qvel)  # object and goal slide joints at 0: their bodies' rest positions
    # The slide joints are ordered y, x (obj_slidey, obj_slidex, goal_slidey, goal_slidex).
    qpos[7:9] = (obs[17:19] - env.get_body_com("object")[:2])[::-1]
    qpos[9:11] = (obs[20:22] - env.get_body_com("goal")[:2])[::-1]
    env.set_state(qpos, qvel)


# gymnasium id -> (unwrapped MuJoCo env, flat observation) -> None.
SETTERS: dict[str, Callable[[Any, np.ndarray], None]] = {
    "InvertedPendulum-v4": _leading(0),
    "InvertedDoublePendulum-v4": _inverted_double_pendulum,
    "Reacher-v4": _reacher,
    "Pusher-v5": _pusher,
    "HalfCheetah-v4": _leading(1),
    "Hopper-v4": _leading(1),
    "Walker2d-v4": _leading(1),
    "Swimmer-v4": _leading(2),
    "Ant-v4": _leading(2),
    "Humanoid-v4": _leading(2),
    "HumanoidStandup-v4": _leading(2),
}


def hidden_coordinates(env: Any, *, states: int = 6, steps_between: int = 7, seed: int = 0,
                       tolerance: float = 1e-5) -> dict[str, Any]:
    """Measures what besides the observation decides a MuJoCo step.

    From `states` states visited by random actions (a reset with `seed`, then
    `steps_between` random steps apart), with one random action each:
    - "stale": the step's outcome (next observation, reward, terminated) as
      the env is, against the outcome after `set_state` of the same qpos and
      qvel. A difference means the step reads more of MuJoCo's data than
      qpos and qvel (e.g. body positions left over from the last substep).
    - each coordinate of qpos (moved by 0.37) or qvel (by 0.53) whose move
      leaves the observation unchanged (within 1e-9) is hidden; the outcome
      with the move is compared with the outcome without it (both after
      `set_state`).

    Returns:
      {"hidden": [names], "changes_step": {name: largest difference > tolerance},
       "max_difference": {name: largest difference}, "stale": largest as-is vs set_state difference}.
    """
    inner = env.unwrapped
    env.reset(seed=seed)
    env.action_space.seed(seed)
    nq = inner.model.nq
    names = [f"qpos[{i}]" for i in range(nq)] + [f"qvel[{i}]" for i in range(inner.model.nv)]
    largest: dict[str, float] = {}
    stale = 0.0
    for _ in range(states):
        for _ in range(steps_between):
            inner.step(env.action_space.sample())
        base = snapshot(inner)
        action = env.action_space.sample()
        qpos, qvel = inner.data.qpos.copy(), inner.data.qvel.copy()
        as_is = _outcome(inner, action)
        inner.set_state(qpos, qvel)
        obs = inner._get_obs()  # after set_state: MuJoCo's derived data recomputed, as for the moved states
        outcome = _outcome(inner, action)
        stale = max(stale, _difference(as_is, outcome))
        for index, name in enumerate(names):
            moved_qpos, moved_qvel = qpos.copy(), qvel.copy()
            if index < nq:
                moved_qpos[index] += 0.37
            else:
                moved_qvel[index - nq] += 0.53
            restore(inner, base)
            inner.set_state(moved_qpos, moved_qvel)
            if not np.allclose(inner._get_obs(), obs, rtol=0.0, atol=1e-9):
                continue
            largest[name] = max(largest.get(name, 0.0), _difference(outcome, _outcome(inner, action)))
        restore(inner, base)
    return {"hidden": list(largest), "changes_step": {k: v for k, v in largest.items() if v > tolerance},
            "max_difference": largest, "stale": stale}


def _difference(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def _outcome(inner: Any, action: np.ndarray) -> tuple[np.ndarray, ...]:
    """(next observation, [reward], [terminated]) of one step from the current state; the state is restored."""
    saved = snapshot(inner)
    obs, reward, terminated, _, _ = inner.step(action)
    restore(inner, saved)
    return np.asarray(obs, np.float64), np.array([reward], np.float64), np.array([float(terminated)])
