"""Static allow-list validator for CWM source text.

Nothing of the program runs here: it is parsed and every node is checked
against the rules in `cwm_jax.contract`. Anything not explicitly allowed is
rejected with a `CWMValidationError` that lists every broken rule in line
order, each with what to write instead. Rules that need values (a Python `if`
on a traced array, output shapes) are checked later by the loader, while
tracing.

`validate` is total and bounded: whatever the input, it returns the tree to
compile or raises a `CWMError`, and its work is capped (source length, number
of syntax nodes, nesting depth, each node folded once).
"""

from __future__ import annotations

import ast
import collections

from cwm_jax import contract as C
from cwm_jax import validator_rules as R
from cwm_jax.errors import CWMError, CWMValidationError
from cwm_jax.validator_constants import ConstantChecker, Folder, FoldLimit, module_path

MAX_SOURCE_CHARS = C.MAX_SOURCE_CHARS
_BOM = "\ufeff"
_CACHE_SIZE = 64


class _Validator(ast.NodeVisitor):
    """One pass over the tree; collects one problem per statement."""

    def __init__(self, tree: ast.Module, lines: list[str]):
        self.lines = lines
        self.problems: list[CWMError] = []
        self.aliases: dict[str, str] = {}  # local name -> module path ("jnp" -> "jax.numpy")
        self.typing_names: set[str] = set()  # names imported from typing: annotations only
        self.imported = R.imported_names(tree)  # every name an import binds, known before the imports run
        self.constants = ConstantChecker(self.aliases, self.fail)
        self.folder = Folder(self.constants.numbers, self.aliases)
        self.bound = R.bound_names(tree)
        self.sequences = R.sequence_names(tree)
        self.module_functions = {stmt.name for stmt in tree.body if isinstance(stmt, ast.FunctionDef)}
        self.function_depth = 0
        self.unroll = [1]  # product of enclosing range() sizes

    def fail(self, node: ast.AST | None, message: str) -> CWMValidationError:
        return R.fail(node, message, self.lines)

    def collect(self, check, *args) -> None:
        """Runs one check; a broken rule is recorded and the next statement is checked."""
        try:
            check(*args)
        except CWMValidationError as problem:
            self.problems.append(problem)

    # -- module level ---------------------------------------------------------

    def check_module(self, tree: ast.Module) -> None:
        step_defined = False
        for index, stmt in enumerate(tree.body):
            self.collect(self.check_module_statement, stmt, index, step_defined)
            step_defined = step_defined or isinstance(stmt, ast.FunctionDef) and stmt.name == "step"

    def check_module_statement(self, stmt: ast.stmt, index: int, step_defined: bool) -> None:
        if step_defined and "step" in R.names_bound_by(stmt):
            raise self.fail(stmt, "`step` is defined again after its `def`; define it exactly once")
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self.check_import(stmt)
        elif isinstance(stmt, ast.FunctionDef):
            self.visit_FunctionDef(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            self.check_constant_definition(stmt)
        elif isinstance(stmt, ast.Expr) and R.is_docstring(stmt) and index == 0 or isinstance(stmt, ast.Pass):
            return
        elif R.is_main_guard(stmt):
            raise self.fail(
                stmt,
                'remove the `if __name__ == "__main__":` block: a CWM is only the module with '
                "`step`, no usage example or test code",
            )
        else:
            raise self.fail(stmt, R.statement_reason(stmt, module_level=True))

    def check_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        allowed = "allowed imports: `import jax`, `import jax.numpy as jnp`, `from jax import lax`, `import math`"
        if isinstance(stmt, ast.ImportFrom):
            if stmt.level or stmt.module is None:
                raise self.fail(stmt, f"relative imports are not allowed; {allowed}")
            for alias in stmt.names:
                if alias.name == "*":
                    raise self.fail(stmt, f"`from {stmt.module} import *` is not allowed; {allowed}")
                if stmt.module == C.TYPING_MODULE:
                    self.check_binding(stmt, alias.asname or alias.name, imported=True)
                    self.typing_names.add(alias.asname or alias.name)
                    continue
                self.add_alias(stmt, alias.asname or alias.name, f"{stmt.module}.{alias.name}")
        else:
            for alias in stmt.names:
                if alias.name == C.TYPING_MODULE:
                    self.check_binding(stmt, alias.asname or alias.name, imported=True)
                    self.typing_names.add(alias.asname or alias.name)
                elif alias.asname is None and "." in alias.name:
                    # `import jax.numpy` binds `jax`; only the root is usable.
                    self.add_alias(stmt, alias.name.split(".")[0], alias.name.split(".")[0], check=alias.name)
                else:
                    self.add_alias(stmt, alias.asname or alias.name, alias.name)

    def add_alias(self, stmt: ast.stmt, name: str, path: str, *, check: str | None = None) -> None:
        checked = check or path
        if checked not in C.ALLOWED_IMPORTS:
            reason = R.forbidden_reason(checked)
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
        self.check_binding(stmt, name, imported=True)
        if self.aliases.get(name, path) != path:
            raise self.fail(stmt, f"`{name}` is imported twice as different modules")
        self.aliases[name] = path

    def check_constant_definition(self, stmt: ast.Assign | ast.AnnAssign) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if stmt.value is None:
            raise self.fail(stmt, "a module-level annotation needs a value")
        if isinstance(stmt, ast.AnnAssign):
            self.check_annotation(stmt.annotation)
        for target in targets:
            if not isinstance(target, ast.Name):
                raise self.fail(
                    stmt,
                    "module-level assignments may only define one constant by name (X = 1.0); "
                    "unpacking, item or attribute assignment are not allowed at module level",
                )
            self.check_binding(stmt, target.id)
            if target.id in self.module_functions:
                raise self.fail(stmt, f"`{target.id}` is a function defined in this module; pick another name")
        value = self.constants.value(stmt.value)
        for target in targets:
            self.constants.define(target.id, value)

    # -- statements -----------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            # A bare @jax.jit is harmless (and common in LLM code); anything else could run at import.
            if not isinstance(decorator, (ast.Name, ast.Attribute)) or module_path(decorator, self.aliases) != "jax.jit":
                raise self.fail(
                    node, "decorators are not allowed (only a bare @jax.jit); the caller applies jax.jit and jax.vmap"
                )
        self.check_binding(node, node.name)
        self.check_arguments(node.args)
        if node.returns is not None:
            self.check_annotation(node.returns)
        self.function_depth += 1
        try:
            for index, stmt in enumerate(node.body):
                if index == 0 and R.is_docstring(stmt):
                    continue
                self.collect(self.check_statement, stmt)
        finally:
            self.function_depth -= 1

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

    def check_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self.check_store_target(stmt, target)
            self.visit(stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            self.check_store_target(stmt, stmt.target)
            self.visit(stmt.value)
            self.check_binop(stmt, stmt.target, stmt.op, stmt.value)
        elif isinstance(stmt, ast.AnnAssign):
            self.check_store_target(stmt, stmt.target)
            self.check_annotation(stmt.annotation)
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
            self.collect(self.visit, stmt.test)
            for child in [*stmt.body, *stmt.orelse]:
                self.collect(self.check_statement, child)
        elif isinstance(stmt, (ast.Pass, ast.Break, ast.Continue)):
            pass
        elif isinstance(stmt, ast.Expr):
            if not R.is_docstring(stmt):
                self.visit(stmt.value)  # a specific reason (e.g. `open`) beats the generic one
                raise self.fail(
                    stmt,
                    "an expression on its own line does nothing or is a side effect (a call like "
                    "print); assign its result to a name or remove it",
                )
        else:
            raise self.fail(stmt, R.statement_reason(stmt, module_level=False))

    def check_store_target(self, stmt: ast.stmt, target: ast.expr) -> None:
        if isinstance(target, ast.Subscript):
            raise self.fail(
                stmt,
                "item assignment is not allowed: JAX arrays are immutable; use "
                "x = x.at[i].set(v) (or .add(v)) instead",
            )
        if isinstance(target, ast.Attribute):
            raise self.fail(stmt, "attribute assignment is not allowed: a CWM must not mutate objects or globals")
        names = R.target_names(target)
        if names is None:
            raise self.fail(stmt, "only names and tuples of names can be assigned")
        for name in names:
            self.check_binding(stmt, name)

    def check_for(self, stmt: ast.For) -> None:
        count = 1
        try:
            if stmt.orelse:
                raise self.fail(stmt, "`for ... else` is not allowed")
            self.check_store_target(stmt, stmt.target)
            count = self.range_count(stmt.iter)
        except CWMValidationError as problem:
            self.problems.append(problem)
        self.unroll.append(self.unroll[-1] * count)
        try:
            if self.unroll[-1] > C.MAX_UNROLLED:
                raise self.fail(
                    stmt,
                    f"nested for loops unroll to {self.unroll[-1]} iterations (limit {C.MAX_UNROLLED}); "
                    "use vectorised jnp operations or lax.fori_loop",
                )
            for child in stmt.body:
                self.collect(self.check_statement, child)
        finally:
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

    # -- expressions ----------------------------------------------------------

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


def _validate(source: str) -> ast.Module:
    if not isinstance(source, str):
        raise CWMValidationError(f"a CWM must be source text (str), got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise CWMValidationError(
            f"the program is {len(source)} characters long (limit {MAX_SOURCE_CHARS}); a CWM is a short module"
        )
    if "\x00" in source:
        raise CWMValidationError("the program contains a NUL byte")
    source = source.removeprefix(_BOM)  # editors and some models start UTF-8 text with a byte-order mark
    tree = R.parse(source)
    lines = source.splitlines()
    R.check_tree_size(tree, lines)
    validator = _Validator(tree, lines)
    validator.check_module(tree)
    problems = validator.problems + R.check_recursion(tree, lines)
    if problems:
        raise CWMValidationError.combine(problems, limit=C.MAX_PROBLEMS)
    R.check_step_signature(tree, lines)
    return R.without_typing_imports(tree)


_cache: collections.OrderedDict[str, ast.Module | CWMError] = collections.OrderedDict()


def validate(source: str) -> ast.Module:
    """Checks CWM source text against the jax-subset rules without running it.

    Total and bounded: never raises anything but a CWMError, and its work is
    capped whatever the input. The last results are remembered, so a request
    that validates in the caller and again where the program is loaded costs
    one validation. The returned tree must not be modified.

    Args:
      source: the text of one Python module.

    Returns:
      The parsed module, ready to compile.

    Raises:
      CWMSyntaxError: the text is not valid Python.
      CWMValidationError: rules of the subset are broken (every problem, with its line).
      CWMContractError: `step` is missing or has the wrong signature.
    """
    key = source if isinstance(source, str) else None
    cached = _cache.get(key) if key is not None else None
    if cached is None:
        try:
            cached = _validate(source)
        except CWMError as exc:
            cached = exc
        except RecursionError:
            cached = CWMValidationError("the program is nested too deeply to check; split long expressions")
        except MemoryError:
            cached = CWMValidationError("the program is too large to check; a CWM is a short module")
        except Exception as exc:  # noqa: BLE001 - fail closed: a checker bug is a rejection, never a pass
            cached = CWMValidationError(f"the program could not be checked ({type(exc).__name__}); simplify it")
        if key is not None:
            _cache[key] = cached
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    if isinstance(cached, CWMError):
        raise cached.with_traceback(None)
    return cached
