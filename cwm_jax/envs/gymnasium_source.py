"""Gymnasium environments as a source: `gymnasium/<id>` -> an `EnvSpec`, transitions recorded through gymnasium.

Any installed gymnasium environment resolves, including gymnasium's
`module:EnvId` convention (`gymnasium/my_pkg.envs:MyEnv-v0` imports
`my_pkg.envs` first, as `gymnasium.make` does). The CWM's state is the
observation flattened to float32 `[obs_dim]` (`flatten_space`,
`flatten_observation`; docs/environments.md): a Box is raveled, a Discrete
is one float (its value), a Tuple or Dict is the concatenation of its parts
(Dict in gymnasium's key order). Actions: a Discrete(n) space starting at 0
is the contract's int32 scalar; a 1-D Box with the same bounds in every
element is the float32 `[action_dim]` vector.

Transitions are recorded in this (trusted) process by stepping the
environment itself: random episodes plus episodes of a better-than-random
policy, the heuristic of the environment's gymnax twin where it has one
(CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0,
Pendulum-v1), else random again (the metadata says which). `done` is
gymnasium's `terminated`; truncation ends an episode without being `done`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from cwm_jax.envs import cwmb, mujoco_state
from cwm_jax.envs.spec import EnvSpec
from cwm_jax.errors import UsageError

__all__ = [
    "Act",
    "GymnasiumSourceError",
    "PREFIX",
    "REFERENCES",
    "STOCHASTIC",
    "STATE_SETTERS",
    "clean_docstring",
    "collisions",
    "contract_action",
    "flatten_observation",
    "flatten_space",
    "heuristic_or_random",
    "make_env",
    "real_step",
    "record_episodes",
    "spec_for",
    "start_states",
]

PREFIX = "gymnasium/"

# Reference CWMs (modules of `cwm_jax.reference`) where gymnasium differs from the gymnax twin or has none.
REFERENCES = {
    "CliffWalking-v1": "gymnasium_cliff_walking",
    "MountainCarContinuous-v0": "gymnasium_mountain_car_continuous",  # the left wall (docs/environments.md)
    "Taxi-v4": "gymnasium_taxi",
    "Blackjack-v1": "gymnasium_blackjack",  # with chance (docs/chance.md)
}

# Environments with chance (`EnvSpec.stochastic`: the chance contract, scored by likelihood; docs/chance.md),
# and what their description adds: that outcomes are random, never their probabilities.
STOCHASTIC = {
    "Blackjack-v1": "The cards are random: the same observation and action can lead to different next "
                    "observations and rewards.",
}

# Sections of gymnasium's docstrings that the paper removed from its descriptions.
_DROPPED_SECTIONS = ("arguments", "vectorized", "version history", "credits", "notes on")


class GymnasiumSourceError(UsageError):
    """A gymnasium id that cannot be made, or spaces the CWM contract cannot hold."""


def make_env(env_id: str, *, max_episode_steps: int | None = None):
    """`gymnasium.make(env_id)`, importing the module of a `module:EnvId` id first.

    `max_episode_steps` replaces gymnasium's time limit (None: keep it).

    Raises:
      GymnasiumSourceError: the module or the id is unknown to gymnasium.
    """
    import gymnasium

    if ":" in env_id:
        module, _ = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise GymnasiumSourceError(f"gymnasium/{env_id}: cannot import module {module!r}: {exc}") from None
    try:
        return gymnasium.make(env_id, **({} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}))
    except gymnasium.error.Error as exc:
        raise GymnasiumSourceError(f"gymnasium/{env_id}: {exc}") from None
    except ImportError as exc:  # e.g. a MuJoCo or Box2D env whose extra is not installed
        raise GymnasiumSourceError(f"gymnasium/{env_id} needs a package that is not installed: {exc} (the MuJoCo "
                                   "tasks: pip install 'cwm-jax[mujoco]')") from None


def flatten_space(space, where: str = "observation") -> int:
    """The length of the flat float32 vector for `space` (Box, Discrete, Tuple/Dict of those).

    Raises:
      GymnasiumSourceError: any other space (naming it and `where` it is).
    """
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Discrete):
        return 1
    if isinstance(space, spaces.Tuple):
        return sum(flatten_space(s, f"{where}[{i}]") for i, s in enumerate(space.spaces))
    if isinstance(space, spaces.Dict):
        return sum(flatten_space(s, f"{where}[{k!r}]") for k, s in space.spaces.items())
    raise GymnasiumSourceError(
        f"the {where} space {space} cannot be a CWM state: only Box, Discrete and Tuple/Dict of those are supported"
    )


def flatten_observation(space, observation) -> np.ndarray:
    """`observation` of `space` as float32 [flatten_space(space)]."""
    from gymnasium import spaces

    if isinstance(space, spaces.Tuple):
        return np.concatenate([flatten_observation(s, o) for s, o in zip(space.spaces, observation)])
    if isinstance(space, spaces.Dict):
        return np.concatenate([flatten_observation(s, observation[k]) for k, s in space.spaces.items()])
    return np.asarray(observation, np.float32).reshape(-1)


def _action_contract(space, env_id: str) -> dict[str, Any]:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            raise GymnasiumSourceError(f"gymnasium/{env_id}: a Discrete action space must start at 0, "
                                       f"this one starts at {int(space.start)}")
        return {"num_actions": int(space.n)}
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        low, high = np.unique(space.low), np.unique(space.high)
        if len(low) != 1 or len(high) != 1 or not np.isfinite([low[0], high[0]]).all():
            raise GymnasiumSourceError(f"gymnasium/{env_id}: the action space {space} has bounds that differ "
                                       "between elements or are infinite; the contract needs one finite [low, high]")
        return {"action_dim": int(space.shape[0]), "action_low": float(low[0]), "action_high": float(high[0])}
    raise GymnasiumSourceError(f"gymnasium/{env_id}: the action space {space} is not supported: "
                               "use Discrete(n) or a 1-D Box")


def clean_docstring(text: str) -> str:
    """A gymnasium class docstring cleaned the paper's way.

    Drops the Arguments, Vectorized, Version History (and Credits) sections,
    code examples, and links (a markdown link keeps its text).
    """
    lines = [line.rstrip() for line in (text or "").expandtabs().splitlines()]
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    kept, dropping, in_code = [], False, False
    for line in (x[indent:] for x in lines):
        heading = re.match(r"#+\s*(.*)", line.strip())
        if heading:
            dropping = heading.group(1).strip().lower().startswith(_DROPPED_SECTIONS)
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if dropping or in_code:
            continue
        line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)
        line = re.sub(r"<[^>]+>", "", line)  # HTML anchors and tags
        kept.append(re.sub(r"https?://\S+", "", line))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def spec_for(env_id: str, *, twin_of: Callable[[str], EnvSpec | None]) -> EnvSpec | None:
    """The spec of `gymnasium/<id>`, or None when `env_id` does not start with `gymnasium/`.

    `twin_of(gym_id)` is the gymnax spec of the same environment, if any: its
    heuristic policy records the better-than-random episodes and its reference
    CWM is the default one (unless `REFERENCES` names another).

    Raises:
      GymnasiumSourceError: the env cannot be made, or its spaces do not fit the contract.
    """
    if not env_id.lower().startswith(PREFIX):
        return None
    gym_id = env_id[len(PREFIX):].strip()
    return _spec(gym_id, twin_of(gym_id))


# The true chance models of random environments (`EnvSpec.chance_oracle`), as "module:function" entry points
# (gymnasium's own convention; the module uses this one, so it is imported only when the model is asked for).
_CHANCE_ORACLES = {"Blackjack-v1": "cwm_jax.envs.gymnasium_blackjack:table_model"}


def _entry_point(target: str) -> Callable[[], Any]:
    """A function that imports "module:function" and calls it."""
    module, name = target.split(":")
    return lambda: getattr(importlib.import_module(module), name)()


@functools.cache
def _spec(gym_id: str, twin: EnvSpec | None) -> EnvSpec:
    env = make_env(gym_id)
    try:
        obs_dim = flatten_space(env.observation_space)
        actions = _action_contract(env.action_space, gym_id)
        doc = clean_docstring(type(env.unwrapped).__doc__ or "")
    finally:
        env.close()
    layout = (f"The state is the observation flattened to float32 [{obs_dim}] "
              "(Box raveled, Discrete as its value, Tuple/Dict parts concatenated in order).")
    if gym_id in STOCHASTIC:
        layout = f"{STOCHASTIC[gym_id]}\n\n{layout}"
    return EnvSpec(
        name=gym_id,
        gymnax_id="",
        description=f"{doc}\n\n{layout}" if doc else layout,
        obs_shape=(obs_dim,),
        state_from_obs=None,
        heuristic_policy=None if twin is None else twin.heuristic_policy,
        reference=REFERENCES.get(gym_id, "" if twin is None else twin.reference),
        source="gymnasium",
        stochastic=gym_id in STOCHASTIC,
        chance_oracle=_entry_point(_CHANCE_ORACLES[gym_id]) if gym_id in _CHANCE_ORACLES else None,
        planner_defaults=cwmb.planner_defaults(gym_id),
        episode_steps=cwmb.episode_steps(gym_id),
        data_version=f"gymnasium {importlib.metadata.version('gymnasium')}" + (f"; {cwmb.RECORDING}" if cwmb.entry(gym_id) else ""),
        **actions,
    )


def contract_action(spec: EnvSpec, action) -> Any:
    """A contract action as gymnasium's `step` takes it: int (discrete) or float32 [action_dim]."""
    return int(action) if spec.discrete else np.asarray(action, np.float32).reshape(spec.action_dim)


