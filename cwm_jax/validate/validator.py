"""Static allow-list validator for CWM source text.

Nothing of the program runs here: it is parsed and every node is checked
against the rules in `cwm_jax.validate.contract`. Anything not explicitly allowed is
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
import copy

from cwm_jax.validate import contract as C
from cwm_jax.validate import rules as R
from cwm_jax.errors import CWMError, CWMValidationError, detached
from cwm_jax.validate.constants import module_path
from cwm_jax.validate.expressions import ExpressionChecker
from cwm_jax.validate.text import source_lines, strip_bom

__all__ = ["MAX_SOURCE_CHARS", "static_rejection", "validate"]

MAX_SOURCE_CHARS = C.MAX_SOURCE_CHARS
_CACHE_SIZE = 64


class _Validator(ExpressionChecker):
    """One pass over the tree: module-level statements and function bodies; collects one problem per statement.

    The expressions in them are checked by `ExpressionChecker`.
    """

    def __init__(self, tree: ast.Module, lines: list[str]):
        super().__init__(tree, lines)
        self.problems: list[CWMError] = []
        self.module_functions = {stmt.name for stmt in tree.body if isinstance(stmt, ast.FunctionDef)}

    def collect(self, check, *args) -> None:
        """Runs one check; a broken rule is recorded and the next statement is checked."""
        try:
            check(*args)
        except CWMValidationError as problem:
            self.problems.append(detached(problem))

    # -- module level ---------------------------------------------------------

    def check_module(self, tree: ast.Module) -> None:
        contract_names = {"step", *(name for name, _ in C.CHANCE_FUNCTIONS)}
        defined: set[str] = set()  # the contract's functions defined so far
        for index, stmt in enumerate(tree.body):
            self.collect(self.check_module_statement, stmt, index, frozenset(defined))
            if isinstance(stmt, ast.FunctionDef) and stmt.name in contract_names:
                defined.add(stmt.name)

    def check_module_statement(self, stmt: ast.stmt, index: int, defined: frozenset[str]) -> None:
        again = sorted(defined & R.names_bound_by(stmt))
        if again:
            raise self.fail(stmt, f"`{again[0]}` is defined again after its `def`; define it exactly once")
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
            self.problems.append(detached(problem))
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


def _validate(source: str) -> ast.Module:
    if not isinstance(source, str):
        raise CWMValidationError(f"a CWM must be source text (str), got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise CWMValidationError(
            f"the program is {len(source)} characters long (limit {MAX_SOURCE_CHARS}); a CWM is a short module"
        )
    if "\x00" in source:
        raise CWMValidationError("the program contains a NUL byte")
    source = strip_bom(source)  # editors and some models start UTF-8 text with a byte-order mark
    tree = R.parse(source)
    lines = source_lines(source)
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
        if isinstance(cached, CWMError):
            cached = detached(cached)
        if key is not None:
            _cache[key] = cached
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    if isinstance(cached, CWMError):
        raise copy.copy(cached)  # a copy: raising the cached one would keep the caller's frames in the cache
    return cached


def static_rejection(source: str) -> CWMError | None:
    """Tier one, in the caller: the validator's objection to `source`, or None.

    Nothing of the program runs; `validate` is total (it raises only
    CWMError) and remembers recent verdicts, so asking twice costs one pass.
    """
    try:
        validate(source)
    except CWMError as exc:
        return exc
    return None
