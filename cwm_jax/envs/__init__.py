"""The environment registry: `env_spec("gymnax/CartPole")` -> EnvSpec.

The lookup is not called `make`: `gymnax.make(id)` returns `(env, params)`,
while this returns the framework's spec (`spec.make_gymnax()` gives gymnax's
pair). `make` stays as an alias of `env_spec`.
"""

from __future__ import annotations

import dataclasses

from cwm_jax.envs import docs

from cwm_jax.envs.acrobot import SPEC as ACROBOT
from cwm_jax.envs.cartpole import SPEC as CARTPOLE
from cwm_jax.envs.catch import SPEC as CATCH
from cwm_jax.envs.deep_sea import SPEC as DEEP_SEA
from cwm_jax.envs.discounting_chain import SPEC as DISCOUNTING_CHAIN
from cwm_jax.envs.mountain_car import SPEC as MOUNTAIN_CAR
from cwm_jax.envs.mountain_car_continuous import SPEC as MOUNTAIN_CAR_CONTINUOUS
from cwm_jax.envs.pendulum import SPEC as PENDULUM
from cwm_jax.envs.reacher import SPEC as REACHER
from cwm_jax.envs.slippery_grid import SPEC as SLIPPERY_GRID
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
# Environments with chance (docs/chance.md): their CWMs follow the chance contract, scored by likelihood.
STOCHASTIC_SPECS: tuple[EnvSpec, ...] = (SLIPPERY_GRID,)
ALL_SPECS: tuple[EnvSpec, ...] = SPECS + VARIANT_SPECS + STOCHASTIC_SPECS


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
    `spec.id` is the canonical one. An EnvSpec is returned as it is.

    Raises:
      UnknownEnvError: listing the known ids.
    """
    if isinstance(env_id, EnvSpec):
        return env_id
    spec = _BY_ID.get(str(env_id).strip().lower()) or _pattern_spec(str(env_id))
    if spec is None:
        raise UnknownEnvError(
            f"unknown environment {env_id!r}; known environments: {', '.join(names())}, "
            "gymnax/Novel-Physics-<seed>, gymnax/Novel-Grid-<seed>, gymnasium/<any installed gymnasium id>"
        )
    return spec


def _pattern_spec(env_id: str) -> EnvSpec | None:
    """The pattern hook: ids that name a family of environments (generated worlds, gymnasium's)."""
    from cwm_jax.envs import gymnasium_source, novel  # lazily: only needed when one is asked for

    return novel.spec_for(env_id) or gymnasium_source.spec_for(env_id.strip(), twin_of=_gymnax_twin)


def _gymnax_twin(gym_id: str) -> EnvSpec | None:
    """The registered gymnax spec answering to gymnasium's id `gym_id` (not a variant), if any."""
    spec = _BY_ID.get(gym_id.lower())
    return spec if spec is not None and spec.gymnax_id == gym_id and not spec.gymnax_params else None


# The older name, kept as an alias. Unlike `gymnax.make`, it returns an EnvSpec, not `(env, params)`.
make = env_spec


__all__ = ["ALL_SPECS", "DESCRIPTION_LEVELS", "EnvSpec", "SPECS", "STOCHASTIC_SPECS", "StepFn", "UnknownEnvError",
           "VARIANT_SPECS",
           "env_spec", "make", "names"]
