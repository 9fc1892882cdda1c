"""Module-level constants: what a CWM may compute at load, checked without running it.

Module-level code runs when the program is loaded, outside every check that
applies to the traced `step`, so its values must be literal: numbers, tuples
and lists of numbers, dicts of them keyed by short strings, `math` constants
and functions, arithmetic, and `jnp.array([...])` whose dtype is only a
`jnp.<dtype>` name or a dtype string. `ConstantChecker.value` evaluates the
shape of each value (its kind and number of elements) so that the eager work
at load is bounded before anything runs, and `Folder` folds numeric constants
(each node once) for the loop bounds the validator needs.
"""

from __future__ import annotations

import ast
import dataclasses
import math

from cwm_jax.validate import contract as C

__all__ = ["INT_LIMIT_BITS", "ConstantChecker", "FoldLimit", "Folder", "Value", "fold_binop", "module_path"]

INT_LIMIT_BITS = 256  # constant folding refuses integers larger than this

_MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}
_JNP_CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan}
_MATH_FUNCTIONS = C.ALLOWED_MATH - set(_MATH_CONSTANTS)

_CONSTANT_USAGE = (
    "module-level values must be constants: numbers, tuples or lists of numbers, a dict of them "
    "with string keys, math.pi and math.* functions, arithmetic on constants defined above, or "
    "jnp.array([...], dtype=jnp.float32); compute anything else inside a function"
)


class FoldLimit(Exception):
    """Constant arithmetic would take long or build a huge number."""


def fold_binop(op: ast.operator, left: object, right: object) -> object | None:
    """`left <op> right` for two numbers; None when it is not a plain number."""
    # Every shift past the integer cap is refused, whatever the left operand (`1 << 2**33` is 1 GB);
    # a power of 0, 1 or -1 stays small however large the exponent.
    if isinstance(op, ast.LShift) and abs(right) > INT_LIMIT_BITS:
        raise FoldLimit(f"constant shift {right} is too large (limit {INT_LIMIT_BITS})")
    if isinstance(op, ast.Pow) and abs(right) > C.MAX_POW_EXPONENT and left not in (0, 1, -1):
        raise FoldLimit(f"constant exponent {right} is too large (limit {C.MAX_POW_EXPONENT})")
    try:
        if isinstance(op, ast.Add):
            value = left + right
        elif isinstance(op, ast.Sub):
            value = left - right
        elif isinstance(op, ast.Mult):
            value = left * right
        elif isinstance(op, ast.Div):
            value = left / right
        elif isinstance(op, ast.FloorDiv):
            value = left // right
        elif isinstance(op, ast.Mod):
            value = left % right
        elif isinstance(op, ast.Pow):
            value = left**right
        elif isinstance(op, ast.LShift) and isinstance(left, int) and isinstance(right, int) and right >= 0:
            value = left << right
        else:
            return None
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        return None
    return _checked_number(value)


def _checked_number(value: object) -> object | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and value.bit_length() > INT_LIMIT_BITS:
        raise FoldLimit(f"constant arithmetic produces a {value.bit_length()}-bit integer; use floats")
    return value


_FOLDED_BUILTINS = {"max": max, "min": min, "abs": abs}


class Folder:
    """Numeric values of constant expressions, each node folded once."""

    def __init__(self, constants: dict[str, object], aliases: dict[str, str]):
        self.constants = constants  # module-level name -> number
        self.aliases = aliases
        # Keyed by the node itself (identity), which the cache keeps alive: an id() of a
        # temporary node is reused once it is freed, and would return another node's value.
        self.cache: dict[ast.expr, object | None] = {}

    def fold(self, node: ast.expr) -> object | None:
        if node not in self.cache:
            self.cache[node] = self._fold(node)
        return self.cache[node]

    def _fold(self, node: ast.expr) -> object | None:
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, (int, float)) and not isinstance(node.value, bool) else None
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = self.aliases.get(node.value.id)
            table = _MATH_CONSTANTS if module == "math" else _JNP_CONSTANTS if module == "jax.numpy" else {}
            return table.get(node.attr)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.fold(node.operand)
            if value is None:
                return None
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = self.fold(node.left), self.fold(node.right)
            if left is None or right is None:
                return None
            return fold_binop(node.op, left, right)
        if isinstance(node, ast.Call):
            return self._fold_builtin(node)
        return None

    def _fold_builtin(self, node: ast.Call) -> object | None:
        """`max`, `min` (of two or more) and `abs` of constants; the validator forbids reusing their names."""
        if not (isinstance(node.func, ast.Name) and node.func.id in _FOLDED_BUILTINS) or node.keywords:
            return None
        values = [self.fold(arg) for arg in node.args]
        if any(value is None for value in values):
            return None
        if node.func.id == "abs":
            return abs(values[0]) if len(values) == 1 else None
        return _FOLDED_BUILTINS[node.func.id](values) if len(values) >= 2 else None