def start_states(spec: EnvSpec, n: int, *, seed: int) -> np.ndarray:
    """float32 [n, obs_dim]: the observations of `n` resets (seeds `seed`, `seed + 1`, ...)."""
    env = make_env(spec.name)
    try:
        return np.stack([flatten_observation(env.observation_space, env.reset(seed=seed + i)[0]) for i in range(n)])
    finally:
        env.close()


# A recording policy: (env, episode index, the step's flat observation, the episode's rng) -> gymnasium action.
Act = Callable[[Any, int, np.ndarray, np.random.Generator], Any]


def heuristic_or_random(spec: EnvSpec, seeds: list[int], heuristic: list[bool]) -> Act:
    """Episode i follows the gymnax twin's heuristic (keys from `seeds[i]`) if `heuristic[i]` and there is one,
    else random actions."""
    policy = None if spec.heuristic_policy is None else jax.jit(spec.heuristic_policy)
    keys: dict[int, jax.Array] = {}

    def act(env, episode, state, rng):
        if not (heuristic[episode] and policy is not None):
            return env.action_space.sample()
        keys[episode], sub = jax.random.split(keys.get(episode, jax.random.key(seeds[episode])))
        return policy(sub, state)

    return act


def record_episodes(spec: EnvSpec, seeds: list[int], act: Act, *, max_steps: int, env=None) -> dict[str, np.ndarray]:
    """Steps the gymnasium env (`env`, or a new one of `spec`): one episode per seed, at most `max_steps` steps.

    Each episode resets with its seed and seeds the action space and the
    rng given to `act` with it. Returns per-transition arrays: state, action,
    next_state, reward, done (= terminated), episode (the index into `seeds`).
    """
    own = env is None
    env = make_env(spec.name) if own else env
    rows: dict[str, list] = {k: [] for k in ("state", "action", "next_state", "reward", "done", "episode")}
    try:
        for episode, seed in enumerate(seeds):
            obs, _ = env.reset(seed=seed)
            env.action_space.seed(seed)
            rng = np.random.default_rng(seed)
            state = flatten_observation(env.observation_space, obs)
            for _ in range(max_steps):
                action = contract_action(spec, act(env, episode, state, rng))
                obs, reward, terminated, truncated, _ = env.step(action)
                next_state = flatten_observation(env.observation_space, obs)
                for name, value in zip(rows, (state, action, next_state, reward, terminated, episode)):
                    rows[name].append(value)
                state = next_state
                if terminated or truncated:
                    break
    finally:
        if own:
            env.close()
    return {
        "state": np.asarray(rows["state"], np.float32).reshape(-1, spec.obs_dim),
        "action": np.asarray(rows["action"], np.int32 if spec.discrete else np.float32),
        "next_state": np.asarray(rows["next_state"], np.float32).reshape(-1, spec.obs_dim),
        "reward": np.asarray(rows["reward"], np.float32),
        "done": np.asarray(rows["done"], bool),
        "episode": np.asarray(rows["episode"], np.int32),
    }


