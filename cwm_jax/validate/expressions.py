"""Checks of the expressions of a CWM: names, attributes, calls, operators, constants, comprehensions.

The statement and module checks in `cwm_jax.validate.validator` build on this class;
it holds the state both need (the imports seen, the names the program binds,
the constants and how deep loops unroll) and reports a broken rule by raising
the `CWMValidationError` that `fail` builds.
"""

from __future__ import annotations

import ast

from cwm_jax.validate import contract as C
from cwm_jax.validate import rules as R
from cwm_jax.errors import CWMValidationError
from cwm_jax.validate.constants import ConstantChecker, Folder, FoldLimit, module_path

__all__ = ["ExpressionChecker"]


class ExpressionChecker(ast.NodeVisitor):
    """Checks one expression at a time against the allow-list (`visit`); raises on the first broken rule."""

    def __init__(self, tree: ast.Module, lines: list[str]):
        self.lines = lines
        self.aliases: dict[str, str] = {}  # local name -> module path ("jnp" -> "jax.numpy")
        self.typing_names: set[str] = set()  # names imported from typing: annotations only
        self.imported = R.imported_names(tree)  # every name an import binds, known before the imports run
        self.constants = ConstantChecker(self.aliases, self.fail)
        self.folder = Folder(self.constants.numbers, self.aliases)
        self.bound = R.bound_names(tree)
        self.sequences = R.sequence_names(tree)
        self.function_depth = 0
        self.unroll = [1]  # product of enclosing range() sizes


    def fail(self, node: ast.AST | None, message: str) -> CWMValidationError:
        return R.fail(node, message, self.lines)

    def check_arguments(self, args: ast.arguments) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is None:
                continue
            self.check_binding(arg, arg.arg)
            if arg.annotation is not None:
                self.check_annotation(arg.annotation)
        for default in [*args.defaults, *args.kw_defaults]:
            if default is None:
                continue
            if self.function_depth:
                self.visit(default)  # evaluated while tracing, like any other expression
            else:
                self.constants.value(default)  # evaluated at load: must be a constant

    def check_annotation(self, node: ast.expr) -> None:
        reason = R.annotation_reason(node)
        if reason is not None:
            raise self.fail(node, reason)

    def range_count(self, node: ast.expr) -> int:
        """Iterations of `range(<constants>)`; anything else is rejected."""
        usage = (
            f"for loops must iterate over range(N) with a constant N <= {C.MAX_RANGE} "
            "(they are unrolled at trace time); for data-dependent loops use lax.fori_loop, "
            "for elementwise work use jnp operations"
        )
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"):
            raise self.fail(node, usage)
        if node.keywords or not 1 <= len(node.args) <= 3:
            raise self.fail(node, usage)
        if len(node.args) == 1 and R.is_static_length(node.args[0]):
            # range(len(state)) or range(x.shape[0]): as long as an array the
            # program already has; the loader's operation limit bounds the unrolling.
            self.visit(node.args[0])
            return 1
        values = [self.fold(arg) for arg in node.args]
        if any(not isinstance(v, int) for v in values):
            raise self.fail(node, usage)
        start, stop, step = (0, values[0], 1) if len(values) == 1 else (*values, 1)[:3]
        if step == 0:
            raise self.fail(node, "range() step must not be zero")
        count = max(0, (stop - start + step - (1 if step > 0 else -1)) // step)  # len(range(...)), any size
        if count > C.MAX_RANGE:
            raise self.fail(
                node,
                f"range of {count} iterations is too long (limit {C.MAX_RANGE}, the loop is unrolled); "
                "use vectorised jnp operations or lax.fori_loop",
            )
        return count

    def visit_Name(self, node: ast.Name) -> None:
        self.check_identifier(node, node.id)
        if node.id in self.typing_names:
            raise self.fail(node, f"`{node.id}` comes from typing and may only be used in type annotations")
        if node.id in self.bound or node.id in self.aliases:
            return
        if node.id in C.ALLOWED_BUILTINS:
            if node.id == "range":
                raise self.fail(node, "range() is only allowed as the iterable of a for loop or comprehension")
            return
        if node.id in R.DENIED_BUILTINS:
            raise self.fail(node, R.DENIED_BUILTINS[node.id])
        if node.id in ("np", "numpy"):
            raise self.fail(node, "numpy is not available; use jax.numpy (`import jax.numpy as jnp`)")
        raise self.fail(
            node,
            f"name `{node.id}` is not defined; allowed builtins are {', '.join(C.ALLOWED_BUILTINS)}",
        )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = module_path(node, self.aliases)
        if path is not None:
            self.check_identifier(node, node.attr)
            self.check_module_path(node, path)
            return
        self.visit(node.value)  # report the innermost problem first: `open(...)` before `.write`
        if node.attr.startswith("_"):
            raise self.fail(node, f"attribute `.{node.attr}`: attributes starting with an underscore are not "
                                  "allowed (they reach Python internals)")
        if node.attr not in C.ALLOWED_ARRAY_ATTRIBUTES:
            raise self.fail(
                node,
                f"attribute `.{node.attr}` is not allowed; array attributes that are allowed: "
                f"{', '.join(sorted(C.ALLOWED_ARRAY_ATTRIBUTES))}",
            )

    def check_module_path(self, node: ast.AST, path: str) -> None:
        reason = R.module_path_reason(path)
        if reason is not None:
            raise self.fail(node, reason)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Call):
            raise self.fail(node, "calling the result of a call (f(x)(y)) is not allowed; assign the function "
                                  "to a name first, or call it directly")
        if isinstance(node.func, ast.Name) and node.func.id == "range":
            raise self.fail(node, "range() is only allowed as the iterable of a for loop or comprehension")
        path = module_path(node.func, self.aliases)
        if path == "jax.lax.fori_loop":
            self.check_fori_bounds(node)
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.fail(node, "`**` unpacking in a call is not allowed; pass each argument by name")
            if keyword.arg in C.FORBIDDEN_KEYWORDS:
                raise self.fail(node, f"the keyword `{keyword.arg}=` is not allowed (it reaches the compiler or a "
                                      "device); remove it")
            self.check_identifier(keyword, keyword.arg)
        self.generic_visit(node)

    def check_fori_bounds(self, node: ast.Call) -> None:
        usage = (
            "lax.fori_loop(lower, upper, body, init) needs constant integer bounds with at most "
            f"{C.MAX_FORI_LOOP} iterations"
        )
        if len(node.args) < 2:
            raise self.fail(node, usage)
        lower, upper = self.fold(node.args[0]), self.fold(node.args[1])
        if not (isinstance(lower, int) and isinstance(upper, int)) or upper - lower > C.MAX_FORI_LOOP:
            raise self.fail(node, usage)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.check_binop(node, node.left, node.op, node.right)
        self.generic_visit(node)

    def check_binop(self, node: ast.AST, left: ast.expr, op: ast.operator, right: ast.expr) -> None:
        for side in (left, right):
            if self.is_sequence(side):
                raise self.fail(
                    node,
                    "arithmetic on lists, tuples or strings is not allowed (it can build huge "
                    "objects); use jnp.array, jnp.full, jnp.tile or jnp.concatenate",
                )
        left_value, right_value = self.fold(left), self.fold(right)
        if isinstance(op, ast.Mult):
            # `x * n` repeats x n times if x is a list or tuple: bound n by value.
            for factor, other in ((left_value, right_value), (right_value, left_value)):
                if isinstance(factor, int) and abs(factor) > C.MAX_REPEAT and other is None:
                    raise self.fail(node, f"an integer factor of {factor} (limit {C.MAX_REPEAT}) could repeat a "
                                          f"list or tuple into a huge object; write it as a float ({factor}.0)")
        if isinstance(node, ast.BinOp):
            self.fold(node)  # raises if constant arithmetic would blow up
        elif left_value is not None and right_value is not None:
            self.fold(ast.BinOp(left=left, op=op, right=right, lineno=node.lineno))

    def is_sequence(self, node: ast.expr) -> bool:
        if isinstance(node, (ast.List, ast.Tuple, ast.ListComp, ast.JoinedStr)):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            return True
        if isinstance(node, ast.Name):
            value = self.constants.values.get(node.id)
            return node.id in self.sequences or value is not None and value.kind in ("sequence", "dict")
        return False

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (bytes, type(...))):
            raise self.fail(node, "bytes and Ellipsis literals are not allowed")
        if isinstance(node.value, str) and len(node.value) > C.MAX_STRING:
            raise self.fail(node, f"string literals longer than {C.MAX_STRING} characters are not allowed")

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.function_depth += 1
        try:
            self.check_arguments(node.args)
            self.visit(node.body)
        finally:
            self.function_depth -= 1

    def visit_comprehension_node(self, node: ast.ListComp | ast.GeneratorExp) -> None:
        pushed = 0
        try:
            for generator in node.generators:
                if generator.is_async:
                    raise self.fail(node, "async comprehensions are not allowed")
                names = R.target_names(generator.target)
                if names is None:
                    raise self.fail(node, "comprehension targets must be names")
                for name in names:
                    self.check_binding(node, name)
                count = self.range_count(generator.iter)
                self.unroll.append(self.unroll[-1] * count)
                pushed += 1
                if self.unroll[-1] > C.MAX_UNROLLED:
                    raise self.fail(node, f"comprehension unrolls to {self.unroll[-1]} items (limit {C.MAX_UNROLLED})")
                for condition in generator.ifs:
                    self.visit(condition)
            self.visit(node.elt)
        finally:
            del self.unroll[len(self.unroll) - pushed:]

    visit_ListComp = visit_comprehension_node
    visit_GeneratorExp = visit_comprehension_node

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, R.ALLOWED_EXPRESSIONS):
            super().generic_visit(node)
            return
        raise self.fail(node, R.expression_reason(node))

    # -- helpers ------------------------------------------------------------------

    def check_identifier(self, node: ast.AST, name: str) -> None:
        """Single-underscore names are plain names; dunders reach Python internals."""
        if name.startswith("__"):
            raise self.fail(
                node,
                f"`{name}`: names starting with a double underscore are not allowed "
                "(they reach Python internals); rename it",
            )

    def check_binding(self, node: ast.AST, name: str, *, imported: bool = False) -> None:
        """A name the program binds: no dunder, no builtin, no imported module, no second `step`."""
        self.check_identifier(node, name)
        if name in C.ALLOWED_BUILTINS:
            raise self.fail(node, f"`{name}` is a Python builtin; rebinding it is not allowed, pick another name")
        if not imported and name in self.imported:
            raise self.fail(node, f"`{name}` names an import; rebinding it is not allowed, pick another name")

    def fold(self, node: ast.expr) -> object | None:
        """The value of a constant expression, None if it is not constant (each node folded once).

        Raises when constant arithmetic would take long or produce a huge
        number, so a program cannot stall tracing with `9 ** 9 ** 9`.
        """
        try:
            return self.folder.fold(node)
        except FoldLimit as exc:
            raise self.fail(node, str(exc)) from None
