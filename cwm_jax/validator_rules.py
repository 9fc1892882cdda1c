"""Rule tables and whole-program checks of the validator (reasons shown to an LLM).

`cwm_jax.validator` walks the tree; this module holds what it says about each
forbidden construct, the small syntax predicates it needs, and the checks that
look at the whole program at once: size and depth of the tree, recursion, and
the signature of `step`.
"""

from __future__ import annotations

import ast

from cwm_jax import contract as C
from cwm_jax.errors import CWMContractError, CWMValidationError

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
        raise contract_fail(
            step,
            f"`step` must take exactly two arguments (state, action); it takes "
            f"{len(positional)}{' plus *args' if args.vararg else ''}",
            lines,
        )
    if any(d is None for d in args.kw_defaults):
        raise contract_fail(step, "`step` must take exactly two arguments (state, action); remove keyword-only arguments", lines)


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
