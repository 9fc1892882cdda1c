"""The constants of a CWM: found and written back on the AST, and the program rebuilt on parameters.

Finding and writing back are static (nothing of the program runs).
`parametrised_code`, `step_factory` and `traceable` execute the program:
sandbox workers only (see `cwm_jax.fit.fitting`).
"""

from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from cwm_jax.validate import loader
from cwm_jax.validate.text import source_lines, strip_bom

__all__ = [
    "MATH_CONSTANTS",
    "PARAMS_NAME",
    "Constant",
    "find_constants",
    "format_value",
    "non_finite_constants",
    "parametrised_code",
    "step_factory",
    "traceable",
    "write_back",
]

PARAMS_NAME = "__fit_params__"  # a name no CWM can use (the validator forbids leading underscores)
MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


@dataclasses.dataclass(frozen=True)
class Constant:
    """A module-level numeric constant of a CWM.

    Attributes:
      name: the assigned name.
      value: its value (expressions of literals evaluated).
      is_int: written with integer literals only (searched on integers).
      span: (lineno, col_offset, end_lineno, end_col_offset) of the value
        expression in the source (UTF-8 byte columns, as `ast` gives them).
    """

    name: str
    value: float
    is_int: bool
    span: tuple[int, int, int, int]


# -- finding and writing back constants (static: nothing of the program runs) --


def _literal(node: ast.AST) -> tuple[float, bool] | None:
    """(value, all_int) of an expression made of numeric literals and math.pi/e/tau, else None."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value), isinstance(node.value, int)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math":
        return (MATH_CONSTANTS[node.attr], False) if node.attr in MATH_CONSTANTS else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _literal(node.operand)
        return None if inner is None else ((-inner[0] if isinstance(node.op, ast.USub) else inner[0]), inner[1])
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
        left, right = _literal(node.left), _literal(node.right)
        if left is None or right is None:
            return None
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b}
        try:
            value = ops[type(node.op)](left[0], right[0])
        except (ZeroDivisionError, OverflowError):
            return None
        if not isinstance(value, float) or not math.isfinite(value):
            return None
        return value, left[1] and right[1] and not isinstance(node.op, ast.Div) and value == int(value)
    return None


def find_constants(tree: ast.Module) -> list[Constant]:
    """The module-level numeric constants of a validated CWM, in source order.

    Names bound more than once at module level are left out (which value
    would be fitted is ambiguous).
    """
    bound: dict[str, int] = {}
    for stmt in tree.body:
        for node in ast.walk(stmt) if not isinstance(stmt, ast.FunctionDef) else [stmt]:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound[node.id] = bound.get(node.id, 0) + 1
            elif isinstance(node, (ast.FunctionDef, ast.alias)):
                name = node.name if isinstance(node, ast.FunctionDef) else (node.asname or node.name)
                bound[name] = bound.get(name, 0) + 1
    found = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and stmt.simple:
            target, value = stmt.target, stmt.value
        else:
            continue
        if not isinstance(target, ast.Name) or bound.get(target.id) != 1:
            continue
        literal = _literal(value)
        if literal is None:
            continue
        span = (value.lineno, value.col_offset, value.end_lineno, value.end_col_offset)
        found.append(Constant(target.id, literal[0], literal[1], span))
    return found


def non_finite_constants(tree: ast.Module) -> list[tuple[str, str]]:
    """(name, value text) of module-level constants written with `math.nan` or `math.inf`.

    `find_constants` leaves them out (no gradient starts from NaN); the fit
    names them so that `G = math.nan` is not reported as "no constants".
    (The validator rejects other ways to write them, e.g. `float("nan")`.)
    """
    found = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            if any(isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math"
                   and node.attr in ("nan", "inf") for node in ast.walk(stmt.value)):
                found.append((stmt.targets[0].id, ast.unparse(stmt.value)))
    return found


def format_value(value: float, is_int: bool = False) -> str:
    """Shortest source text that reads back as the same float32 value (an int literal for integers)."""
    if is_int and float(value) == int(value):
        return str(int(value))
    v32 = np.float32(value)
    for text in (np.format_float_positional(v32, unique=True, trim="0"),
                 np.format_float_scientific(v32, unique=True, trim="0")):
        if np.float32(float(text)) == v32 and len(text) <= 24:
            return text
    return repr(float(v32))


def write_back(source: str, constants: Sequence[Constant], values: dict[str, float]) -> str:
    """`source` with the value expression of each constant named in `values` replaced."""
    bom = source[: len(source) - len(strip_bom(source))]  # the parser's columns start after it
    lines = source_lines(strip_bom(source), keepends=True)
    by_name = {c.name: c for c in constants}
    for name in sorted(values, key=lambda n: by_name[n].span, reverse=True):
        c = by_name[name]
        line0, col0, line1, col1 = c.span
        first, last = lines[line0 - 1].encode(), lines[line1 - 1].encode()
        text = format_value(values[name], c.is_int).encode()
        lines[line0 - 1: line1] = [(first[:col0] + text + last[col1:]).decode()]
    return bom + "".join(lines)


# -- the parametrised program (executes it: sandbox only) ----------------------


def parametrised_code(tree: ast.Module, constants: Sequence[Constant]):
    """Module code where constant i reads `__fit_params__[i]` instead of its literal."""
    index = {c.name: i for i, c in enumerate(constants)}
    body = []
    for stmt in tree.body:
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else getattr(stmt, "target", None)
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(target, ast.Name) and target.id in index:
            read = ast.Subscript(ast.Name(PARAMS_NAME, ast.Load()), ast.Constant(index[target.id]), ast.Load())
            stmt = ast.Assign([ast.Name(target.id, ast.Store())], read)
        body.append(stmt)
    module = ast.fix_missing_locations(ast.copy_location(ast.Module(body, []), tree))
    return compile(module, loader.FILENAME, "exec")


def step_factory(code) -> Callable:
    """params float32 [P] -> step, by executing the module body on them (restricted namespace)."""
    import jax.numpy as jnp

    def make_step(params):
        namespace = loader.restricted_namespace()
        namespace[PARAMS_NAME] = params
        exec(code, namespace)  # noqa: S102 - validated program, restricted namespace, sandbox worker
        user_step = namespace["step"]

        def step(state, action):
            next_state, reward, done = user_step(state, action)
            return (jnp.asarray(next_state, jnp.float32), jnp.asarray(reward, jnp.float32),
                    jnp.asarray(done, jnp.bool_))

        return step

    return make_step


def traceable(tree, constants, spec) -> list[Constant]:
    """The constants that can be traced as float32 parameters (not used as shapes, loop bounds, ...)."""
    import jax
    import jax.numpy as jnp

    def traces(subset) -> bool:
        make_step = step_factory(parametrised_code(tree, subset))
        params = jax.ShapeDtypeStruct((len(subset),), jnp.float32)
        try:
            jax.eval_shape(lambda p, s, a: make_step(p)(s, a), params, spec.state_struct(), spec.action_struct())
            return True
        except Exception:  # noqa: BLE001 - any failure means "not as a parameter"
            return False

    if traces(constants):
        return list(constants)
    return [c for c in constants if traces([c])]
