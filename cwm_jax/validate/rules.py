"""Rule tables and whole-program checks of the validator (reasons shown to an LLM).

`cwm_jax.validate.validator` walks the tree; this module holds what it says about each
forbidden construct, the small syntax predicates it needs, and the checks that
look at the whole program at once: size and depth of the tree, recursion, and
the signature of `step`.
"""

from __future__ import annotations

import ast
import collections

from cwm_jax.validate import contract as C
from cwm_jax.errors import CWMContractError, CWMSyntaxError, CWMValidationError

__all__ = [
    "ALLOWED_EXPRESSIONS", "DENIED_BUILTINS", "annotation_reason", "bound_names", "check_recursion",
    "check_step_signature", "check_tree_size", "contract_fail", "expression_reason", "fail", "forbidden_reason",
    "imported_names", "is_docstring", "is_main_guard", "is_static_length", "module_path_reason", "names_bound_by",
    "parse", "sequence_names", "statement_reason", "target_names", "without_typing_imports"
]

# Builtins that do exist in Python but never in a CWM, with the reason shown.
DENIED_BUILTINS = {
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


def fail(node: ast.AST | None, message: str, lines: list[str]) -> CWMValidationError:
    line = getattr(node, "lineno", None)
    source_line = lines[line - 1] if line and line <= len(lines) else None
    return CWMValidationError(message, line=line, source_line=source_line)


ALLOWED_EXPRESSIONS = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp,
    ast.Call, ast.keyword, ast.Constant, ast.Name, ast.Load, ast.Store,
    ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Dict,
    ast.Starred, ast.Lambda, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
    ast.expr_context,
)


def expression_reason(node: ast.AST) -> str:
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


def statement_reason(stmt: ast.stmt, *, module_level: bool) -> str:
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


def is_static_length(node: ast.expr) -> bool:
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


def is_main_guard(stmt: ast.stmt) -> bool:
    test = getattr(stmt, "test", None)
    return (
        isinstance(stmt, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def target_names(target: ast.expr) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for element in target.elts:
            sub = target_names(element)
            if sub is None:
                return None
            names.extend(sub)
        return names
    return None


def bound_names(tree: ast.Module) -> set[str]:
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


def forbidden_reason(path: str) -> str | None:
    for prefix, reason in C.FORBIDDEN_JAX_REASONS.items():
        if path == prefix or path.startswith(prefix + "."):
            return reason
    if path.split(".")[-1] in ("io_callback", "pure_callback", "host_callback", "callback"):
        return "host callbacks are not allowed"
    return None


def check_recursion(tree: ast.Module, lines: list[str]) -> list[CWMValidationError]:
    """Problems for functions that refer to themselves or call each other in a cycle."""
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    problems = []
    calls = {}
    # Any reference to a function's name inside a function (not only calls)
    # can recurse through an alias, so plain references count as calls.
    for name, node in functions.items():
        referenced = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id in functions
                      and isinstance(sub.ctx, ast.Load)}
        if name in referenced:
            problems.append(fail(node, f"function `{name}` refers to itself: recursion is not allowed; use a for "
                                       "loop over range(N) or lax.fori_loop", lines))
        calls[name] = sorted(referenced - {name})
    # Iterative depth-first search (a chain of thousands of functions must not overflow the stack).
    state: dict[str, str] = {}
    for root in functions:
        if root in state:
            continue
        path, stack = [root], [iter(calls[root])]
        state[root] = "open"
        while stack:
            callee = next(stack[-1], None)
            if callee is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(callee) == "open":
                cycle = " -> ".join([*path[path.index(callee):], callee])
                problems.append(fail(functions[callee], f"functions call each other in a cycle ({cycle}): recursion "
                                                        "is not allowed; use a for loop over range(N) or "
                                                        "lax.fori_loop", lines))
            elif callee not in state:
                state[callee] = "open"
                path.append(callee)
                stack.append(iter(calls[callee]))
    return problems


def check_step_signature(tree: ast.Module, lines: list[str]) -> None:
    """`step(state, action)`, or the three functions of a chance model (`contract.CHANCE_FUNCTIONS`), not both."""
    defined = {stmt.name: stmt for stmt in tree.body if isinstance(stmt, ast.FunctionDef)}
    chance = [name for name, _ in C.CHANCE_FUNCTIONS if name in defined]
    wanted = ", ".join(f"`{name}`" for name, _ in C.CHANCE_FUNCTIONS)
    if chance and "step" in defined:
        raise contract_fail(defined["step"], f"define either `step` or the chance functions ({wanted}), not both",
                            lines)
    if chance and len(chance) < len(C.CHANCE_FUNCTIONS):
        missing = ", ".join(f"`{n}`" for n, _ in C.CHANCE_FUNCTIONS if n not in defined)
        raise CWMContractError(f"a CWM with chance defines all of {wanted}; {missing} is missing")
    if not chance and "step" not in defined:
        raise CWMContractError(
            "no module-level function `step(state, action)` is defined; a CWM must define "
            "`def step(state, action):` returning (next_state, reward, done)"
        )
    for name, arity in C.CHANCE_FUNCTIONS if chance else (("step", 2),):
        args = defined[name].args
        positional = [*args.posonlyargs, *args.args]
        required = len(positional) - len(args.defaults)
        if (args.vararg is not None or args.kwarg is not None or len(positional) < arity or required > arity
                or any(d is None for d in args.kw_defaults)):
            raise contract_fail(defined[name], f"`{name}` must take exactly {('one', 'two')[arity - 1]} argument"
                                f"{'s' if arity > 1 else ''} ({C.CHANCE_ARGUMENTS[name]}); it takes "
                                f"{len(positional)}{' plus *args' if args.vararg else ''}"
                                f"{' plus keyword-only arguments' if args.kw_defaults else ''}", lines)


def contract_fail(node: ast.AST, message: str, lines: list[str]) -> CWMContractError:
    line = node.lineno
    return CWMContractError(message, line=line, source_line=lines[line - 1])




def check_tree_size(tree: ast.Module, lines: list[str]) -> None:
    """Caps the number of nodes and the nesting, without recursion, before any recursive check."""
    nodes, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > C.MAX_AST_NODES:
            raise CWMValidationError(
                f"the program has more than {C.MAX_AST_NODES} syntax nodes; a CWM is a short module: "
                "use loops over range(N) or vectorised jnp operations instead of writing everything out"
            )
        if depth > C.MAX_AST_DEPTH:
            raise fail(node, f"expressions or blocks are nested too deeply (more than {C.MAX_AST_DEPTH} levels); "
                             "split long expressions into several assignments", lines)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def imported_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return names


def names_bound_by(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {alias.asname or alias.name.split(".")[0] for alias in stmt.names}
    return {sub.id for sub in ast.walk(stmt) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}


_SEQUENCE_CALLS = frozenset({"list", "tuple", "zip", "enumerate"})
_UNKNOWN = ast.Pass()  # a binding whose type the validator does not know


def sequence_names(tree: ast.Module) -> set[str]:
    """Names that hold a Python list or tuple wherever they are assigned (`xs = [a, b]`, `s = x.shape`)."""
    values: dict[str, list[ast.expr]] = collections.defaultdict(list)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            for target in node.targets:
                values[target.id].append(node.value)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.comprehension)):
            for sub in ast.walk(node.target):
                if isinstance(sub, ast.Name):
                    values[sub.id].append(_UNKNOWN)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        values[sub.id].append(_UNKNOWN)
        elif isinstance(node, ast.arg):
            values[node.arg].append(_UNKNOWN)

    def literal(value: ast.AST) -> bool:
        return (
            isinstance(value, (ast.List, ast.Tuple, ast.ListComp))
            or isinstance(value, ast.Attribute) and value.attr == "shape"
            or isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in _SEQUENCE_CALLS
        )

    return {name for name, bound in values.items() if bound and all(literal(v) for v in bound)}


