"""Types shared by the planners: the model interface and the planner interface.

Every planner plans with ONE kind of model, a deterministic transition function

    step(state, action) -> (next_state, reward, done)

on a single (unbatched) state: a Code World Model loaded by `cwm_jax.validate.loader`,
`EnvSpec.oracle_step` (the true gymnax dynamics behind the same signature), or
any jittable function of yours. The planners vmap it themselves.

Every planner factory returns a pure function

    plan(key, state) -> action

on a single state, which you may `jax.jit` and `jax.vmap` (over keys and
states) like any other JAX function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp

__all__ = [
    "Action",
    "ActionMaskFn",
    "ActionSequenceFn",
    "Agent",
    "Config",
    "PlanFn",
    "PriorFn",
    "State",
    "StepFn",
    "ValueFn",
    "as_agent",
    "build_config",
    "call_step",
    "check_num_actions",
    "model_num_actions",
    "select_tree",
    "unbatched",
]

State = Any  # a pytree; for CWMs a float32 array [obs_dim]
Action = jax.Array  # int32 [] (discrete) or float32 [action_dim] (continuous)

# (state, action) -> (next_state, reward float32 [], done bool []).
StepFn = Callable[[State, Action], tuple[State, jax.Array, jax.Array]]
# (key, state) -> action. Unbatched; jit/vmap it yourself.
PlanFn = Callable[[jax.Array, State], Action]
# (key, state) -> float32 []: an estimate of the discounted return from state.
# A learned value function may ignore the key.
ValueFn = Callable[[jax.Array, State], jax.Array]
# state -> float32 [num_actions]: prior logits over actions.
PriorFn = Callable[[State], jax.Array]
# state -> bool [num_actions]: True where the action is legal.
ActionMaskFn = Callable[[State], jax.Array]
# (key, n) -> n actions, int32 [n] or float32 [n, action_dim].
ActionSequenceFn = Callable[[jax.Array, int], jax.Array]


class Agent(NamedTuple):
    """A planner that commits to `period` actions per search (open-loop blocks).

    The evaluation loop calls `search(key, state)` every `period` real steps
    and executes `act(plan, i)` for i = 0, ..., period - 1 in between (until
    the episode ends). A stateless `plan(key, state) -> action` is the case
    period 1 (`as_agent`); the paper's open-loop CEM is period = horizon.

    Attributes:
      search: (key, state) -> plan, any pytree.
      act: (plan, i) -> action, with i an int32 [] in [0, period).
      period: real steps per search (static).
    """

    search: Callable[[jax.Array, State], Any]
    act: Callable[[Any, jax.Array], Action]
    period: int = 1


def as_agent(policy: PlanFn | Agent) -> Agent:
    """Wraps a stateless `plan(key, state) -> action` as an `Agent` of period 1."""
    if isinstance(policy, Agent):
        return policy

    def act(plan, i):
        del i
        return plan

    return Agent(search=policy, act=act, period=1)


def call_step(step_fn: StepFn, state: State, action: Action):
    """Calls `step_fn` and normalises its outputs.

    Raises ValueError when the reward or done is not a scalar: the usual cause
    is a batch of states given to an unbatched `plan`.

    The next state keeps the leaf dtypes of `state` (so that `lax` loops and
    mctx's preallocated tree keep fixed types), the reward becomes float32 []
    and done bool [].
    """
    next_state, reward, done = step_fn(state, action)
    for name, value in (("reward", reward), ("done", done)):
        if jnp.size(value) != 1:
            raise ValueError(
                f"the model returned a {name} of shape {jnp.shape(value)}, not a scalar: a planner's "
                "plan(key, state) takes ONE state; for a batch of states use jax.vmap(plan)(keys, states)"
            )
    next_state = jax.tree.map(
        lambda new, old: jnp.asarray(new, old.dtype).reshape(old.shape), next_state, state
    )
    reward = jnp.asarray(reward, jnp.float32).reshape(())
    done = jnp.asarray(done, jnp.bool_).reshape(())
    return next_state, reward, done


def select_tree(pred: jax.Array, on_true: State, on_false: State) -> State:
    """`jnp.where(pred, on_true, on_false)` leaf by leaf, for a scalar pred."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def unbatched(batched_fn: Callable[[jax.Array, Any], Any]) -> Callable[[jax.Array, Any], Any]:
    """The one-state form of a batched function: the adapter that adds and removes the batch axis.

    `batched_fn(key, states)` takes states with leaves [B, ...] and returns
    leaves [B, ...]; the result takes ONE state (leaves [...]) and returns
    leaves [...] (B = 1 inside). `jax.vmap` it to go back to a batch.
    """

    def fn(key: jax.Array, state: State):
        states = jax.tree.map(lambda x: jnp.asarray(x)[None], state)
        return jax.tree.map(lambda x: x[0], batched_fn(key, states))

    return fn


Config = TypeVar("Config")


def build_config(cls: type[Config], config: Config | None, overrides: dict[str, Any], caller: str) -> Config:
    """`cls(**overrides)` when config is None, else config with `overrides` replaced.

    Keeps the keyword style `make_mcts_planner(step, num_actions=2, ...)`
    working next to `make_mcts_planner(step, MCTSConfig(...))`.
    """
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"{caller}: unknown setting(s) {', '.join(unknown)}; {cls.__name__} has {', '.join(sorted(fields))}")
    if config is None:
        return cls(**overrides)
    if not isinstance(config, cls):
        raise TypeError(f"{caller}: config must be a {cls.__name__}, got {type(config).__name__}")
    return dataclasses.replace(config, **overrides) if overrides else config


def model_num_actions(step_fn: StepFn) -> int | None:
    """The action count a model declares, if any: `step_fn.num_actions` (a loaded
    CWM), or that of the object a bound method belongs to (`EnvSpec.oracle_step`)."""
    for owner in (step_fn, getattr(step_fn, "__self__", None)):
        count = getattr(owner, "num_actions", None)
        if isinstance(count, int):
            return count
    return None


def check_num_actions(step_fn: StepFn, num_actions: int) -> None:
    """Raises ValueError when the model declares a different action count."""
    declared = model_num_actions(step_fn)
    if declared is not None and declared != num_actions:
        raise ValueError(f"num_actions={num_actions}, but the model has {declared} actions")
