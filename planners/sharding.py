"""Spread a batch of independent episodes over devices with `jax.sharding`.

Planning evaluation is embarrassingly parallel over seeds: every seed runs
its own episode. `shard_over_devices(batched_fn, mesh)` runs `batched_fn`
(e.g. `jax.vmap(episode)`, keys [N] -> leaves [N]) with its batch split over
the mesh's one axis by `jax.shard_map`: each device runs the same vmapped
episode on its N / D seeds, with its own `while_loop` (no cross-device
traffic, and a device whose seeds all ended stops early). N need not divide
by D: the batch is padded with copies of the first key inside the jitted
function and the padding is cut off again, so callers keep `.lower(keys)`.

Per-seed results are those of one device: each seed's computation is the
same program on the same key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

__all__ = ["SEED_AXIS", "seed_mesh", "shard_over_devices"]

SEED_AXIS = "seeds"


def seed_mesh(devices: Sequence[jax.Device] | int | None = None) -> Mesh:
    """A one-axis mesh ("seeds") over `devices`: a list, the first N local devices, or all (None)."""
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, int):
        if not 1 <= devices <= len(available):
            raise ValueError(f"asked for {devices} devices; {len(available)} are available")
        chosen = available[:devices]
    else:
        chosen = list(devices)
    return Mesh(np.asarray(chosen), (SEED_AXIS,))


def shard_over_devices(batched_fn: Callable, mesh: Mesh) -> Callable:
    """`jax.jit` of `batched_fn` with its leading batch axis split over `mesh`.

    Args:
      batched_fn: keys [N] -> pytree with leaves [N, ...]; row i may depend
        on key i only (e.g. `jax.vmap(episode)`).
      mesh: from `seed_mesh`.

    Returns:
      jitted keys [N] -> the same pytree, computed on every device of the mesh.
    """
    count = mesh.devices.size
    spec = PartitionSpec(SEED_AXIS)
    sharded = jax.shard_map(batched_fn, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)

    def run(keys: jax.Array):
        n = keys.shape[0]
        pad = -n % count
        if pad:  # copies of key 0: computed, then cut off (they never reach the caller)
            keys = jnp.concatenate([keys, jnp.repeat(keys[:1], pad, axis=0)])
        return jax.tree.map(lambda leaf: leaf[:n], sharded(keys))

    return jax.jit(run)
