"""A scored CWM as a StableHLO artifact: the model that runs is the model that was scored.

The sandbox worker traces the program's `step` ONCE, vmapped with a symbolic
batch size, and exports it (`jax.export`). It then scores that exported
function, not the Python, and sends the serialized artifact back. The caller
(plan, train, the benchmark) runs the artifact: no Python of the program ever
runs in the caller's process, so state kept across traces (mutable defaults,
a list grown at each trace), trace-count tricks and trace-time work in the
caller cannot exist there by construction.

`jax.vmap` of an exported function's `.call` has no batching rule, so
`exported_step` wraps the batched artifact in `jax.custom_batching.custom_vmap`
whose rule flattens any number of nested vmaps into its one batch axis.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import export

from cwm_jax.envs import EnvSpec, StepFn

__all__ = ["MAX_ARTIFACT_BYTES", "batched_call", "decode", "encode", "export_step", "exported_step"]

MAX_ARTIFACT_BYTES = 16 << 20  # a reference CWM's artifact is a few tens of KB
# Platforms the artifact is lowered for: the worker is CPU-only, the caller may plan on a GPU.
PLATFORMS = ("cpu", "cuda")


def export_step(step: StepFn, spec: EnvSpec) -> export.Exported:
    """`step` vmapped over a symbolic batch `b`: states float32 [b, obs_dim], actions [b, ...]."""
    (batch,) = export.symbolic_shape("b")
    state, action = spec.state_struct(), spec.action_struct()
    args = (
        jax.ShapeDtypeStruct((batch, *state.shape), state.dtype),
        jax.ShapeDtypeStruct((batch, *action.shape), action.dtype),
    )
    return export.export(jax.jit(jax.vmap(step)), platforms=PLATFORMS)(*args)


def encode(exported: export.Exported) -> str:
    """The artifact as base64 text, for a JSON reply."""
    return base64.b64encode(exported.serialize()).decode("ascii")


def decode(text: str) -> export.Exported:
    """The artifact from `encode`'s text; ValueError for anything else."""
    if not isinstance(text, str) or len(text) > MAX_ARTIFACT_BYTES * 4 // 3 + 4:
        raise ValueError("the model artifact is missing or too large")
    try:
        return export.deserialize(bytearray(base64.b64decode(text, validate=True)))
    except Exception as exc:  # noqa: BLE001 - a malformed artifact is a clear error, not a crash
        raise ValueError(f"the model artifact cannot be read: {type(exc).__name__}") from None


def _check_signature(exported: export.Exported, spec: EnvSpec) -> None:
    state, action = spec.state_struct(), spec.action_struct()
    want_in = [((state.shape), state.dtype), ((action.shape), action.dtype)]
    got_in = [(tuple(a.shape[1:]), a.dtype) for a in exported.in_avals]
    want_out = [((spec.obs_dim,), jnp.float32), ((), jnp.float32), ((), jnp.bool_)]
    got_out = [(tuple(a.shape[1:]), a.dtype) for a in exported.out_avals]
    if got_in != want_in or got_out != want_out or len(exported.in_avals) != 2:
        raise ValueError(f"the model artifact does not match {spec.id}'s spaces")


def exported_step(exported: export.Exported, spec: EnvSpec) -> StepFn:
    """`step(state, action) -> (next_state, reward, done)` running the batched artifact.

    Shapes as `loader.load_cwm`'s step: state float32 [obs_dim], action int32 []
    or float32 [action_dim]. It jits and vmaps (any nesting); reverse-mode
    gradients through it are not supported (planning needs none).
    """
    _check_signature(exported, spec)
    batched = batched_call(exported)

    def step(state: jax.Array, action: jax.Array):
        state = jnp.asarray(state, jnp.float32)
        action = jnp.asarray(action, spec.action_struct().dtype)
        next_state, reward, done = batched(state[None], action[None])
        return next_state[0], reward[0], done[0]

    step.num_actions = spec.num_actions
    return step


def batched_call(exported: export.Exported) -> Callable[..., tuple]:
    """The artifact's call (inputs and outputs batched on axis 0), vmappable to any nesting.

    `jax.vmap` of `.call` has no batching rule: `custom_vmap` folds the outer
    batch axes into the artifact's one symbolic batch axis and unfolds them.
    """

    @jax.custom_batching.custom_vmap
    def batched(*args):
        return tuple(exported.call(*args))

    @batched.def_vmap
    def _rule(axis_size, in_batched, *args):
        # The outer vmap adds axis 0 to the batched inputs: broadcast the rest,
        # fold [axis_size, n, ...] into [axis_size * n, ...], call, unfold.
        n = args[0].shape[1] if in_batched[0] else args[0].shape[0]
        args = [a if b else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, b in zip(args, in_batched)]
        flat = batched(*(a.reshape(axis_size * n, *a.shape[2:]) for a in args))
        return tuple(x.reshape(axis_size, n, *x.shape[1:]) for x in flat), tuple(True for _ in flat)

    return batched
