"""The environment registry: `env_spec("gymnax/CartPole")` -> EnvSpec.

The lookup is not called `make`: `gymnax.make(id)` returns `(env, params)`,
while this returns the framework's spec (`spec.make_gymnax()` gives gymnax's
pair). `make` stays as an alias of `env_spec`.
"""

from __future__ import annotations

import dataclasses

from cwm_jax.envs import docs, gymnasium_source

from cwm_jax.envs.acrobot import SPEC as ACROBOT
from cwm_jax.envs.cartpole import SPEC as CARTPOLE
from cwm_jax.envs.catch import SPEC as CATCH
from cwm_jax.envs.deep_sea import SPEC as DEEP_SEA
from cwm_jax.envs.discounting_chain import SPEC as DISCOUNTING_CHAIN
from cwm_jax.envs.mountain_car import SPEC as MOUNTAIN_CAR
from cwm_jax.envs.mountain_car_continuous import SPEC as MOUNTAIN_CAR_CONTINUOUS
from cwm_jax.envs.pendulum import SPEC as PENDULUM
from cwm_jax.envs.reacher import SPEC as REACHER
from cwm_jax.envs.spec import DESCRIPTION_LEVELS, EnvSpec, StepFn
from cwm_jax.envs.swimmer import SPEC as SWIMMER
from cwm_jax.envs.unknown import UNKNOWN_SPECS

# The default environments (textbook constants; their reference CWMs score 1.0).
SPECS: tuple[EnvSpec, ...] = tuple(
    dataclasses.replace(spec, docs_description=docs.DOCS[spec.name])
    for spec in (
        CARTPOLE,
        ACROBOT,
        MOUNTAIN_CAR,
        MOUNTAIN_CAR_CONTINUOUS,
        PENDULUM,
        CATCH,
        REACHER,
        SWIMMER,
        DEEP_SEA,
        DISCOUNTING_CHAIN,
    )
)

# Variants whose physical constants differ from the textbook ones ("gymnax/<Env>-unknown").
VARIANT_SPECS: tuple[EnvSpec, ...] = tuple(
    dataclasses.replace(spec, docs_description=docs.DOCS[spec.name.removesuffix("-unknown")])
    for spec in UNKNOWN_SPECS
)
ALL_SPECS: tuple[EnvSpec, ...] = SPECS + VARIANT_SPECS


class UnknownEnvError(KeyError):
    """An environment id that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def _index() -> dict[str, EnvSpec]:
    table = {}
    for spec in ALL_SPECS:
        for env_id in spec.ids:
            table[env_id.lower()] = spec
    return table


_BY_ID = _index()


def names() -> list[str]:
    """Canonical ids of every registered environment, e.g. 'gymnax/CartPole', variants included."""
    return [spec.id for spec in ALL_SPECS]


def env_spec(env_id: str | EnvSpec) -> EnvSpec:
    """Look up an environment's spec by any of its ids (case-insensitive).

    `gymnax/CartPole`, `CartPole` and `CartPole-v1` all name the same spec;
    `spec.id` is the canonical one. `gymnasium/<id>` is any installed
    gymnasium environment (`cwm_jax.envs.gymnasium_source`), made on first
    use. An EnvSpec is returned as it is.

    Raises:
      UnknownEnvError: listing the known ids; for `gymnasium/<id>`, why it
        cannot be made or which space the contract cannot hold.
    """
    if isinstance(env_id, EnvSpec):
        return env_id
    if str(env_id).strip().lower().startswith(gymnasium_source.PREFIX):
        try:
            return gymnasium_source.spec(str(env_id).strip())
        except gymnasium_source.SourceError as exc:
            raise UnknownEnvError(f"environment {env_id!r}: {exc}") from None
    spec = _BY_ID.get(str(env_id).strip().lower())
    if spec is None:
        raise UnknownEnvError(
            f"unknown environment {env_id!r}; known environments: {', '.join(names())}, "
            f"or gymnasium/<id> for an installed gymnasium environment"
        )
    return spec


# The older name, kept as an alias. Unlike `gymnax.make`, it returns an EnvSpec, not `(env, params)`.
make = env_spec


__all__ = ["ALL_SPECS", "DESCRIPTION_LEVELS", "EnvSpec", "SPECS", "StepFn", "UnknownEnvError", "VARIANT_SPECS",
           "env_spec", "make", "names"]
