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
from cwm_jax.errors import UsageError
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


# Environments and datasets registered in this process (`register`), by lower-case id.
_REGISTERED: dict[str, EnvSpec] = {}


def names() -> list[str]:
    """Canonical ids of every registered environment, e.g. 'gymnax/CartPole', variants included."""
    return [spec.id for spec in ALL_SPECS] + [spec.id for spec in _REGISTERED.values()]


def is_registered(spec: EnvSpec) -> bool:
    """Whether `spec` came from `register` (a dataset or a user's environment), not the built-in registry."""
    return spec.id.lower() in _REGISTERED


def register(spec: EnvSpec, *, overwrite: bool = False) -> EnvSpec:
    """Adds `spec` to this process's registry under `spec.id`, so every command and function finds it.

    `cwm_jax.register` builds the spec from a gymnax environment or a dataset
    file and calls this. A sandbox worker finds the spec through the cached
    transitions the main process records for it (`cwm_jax.envs.recorded`).

    Raises:
      UsageError: `spec.id` names a built-in environment, or one already
        registered (unless `overwrite`), or its source is not gymnax or data.
    """
    if spec.source not in ("gymnax", "data"):
        raise UsageError(f"register: source must be 'gymnax' or 'data', got {spec.source!r} "
                         "(gymnasium environments need no registration: use gymnasium/<id>)")
    key = spec.id.lower()
    if key in _BY_ID:
        raise UsageError(f"register: {spec.id} is a built-in environment; choose another name")
    if key in _REGISTERED and not overwrite:
        raise UsageError(f"register: {spec.id} is already registered; pass overwrite=True to replace it")
    _REGISTERED[key] = spec
    return spec


def env_spec(env_id: str | EnvSpec) -> EnvSpec:
    """Look up an environment's spec by any of its ids (case-insensitive).

    `gymnax/CartPole`, `CartPole` and `CartPole-v1` all name the same spec;
    `spec.id` is the canonical one. An EnvSpec is returned as it is.

    Raises:
      UnknownEnvError: listing the known ids.
    """
    if isinstance(env_id, EnvSpec):
        return env_id
    key = str(env_id).strip().lower()
    spec = _BY_ID.get(key) or _REGISTERED.get(key) or _pattern_spec(str(env_id))
    if spec is None:
        raise UnknownEnvError(
            f"unknown environment {env_id!r}; known environments: {', '.join(names())}, "
            "gymnax/Novel-Physics-<seed>, gymnax/Novel-Grid-<seed>, gymnasium/<any installed gymnasium id>, "
            "or a dataset (--data PATH)"
        )
    return spec


def _pattern_spec(env_id: str) -> EnvSpec | None:
    """The pattern hook: ids that name a family of environments (generated worlds, gymnasium's)."""
    from cwm_jax.envs import gymnasium_source, novel, recorded  # lazily: only needed when one is asked for

    return (novel.spec_for(env_id) or gymnasium_source.spec_for(env_id.strip(), twin_of=gymnax_twin)
            or recorded.spec_for(env_id))


def gymnax_twin(gym_id: str) -> EnvSpec | None:
    """The registered gymnax spec answering to gymnasium's id `gym_id` (not a variant), if any."""
    spec = _BY_ID.get(gym_id.lower())
    return spec if spec is not None and spec.gymnax_id == gym_id and not spec.gymnax_params else None


def unregister(env_id: str) -> None:
    """Removes an environment added by `register` (KeyError naming it if there is none)."""
    if _REGISTERED.pop(str(env_id).strip().lower(), None) is None:
        raise UnknownEnvError(f"{env_id!r} is not a registered environment (built-ins cannot be removed)")


# The older name, kept as an alias. Unlike `gymnax.make`, it returns an EnvSpec, not `(env, params)`.
make = env_spec


__all__ = ["ALL_SPECS", "DESCRIPTION_LEVELS", "EnvSpec", "SPECS", "STOCHASTIC_SPECS", "StepFn", "UnknownEnvError",
           "VARIANT_SPECS",
           "env_spec", "gymnax_twin", "is_registered", "register", "unregister", "make", "names"]
