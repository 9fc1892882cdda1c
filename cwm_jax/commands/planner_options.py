"""The planner options of `cwm-jax plan` and `cwm-jax bench`, read from the registry (`cwm_jax.planning.PLANNERS`).

Each registry `Option` becomes one flag (`--simulations` sets
`MCTSConfig.num_simulations`); the errors here name flags, the library's name
config fields.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import Any

from cwm_jax.errors import UsageError
from cwm_jax.planning import PLANNERS, Option, config_from_options, planner_for

__all__ = ["OPTIONS", "add_planner_arguments", "check_options", "config_from_args", "flag", "given_options"]

# Every planner's options, once each (the discount is shared), in registry order.
OPTIONS: dict[str, Option] = {o.name: o for planner in PLANNERS.values() for o in planner.options}


def flag(name: str) -> str:
    """--rollout-depth for rollout_depth."""
    return "--" + name.replace("_", "-")


def add_planner_arguments(parser: argparse.ArgumentParser, *, planner: bool = True) -> None:
    """`--planner` (if `planner`) and one flag per registry option; every default is "not given" (None)."""
    if planner:
        parser.add_argument("--planner", choices=list(PLANNERS),
                            help="default: " + ", ".join(f"{p.name} ({'discrete' if p.discrete else 'continuous'})"
                                                          for p in PLANNERS.values()))
    for option in OPTIONS.values():
        if option.type is bool:
            parser.add_argument(flag(option.name), action="store_const", const=True, help=option.help)
        else:
            parser.add_argument(flag(option.name), type=option.type, choices=option.choices, help=option.help)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The planner options given on the command line (by option name)."""
    return {name: getattr(args, name) for name in OPTIONS if getattr(args, name, None) is not None}


def check_options(options: Mapping[str, Any]) -> None:
    """UsageError naming the flag of an option out of its range."""
    for name, value in options.items():
        minimum = OPTIONS[name].minimum
        if minimum is not None and value < minimum:
            raise UsageError(f"{flag(name)} must be positive, got {value}")
    discount = options.get("discount")
    if discount is not None and not 0.0 < discount <= 1.0:
        raise UsageError(f"--discount must be in (0, 1], got {discount}")


def config_from_args(spec, args: argparse.Namespace):
    """The planner config `cwm-jax plan` asks for; UsageError for an option the chosen planner does not read."""
    options = given_options(args)
    check_options(options)
    try:
        entry = planner_for(spec, args.planner)
    except ValueError:
        kind, other_kind = ("discrete", "continuous") if spec.discrete else ("continuous", "discrete")
        raise UsageError(f"{spec.name} has {kind} actions: use --planner {planner_for(spec).name} "
                         f"({args.planner} plans with {other_kind} actions)") from None
    own = {o.name for o in entry.options}
    other = [name for name in options if name not in own]
    if other:
        owner = next(p.label for p in PLANNERS.values() if other[0] in {o.name for o in p.options})
        raise UsageError(f"{flag(other[0])} is a {owner} option; {spec.name} plans with {entry.label}")
    try:
        return config_from_options(spec, options, entry.name)
    except ValueError as exc:  # the config class's own checks (num_elites <= num_samples), fields named as flags
        message = str(exc)
        for option in sorted(entry.options, key=lambda o: -len(o.field)):
            message = re.sub(rf"\b{option.field}\b", flag(option.name), message)
        raise UsageError(message) from None
