"""Static allow-list validator for CWM source text.

Nothing of the program runs here: it is parsed and every node is checked
against the rules in `cwm_jax.contract`. Anything not explicitly allowed is
rejected with a `CWMValidationError` naming the line, the problem and what to
write instead. Rules that need values (a Python `if` on a traced array, output
shapes) are checked later by the loader, while tracing.
"""

from __future__ import annotations

import ast
import math

from cwm_jax import contract as C
from cwm_jax.errors import CWMContractError, CWMSyntaxError, CWMValidationError

MAX_SOURCE_CHARS = 100_000

# Builtins that do exist in Python but never in a CWM, with the reason shown.
_DENIED_BUILTINS = {
    "open": "file I/O is not allowed; a CWM only computes from (state, action)",
    "eval": "eval is not allowed; write the expression directly",
    "exec": "exec is not allowed; write the code directly",
    "compile": "compile is not allowed",
    "getattr": "getattr is not allowed; use plain attribute access such as jnp.where",
    "setattr": "setattr is not allowed; CWMs do not mutate objects",
    "delattr": "delattr is not allowed",
    "hasattr": "hasattr is not allowed",
    "globals": "globals() is not allowed",
    "locals": "locals() is not allowed",
    "vars": "vars() is not allowed",
    "dir": "dir() is not allowed",
    "type": "type() is not allowed; use x.dtype or x.shape",
    "isinstance": "isinstance() is not allowed; inputs always have the contract's types",
    "print": "print is not allowed (no side effects); remove it",
    "input": "input() is not allowed",
    "breakpoint": "breakpoint() is not allowed",
    "help": "help() is not allowed",
    "object": "object is not allowed",
    "super": "super is not allowed (no classes)",
    "memoryview": "memoryview is not allowed",
    "id": "id() is not allowed",
    "iter": "iter() is not allowed; use a for loop over range(N)",
    "next": "next() is not allowed; use a for loop over range(N)",
    "map": "map() is not allowed; use jnp operations on arrays or a for loop over range(N)",
    "filter": "filter() is not allowed; use jnp.where",
    "exit": "exit() is not allowed",
    "quit": "quit() is not allowed",
}

_MODULE_ROOTS = {"jax": "jax", "math": "math"}
_INT_LIMIT_BITS = 256  # constant folding refuses integers larger than this


def _fail(node: ast.AST | None, message: str, lines: list[str]) -> CWMValidationError:
    line = getattr(node, "lineno", None)
    source_line = lines[line - 1] if line and line <= len(lines) else None
    return CWMValidationError(message, line=line, source_line=source_line)


