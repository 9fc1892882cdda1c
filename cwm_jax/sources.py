"""`cwm_jax.register`: your own environment or dataset as a source, found by every function and command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cwm_jax import envs
from cwm_jax.envs.spec import EnvSpec
from cwm_jax.errors import UsageError

__all__ = ["register"]


def register(source: Any, *, name: str | None = None, description: str | None = None, overwrite: bool = False,
             **fields: Any) -> EnvSpec:
    """Registers an environment or a dataset; returns its spec (`spec.id` names it everywhere).

    Args:
      source: one of
        - an `EnvSpec` (registered as it is);
        - a gymnax `Environment` instance: `gymnax/<name>`, recorded and acted
          in through gymnax (`fields`: `params`, `reference_source`,
          `heuristic_policy`, `state_from_obs`; `cwm_jax.envs.custom`);
        - a dataset: a `.npz` path (with its `.json` sidecar) or
          `minari/<dataset_id>`: `data/<name>` (`cwm_jax.data.datasets`).
      name: the id's name (required for an environment; a dataset defaults
        to its file name plus a content hash).
      description: what the LLM is told about the environment.
      overwrite: replace an environment registered under the same id.

    Raises:
      UsageError: a bad name or space, a clash with a built-in id, a malformed dataset.
    """
    if isinstance(source, EnvSpec):
        return envs.register(source, overwrite=overwrite)
    if isinstance(source, (str, Path)):
        from cwm_jax.data.datasets import load_dataset

        return load_dataset(source, name=name, description=description)
    from cwm_jax.envs.custom import gymnax_env_spec

    if name is None or description is None:
        raise UsageError("register: an environment needs name= and description=")
    spec = gymnax_env_spec(source, fields.pop("params", None), name=name, description=description, **fields)
    return envs.register(spec, overwrite=overwrite)
