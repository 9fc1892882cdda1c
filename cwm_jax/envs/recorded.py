"""Environments known by their recorded transitions: a spec rebuilt from a cached split's metadata.

A recorded dataset (`cwm_jax.data.datasets`) or an environment registered
with `cwm_jax.register` lives in one process's registry; the sandbox worker
that scores a CWM on it is another process. Every cached split carries its
environment's spaces (`spec_fields`), so any process resolves the id from the
cache alone (`spec_for`): enough to check a CWM's contract, score and fit
it, never to step or record the environment.
"""

from __future__ import annotations

from typing import Any

from cwm_jax.data.cache import read_split_file, split_file
from cwm_jax.envs.spec import EnvSpec

__all__ = ["SPEC_KEY", "spec_fields", "spec_for", "spec_from_fields"]

SPEC_KEY = "spec"  # where a cached split's metadata keeps `spec_fields`

_FIELDS = ("name", "source", "obs_shape", "num_actions", "action_dim", "action_low", "action_high", "stochastic",
           "data_version", "description")


def spec_fields(spec: EnvSpec) -> dict[str, Any]:
    """What a process needs to score CWMs on `spec`'s recorded transitions, as JSON-ready values."""
    fields = {name: getattr(spec, name) for name in _FIELDS}
    fields["obs_shape"] = list(spec.obs_shape)
    return fields


def spec_from_fields(fields: dict[str, Any]) -> EnvSpec:
    """The spec of `spec_fields`' output (`from_records`: nothing can step it here)."""
    values = {name: fields[name] for name in _FIELDS if name in fields}
    values["obs_shape"] = tuple(int(d) for d in values["obs_shape"])
    return EnvSpec(gymnax_id="", state_from_obs=None, heuristic_policy=None, reference="", from_records=True,
                   **values)


def spec_for(env_id: str) -> EnvSpec | None:
    """The spec of `<source>/<name>` from a cached split of it, or None when no cached split holds one."""
    source, _, name = env_id.strip().partition("/")
    if not name:
        return None
    for split in ("train", "test"):  # a worker may hold one split only
        try:
            _, meta = read_split_file(split_file(source, name, split), ())
        except (OSError, ValueError, KeyError):
            continue
        fields = meta.get(SPEC_KEY)
        if isinstance(fields, dict) and fields.get("source") == source and fields.get("name") == name:
            return spec_from_fields(fields)
    return None
