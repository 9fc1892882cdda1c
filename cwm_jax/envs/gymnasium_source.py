"""The gymnasium source: `gymnasium/<id>` -> an EnvSpec whose real environment is a gymnasium env.

The id is anything `gymnasium.make` accepts, `module:EnvId` included
(`gymnasium/my_pkg.envs:MyEnv-v0` imports `my_pkg.envs` first). The
environment is Python, so everything that runs it (recording, the oracle,
planning in the real environment) runs on the host, in this process:
gymnasium code is trusted like the framework's own; only CWMs are not.

The contract (docs/environments.md, "gymnasium sources"):
- state: the observation flattened to float32 [obs_dim]: a Box in row-major
  order, a Discrete as one element holding its integer value, a Tuple in
  order, a Dict in the order of its `spaces` (gymnasium sorts a plain dict's
  keys); nothing else.
- action: a Discrete(n, start) is an int32 in [0, n) (`start` is added
  before gymnasium sees it); a Box with one bound for every element is a
  float32 [action_dim] (reshaped to the Box's shape and dtype for gymnasium).
- done: gymnasium's `terminated`; `truncated` ends an episode, never `done`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cwm_jax.envs import acrobot, cartpole, mountain_car, mountain_car_continuous, pendulum
from cwm_jax.envs.spec import EnvSpec

__all__ = ["PREFIX", "TWINS", "NondeterminismWarning", "Source", "SourceError", "clean_docstring", "determinism_failure", "make_replay",
           "source", "spec"]

PREFIX = "gymnasium/"

# gymnasium ids whose gymnax twin (same observation layout) lends its heuristic policy and reference CWM.
TWINS: dict[str, EnvSpec] = {
    "CartPole-v1": cartpole.SPEC,
    "Pendulum-v1": pendulum.SPEC,
    "Acrobot-v1": acrobot.SPEC,
    "MountainCar-v0": mountain_car.SPEC,
    "MountainCarContinuous-v0": mountain_car_continuous.SPEC,
}
# Reference CWMs (modules of `cwm_jax.reference`) written against gymnasium itself.
_REFERENCES = {"CliffWalking-v1": "cliff_walking"}
# Docstring sections the paper removed from the descriptions it gave the LLM.
_DROPPED_SECTIONS = ("arguments", "vectorized", "version history")
_SUPPORTED = "Box, Discrete, or a Tuple/Dict of those"


class SourceError(ValueError):
    """A gymnasium id that cannot be made, or whose spaces the contract cannot hold."""


class NondeterminismWarning(UserWarning):
    """The next observation, reward or termination is not a function of the observation and action."""


@dataclasses.dataclass(frozen=True)
class Source:
    """What the host needs to run one gymnasium environment through the contract.

    Attributes:
      gym_id: the id given to `gymnasium.make`.
      obs_dim: size of the flattened observation.
      make_env: () -> a new gymnasium env (with gymnasium's wrappers).
      flatten: observation -> float32 [obs_dim].
      to_env_action: contract action (numpy) -> what `env.step` takes.
      set_state: (unwrapped env, float32 [obs_dim]) -> None, or None when the
        state cannot be set from an observation.
    """

    gym_id: str
    obs_dim: int
    make_env: Callable[[], Any]
    flatten: Callable[[Any], np.ndarray]
    to_env_action: Callable[[np.ndarray], Any]
    set_state: Callable[[Any, np.ndarray], None] | None


def _space_size(space, what: str) -> int:
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape, dtype=np.int64))
    if isinstance(space, spaces.Discrete):
        return 1
    if isinstance(space, (spaces.Tuple, spaces.Dict)):
        parts = space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces
        return sum(_space_size(part, what) for part in parts)
    raise SourceError(f"its {what} space {space} is not supported: the contract holds {_SUPPORTED}")


def _flatten(space, value) -> list[np.ndarray]:
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return [np.asarray(value, np.float32).reshape(-1)]
    if isinstance(space, spaces.Discrete):
        return [np.asarray(value, np.float32).reshape(1)]
    if isinstance(space, spaces.Dict):
        return [part for key, sub in space.spaces.items() for part in _flatten(sub, value[key])]
    return [part for sub, item in zip(space.spaces, value, strict=True) for part in _flatten(sub, item)]


def _action_contract(space) -> tuple[dict[str, Any], Callable[[np.ndarray], Any]]:
    """(EnvSpec fields, contract action -> gymnasium action) for an action space."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return {"num_actions": int(space.n)}, lambda a: int(a) + start
    if isinstance(space, spaces.Box):
        low, high = np.unique(space.low), np.unique(space.high)
        if len(low) == 1 and len(high) == 1 and np.isfinite(low[0]) and np.isfinite(high[0]):
            fields = {"action_dim": int(np.prod(space.shape)), "action_low": float(low[0]),
                      "action_high": float(high[0])}
            return fields, lambda a: np.asarray(a, space.dtype).reshape(space.shape)
        raise SourceError(f"its action space {space} is not supported: a Box action needs one finite "
                          f"bound for all its elements")
    raise SourceError(f"its action space {space} is not supported: the contract holds a Discrete or a Box action")


def _state_setter(env, obs_dim: int) -> tuple[Callable[[Any, np.ndarray], None] | None, str]:
    """(set_state, "") where the env's state can be set from an observation, else (None, why not)."""
    from gymnasium import spaces

    unwrapped = env.unwrapped
    name = type(unwrapped).__name__
    if name == "PendulumEnv":
        return lambda u, obs: setattr(u, "state", np.array([math.atan2(obs[1], obs[0]), obs[2]])), ""
    if name == "AcrobotEnv":
        return lambda u, obs: setattr(u, "state", np.array(
            [math.atan2(obs[1], obs[0]), math.atan2(obs[3], obs[2]), obs[4], obs[5]])), ""
    if isinstance(env.observation_space, spaces.Discrete) and isinstance(getattr(unwrapped, "s", None), (int, np.integer)):
        return lambda u, obs: setattr(u, "s", int(round(float(obs[0])))), ""
    state = getattr(unwrapped, "state", None)
    if isinstance(state, np.ndarray) and state.size == obs_dim:
        def set_state(u, obs):
            u.state = np.asarray(obs, np.float64).reshape(np.shape(u.state))
            if hasattr(u, "steps_beyond_terminated"):  # CartPole: a fresh step, not one past termination
                u.steps_beyond_terminated = None
        return set_state, ""
    return None, (f"the state of {name} cannot be set from its observation (no `state` array of the "
                  f"observation's size, no integer state `s`, no known angles)")


@functools.cache
def source(gym_id: str) -> tuple[Source, Any, str]:
    """(Source, an env that has been reset, oracle note) for a gymnasium id, made once per process."""
    import gymnasium

    try:
        env = gymnasium.make(gym_id)
    except Exception as exc:  # noqa: BLE001 - gymnasium raises many kinds for a bad id or module
        raise SourceError(f"gymnasium cannot make {gym_id!r}: {exc}".splitlines()[0]) from None
    obs_dim = _space_size(env.observation_space, "observation")
    _action_contract(env.action_space)  # raises for an unsupported action space
    env.reset(seed=0)
    set_state, note = _state_setter(env, obs_dim)
    space = env.observation_space
    src = Source(
        gym_id=gym_id, obs_dim=obs_dim, make_env=functools.partial(gymnasium.make, gym_id),
        flatten=lambda obs: np.concatenate(_flatten(space, obs)).astype(np.float32),
        to_env_action=_action_contract(env.action_space)[1], set_state=set_state,
    )
    return src, env, note


def clean_docstring(text: str | None) -> str:
    """An env class docstring cleaned the paper's way: its Arguments, Vectorized and Version History
    sections, images and link targets removed (a link keeps its text)."""
    text = inspect.cleandoc(text or "")
    kept, skipping = [], False
    for line in text.splitlines():
        heading = re.match(r"#+\s*(.*)", line)
        if heading:
            skipping = heading.group(1).strip().lower().startswith(_DROPPED_SECTIONS)
        if skipping or re.fullmatch(r"\s*!\[.*\]\(.*\)\s*", line):
            continue
        line = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", line)
        line = re.sub(r"<a [^>]*>(.*?)</a>", r"\1", line)
        kept.append(re.sub(r"\s*<?https?://\S+>?", "", line))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() + "\n"


def _host_step(src: Source, env, state: np.ndarray, action: np.ndarray):
    """The real env stepped from each observation: state [..., obs_dim], action [...] or [..., action_dim]."""
    batch = state.shape[:-1]
    states = state.reshape(-1, src.obs_dim)
    actions = action.reshape(len(states), -1)
    next_state = np.empty_like(states, dtype=np.float32)
    reward = np.empty(len(states), np.float32)
    done = np.empty(len(states), bool)
    unwrapped = env.unwrapped
    for i, (s, a) in enumerate(zip(states, actions, strict=True)):
        src.set_state(unwrapped, s)
        obs, r, terminated, _, _ = unwrapped.step(src.to_env_action(a if a.size > 1 or a.dtype.kind == "f" else a[0]))
        next_state[i], reward[i], done[i] = src.flatten(obs), r, terminated
    return next_state.reshape(state.shape), reward.reshape(batch), done.reshape(batch)


def _real_step(src: Source, env) -> Callable:
    """The real environment behind the CWM signature: a `jax.pure_callback` that vmaps as one host call."""

    def step(state: jax.Array, action: jax.Array):
        state = jnp.asarray(state, jnp.float32)
        shapes = (jax.ShapeDtypeStruct(state.shape, jnp.float32), jax.ShapeDtypeStruct(state.shape[:-1], jnp.float32),
                  jax.ShapeDtypeStruct(state.shape[:-1], jnp.bool_))
        host = lambda s, a: _host_step(src, env, np.asarray(s), np.asarray(a))  # noqa: E731
        return jax.pure_callback(host, shapes, state, action, vmap_method="broadcast_all")

    return step


def determinism_failure(src: Source, env, *, steps: int = 300, seed: int = 0) -> tuple[str | None, str | None]:
    """Measured on `steps` random steps: (why the env is not a function of (observation, action), why its
    state cannot be set from an observation); each None when no evidence was found.

    Two probes: repeated (observation, action) pairs whose outcomes differ
    (nondeterminism), and, where a state setter exists, each step replayed
    from its observation (a mismatch without the first is a wrong setter).
    """
    env.action_space.seed(seed)
    obs = src.flatten(env.reset(seed=seed)[0])
    seen: dict[bytes, tuple] = {}
    clashes = replays = 0
    clash_example = replay_example = ""
    for _ in range(steps):
        action = env.action_space.sample()
        raw = env.step(action)
        outcome = (src.flatten(raw[0]), float(raw[1]), bool(raw[2]))
        key = obs.tobytes() + np.asarray(action).tobytes()
        if key in seen and not _same(seen[key], outcome):
            clashes += 1
            clash_example = clash_example or (f"observation {obs.tolist()} and action {np.asarray(action).tolist()} "
                                              f"gave {_show(seen[key])} and {_show(outcome)}")
        seen.setdefault(key, outcome)
        if src.set_state is not None:
            replay = make_replay(src)(obs, action)
            if not _same(replay, outcome):
                replays += 1
                replay_example = replay_example or (
                    f"observation {obs.tolist()} and action {np.asarray(action).tolist()} gave {_show(outcome)}, "
                    f"replayed from the observation {_show(replay)}")
        obs = outcome[0] if not (raw[2] or raw[3]) else src.flatten(env.reset()[0])
    clash = f"{clashes} repeated (observation, action) pairs of {steps} random steps had different outcomes; " \
            f"e.g. {clash_example}" if clashes else None
    replay = f"{replays} of {steps} random steps replayed from their observation differed; e.g. {replay_example}" \
        if replays else None
    return clash, replay


@functools.cache
def _replay_env(gym_id: str):
    env = source(gym_id)[0].make_env()
    env.reset(seed=0)
    return env


def make_replay(src: Source) -> Callable[[np.ndarray, Any], tuple]:
    """(observation, gymnasium action) -> (next observation, reward, terminated) from a state set to it."""
    unwrapped = _replay_env(src.gym_id).unwrapped

    def replay(obs, action):
        src.set_state(unwrapped, obs)
        raw = unwrapped.step(action)
        return src.flatten(raw[0]), float(raw[1]), bool(raw[2])

    return replay


def _same(a: tuple, b: tuple) -> bool:
    return bool(np.allclose(a[0], b[0], rtol=1e-4, atol=1e-5) and math.isclose(a[1], b[1], rel_tol=1e-4,
                                                                                  abs_tol=1e-5) and a[2] == b[2])


def _show(outcome: tuple) -> str:
    return f"(next {np.round(outcome[0], 4).tolist()}, reward {outcome[1]:g}, terminated {outcome[2]})"


def _describe(gym_id: str, env, obs_dim: int, fields: dict) -> str:
    doc = clean_docstring(type(env.unwrapped).__doc__) if type(env.unwrapped).__doc__ else f"The {gym_id} environment.\n"
    action = (f"an int32 scalar in {{0, ..., {fields['num_actions'] - 1}}} (gymnasium's action minus the space's start)"
              if "num_actions" in fields else f"a float32 vector of {fields['action_dim']} elements")
    return (doc + f"\nIn this framework the state is the observation ({env.observation_space}) flattened to a "
            f"float32 vector of {obs_dim} elements; the action is {action}; done is gymnasium's `terminated` "
            f"(the time limit, `truncated`, is not part of the dynamics).\n")


@functools.cache
def spec(env_id: str) -> EnvSpec:
    """The EnvSpec of `gymnasium/<id>` (made once per process; runs the determinism test on first use).

    Raises:
      SourceError: gymnasium cannot make the id, or a space is not supported.
    """
    gym_id = env_id[len(PREFIX):] if env_id.lower().startswith(PREFIX) else env_id
    src, env, note = source(gym_id)
    fields, _ = _action_contract(env.action_space)
    twin = TWINS.get(gym_id)
    reference = _REFERENCES.get(gym_id, twin.reference if twin else "")
    made = EnvSpec(
        name=re.sub(r"[^A-Za-z0-9_.-]", "-", gym_id), gymnax_id="", description=_describe(gym_id, env, src.obs_dim, fields),
        obs_shape=(src.obs_dim,), state_from_obs=_no_gymnax_state, reference=reference,
        heuristic_policy=twin.heuristic_policy if twin else _random_heuristic(fields),
        source="gymnasium", source_id=gym_id, real_step=_real_step(src, env) if src.set_state else None,
        oracle_note=note, start_states=functools.partial(_start_states, gym_id), **fields,
    )
    clash, replay = determinism_failure(src, src.make_env())
    if clash:
        warnings.warn(f"{made.id} is not deterministic in (observation, action), so no CWM can score 1.0 on it: "
                      f"{clash}", NondeterminismWarning, stacklevel=2)
    elif replay:  # deterministic as far as measured, but the setter does not reproduce it: no oracle
        made = dataclasses.replace(made, real_step=None, oracle_note=f"setting its state from the observation does "
                                                                     f"not reproduce its steps ({replay})")
    return made


def _start_states(gym_id: str, n: int) -> np.ndarray:
    """float32 [n, obs_dim]: observations after `reset(seed=1234 + i)`."""
    src, _, _ = source(gym_id)
    env = src.make_env()
    return np.stack([src.flatten(env.reset(seed=1234 + i)[0]) for i in range(n)])


def _no_gymnax_state(obs: jax.Array):
    raise ValueError("a gymnasium environment has no gymnax state")


def _random_heuristic(fields: dict) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """No heuristic of its own: the recorder uses a one-step lookahead where the state can be set."""
    if "num_actions" in fields:
        return lambda key, obs: jax.random.randint(key, (), 0, fields["num_actions"], dtype=jnp.int32)
    return lambda key, obs: jax.random.uniform(key, (fields["action_dim"],), jnp.float32, fields["action_low"],
                                               fields["action_high"])
