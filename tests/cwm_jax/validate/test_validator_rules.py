"""Validator decisions: what real models write is accepted where harmless, every problem is
reported at once, annotations are never evaluated, and the entry points run no module code."""

import ast
import re
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

from cwm_jax.validate import loader
from cwm_jax.validate import validator
from cwm_jax.errors import CWMContractError, CWMValidationError

ROOT = Path(__file__).resolve().parents[3]
HEAD = "import jax\nimport jax.numpy as jnp\n"
TAIL = "    return state, jnp.float32(1.0), jnp.bool_(False)\n"


def program(body: str, head: str = HEAD) -> str:
    return head + "\n\ndef step(state, action):\n" + body + TAIL


# -- what real models write: each case decided ---------------------------------------------

ACCEPTED = {
    "single_underscore_names": program("    _ = action\n    x = _helper(state)\n",
                                       HEAD + "\ndef _helper(s):\n    return s * 1.0\n"),
    "typing_imports_and_annotations": program(
        "    x: jax.Array = state\n",
        "from typing import Tuple\nimport typing\n" + HEAD
        + "\ndef helper(s: jnp.ndarray) -> Tuple[jnp.ndarray, typing.Optional[float]]:\n    return s, None\n"),
    "jnp_split": program("    x, v, t, w = jnp.split(state, 4)\n"),
    "dict_of_constants": program("    g = PARAMS['gravity'] * state\n",
                                 HEAD + "PARAMS = {'gravity': 9.8, 'masses': (1.0, 0.1), 'limit': 2 * 2.4}\n"),
    "utf8_bom": "\ufeff" + program(""),
    "array_constant_with_dtype": program("    y = A * state\n",
                                         "import math\n" + HEAD
                                         + "A = jnp.array([1.0, 2.0, 3.0, 4.0], dtype=jnp.float32)\n"
                                         "B = jnp.array([1, 2], 'int32')\nC = math.sqrt(2.0) * math.pi\n"),
    "annotated_constant": program("", HEAD + "DT: float = 0.02\n"),
    # Inside a function a dtype is an ordinary traced-time expression; only module level is literal.
    "dtype_of_an_array_in_step": program("    y = jnp.array([1.0, 2.0], dtype=state.dtype)\n"),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_harmless_habits_of_real_models_are_accepted(name):
    assert callable(loader.load_cwm(ACCEPTED[name], "CartPole", check_finite=False))


REJECTED = {
    # NamedTuple needs a class body that runs at load; the message says what to write instead.
    "named_tuple_state": (program("", "from typing import NamedTuple\n" + HEAD
                                  + "\nclass State(NamedTuple):\n    x: float\n"), "classes are not allowed"),
    "dunder_name": (program("    __x = state\n"), "double underscore"),
    "underscore_attribute": (program("    y = state._value\n"), "underscore"),
    "typing_name_in_code": (program("    y = Tuple\n", "from typing import Tuple\n" + HEAD), "only be used in type"),
    "dict_with_computed_key": (program("", HEAD + "P = {1.0: 2.0}\n"), "string keys"),
    "dtype_from_a_call": (program("", HEAD + "A = jnp.array([1.0], dtype=jnp.zeros(1).dtype)\n"), "dtype"),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_what_stays_rejected(name):
    source, fragment = REJECTED[name]
    with pytest.raises(CWMValidationError, match=fragment):
        validator.validate(source)


def test_every_static_problem_in_one_ordered_message():
    source = ("import os\n" + HEAD + "X = open('f')\n\ndef step(state, action):\n    y = eval('1')\n"
              "    for i in range(1000):\n        print(i)\n" + TAIL + "\ndef len(x):\n    return x\n")
    with pytest.raises(CWMValidationError) as info:
        validator.validate(source)
    error = info.value
    assert [p.line for p in error.problems] == [1, 4, 7, 8, 9, 12]
    text = str(error)
    assert text.startswith("line 1: ") and error.line == 1
    for fragment in ("`os`", "module-level", "eval", "range of 1000", "print", "builtin"):
        assert fragment in text, text
    assert text.index("eval") < text.index("range of 1000") < text.index("print")


def test_problem_list_is_capped():
    source = program("".join(f"    x{i} = eval('1')\n" for i in range(30)))
    with pytest.raises(CWMValidationError) as info:
        validator.validate(source)
    assert len(info.value.problems) == 10 and "and 20 more problems" in str(info.value)


def test_contract_problem_alone_keeps_its_kind():
    with pytest.raises(CWMContractError):
        validator.validate(HEAD + "X = 1.0\n")


def test_validation_runs_once_per_source(monkeypatch):
    source = program("    y = state * 3.0\n")
    calls = []
    real = validator._Validator.check_module
    monkeypatch.setattr(validator._Validator, "check_module", lambda self, tree: (calls.append(1), real(self, tree)))
    assert validator.validate(source) is validator.validate(source)
    with pytest.raises(CWMValidationError):
        validator.validate(source + "z = open('f')\n")
    with pytest.raises(CWMValidationError):
        validator.validate(source + "z = open('f')\n")
    assert len(calls) == 2


# -- annotations: never evaluated, deliberately ------------------------------------------------

ANNOTATED = "X: undefined_a = 1\n\ndef f(x: undefined_b) -> undefined_c:\n    y: undefined_d = x\n    return y\n"


def _exec_unvalidated(compile_cwm) -> dict:
    namespace = {"__builtins__": {}}
    exec(compile_cwm(ast.parse(ANNOTATED)), namespace)  # NameError if any annotation were evaluated
    return namespace


def test_loader_never_evaluates_annotations():
    assert _exec_unvalidated(loader.compile_cwm)["__annotations__"] == {"X": "undefined_a"}


def test_annotation_protection_does_not_rely_on_the_loaders_future_import():
    """A copy of loader.py without `from __future__ import annotations` must still postpone them."""
    text = (ROOT / "cwm_jax" / "validate" / "loader.py").read_text()
    assert "from __future__ import annotations\n" in text
    module = types.ModuleType("loader_without_future_import")
    exec(compile(text.replace("from __future__ import annotations\n", ""), "loader_copy", "exec", dont_inherit=True),
         module.__dict__)
    _exec_unvalidated(module.compile_cwm)


# -- the entry points that accept a file run nothing of a hostile program ----------------------

CANARY_PROGRAM = (HEAD + "X = jnp.array([1.0], dtype=jax.jit(lambda x: x + 1.0, "
                  "compiler_options={{'xla_dump_to': '{canary}'}})(1.0))\n\ndef step(state, action):\n" + TAIL)


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "cwm_jax", "check", "{model}", "--env", "CartPole"],
    [sys.executable, "experiments/plan.py", "--env", "gymnax/CartPole", "--model", "{model}", "--seeds", "1"],
], ids=["check", "plan"])
def test_entry_points_reject_a_canary_writer(command, tmp_path):
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="c") as watched:
        model = tmp_path / "model.py"
        model.write_text(CANARY_PROGRAM.format(canary=os.path.join(watched, "k")))
        proc = subprocess.run([part.format(model=model) for part in command], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
        assert os.listdir(watched) == [], "the program ran: something was created"
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "dtype must be written as jnp.float32" in proc.stderr, proc.stderr


# -- decisions pinned by surviving mutants (docs/testing.md, "Validator survivors") ------------

MUTANT_ACCEPTED = {
    # A module constant folds into a range() bound (define() must record numbers).
    "module_constant_as_range_bound": program("    for i in range(N):\n        state = state + i\n", HEAD + "N = 3\n"),
    "negative_module_constant": program("    y = state * X\n", HEAD + "X = -1.5\n"),
    "dtype_constructor_at_module_level": program("    y = state * X\n", HEAD + "X = jnp.float32(0.5)\n"),
    # About 60 levels of nesting is within the depth limit of 100.
    "nesting_of_sixty": program("    y = " + "-(" * 60 + "state" + ")" * 60 + "\n"),
    # `x` is a list in one function but unpacked from an array in another: not always a sequence.
    "name_that_is_a_list_elsewhere": program(
        "    x, v = jnp.split(state, 2)\n    y = x * 2.0\n",
        HEAD + "\ndef helper(s):\n    x = [s, s]\n    return jnp.stack(x)\n"),
}


@pytest.mark.parametrize("name", sorted(MUTANT_ACCEPTED))
def test_harmless_edge_cases_pass_the_validator(name):
    validator.validate(MUTANT_ACCEPTED[name])


MUTANT_REJECTED = {
    "range_with_four_arguments": (program("    for i in range(0, 2, 1, 5):\n        state = state + i\n"),
                                  r"must iterate over range\(N\)"),
    "range_without_arguments": (program("    for i in range():\n        state = state + i\n"),
                                r"must iterate over range\(N\)"),
    # The reason names why, not only that jax.random is outside the subset.
    "jax_random": (program("    k = jax.random.PRNGKey(0)\n"), "randomness is not allowed"),
    "lax_while_loop": (program("    x = jax.lax.while_loop(lambda c: c, lambda c: c, state)\n"), "may never end"),
    "long_string_annotation": (program("    x: '" + "a" * 100 + "' = state\n"), "annotations may only name types"),
    "number_annotation": (program("    x: 3 = state\n"), "annotations may only name types"),
}


@pytest.mark.parametrize("name", sorted(MUTANT_REJECTED))
def test_rejection_message_names_the_problem(name):
    source, fragment = MUTANT_REJECTED[name]
    with pytest.raises(CWMValidationError, match=fragment):
        validator.validate(source)


@pytest.mark.parametrize("signature, takes", [("state, action, *args", r"it takes 2 plus \*args$"),
                                              ("state", "it takes 1$")])
def test_step_signature_message_counts_arguments(signature, takes):
    with pytest.raises(CWMContractError) as info:
        validator.validate(f"import jax\n\ndef step({signature}):\n    return state, 1.0, False\n")
    assert re.search(takes, str(info.value).splitlines()[0]), str(info.value)
