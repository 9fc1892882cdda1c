"""PPO's actor-critic network, its action distributions, and its saved format.

Saved format (`save` / `load`): one file, a UTF-8 JSON header line (network
sizes, env id, discount, reward scale, ...) then `\\n`, then the parameters as
`flax.serialization.to_bytes` (msgpack).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ActorCritic",
    "entropy",
    "load",
    "log_prob",
    "network_for",
    "orthogonal",
    "sample",
    "save",
]

FORMAT = "cwm-jax-ppo"
FORMAT_VERSION = 1


def orthogonal(scale: float) -> Callable[..., jax.Array]:
    """An orthogonal initializer for `nn.Dense` kernels `[in, out]`, without LAPACK.

    Same distribution as `nn.initializers.orthogonal(scale)` (Haar: Gram-Schmidt
    of a Gaussian matrix is its QR with a positive diagonal), computed with
    plain jax.numpy. jax's own is a LAPACK QR custom call; inside
    `jax.jit(jax.vmap(train))` XLA's CPU runtime runs it batched on its
    intra-op thread pool, and on a 2-core machine that deadlocked training
    (docs/testing.md, "the train hang").
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        n_in, n_out = shape
        rows, cols = max(n_in, n_out), min(n_in, n_out)
        gaussian = jax.random.normal(key, (rows, cols), dtype)

        def orthonormalize(j, q):  # classical Gram-Schmidt, applied twice for float32 accuracy
            v = gaussian[:, j]
            earlier = jnp.arange(cols) < j
            for _ in range(2):
                v = v - q @ jnp.where(earlier, q.T @ v, 0.0)
            return q.at[:, j].set(v / jnp.linalg.norm(v))

        q = jax.lax.fori_loop(0, cols, orthonormalize, jnp.zeros_like(gaussian))
        return scale * (q if n_in >= n_out else q.T)

    return init


class ActorCritic(nn.Module):
    """Separate tanh MLPs for policy and value.

    `__call__(obs [..., obs_dim])` -> (policy output [..., num_outputs],
    log_std [num_outputs] (continuous) or None, value [...]). The policy output
    is logits (discrete) or the Gaussian mean (continuous).
    """

    num_outputs: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, obs):
        def mlp(x, out, scale):
            for width in self.hidden:
                x = nn.tanh(nn.Dense(width, kernel_init=orthogonal(math.sqrt(2)))(x))
            return nn.Dense(out, kernel_init=orthogonal(scale))(x)

        policy = mlp(obs, self.num_outputs, 0.01)
        value = mlp(obs, 1, 1.0)[..., 0]
        log_std = None if self.discrete else self.param("log_std", nn.initializers.zeros, (self.num_outputs,))
        return policy, log_std, value


def log_prob(policy, log_std, action, *, discrete: bool) -> jax.Array:
    """log pi(action): action int32 [...] (discrete) or float32 [..., A]."""
    if discrete:
        return jnp.take_along_axis(jax.nn.log_softmax(policy), action[..., None], axis=-1)[..., 0]
    z = (action - policy) / jnp.exp(log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def entropy(policy, log_std, *, discrete: bool) -> jax.Array:
    if discrete:
        logp = jax.nn.log_softmax(policy)
        return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
    return jnp.broadcast_to(jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)), policy.shape[:-1])


def sample(key, policy, log_std, *, discrete: bool) -> jax.Array:
    if discrete:
        return jax.random.categorical(key, policy).astype(jnp.int32)
    return policy + jnp.exp(log_std) * jax.random.normal(key, policy.shape)


def network_for(env, env_params, hidden: Sequence[int]) -> tuple[ActorCritic, Callable]:
    """(network, to_env_action) for a gymnax env's action space.

    Discrete spaces have `.n`; Box spaces get a Gaussian policy whose samples
    are clipped to [low, high] for the env only (log-probs use the raw sample).
    """
    space = env.action_space(env_params)
    if hasattr(space, "n"):
        return ActorCritic(num_outputs=int(space.n), discrete=True, hidden=tuple(hidden)), lambda a: a
    dim = int(np.prod(space.shape)) if space.shape else 1
    low, high = jnp.asarray(space.low, jnp.float32), jnp.asarray(space.high, jnp.float32)
    net = ActorCritic(num_outputs=dim, discrete=False, hidden=tuple(hidden))
    return net, lambda a: jnp.clip(a, low, high).reshape(space.shape)


# --------------------------------------------------------------------------- files


def save(path: str | Path, network: ActorCritic, params, header: dict[str, Any]) -> None:
    """Writes one file: a JSON header line, then the msgpack parameters.

    The header gets `format`, `version`, `num_outputs`, `discrete`, `hidden`
    added to what you pass (e.g. env, obs_dim, gamma, reward_scale).
    """
    header = {
        **header,
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "num_outputs": network.num_outputs,
        "discrete": network.discrete,
        "hidden": list(network.hidden),
    }
    params = jax.device_get(params)
    Path(path).write_bytes(json.dumps(header).encode() + b"\n" + flax.serialization.to_bytes(params))


def load(path: str | Path) -> tuple[ActorCritic, Any, dict[str, Any]]:
    """(network, params, header) from a file written by `save`.

    Raises ValueError (one line, naming the file) for anything else.
    """
    data = Path(path).read_bytes()
    head, sep, body = data.partition(b"\n")
    try:
        header = json.loads(head.decode())
        ok = sep and isinstance(header, dict) and header.get("format") == FORMAT
    except (UnicodeDecodeError, json.JSONDecodeError):
        ok = False
    if not ok:
        raise ValueError(f"{path}: not a {FORMAT} parameter file (expected a JSON header line)")
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported {FORMAT} version {header.get('version')!r}")
    network = ActorCritic(
        num_outputs=int(header["num_outputs"]), discrete=bool(header["discrete"]), hidden=tuple(header["hidden"])
    )
    template = network.init(jax.random.key(0), jnp.zeros((int(header["obs_dim"]),), jnp.float32))
    try:
        params = flax.serialization.from_bytes(template, body)
    except Exception as exc:  # msgpack/flax raise several types for bad bytes
        raise ValueError(f"{path}: parameters do not match the header ({type(exc).__name__}: {exc})") from None
    return network, params, header