class _Validator(ast.NodeVisitor):
    """One pass over the tree; raises on the first broken rule."""

    def __init__(self, tree: ast.Module, lines: list[str]):
        self.lines = lines
        self.aliases: dict[str, str] = {}  # local name -> module path ("jnp" -> "jax.numpy")
        self.constants: dict[str, object] = {}  # module-level constant values that fold
        self.bound = _bound_names(tree)
        self.function_depth = 0
        self.unroll = [1]  # product of enclosing range() sizes

    def fail(self, node: ast.AST | None, message: str) -> CWMValidationError:
        return _fail(node, message, self.lines)

    # -- module level ---------------------------------------------------------

    def check_module(self, tree: ast.Module) -> None:
        for index, stmt in enumerate(tree.body):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.check_import(stmt)
            elif isinstance(stmt, ast.FunctionDef):
                self.visit(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                self.check_constant_definition(stmt)
            elif isinstance(stmt, ast.Expr) and _is_docstring(stmt) and index == 0:
                continue
            elif isinstance(stmt, ast.Pass):
                continue
            elif _is_main_guard(stmt):
                raise self.fail(
                    stmt,
                    'remove the `if __name__ == "__main__":` block: a CWM is only the module with '
                    "`step`, no usage example or test code",
                )
            else:
                raise self.fail(stmt, _statement_reason(stmt, module_level=True))

    def check_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        allowed = "allowed imports: `import jax`, `import jax.numpy as jnp`, `from jax import lax`, `import math`"
        if isinstance(stmt, ast.ImportFrom):
            if stmt.level or stmt.module is None:
                raise self.fail(stmt, f"relative imports are not allowed; {allowed}")
            for alias in stmt.names:
                path = f"{stmt.module}.{alias.name}"
                if alias.name == "*":
                    raise self.fail(stmt, f"`from {stmt.module} import *` is not allowed; {allowed}")
                self.add_alias(stmt, alias.asname or alias.name, path)
        else:
            for alias in stmt.names:
                if alias.asname is None and "." in alias.name:
                    # `import jax.numpy` binds `jax`; only the root is usable.
                    self.add_alias(stmt, alias.name.split(".")[0], alias.name.split(".")[0], check=alias.name)
                else:
                    self.add_alias(stmt, alias.asname or alias.name, alias.name)

    def add_alias(self, stmt: ast.stmt, name: str, path: str, *, check: str | None = None) -> None:
        checked = check or path
        if checked not in C.ALLOWED_IMPORTS:
            reason = _forbidden_reason(checked)
            if reason is None:
                root = checked.split(".")[0]
                if root in ("numpy", "np"):
                    reason = "numpy is not allowed; use jax.numpy (`import jax.numpy as jnp`)"
                else:
                    reason = (
                        f"import of `{checked}` is not allowed; allowed imports: `import jax`, "
                        "`import jax.numpy as jnp`, `from jax import lax`, `import math`"
                    )
            raise self.fail(stmt, reason)
        self.check_identifier(stmt, name)
        self.aliases[name] = path

    def check_constant_definition(self, stmt: ast.Assign | ast.AnnAssign) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if stmt.value is None:
            raise self.fail(stmt, "a module-level annotation needs a value")
        for target in targets:
            names = _target_names(target)
            if names is None:
                raise self.fail(
                    stmt,
                    "module-level assignments may only define constants by name (X = 1.0); "
                    "item or attribute assignment would mutate global state",
                )
            for name in names:
                self.check_identifier(stmt, name)
        self.check_constant_expr(stmt.value)
        value = self.fold(stmt.value)
        if value is not None and len(targets) == 1 and isinstance(targets[0], ast.Name):
            self.constants[targets[0].id] = value

    def check_constant_expr(self, node: ast.expr) -> None:
        """Module-level values: numbers, tuples/lists of them, math.*, jnp.array(...)."""
        if isinstance(node, ast.Constant):
            self.visit_Constant(node)
        elif isinstance(node, ast.Name):
            if node.id not in self.constants and node.id not in self.aliases and node.id not in self.bound:
                raise self.fail(node, f"name `{node.id}` is not defined before this constant")
            self.visit_Name(node)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.check_constant_expr(element)
        elif isinstance(node, ast.UnaryOp):
            self.check_constant_expr(node.operand)
        elif isinstance(node, ast.BinOp):
            self.check_constant_expr(node.left)
            self.check_constant_expr(node.right)
            self.visit_BinOp(node)
        elif isinstance(node, ast.Attribute):
            self.visit_Attribute(node)
        elif isinstance(node, ast.Call):
            path = self.module_path(node.func)
            ok = path is not None and (
                (path.startswith("math.") and path[5:] in C.ALLOWED_MATH)
                or (path.startswith("jax.numpy.") and path[10:] in C.MODULE_LEVEL_JNP)
            )
            if not ok or node.keywords and any(k.arg != "dtype" for k in node.keywords):
                raise self.fail(
                    node,
                    "module-level constants may only call math functions or "
                    "jnp.array/jnp.float32-style constructors; compute other values inside a function",
                )
            for arg in node.args:
                self.check_constant_expr(arg)
            for keyword in node.keywords:
                self.visit(keyword.value)
        else:
            raise self.fail(
                node,
                "module-level values must be numeric constants (numbers, tuples or lists of "
                "numbers, arithmetic on constants); put computations inside a function",
            )

    # -- statements -----------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            # @jax.jit is harmless (and common in LLM code); anything else could run at import.
            if self.module_path(decorator) != "jax.jit":
                raise self.fail(
                    node, "decorators are not allowed (only @jax.jit); the caller applies jax.jit and jax.vmap"
                )
        self.check_identifier(node, node.name)
        self.check_arguments(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self.function_depth += 1
        for index, stmt in enumerate(node.body):
            if index == 0 and isinstance(stmt, ast.Expr) and _is_docstring(stmt):
                continue
            self.check_statement(stmt)
        self.function_depth -= 1

    def check_arguments(self, args: ast.arguments) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is None:
                continue
            self.check_identifier(arg, arg.arg)
            if arg.annotation is not None:
                self.visit(arg.annotation)
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.check_constant_expr(default)

    def check_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self.check_store_target(stmt, target)
            self.visit(stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            self.check_store_target(stmt, stmt.target)
            self.visit(stmt.value)
            self.visit_BinOp(ast.BinOp(left=stmt.target, op=stmt.op, right=stmt.value, lineno=stmt.lineno))
        elif isinstance(stmt, ast.AnnAssign):
            self.check_store_target(stmt, stmt.target)
            self.visit(stmt.annotation)
            if stmt.value is not None:
                self.visit(stmt.value)
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self.visit(stmt.value)
        elif isinstance(stmt, ast.FunctionDef):
            self.visit_FunctionDef(stmt)
        elif isinstance(stmt, ast.For):
            self.check_for(stmt)
        elif isinstance(stmt, ast.If):
            # Legal on constants (e.g. a loop index); on traced values the
            # loader reports it at trace time with this line number.
            self.visit(stmt.test)
            for child in [*stmt.body, *stmt.orelse]:
                self.check_statement(child)
        elif isinstance(stmt, (ast.Pass, ast.Break, ast.Continue)):
            pass
        elif isinstance(stmt, ast.Expr):
            if not _is_docstring(stmt):
                self.visit(stmt.value)  # a specific reason (e.g. `open`) beats the generic one
                raise self.fail(
                    stmt,
                    "an expression on its own line does nothing or is a side effect (a call like "
                    "print); assign its result to a name or remove it",
                )
        else:
            raise self.fail(stmt, _statement_reason(stmt, module_level=False))

    def check_store_target(self, stmt: ast.stmt, target: ast.expr) -> None:
        if isinstance(target, ast.Subscript):
            raise self.fail(
                stmt,
                "item assignment is not allowed: JAX arrays are immutable; use "
                "x = x.at[i].set(v) (or .add(v)) instead",
            )
        if isinstance(target, ast.Attribute):
            raise self.fail(stmt, "attribute assignment is not allowed: a CWM must not mutate objects or globals")
        names = _target_names(target)
        if names is None:
            raise self.fail(stmt, "only names and tuples of names can be assigned")
        for name in names:
            self.check_identifier(stmt, name)
            if self.function_depth and name in self.aliases:
                raise self.fail(stmt, f"`{name}` names an imported module; pick another variable name")

    def check_for(self, stmt: ast.For) -> None:
        if stmt.orelse:
            raise self.fail(stmt, "`for ... else` is not allowed")
        self.check_store_target(stmt, stmt.target)
        count = self.range_count(stmt.iter)
        self.unroll.append(self.unroll[-1] * count)
        if self.unroll[-1] > C.MAX_UNROLLED:
            raise self.fail(
                stmt,
                f"nested for loops unroll to {self.unroll[-1]} iterations (limit {C.MAX_UNROLLED}); "
                "use vectorised jnp operations or lax.fori_loop",
            )
        for child in stmt.body:
            self.check_statement(child)
        self.unroll.pop()

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
        if len(node.args) == 1 and _is_static_length(node.args[0]):
            # range(len(state)) or range(x.shape[0]): as long as an array the
            # program already has; the loader's operation limit bounds the unrolling.
            self.visit(node.args[0])
            return 1
        values = [self.fold(arg) for arg in node.args]
        if any(not isinstance(v, int) or isinstance(v, bool) for v in values):
            raise self.fail(node, usage)
        count = len(range(*values)) if values[-1] != 0 or len(values) < 3 else 0
        if count > C.MAX_RANGE:
            raise self.fail(
                node,
                f"range of {count} iterations is too long (limit {C.MAX_RANGE}, the loop is unrolled); "
                "use vectorised jnp operations or lax.fori_loop",
            )
        return count

    # -- expressions ----------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        self.check_identifier(node, node.id)
        if node.id in self.bound or node.id in self.aliases:
            return
        if node.id in C.ALLOWED_BUILTINS:
            if node.id == "range":
                raise self.fail(node, "range() is only allowed as the iterable of a for loop or comprehension")
            return
        if node.id in _DENIED_BUILTINS:
            raise self.fail(node, _DENIED_BUILTINS[node.id])
        if node.id in ("np", "numpy"):
            raise self.fail(node, "numpy is not available; use jax.numpy (`import jax.numpy as jnp`)")
        raise self.fail(
            node,
            f"name `{node.id}` is not defined; allowed builtins are {', '.join(C.ALLOWED_BUILTINS)}",
        )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.module_path(node)
        if path is not None:
            self.check_identifier(node, node.attr)
            self.check_module_path(node, path)
            return
        self.visit(node.value)  # report the innermost problem first: `open(...)` before `.write`
        self.check_identifier(node, node.attr)
        if node.attr not in C.ALLOWED_ARRAY_ATTRIBUTES:
            raise self.fail(
                node,
                f"attribute `.{node.attr}` is not allowed; array attributes that are allowed: "
                f"{', '.join(sorted(C.ALLOWED_ARRAY_ATTRIBUTES))}",
            )

    def module_path(self, node: ast.expr) -> str | None:
        """'jax.numpy.where' for `jnp.where` etc.; None if not rooted at an import."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.aliases:
            return None
        return ".".join([self.aliases[node.id], *reversed(parts)])

    def check_module_path(self, node: ast.AST, path: str) -> None:
        reason = _forbidden_reason(path)
        if reason is not None:
            raise self.fail(node, reason)
        parts = path.split(".")
        if parts[0] == "math":
            allowed, rest, where = C.ALLOWED_MATH, parts[1:], "math"
        elif parts[:2] == ["jax", "numpy"] and parts[2:3] == ["linalg"]:
            allowed, rest, where = C.ALLOWED_JNP_LINALG, parts[3:], "jnp.linalg"
        elif parts[:2] == ["jax", "numpy"]:
            allowed, rest, where = C.ALLOWED_JNP, parts[2:], "jnp"
        elif parts[:2] == ["jax", "lax"]:
            allowed, rest, where = C.ALLOWED_LAX, parts[2:], "lax"
        elif parts[:2] == ["jax", "nn"]:
            allowed, rest, where = C.ALLOWED_JAX_NN, parts[2:], "jax.nn"
        else:
            allowed, rest, where = C.ALLOWED_JAX, parts[1:], "jax"
        if not rest:
            return
        if rest[0] not in allowed:
            raise self.fail(
                node,
                f"`{where}.{rest[0]}` is not in the allowed jax subset; see the rules for what "
                f"{where} offers (e.g. jnp.where, jnp.clip, lax.cond, lax.fori_loop)",
            )
        for attr in rest[1:]:
            if attr not in C.ALLOWED_ARRAY_ATTRIBUTES and not (where == "jax" and rest[0] in ("numpy", "lax", "nn")):
                raise self.fail(node, f"attribute `.{attr}` of `{where}.{rest[0]}` is not allowed")
        if where == "jax" and len(rest) > 1:
            self.check_module_path(node, ".".join(["jax", *rest]))

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "range":
            raise self.fail(node, "range() is only allowed as the iterable of a for loop or comprehension")
        path = self.module_path(node.func)
        if path == "jax.lax.fori_loop":
            self.check_fori_bounds(node)
        for keyword in node.keywords:
            if keyword.arg is not None:
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
        sequences = (ast.List, ast.Tuple, ast.ListComp, ast.JoinedStr)
        for side in (node.left, node.right):
            if isinstance(side, sequences) or isinstance(side, ast.Constant) and isinstance(side.value, str):
                raise self.fail(
                    node,
                    "arithmetic on lists, tuples or strings is not allowed (it can build huge "
                    "objects); use jnp.full, jnp.tile or jnp.concatenate",
                )
        if isinstance(node.op, (ast.Pow, ast.LShift)):
            exponent = self.fold(node.right)
            base = self.fold(node.left)
            if isinstance(exponent, (int, float)) and abs(exponent) > C.MAX_POW_EXPONENT and base not in (0, 1, -1):
                raise self.fail(
                    node,
                    f"constant exponent {exponent} is too large (limit {C.MAX_POW_EXPONENT}); "
                    "the result would overflow float32 anyway",
                )
        self.fold(node)  # raises if constant arithmetic would blow up
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (bytes, type(...))):
            raise self.fail(node, "bytes and Ellipsis literals are not allowed")
        if isinstance(node.value, str) and len(node.value) > C.MAX_STRING:
            raise self.fail(node, f"string literals longer than {C.MAX_STRING} characters are not allowed")

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.check_arguments(node.args)
        self.visit(node.body)

    def visit_comprehension_node(self, node: ast.ListComp | ast.GeneratorExp) -> None:
        pushed = 0
        for generator in node.generators:
            if generator.is_async:
                raise self.fail(node, "async comprehensions are not allowed")
            names = _target_names(generator.target)
            if names is None:
                raise self.fail(node, "comprehension targets must be names")
            for name in names:
                self.check_identifier(node, name)
            count = self.range_count(generator.iter)
            self.unroll.append(self.unroll[-1] * count)
            pushed += 1
            if self.unroll[-1] > C.MAX_UNROLLED:
                raise self.fail(node, f"comprehension unrolls to {self.unroll[-1]} items (limit {C.MAX_UNROLLED})")
            for condition in generator.ifs:
                self.visit(condition)
        self.visit(node.elt)
        del self.unroll[len(self.unroll) - pushed:]

    visit_ListComp = visit_comprehension_node
    visit_GeneratorExp = visit_comprehension_node

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, _ALLOWED_EXPRESSIONS):
            super().generic_visit(node)
            return
        raise self.fail(node, _expression_reason(node))

    # -- helpers ------------------------------------------------------------------

    def check_identifier(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            raise self.fail(
                node,
                f"`{name}`: names and attributes starting with an underscore are not allowed "
                "(they reach Python internals); rename it",
            )

    def fold(self, node: ast.expr) -> object | None:
        """The value of a constant expression, None if it is not constant.

        Raises when constant arithmetic would take long or produce a huge
        number, so a program cannot stall tracing with `9 ** 9 ** 9`.
        """
        try:
            return _fold(node, self.constants, self.aliases)
        except _FoldLimit as exc:
            raise self.fail(node, str(exc)) from None


class _FoldLimit(Exception):
    pass


def _fold(node: ast.expr, constants: dict[str, object], aliases: dict[str, str]) -> object | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if aliases.get(node.value.id) in ("math", "jax.numpy") and node.attr in ("pi", "e", "tau", "inf"):
            return getattr(math, node.attr)
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _fold(node.operand, constants, aliases)
        if isinstance(value, (int, float)):
            return -value if isinstance(node.op, ast.USub) else value
        return None
    if isinstance(node, ast.BinOp):
        left = _fold(node.left, constants, aliases)
        right = _fold(node.right, constants, aliases)
        if not (isinstance(left, (int, float)) and isinstance(right, (int, float))):
            return None
        op = node.op
        if isinstance(op, (ast.Pow, ast.LShift)) and abs(right) > C.MAX_POW_EXPONENT and left not in (0, 1, -1):
            raise _FoldLimit(
                f"constant exponent {right} is too large (limit {C.MAX_POW_EXPONENT})"
            )
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
            elif isinstance(op, ast.LShift) and isinstance(left, int) and isinstance(right, int):
                value = left << right
            else:
                return None
        except (ZeroDivisionError, OverflowError, ValueError):
            return None
        if isinstance(value, int) and value.bit_length() > _INT_LIMIT_BITS:
            raise _FoldLimit(f"constant arithmetic produces a {value.bit_length()}-bit integer; use floats")
        if isinstance(value, complex):
            return None
        return value
    return None


_ALLOWED_EXPRESSIONS = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp,
    ast.Call, ast.keyword, ast.Constant, ast.Name, ast.Load, ast.Store,
    ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Dict,
    ast.Starred, ast.Lambda, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
    ast.expr_context,
)


def _expression_reason(node: ast.AST) -> str:
    name = type(node).__name__
    reasons = {
        "JoinedStr": "f-strings are not allowed (a CWM has no text output)",
        "NamedExpr": "the walrus operator `:=` is not allowed; use a separate assignment",
        "Await": "async code is not allowed",
        "Yield": "generators (`yield`) are not allowed",
        "YieldFrom": "generators (`yield from`) are not allowed",
        "SetComp": "set comprehensions are not allowed; use a list comprehension over range(N)",
        "DictComp": "dict comprehensions are not allowed; use a list comprehension over range(N)",
        "Set": "set literals are not allowed; use a tuple or jnp.array",
    }
    return reasons.get(name, f"`{name}` expressions are not allowed in a CWM")


def _statement_reason(stmt: ast.stmt, *, module_level: bool) -> str:
    name = type(stmt).__name__
    reasons = {
        "While": "`while` loops are not allowed (they may never end); use a for loop over "
        "range(N) with constant N, or lax.fori_loop with constant bounds",
        "ClassDef": "classes are not allowed; define `def step(state, action)` and helper functions",
        "Global": "`global` is not allowed: a CWM must not mutate module state",
        "Nonlocal": "`nonlocal` is not allowed: a CWM must not mutate enclosing state",
        "Try": "try/except is not allowed: a CWM must not raise or catch errors",
        "TryStar": "try/except is not allowed: a CWM must not raise or catch errors",
        "Raise": "raise is not allowed: a CWM must not raise errors; use jnp.where to handle edge cases",
        "Assert": "assert is not allowed (it cannot check traced values); remove it",
        "With": "`with` is not allowed (no files, no contexts)",
        "AsyncWith": "`async with` is not allowed",
        "AsyncFor": "`async for` is not allowed",
        "AsyncFunctionDef": "async functions are not allowed",
        "Delete": "`del` is not allowed",
        "Import": "imports are only allowed at the top of the module",
        "ImportFrom": "imports are only allowed at the top of the module",
        "Match": "`match` is not allowed; use jnp.where or lax.switch",
        "If": "a module-level `if` is not allowed; define constants directly",
        "For": "a module-level `for` is not allowed; define constants directly",
    }
    if name in reasons:
        return reasons[name]
    if module_level:
        return (
            "only imports, constant definitions and `def` are allowed at module level; "
            "move this code into a function"
        )
    return f"`{name}` statements are not allowed in a CWM"


def _is_static_length(node: ast.expr) -> bool:
    """`len(<name>)` or `<name>.shape[<int>]`: a length known when tracing."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Name)
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "shape"
        and isinstance(node.value.value, ast.Name)
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    )


def _is_main_guard(stmt: ast.stmt) -> bool:
    test = getattr(stmt, "test", None)
    return (
        isinstance(stmt, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _target_names(target: ast.expr) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for element in target.elts:
            sub = _target_names(element)
            if sub is None:
                return None
            names.extend(sub)
        return names
    return None


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the program binds anywhere (defs, args, assignments, loops)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound


def _forbidden_reason(path: str) -> str | None:
    for prefix, reason in C.FORBIDDEN_JAX_REASONS.items():
        if path == prefix or path.startswith(prefix + "."):
            return reason
    if path.split(".")[-1] in ("io_callback", "pure_callback", "host_callback", "callback"):
        return "host callbacks are not allowed"
    return None


def _check_recursion(tree: ast.Module, lines: list[str]) -> None:
    functions = {
        node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
    }
    calls = {
        name: {
            sub.func.id
            for sub in ast.walk(node)
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in functions
        }
        for name, node in functions.items()
    }
    # Any reference to a function's own name inside it (not only calls) can
    # recurse through an alias, so count plain references too.
    for name, node in functions.items():
        calls[name] |= {
            sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id in functions and sub.id != name
            and isinstance(sub.ctx, ast.Load)
        }
        if any(isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, ast.Load) for sub in ast.walk(node)):
            raise _fail(
                node,
                f"function `{name}` refers to itself: recursion is not allowed; use a for loop over "
                "range(N) or lax.fori_loop",
                lines,
            )
    visiting, done = set(), set()

    def visit(name: str, path: list[str]) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*path[path.index(name):], name])
            raise _fail(
                functions[name],
                f"functions call each other in a cycle ({cycle}): recursion is not allowed; "
                "use a for loop over range(N) or lax.fori_loop",
                lines,
            )
        visiting.add(name)
        for callee in sorted(calls[name]):
            visit(callee, [*path, name])
        visiting.discard(name)
        done.add(name)

    for name in functions:
        visit(name, [])


def _check_step_signature(tree: ast.Module, lines: list[str]) -> None:
    steps = [stmt for stmt in tree.body if isinstance(stmt, ast.FunctionDef) and stmt.name == "step"]
    if not steps:
        raise CWMContractError(
            "no module-level function `step(state, action)` is defined; a CWM must define "
            "`def step(state, action):` returning (next_state, reward, done)"
        )
    step = steps[-1]
    args = step.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    if args.vararg is not None or args.kwarg is not None or len(positional) < 2 or required > 2:
        raise _contract_fail(
            step,
            f"`step` must take exactly two arguments (state, action); it takes "
            f"{len(positional)}{' plus *args' if args.vararg else ''}",
            lines,
        )
    if any(d is None for d in args.kw_defaults):
        raise _contract_fail(step, "`step` must take exactly two arguments (state, action); remove keyword-only arguments", lines)


def _contract_fail(node: ast.AST, message: str, lines: list[str]) -> CWMContractError:
    line = node.lineno
    return CWMContractError(message, line=line, source_line=lines[line - 1])


def validate(source: str) -> ast.Module:
    """Checks CWM source text against the jax-subset rules without running it.

    Args:
      source: the text of one Python module.

    Returns:
      The parsed module, ready to compile.

    Raises:
      CWMSyntaxError: the text is not valid Python.
      CWMValidationError: a rule of the subset is broken (message names the line).
      CWMContractError: `step` is missing or has the wrong signature.
    """
    if not isinstance(source, str):
        raise CWMValidationError(f"a CWM must be source text (str), got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise CWMValidationError(
            f"the program is {len(source)} characters long (limit {MAX_SOURCE_CHARS}); a CWM is a short module"
        )
    if "\x00" in source:
        raise CWMValidationError("the program contains a NUL byte")
    try:
        tree = ast.parse(source, filename="<cwm>")
    except SyntaxError as exc:
        raise CWMSyntaxError(f"syntax error: {exc.msg}", line=exc.lineno, source_line=exc.text) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CWMSyntaxError(f"the program cannot be parsed: {exc}") from None
    lines = source.splitlines()
    try:
        _Validator(tree, lines).check_module(tree)
        _check_recursion(tree, lines)
    except RecursionError:
        raise CWMValidationError("the program is nested too deeply to check") from None
    _check_step_signature(tree, lines)
    return tree
