"""Your own JAX environment as a source: a gymnax `Environment` -> an `EnvSpec` the registry can hold.

`cwm_jax.register(env, name=..., description=...)` calls `gymnax_env_spec`
and registers the result as `gymnax/<name>`. Transitions are recorded from
it like from a built-in (random episodes, plus the `heuristic_policy`'s if
given); `plan` and `train` act in it; the oracle of `plan` needs
`state_from_obs`, the map from an observation back to the env's state
(without one, the normalized return is N/A).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from cwm_jax.envs.spec import EnvSpec
from cwm_jax.errors import UsageError

__all__ = ["gymnax_env_spec"]


def gymnax_env_spec(env: Any, params: Any = None, *, name: str, description: str, reference_source: str = "",
                    heuristic_policy: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
                    state_from_obs: Callable[[jax.Array], Any] | None = None) -> EnvSpec:
    """The spec of a gymnax environment instance (its default params unless `params` is given).

    Args:
      env: a `gymnax.environments.environment.Environment`; its observation
        space is flattened to the float32 state; its action space must be
        `Discrete(n)` or a 1-D `Box` with one bound for every element.
      name: the id is `gymnax/<name>`.
      description: what the LLM is told (state layout, actions, reward, termination).
      reference_source: a reference CWM's source, if you have one (`--model reference`).
      heuristic_policy: (key, obs) -> action, better than random, for recording.
      state_from_obs: obs -> the env's state, for the oracle of `plan`.

    Raises:
      UsageError: a name with a slash or blank, or an action space the contract cannot hold.
    """
    from gymnax.environments import spaces

    if not name or "/" in name or name != name.strip():
        raise UsageError(f"register: the name must be non-empty, without '/' or surrounding blanks, got {name!r}")
    params = env.default_params if params is None else params
    obs_shape = tuple(int(d) for d in env.observation_space(params).shape)
    action_space = env.action_space(params)
    if isinstance(action_space, spaces.Discrete):
        actions: dict[str, Any] = {"num_actions": int(action_space.n)}
    elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        low, high = np.unique(np.asarray(action_space.low)), np.unique(np.asarray(action_space.high))
        if len(low) != 1 or len(high) != 1 or not np.isfinite([low[0], high[0]]).all():
            raise UsageError(f"register: {name}'s action bounds must be one finite [low, high] for every element")
        actions = {"action_dim": int(action_space.shape[0]), "action_low": float(low[0]),
                   "action_high": float(high[0])}
    else:
        raise UsageError(f"register: {name}'s action space {type(action_space).__name__} is not supported: "
                         "use Discrete(n) or a 1-D Box")
    return EnvSpec(name=name, gymnax_id="", description=description, docs_description=description,
                   obs_shape=obs_shape, state_from_obs=state_from_obs, heuristic_policy=heuristic_policy,
                   reference="", reference_source=reference_source, make_env=lambda: (env, params),
                   data_version=f"registered {type(env).__module__}.{type(env).__qualname__}", **actions)
