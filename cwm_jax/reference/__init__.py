"""Hand-written reference CWMs, one module per environment.

These are written by the cwm-jax authors, not by an LLM. They are the default
model for planning and the fixtures of the test suite; each scores 1.0 on the
held-out split of its environment. They are read as source text and loaded
through the same validator and loader as any other CWM.
"""

from __future__ import annotations

from importlib import resources

from cwm_jax import envs
from cwm_jax.errors import UsageError


def has_reference(env_id: str | envs.EnvSpec) -> bool:
    """Whether the environment has a reference CWM (a generated one, or a module here)."""
    spec = envs.env_spec(env_id)
    return bool(spec.reference_source) or (bool(spec.reference)
                                           and resources.files(__name__).joinpath(f"{spec.reference}.py").is_file())


def source(env_id: str | envs.EnvSpec) -> str:
    """Source text of the reference CWM of an environment.

    Raises:
      UsageError: the environment has no reference CWM (`has_reference`).
    """
    spec = envs.env_spec(env_id)
    if not has_reference(spec):
        raise UsageError(f"{spec.id} has no reference CWM")
    if spec.reference_source:  # a generated world's reference, written by its generator
        return spec.reference_source
    return resources.files(__name__).joinpath(f"{spec.reference}.py").read_text()


def deterministic_source(env_id: str | envs.EnvSpec) -> str:
    """Source text of the best deterministic CWM of a stochastic environment (its most likely outcome, always)."""
    spec = envs.env_spec(env_id)
    return resources.files(__name__).joinpath(f"{spec.reference}_deterministic.py").read_text()