@dataclasses.dataclass(frozen=True)
class Value:
    """What a module-level expression evaluates to, known before it runs."""

    kind: str  # "number", "sequence" (tuple/list of numbers), "array", "dict" or "dtype"
    elements: int = 1  # numbers it holds
    number: object = None  # the value of a "number"


class ConstantChecker:
    """Checks module-level values and tracks what each constant name holds."""

    def __init__(self, aliases: dict[str, str], fail):
        self.aliases = aliases
        self.fail = fail  # (node, message) -> CWMValidationError
        self.values: dict[str, Value] = {}
        self.numbers: dict[str, object] = {}  # what Folder sees
        self.elements = 0
        self.array_ops = 0

    def define(self, name: str, value: Value) -> None:
        self.values[name] = value
        if value.kind == "number" and value.number is not None:
            self.numbers[name] = value.number
        else:
            self.numbers.pop(name, None)

    def value(self, node: ast.expr) -> Value:
        """The Value of a module-level expression; raises CWMValidationError if not constant."""
        value = self._value(node)
        if value.kind in ("sequence", "array", "dict"):
            self.elements += value.elements
            if self.elements > C.MAX_MODULE_ELEMENTS:
                raise self.fail(node, f"module-level constants hold more than {C.MAX_MODULE_ELEMENTS} numbers; "
                                      "a CWM needs a few physical constants")
        return value

    def _value(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float)) and not isinstance(node.value, (bool, complex)):
                return Value("number", number=self._number(node, node.value))
            if isinstance(node.value, bool):
                return Value("number", number=int(node.value))
            raise self.fail(node, _CONSTANT_USAGE)
        if isinstance(node, ast.Name):
            if node.id not in self.values:
                raise self.fail(node, f"`{node.id}` is not a constant defined above; {_CONSTANT_USAGE}")
            return self.values[node.id]
        if isinstance(node, (ast.Tuple, ast.List)):
            return self._sequence(node)
        if isinstance(node, ast.Dict):
            return self._dict(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
            operand = self._value(node.operand)
            if operand.kind == "number":
                number = operand.number
                if isinstance(node.op, ast.Invert):
                    if not isinstance(number, int):
                        raise self.fail(node, "`~` needs an integer constant")
                    return Value("number", number=~number)
                return Value("number", number=-number if isinstance(node.op, ast.USub) else number)
            if operand.kind == "array":
                return self._array_op(node, operand.elements)
            raise self.fail(node, _CONSTANT_USAGE)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self.fail(node, _CONSTANT_USAGE)

    def _number(self, node: ast.AST, value: object) -> object:
        try:
            checked = _checked_number(value)
        except FoldLimit as exc:
            raise self.fail(node, str(exc)) from None
        return checked

    def _sequence(self, node: ast.Tuple | ast.List) -> Value:
        elements = 0
        for element in node.elts:
            value = self._value(element)
            if value.kind not in ("number", "sequence", "array"):
                raise self.fail(element, "tuples and lists at module level may only hold numbers")
            elements += value.elements
        return Value("sequence", elements=max(elements, 1))

    def _dict(self, node: ast.Dict) -> Value:
        elements = 0
        for key, item in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and len(key.value) <= C.MAX_STRING):
                raise self.fail(item if key is None else key,
                                "module-level dicts may only map short string keys to numbers")
            value = self._value(item)
            if value.kind == "dict":
                raise self.fail(item, "module-level dicts may only map short string keys to numbers")
            elements += value.elements
        return Value("dict", elements=max(elements, 1))

    def _binop(self, node: ast.BinOp) -> Value:
        left, right = self._value(node.left), self._value(node.right)
        if "sequence" in (left.kind, right.kind) or "dict" in (left.kind, right.kind):
            raise self.fail(
                node,
                "arithmetic on tuples, lists or dicts is not allowed (`(0.0,) * n` builds a huge object); "
                "write the values out, or use jnp.full / jnp.tile inside a function",
            )
        if "dtype" in (left.kind, right.kind):
            raise self.fail(node, _CONSTANT_USAGE)
        if isinstance(node.op, ast.MatMult):
            raise self.fail(node, "matrix products are not allowed at module level; compute them inside `step`")
        if left.kind == right.kind == "number":
            try:
                number = fold_binop(node.op, left.number, right.number)
            except FoldLimit as exc:
                raise self.fail(node, str(exc)) from None
            if number is None:
                raise self.fail(node, "this constant arithmetic has no numeric value (division by zero, "
                                      "an overflow, or an operator that needs integers)")
            return Value("number", number=number)
        return self._array_op(node, max(left.elements, right.elements))

    def _array_op(self, node: ast.AST, elements: int) -> Value:
        self.array_ops += 1
        if self.array_ops > C.MAX_MODULE_ARRAY_OPS:
            raise self.fail(node, f"module-level constants do more than {C.MAX_MODULE_ARRAY_OPS} array operations "
                                  "at load; compute them inside `step` (JAX folds constants when it compiles)")
        return Value("array", elements=elements)

    def _attribute(self, node: ast.Attribute) -> Value:
        path = module_path(node, self.aliases)
        if path is not None:
            module, _, name = path.rpartition(".")
            if module == "math" and name in _MATH_CONSTANTS:
                return Value("number", number=_MATH_CONSTANTS[name])
            if module == "jax.numpy" and name in _JNP_CONSTANTS:
                return Value("number", number=_JNP_CONSTANTS[name])
            if module == "jax.numpy" and name in C.DTYPE_NAMES:
                return Value("dtype")
        raise self.fail(node, _CONSTANT_USAGE)

    def _call(self, node: ast.Call) -> Value:
        path = module_path(node.func, self.aliases)
        module, _, name = (path or "").rpartition(".")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.fail(node, "`*` unpacking is not allowed in module-level constants")
        if module == "math" and name in _MATH_FUNCTIONS and not node.keywords:
            args = [self._value(arg) for arg in node.args]
            if any(arg.kind != "number" for arg in args):
                raise self.fail(node, f"math.{name} takes numbers; use jnp.{name} inside a function for arrays")
            try:
                result = getattr(math, name)(*(arg.number for arg in args))
            except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
                raise self.fail(node, f"math.{name} fails on these constants: {exc}") from None
            return Value("number", number=self._number(node, int(result) if isinstance(result, bool) else result))
        if module == "jax.numpy" and name in C.MODULE_LEVEL_JNP_ARRAY:
            return self._array_call(node, name)
        if module == "jax.numpy" and (name in C.DTYPE_NAMES or name in C.MODULE_LEVEL_JNP_ELEMENTWISE):
            if len(node.args) != 1 or node.keywords:
                raise self.fail(node, f"jnp.{name}(...) at module level takes one number or list of numbers")
            value = self._value(node.args[0])
            if value.kind not in ("number", "sequence", "array"):
                raise self.fail(node, _CONSTANT_USAGE)
            return self._array_op(node, value.elements)
        raise self.fail(
            node,
            "module-level constants may only call math functions, jnp.array/jnp.asarray of numbers, "
            "jnp.float32-style constructors and jnp.sqrt/deg2rad/radians; compute other values inside a function",
        )

    def _array_call(self, node: ast.Call, name: str) -> Value:
        usage = f"jnp.{name} at module level takes numbers and an optional dtype such as jnp.float32 or 'float32'"
        if not 1 <= len(node.args) <= 2:
            raise self.fail(node, usage)
        dtypes = node.args[1:] + [k.value for k in node.keywords if k.arg == "dtype"]
        if any(k.arg != "dtype" for k in node.keywords) or len(dtypes) > 1:
            raise self.fail(node, usage)
        for dtype in dtypes:
            self.check_dtype(dtype)
        value = self._value(node.args[0])
        if value.kind not in ("number", "sequence", "array"):
            raise self.fail(node, usage)
        return self._array_op(node, value.elements)

    def check_dtype(self, node: ast.expr) -> None:
        """A dtype is only `jnp.<dtype>` or a short dtype string such as 'float32'."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in C.DTYPE_NAMES | {
            "float", "int", "bool"
        }:
            return
        path = module_path(node, self.aliases)
        if path is not None and path.rpartition(".")[0] == "jax.numpy" and path.rpartition(".")[2] in C.DTYPE_NAMES:
            return
        if isinstance(node, ast.Name) and self.values.get(node.id, Value("number")).kind == "dtype":
            return
        raise self.fail(node, "a dtype must be written as jnp.float32 (or another jnp dtype name) or a string "
                              "such as 'float32'")


def module_path(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """'jax.numpy.where' for `jnp.where` etc.; None if not rooted at an import."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])