def collisions(rows: dict[str, np.ndarray], *, tolerance: float = 1e-5) -> str | None:
    """The determinism test's collision check on recorded transitions (docs/environments.md, test 3).

    Equal (state, action) pairs must have equal outcomes (next state, reward,
    done, within `tolerance` relative and absolute). Returns a one-line
    account of the first disagreement and how many repeated pairs disagree,
    or None when none does (which proves nothing when no pair repeats).
    """
    first: dict[bytes, int] = {}
    repeated = differing = 0
    example = ""
    for i in range(len(rows["state"])):
        key = rows["state"][i].tobytes() + np.asarray(rows["action"][i]).tobytes()
        j = first.setdefault(key, i)
        if j == i:
            continue
        repeated += 1
        same = (np.allclose(rows["next_state"][i], rows["next_state"][j], rtol=tolerance, atol=tolerance)
                and np.isclose(rows["reward"][i], rows["reward"][j], rtol=tolerance, atol=tolerance)
                and rows["done"][i] == rows["done"][j])
        if not same:
            differing += 1
            example = example or (f"state {rows['state'][i].tolist()} with action {np.asarray(rows['action'][i]).tolist()} "
                                   f"led to {rows['next_state'][j].tolist()} (reward {float(rows['reward'][j]):g}) and to "
                                   f"{rows['next_state'][i].tolist()} (reward {float(rows['reward'][i]):g})")
    if not differing:
        return None
    return (f"{differing} of {repeated} repeated (observation, action) pairs in the recorded transitions had different "
            f"outcomes, e.g. {example}: the environment is random or its observation hides part of its state, so no "
            "deterministic CWM can score 1.0 on it")


