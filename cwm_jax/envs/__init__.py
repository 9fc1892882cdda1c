"""The environment registry: `make("gymnax/CartPole")` -> EnvSpec."""

from __future__ import annotations

from cwm_jax.envs.cartpole import SPEC as CARTPOLE
from cwm_jax.envs.spec import EnvSpec, StepFn

SPECS: tuple[EnvSpec, ...] = (CARTPOLE,)


class UnknownEnvError(KeyError):
    """An environment id that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def _index() -> dict[str, EnvSpec]:
    table = {}
    for spec in SPECS:
        for env_id in spec.ids:
            table[env_id.lower()] = spec
    return table


_BY_ID = _index()


def names() -> list[str]:
    """Canonical ids of every registered environment, e.g. 'gymnax/CartPole'."""
    return [f"gymnax/{spec.name}" for spec in SPECS]


def make(env_id: str | EnvSpec) -> EnvSpec:
    """Look up an environment by any of its ids (case-insensitive).

    `gymnax/CartPole`, `CartPole` and `CartPole-v1` all name the same spec.

    Raises:
      UnknownEnvError: listing the known ids.
    """
    if isinstance(env_id, EnvSpec):
        return env_id
    spec = _BY_ID.get(str(env_id).strip().lower())
    if spec is None:
        raise UnknownEnvError(
            f"unknown environment {env_id!r}; known environments: {', '.join(names())}"
        )
    return spec


__all__ = ["EnvSpec", "StepFn", "SPECS", "UnknownEnvError", "make", "names"]