def without_typing_imports(tree: ast.Module) -> ast.Module:
    """The tree to compile: typing imports removed (their names only ever appear in unevaluated annotations)."""
    body = [
        stmt for stmt in tree.body
        if not (isinstance(stmt, ast.ImportFrom) and stmt.module == C.TYPING_MODULE)
        and not (isinstance(stmt, ast.Import) and all(a.name == C.TYPING_MODULE for a in stmt.names))
    ]
    return ast.Module(body=body, type_ignores=tree.type_ignores)


def parse(source: str) -> ast.Module:
    try:
        return ast.parse(source, filename="<cwm>")
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        if "too many nested" in message or "too complex" in message:
            message += "; split long expressions into several assignments"
        raise CWMSyntaxError(f"syntax error: {message}", line=exc.lineno, source_line=exc.text) from None
    except (RecursionError, MemoryError):
        raise CWMSyntaxError("the program is nested too deeply to parse; split long expressions into several "
                             "assignments") from None
    except ValueError as exc:
        raise CWMSyntaxError(f"the program cannot be parsed: {exc or type(exc).__name__}") from None


def module_path_reason(path: str) -> str | None:
    """Why `jnp.save`, `jax.random.normal` or `jax.jit` (outside a decorator) is rejected; None if allowed."""
    reason = forbidden_reason(path)
    if reason is not None:
        return reason
    if path == "jax.jit":
        return "jax.jit may only be a bare decorator (@jax.jit); the caller compiles `step`"
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
        return None
    if rest[0] not in allowed:
        return (f"`{where}.{rest[0]}` is not in the allowed jax subset; see the rules for what "
                f"{where} offers (e.g. jnp.where, jnp.clip, lax.cond, lax.fori_loop)")
    for attr in rest[1:]:
        if attr not in C.ALLOWED_ARRAY_ATTRIBUTES and not (where == "jax" and rest[0] in ("numpy", "lax", "nn")):
            return f"attribute `.{attr}` of `{where}.{rest[0]}` is not allowed"
    if where == "jax" and len(rest) > 1:
        return module_path_reason(".".join(["jax", *rest]))
    return None


def annotation_reason(node: ast.expr) -> str | None:
    """Annotations are never evaluated (the loader postpones them); they must still only name types."""
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Name, ast.Attribute)):
            name = sub.id if isinstance(sub, ast.Name) else sub.attr
            if name.startswith("_"):
                return f"`{name}` in a type annotation: names starting with an underscore are not allowed"
        elif not isinstance(sub, (ast.Subscript, ast.Tuple, ast.List, ast.Load, ast.BinOp, ast.BitOr)) and not (
            isinstance(sub, ast.Constant)
            and (sub.value is None or isinstance(sub.value, str) and len(sub.value) <= C.MAX_STRING)
        ):
            return "type annotations may only name types (jax.Array, float, Tuple[...]); remove this annotation"
    return None
