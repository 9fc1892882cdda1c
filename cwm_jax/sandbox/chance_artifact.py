"""A scored chance CWM as StableHLO artifacts: its three functions, exported once in the worker.

The chance contract (docs/chance.md) has three functions; the worker traces
each ONCE, vmapped over a symbolic batch, exports them (`jax.export`), scores
the exported ones (what is scored is what runs) and sends them back as one
JSON text. The caller (plan, the benchmark) runs them as a `ChanceModel`
(`exported_chance`); none of the program's Python runs in its process.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
from jax import export

from cwm_jax.envs import EnvSpec
from cwm_jax.sandbox.artifact import MAX_ARTIFACT_BYTES, PLATFORMS, batched_call, decode, encode
from cwm_jax.validate.chance import ChanceModel

__all__ = ["KIND", "encode_chance", "export_chance", "exported_chance", "is_chance_artifact"]

KIND = "chance-cwm-1"
PARTS = ("afterstate", "chance_log_probs", "outcome")


def export_chance(model: ChanceModel, spec: EnvSpec) -> dict[str, export.Exported]:
    """The three functions vmapped over a symbolic batch `b`, each returning a tuple."""
    (batch,) = export.symbolic_shape("b")
    state, action = spec.state_struct(), spec.action_struct()
    after = jax.eval_shape(model.afterstate, state, action)
    if not isinstance(after, jax.ShapeDtypeStruct):
        raise ValueError("the afterstate must be one array to be exported")
    chance = jax.ShapeDtypeStruct((), jnp.int32)

    def batched(struct):
        return jax.ShapeDtypeStruct((batch, *struct.shape), struct.dtype)

    def exported(fn, *structs):
        return export.export(jax.jit(jax.vmap(fn)), platforms=PLATFORMS)(*(batched(s) for s in structs))

    return {
        "afterstate": exported(lambda s, a: (model.afterstate(s, a),), state, action),
        "chance_log_probs": exported(lambda x: (model.chance_log_probs(x),), after),
        "outcome": exported(lambda x, c: tuple(model.outcome(x, c)), after, chance),
    }


def encode_chance(parts: dict[str, export.Exported], num_outcomes: int) -> str:
    """One JSON text holding the three artifacts (base64) and C."""
    return json.dumps({"kind": KIND, "num_outcomes": int(num_outcomes),
                       **{name: encode(parts[name]) for name in PARTS}})


def is_chance_artifact(text: str) -> bool:
    """Whether `text` is `encode_chance`'s output (a deterministic step's artifact is plain base64)."""
    return isinstance(text, str) and text.startswith("{")


def exported_chance(text: str, spec: EnvSpec) -> ChanceModel:
    """The `ChanceModel` that runs the artifacts of `encode_chance`; ValueError for anything else."""
    if not is_chance_artifact(text) or len(text) > 3 * (MAX_ARTIFACT_BYTES * 4 // 3 + 4):
        raise ValueError("the chance model artifact is missing or too large")
    try:
        payload = json.loads(text)
        num_outcomes = int(payload["num_outcomes"])
        calls = {name: batched_call(decode(payload[name])) for name in PARTS}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the chance model artifact cannot be read: {type(exc).__name__}") from None
    if payload.get("kind") != KIND or not 1 <= num_outcomes:
        raise ValueError("the chance model artifact is not one this version reads")
    action_dtype = spec.action_struct().dtype

    def afterstate(state, action):
        (after,) = calls["afterstate"](jnp.asarray(state, jnp.float32)[None], jnp.asarray(action, action_dtype)[None])
        return after[0]

    def chance_log_probs(after):
        (logits,) = calls["chance_log_probs"](after[None])
        return logits[0]

    def outcome(after, chance):
        next_state, reward, done = calls["outcome"](after[None], jnp.asarray(chance, jnp.int32)[None])
        return next_state[0], reward[0], done[0]

    return ChanceModel(afterstate, chance_log_probs, outcome, num_outcomes)
