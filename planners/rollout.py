"""Random-rollout value estimates that respect termination."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners.base import ActionSequenceFn, StepFn, ValueFn, call_step, select_tree

__all__ = ["make_rollout_value", "rollout_return", "uniform_box_actions", "uniform_discrete_actions", "zero_value"]


class _ReturnCarry(NamedTuple):
    """The loop state of `rollout_return`."""

    t: jax.Array  # int32: steps taken
    state: Any
    done: jax.Array  # bool: the sequence has terminated
    ret: jax.Array  # float32: discounted return so far
    weight: jax.Array  # float32: discount**t


def uniform_discrete_actions(num_actions: int) -> ActionSequenceFn:
    """(key, n) -> int32 [n], uniform over {0, ..., num_actions - 1}."""

    def sample(key: jax.Array, n: int) -> jax.Array:
        return jax.random.randint(key, (n,), 0, num_actions, dtype=jnp.int32)

    return sample


def uniform_box_actions(action_dim: int, low, high) -> ActionSequenceFn:
    """(key, n) -> float32 [n, action_dim], uniform in [low, high] (per element)."""
    low = jnp.broadcast_to(jnp.asarray(low, jnp.float32), (action_dim,))
    high = jnp.broadcast_to(jnp.asarray(high, jnp.float32), (action_dim,))

    def sample(key: jax.Array, n: int) -> jax.Array:
        return jax.random.uniform(key, (n, action_dim), jnp.float32, low, high)

    return sample


def _latched_step(step_fn: StepFn, discount: float, carry: _ReturnCarry, action, active) -> _ReturnCarry:
    """One rollout step that changes nothing where `active` is False (bool []).

    The return is `where(active, ret + weight * r, ret)`: the same expression
    as the early-exit loop's `ret + weight * r`, so that XLA compiles it the
    same way (a `ret + where(active, weight * r, 0)` can round differently
    where the unlatched sum is contracted into a fused multiply-add).
    """
    next_s, r, d = call_step(step_fn, carry.state, action)
    return _ReturnCarry(
        t=carry.t + active.astype(jnp.int32),
        state=select_tree(active, next_s, carry.state),
        done=carry.done | (active & d),
        ret=jnp.where(active, carry.ret + carry.weight * r, carry.ret),
        weight=jnp.where(active, carry.weight * discount, carry.weight),
    )


def rollout_return(
    step_fn: StepFn,
    state,
    actions: jax.Array,
    *,
    discount: float,
    early_exit: bool = True,
    unroll: int = 1,
) -> jax.Array:
    """Discounted return of an open-loop action sequence from `state`.

    `sum_t discount**t * r_t` over t < len(actions), stopping at the first
    step that reports done: the terminating step's reward counts, nothing after
    it does.

    Args:
      step_fn: the model, on one state.
      state: the start state (a pytree).
      actions: [T] or [T, action_dim], the actions to take.
      discount: per-step discount.
      early_exit: stop the loop as soon as the episode is done (a
        `lax.while_loop`; under vmap it runs until every row is done). With
        False the loop always runs T steps (a `lax.scan` with a done latch).
      unroll: model steps per loop iteration (>= 1). The loop runs
        ceil(T / unroll) (scan) or ceil(steps / unroll) (while) sequential
        iterations. Fewer iterations cut the per-iteration cost of a loop (a
        kernel launch and a predicate read on a GPU), for up to `unroll - 1`
        model steps computed and discarded past the end. The while loop's
        return is the same bit for bit (each iteration is `unroll` latched
        steps); the scan's (`lax.scan(unroll=...)`) may differ in the last
        bit of float32, as XLA fuses the unrolled body differently.

    Returns:
      float32 [].
    """
    if unroll < 1:
        raise ValueError(f"unroll must be >= 1, got {unroll}")
    horizon = actions.shape[0]
    init = _ReturnCarry(
        t=jnp.zeros((), jnp.int32),
        state=state,
        done=jnp.zeros((), jnp.bool_),
        ret=jnp.zeros((), jnp.float32),
        weight=jnp.ones((), jnp.float32),
    )
    latched = functools.partial(_latched_step, step_fn, discount)

    if not early_exit:

        def scan_body(carry: _ReturnCarry, action):
            next_s, r, d = call_step(step_fn, carry.state, action)
            return _ReturnCarry(
                t=carry.t + 1,
                state=select_tree(carry.done, carry.state, next_s),
                done=carry.done | d,
                ret=carry.ret + jnp.where(carry.done, 0.0, carry.weight * r),
                weight=carry.weight * discount,
            ), None

        final, _ = jax.lax.scan(scan_body, init, actions, unroll=max(1, min(unroll, horizon)))
        return final.ret

    def cond(carry: _ReturnCarry):
        return (carry.t < horizon) & ~carry.done

    if unroll == 1:

        def body(carry: _ReturnCarry):
            next_s, r, d = call_step(step_fn, carry.state, actions[carry.t])
            return _ReturnCarry(carry.t + 1, next_s, d, carry.ret + carry.weight * r, carry.weight * discount)

    else:

        def body(carry: _ReturnCarry):
            # `unroll` steps per iteration; those past the end change nothing.
            for _ in range(unroll):
                action = actions[jnp.minimum(carry.t, horizon - 1)]
                carry = latched(carry, action, cond(carry))
            return carry

    return jax.lax.while_loop(cond, body, init).ret


def make_rollout_value(
    step_fn: StepFn,
    action_sequence_fn: ActionSequenceFn,
    *,
    depth: int,
    discount: float = 0.99,
    num_rollouts: int = 1,
    early_exit: bool | None = None,
    unroll: int = 1,
) -> ValueFn:
    """A value function from random rollouts of at most `depth` steps.

    value(key, s) = sum_{t < depth} discount**t * r_t, with actions drawn by
    `action_sequence_fn`, ending at the first `done` (the paper's MCTS leaf
    evaluation: one random rollout of up to 100 steps, discount 0.99),
    averaged over `num_rollouts` independent rollouts (run in parallel).

    Args:
      step_fn: the model, on one state.
      action_sequence_fn: (key, n) -> n actions, e.g.
        `uniform_discrete_actions(num_actions)`.
      depth: maximum rollout length; 0 gives the constant value 0.
      discount: per-step discount.
      num_rollouts: rollouts averaged per evaluation (>= 1).
      early_exit: see `rollout_return`. None (default): True for a single
        rollout, False for several (a vmapped while loop runs until its
        longest rollout ends anyway, and the fixed-length scan compiles and
        runs faster).
      unroll: model steps per loop iteration (see `rollout_return`).

    Returns:
      value(key, state) -> float32 [].
    """
    if depth < 0:
        raise ValueError(f"rollout depth must be >= 0, got {depth}")
    if num_rollouts < 1:
        raise ValueError(f"num_rollouts must be >= 1, got {num_rollouts}")
    if unroll < 1:
        raise ValueError(f"unroll must be >= 1, got {unroll}")
    if early_exit is None:
        early_exit = num_rollouts == 1

    def one(key: jax.Array, state) -> jax.Array:
        actions = action_sequence_fn(key, depth)
        return rollout_return(step_fn, state, actions, discount=discount, early_exit=early_exit, unroll=unroll)

    def value(key: jax.Array, state) -> jax.Array:
        if depth == 0:
            return jnp.zeros((), jnp.float32)
        if num_rollouts == 1:
            return one(key, state)
        keys = jax.random.split(key, num_rollouts)
        return jax.vmap(one, in_axes=(0, None))(keys, state).mean()

    return value


def zero_value(key: jax.Array, state) -> jax.Array:
    """The constant value 0 (plan on rewards inside the tree only)."""
    del key, state
    return jnp.zeros((), jnp.float32)
