"""Resolving a `--model` or `--value` argument into something a planner or trainer can use.

`load_model` is the ONE place a model named on a command line is loaded
(plan, train, the benchmark's reference method).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cwm_jax.envs import EnvSpec, StepFn
from cwm_jax.errors import CWMError, UsageError

if TYPE_CHECKING:
    from cwm_jax.score.scoring import ScoreResult

__all__ = ["learned_value", "load_model", "non_finite_message", "sandboxed_step"]


def non_finite_message(count: int, total: int, split: str) -> str:
    """What `check` and `plan` say of a model that returns NaN or inf on some recorded transitions."""
    return (f"the model returns NaN or inf (next state or reward) on {count} of {total} {split} transitions; "
            "planning or training with it feeds those values to the planner")


def load_model(spec: EnvSpec, model: str, *, say: Callable[[str], None] = print,
               warn: Callable[[str], None] | None = None) -> tuple[StepFn, str]:
    """(step_fn, description) for `--model reference|oracle|PATH.py`.

    `reference`: the env's hand-written CWM; `oracle`: the true gymnax dynamics;
    anything else: a path to a CWM file. A file is untrusted: it is first
    validated, loaded and scored in the sandbox (a separate process with time
    and memory limits); only a program that passed there is loaded here. The
    file is read once, so the text loaded here is the text the sandbox
    checked. No Python of the program runs here: the worker exports the step
    it scored (StableHLO, `cwm_jax.sandbox.artifact`) and this process runs that
    artifact (`sandboxed_step`).
    A file whose step returns NaN or inf on recorded transitions is loaded
    with a warning (`warn`, default `say`).
    Raises UsageError for a name that is not a .py path, CWMError (clear
    message) for a missing, unreadable or rejected model file.
    """
    from cwm_jax.validate import loader

    if model == "reference":
        if not (spec.reference or spec.reference_source):
            raise UsageError(f"--model reference: {spec.id} has no reference CWM")
        where = f"cwm_jax/reference/{spec.reference}.py" if spec.reference else "its registered source"
        if spec.stochastic:  # trusted, hand-written or generated: loaded here, as `load_reference` does
            from cwm_jax import reference
            from cwm_jax.validate import chance

            return (chance.load_chance_cwm(reference.source(spec), spec, check_finite=False),
                    f"reference chance CWM of {spec.name} ({where})")
        return loader.load_reference(spec), f"reference CWM of {spec.name} ({where})"
    if model == "oracle" and spec.stochastic:
        from cwm_jax.chance_planning import oracle_chance_model

        truth = oracle_chance_model(spec)
        if truth is None:
            raise UsageError(f"--model oracle: no true chance model of {spec.id} is known")
        return truth, f"oracle: the true chance model of {spec.name}"
    if model == "oracle" and spec.source == "gymnasium":
        from cwm_jax.gymnasium_eval import oracle_model

        step, how = oracle_model(spec)
        if step is None:
            raise UsageError(f"--model oracle: {how}")
        return step, f"oracle: {how}"
    if model == "oracle" and spec.state_from_obs is None:
        raise UsageError(f"--model oracle: {spec.id} has no state_from_obs, so its true dynamics cannot be "
                         "stepped from an observation")
    if model == "oracle":
        return spec.oracle_step, f"oracle: the true gymnax dynamics of {spec.gymnax_id}"
    path = Path(model)
    if path.suffix != ".py":
        raise UsageError(f"--model must be 'reference', 'oracle' or a path to a .py file, got {model!r}")
    source = loader.read_cwm_file(path)
    say(f"checking {model} in the sandbox...")
    step, checked = sandboxed_step(source, spec)
    if step is None:
        raise CWMError(f"model {model} was rejected: {checked.error or 'no reason given'}")
    accuracy = checked.summary["accuracy"]
    if checked.summary.get("non_finite"):
        (warn or say)(non_finite_message(checked.summary["non_finite"], checked.summary["n_transitions"], "train"))
    return step, f"CWM file {model} (train accuracy {accuracy:.4f})"


def sandboxed_step(source: str, spec: EnvSpec) -> tuple[StepFn | None, ScoreResult]:
    """(step, result): `source` scored on train in the sandbox, and the artifact it scored, runnable here.

    `step` is None when the program was rejected (`result.error` says why),
    and a `ChanceModel` for a chance program (`chance_artifact.exported_chance`).
    It runs the StableHLO the worker exported and scored
    (`cwm_jax.sandbox.artifact.exported_step`): none of the program's Python runs in
    this process, so it cannot behave differently here than when scored.
    """
    from cwm_jax import sandbox
    from cwm_jax.sandbox import artifact, chance_artifact

    checked = sandbox.score_source(source, spec, counterexamples=0, export=True)
    if not checked.valid:
        return None, checked
    try:
        if chance_artifact.is_chance_artifact(checked.artifact):  # a chance program: its three functions
            return chance_artifact.exported_chance(checked.artifact, spec), checked
        return artifact.exported_step(artifact.decode(checked.artifact), spec), checked
    except ValueError as exc:
        return None, dataclasses.replace(checked, valid=False, error=str(exc), error_kind="load")


def learned_value(spec: EnvSpec, value: list[str] | None) -> dict[str, Any]:
    """`--value rollouts` -> {}; `--value learned PATH` -> value_fn and prior_fn of a `cwm-jax train --save` file."""
    if not value or value == ["rollouts"]:
        return {}
    if value[0] != "learned" or len(value) != 2:
        raise UsageError(f"--value must be 'rollouts' or 'learned PATH', got {' '.join(value)!r}")
    from planners import ppo

    try:
        network, params, header = ppo.load(value[1])
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if header.get("env") != spec.id or not network.discrete:
        raise UsageError(
            f"{value[1]} was trained for {header.get('env')}, not for {spec.id} with discrete actions"
        )
    return {
        "value_fn": ppo.make_value_fn(network, params, reward_scale=header["reward_scale"]),
        "prior_fn": ppo.make_prior_fn(network, params),
    }