def _angles(obs: np.ndarray, pairs: int) -> list[float]:
    """[cos a, sin a, ...] pairs -> the angles a, then the remaining values as they are."""
    return [float(np.arctan2(obs[2 * k + 1], obs[2 * k])) for k in range(pairs)] + [float(v) for v in obs[2 * pairs:]]


# How to put a gymnasium env into the state an observation shows: gymnasium id -> (unwrapped env, obs) -> None.
STATE_SETTERS: dict[str, Callable[[Any, np.ndarray], None]] = {
    "CartPole-v1": lambda env, obs: env.__dict__.update(state=np.asarray(obs, np.float64),
                                                        steps_beyond_terminated=None),  # a step after the end: reward 1
    "MountainCar-v0": lambda env, obs: setattr(env, "state", np.asarray(obs, np.float64)),
    "MountainCarContinuous-v0": lambda env, obs: setattr(env, "state", np.asarray(obs, np.float64)),
    "Pendulum-v1": lambda env, obs: setattr(env, "state", np.asarray(_angles(obs, 1), np.float64)),
    "Acrobot-v1": lambda env, obs: setattr(env, "state", np.asarray(_angles(obs, 2), np.float64)),
    "CliffWalking-v1": lambda env, obs: setattr(env, "s", int(round(float(obs[0])))),
    "Taxi-v4": lambda env, obs: env.__dict__.update(s=int(round(float(obs[0]))), lastaction=None),
    **mujoco_state.SETTERS,
}


def real_step(spec: EnvSpec) -> Callable:
    """The real gymnasium environment as a model with the CWM signature, through `jax.pure_callback`.

    Each call sets one unwrapped environment to the state its observation
    shows (`STATE_SETTERS`) and steps it: the true dynamics, at Python speed,
    usable by the same jitted planners as a CWM (batched calls loop on the
    host). Raises GymnasiumSourceError for an environment without a setter.
    """
    setter = STATE_SETTERS.get(spec.name)
    if setter is None:
        raise GymnasiumSourceError(f"{spec.id}: its state cannot be set from an observation here "
                                   f"(known: {', '.join(sorted(STATE_SETTERS))})")
    env = make_env(spec.name)
    env.reset(seed=0)
    inner = env.unwrapped

    def host_step(states: np.ndarray, actions: np.ndarray):
        states, actions = np.asarray(states), np.asarray(actions)
        batch = states.shape[:-1]
        flat_states = states.reshape(-1, spec.obs_dim)
        flat_actions = actions.reshape((len(flat_states),) + (() if spec.discrete else (spec.action_dim,)))
        out = np.empty_like(flat_states), np.empty(len(flat_states), np.float32), np.empty(len(flat_states), bool)
        for i, (state, action) in enumerate(zip(flat_states, flat_actions)):
            setter(inner, state)
            obs, reward, terminated, _, _ = inner.step(contract_action(spec, action))
            out[0][i], out[1][i], out[2][i] = flatten_observation(inner.observation_space, obs), reward, terminated
        return out[0].reshape(states.shape), out[1].reshape(batch), out[2].reshape(batch)

    def step(state: jax.Array, action: jax.Array):
        shapes = (jax.ShapeDtypeStruct(state.shape, np.float32), jax.ShapeDtypeStruct(state.shape[:-1], np.float32),
                  jax.ShapeDtypeStruct(state.shape[:-1], np.bool_))
        return jax.pure_callback(host_step, shapes, state, action, vmap_method="expand_dims")

    return step
