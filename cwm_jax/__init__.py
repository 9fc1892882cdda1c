"""cwm-jax: Code World Models in JAX.

A CWM is the source of one module defining `step(state, action) ->
(next_state, reward, done)` in a restricted jax.numpy subset (see
`cwm_jax.validate.contract.rules_text()`). This package validates and loads CWMs,
knows the benchmark environments, records their transitions and scores CWMs
against them in one jitted, vmapped call.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cwm-jax")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

from cwm_jax.score.accuracy import (
    AccuracyReport,
    Counterexample,
    Tolerance,
    check,
    counterexamples,
    format_counterexamples,
)
from cwm_jax.validate.contract import contract_text, rules_text
from cwm_jax.data.transitions import Transitions, load_split
from cwm_jax.envs import EnvSpec, StepFn, UnknownEnvError, env_spec, make, names
from cwm_jax.errors import (
    CWMContractError,
    CWMError,
    CWMLoadError,
    CWMResourceError,
    CWMRuntimeError,
    CWMSyntaxError,
    CWMValidationError,
)
from cwm_jax.validate.loader import load_cwm, load_cwm_file, load_reference
from cwm_jax.planning import make_planner, planner_config
from cwm_jax.sandbox import Sandbox
from cwm_jax.sources import register
from cwm_jax.score.scoring import ScoreResult
from cwm_jax.validate.validator import validate



def __getattr__(name: str):
    # CWMEnv subclasses gymnax's Environment, and gymnax imports matplotlib and
    # seaborn (about 2 s): load it on first use, not on `import cwm_jax`.
    if name == "CWMEnv":
        from cwm_jax.gymnax_env import CWMEnv

        return CWMEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "AccuracyReport",
    "CWMContractError",
    "CWMEnv",
    "CWMError",
    "CWMLoadError",
    "CWMResourceError",
    "CWMRuntimeError",
    "CWMSyntaxError",
    "CWMValidationError",
    "Counterexample",
    "EnvSpec",
    "Sandbox",
    "ScoreResult",
    "StepFn",
    "Tolerance",
    "Transitions",
    "UnknownEnvError",
    "check",
    "contract_text",
    "counterexamples",
    "env_spec",
    "format_counterexamples",
    "load_cwm",
    "load_cwm_file",
    "load_reference",
    "load_split",
    "make",
    "make_planner",
    "names",
    "register",
    "planner_config",
    "rules_text",
    "validate",
]
