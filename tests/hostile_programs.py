"""A catalogue of hostile or broken CWM programs, each with the rejection expected.

`{canary}` in a source stands for a short path inside a directory that the
tests watch: a program that manages to run its payload would create something
there (a file, or a folder of XLA dumps). Every entry names the rejection it
expects: its kind and a fragment of the message.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Hostile:
    name: str
    source: str
    kind: str  # the CWMError.kind expected
    mentions: str = ""  # a fragment the message must contain (case-insensitive)

    def render(self, canary: str) -> str:
        return self.source.replace("{canary}", canary)


_STEP_TAIL = "    return state, jnp.float32(1.0), jnp.bool_(False)\n"


def _prog(body: str, head: str = "import jax\nimport jax.numpy as jnp\n") -> str:
    return head + "\ndef step(state, action):\n" + body + _STEP_TAIL


HOSTILE: list[Hostile] = [
    Hostile("import_os", "import os\n" + _prog("    os.system('touch {canary}')\n"), "validation", "os"),
    Hostile("import_sys", "import sys\n" + _prog("    sys.exit(1)\n"), "validation", "sys"),
    Hostile("import_subprocess", "import subprocess\n" + _prog("    subprocess.run(['touch', '{canary}'])\n"),
            "validation", "subprocess"),
    Hostile("from_os_import", "from os import system\n" + _prog("    system('touch {canary}')\n"), "validation", "os"),
    Hostile("dunder_import", _prog("    __import__('os').system('touch {canary}')\n"), "validation", "underscore"),
    Hostile("dunder_attribute_chain",
            _prog("    k = ().__class__.__bases__[0].__subclasses__()\n"), "validation", "underscore"),
    Hostile("open_write", _prog("    open('{canary}', 'w').write('x')\n"), "validation", "file"),
    Hostile("eval", _prog("    x = eval('1 + 1')\n"), "validation", "eval"),
    Hostile("exec", _prog("    exec('open(\"{canary}\", \"w\")')\n"), "validation", "exec"),
    Hostile("getattr", _prog("    f = getattr(jnp, 'save')\n"), "validation", "getattr"),
    Hostile("globals", _prog("    g = globals()\n"), "validation", "globals"),
    Hostile("type_builtin", _prog("    t = type(state)\n"), "validation", "type"),
    Hostile("debug_callback", _prog("    jax.debug.callback(lambda x: x, state)\n"), "validation", "callback"),
    Hostile("pure_callback",
            _prog("    y = jax.pure_callback(lambda x: x, state, state)\n"), "validation", "callback"),
    Hostile("io_callback_import",
            "from jax.experimental import io_callback\n" + _prog("    y = io_callback(print, None, state)\n"),
            "validation", "callback"),
    Hostile("write_file_jnp_save", _prog("    jnp.save('{canary}', state)\n"), "validation", "jnp.save"),
    Hostile("read_env_var", "import os\n" + _prog("    k = os.environ['OPENAI_API_KEY']\n"), "validation", "os"),
    Hostile("numpy_import", "import numpy as np\n" + _prog("    x = np.zeros(3)\n"), "validation", "jax.numpy"),
    Hostile("randomness", _prog("    n = jax.random.normal(jax.random.PRNGKey(0), (4,))\n"), "validation", "random"),
    Hostile("while_true", _prog("    while True:\n        pass\n"), "validation", "while"),
    Hostile("huge_allocation", _prog("    big = jnp.zeros((100000, 100000))\n    state = state + big[0, 0]\n"),
            "resource", "elements"),
    Hostile("enormous_unrolled_loop", _prog("    for i in range(10000000):\n        state = state + 1.0\n"),
            "validation", "range"),
    Hostile("nested_unrolled_loops",
            _prog("    for i in range(60):\n        for j in range(60):\n            state = state + 1.0\n"),
            "validation", "unroll"),
    Hostile("huge_fori_loop",
            "from jax import lax\n" + _prog("    state = lax.fori_loop(0, 10**9, lambda i, s: s + 1.0, state)\n"),
            "validation", "fori_loop"),
    Hostile("recursion", _prog("    return helper(state, action)\n",
                               "import jax.numpy as jnp\n\ndef helper(s, a):\n    return helper(s, a)\n"),
            "validation", "recursion"),
    Hostile("mutual_recursion",
            "import jax.numpy as jnp\n\ndef ping(s):\n    return pong(s)\n\ndef pong(s):\n    return ping(s)\n"
            + "\ndef step(state, action):\n    state = ping(state)\n" + _STEP_TAIL, "validation", "recursion"),
    Hostile("lambda_recursion", _prog("    f = lambda x: f(x)\n    state = f(state)\n"), "load", "recursion"),
    Hostile("y_combinator", "import jax.numpy as jnp\n\ndef apply(f, x):\n    return f(f, x)\n\n"
            "def step(state, action):\n    g = lambda h, s: apply(h, s)\n    state = apply(g, state)\n" + _STEP_TAIL,
            "load", "recursion"),
    Hostile("pow_bomb", "X = 9 ** 9 ** 9\n" + _prog(""), "validation", "exponent"),
    Hostile("string_bomb", _prog("    s = 'a' * 10 ** 10\n"), "validation", "strings"),
    Hostile("python_if_on_array", _prog("    if state[0] > 0:\n        state = -state\n"), "load", "jnp.where"),
    Hostile("conditional_expression_on_array", _prog("    state = state if action > 0 else -state\n"),
            "load", "jnp.where"),
    Hostile("class_definition", "import jax.numpy as jnp\n\nclass Env:\n    pass\n\n" + "def step(state, action):\n"
            + _STEP_TAIL, "validation", "class"),
    Hostile("global_mutation", "COUNT = 0\n" + _prog("    global COUNT\n    COUNT = COUNT + 1\n"),
            "validation", "global"),
    Hostile("item_assignment", _prog("    state[0] = 1.0\n"), "validation", ".at["),
    Hostile("print_side_effect", _prog("    print(state)\n"), "validation", "print"),
    Hostile("module_level_code", "import jax.numpy as jnp\nopen('{canary}', 'w')\n\ndef step(state, action):\n"
            + _STEP_TAIL, "validation", "module level"),
    Hostile("try_except", _prog("    try:\n        x = 1\n    except Exception:\n        x = 2\n"), "validation", "try"),
    Hostile("missing_step", "import jax.numpy as jnp\n\ndef predict(state, action):\n" + _STEP_TAIL,
            "contract", "step"),
    Hostile("wrong_signature", "import jax.numpy as jnp\n\ndef step(state):\n" + _STEP_TAIL, "contract", "two arguments"),
    Hostile("wrong_state_shape",
            "import jax.numpy as jnp\n\ndef step(state, action):\n    return state[:3], jnp.float32(1.0), jnp.bool_(False)\n",
            "contract", "shape"),
    Hostile("wrong_reward_shape",
            "import jax.numpy as jnp\n\ndef step(state, action):\n    return state, state[:1], jnp.bool_(False)\n",
            "contract", "reward"),
    Hostile("wrong_done_dtype",
            "import jax.numpy as jnp\n\ndef step(state, action):\n    return state, jnp.float32(1.0), jnp.float32(0.0)\n",
            "contract", "bool"),
    Hostile("wrong_state_dtype",
            "import jax.numpy as jnp\n\ndef step(state, action):\n"
            "    return state.astype(jnp.int32), jnp.float32(1.0), jnp.bool_(False)\n",
            "contract", "float32"),
    Hostile("two_outputs",
            "import jax.numpy as jnp\n\ndef step(state, action):\n    return state, jnp.float32(1.0)\n",
            "contract", "tuple"),
    Hostile("nan_outputs", _prog("    state = state * jnp.nan\n"), "runtime", "nan"),
    Hostile("syntax_error", "import jax.numpy as jnp\n\ndef step(state, action)\n    return state\n", "syntax", "syntax"),
    Hostile("decorator", "import jax\nimport jax.numpy as jnp\n\n@jnp.vectorize\ndef step(state, action):\n"
            + _STEP_TAIL, "validation", "decorator"),
    Hostile("main_guard", _prog("") + "\nif __name__ == '__main__':\n    open('{canary}', 'w')\n",
            "validation", "__main__"),
]

_DUMP = "compiler_options={'xla_dump_to': '{canary}'}"

# Issue 10: module-level code runs at load, outside the checks of the traced step.
HOSTILE += [
    Hostile("module_dtype_runs_jit",
            _prog("", "import jax\nimport jax.numpy as jnp\n\nX = jnp.array([1.0], dtype=jax.jit(lambda x: x, "
                  + _DUMP + ")(1.0))\n"), "validation", "dtype"),
    Hostile("module_eager_jit_dump",
            _prog("", "import jax\nimport jax.numpy as jnp\n\nX = jax.jit(lambda x: x + 1, " + _DUMP + ")(1.0)\n"),
            "validation", "module-level"),
    Hostile("step_jit_compiler_options", _prog("    f = jax.jit(lambda s: s + 1.0, " + _DUMP + ")\n    state = f(state)\n"),
            "validation", "compiler_options"),
    Hostile("jit_not_as_decorator", _prog("    f = jax.jit(lambda s: s + 1.0)\n    state = f(state)\n"),
            "validation", "bare decorator"),
    Hostile("call_of_call", _prog("    state = jax.jit(lambda s: s + 1.0)(state)\n"), "validation", "result of a call"),
    Hostile("device_keyword", _prog("    z = jnp.zeros(4, device=None)\n"), "validation", "device"),
    Hostile("backend_keyword", _prog("    z = jnp.array(1.0, backend='cpu')\n"), "validation", "backend"),
    Hostile("keyword_unpacking", _prog("    z = jnp.array(1.0, **{'device': None})\n"), "validation", "**"),
    Hostile("decorator_call", "import jax\nimport jax.numpy as jnp\n\n@jax.jit(" + _DUMP + ")\ndef step(state, action):\n"
            + _STEP_TAIL, "validation", "decorator"),
    Hostile("module_huge_ones", _prog("", "import jax\nimport jax.numpy as jnp\n\nX = jnp.ones((40000, 40000))\n"),
            "validation", "module-level constants may only call"),
    Hostile("module_matmul", _prog("", "import jax\nimport jax.numpy as jnp\n\nA = jnp.array([[1.0, 2.0], [3.0, 4.0]])\n"
                                       "B = A @ A\n"), "validation", "matrix products"),
    Hostile("module_many_array_ops",
            _prog("", "import jax\nimport jax.numpy as jnp\n\nA = jnp.array([1.0, 2.0])\n"
                  + "".join(f"B{i} = A * A\n" for i in range(300))), "validation", "array operations"),
    Hostile("default_argument_eager",
            "import jax\nimport jax.numpy as jnp\n\ndef helper(x, y=jnp.ones((40000, 40000))):\n    return x\n"
            + _prog(""), "validation", "module-level constants may only call"),
    Hostile("module_annotation_payload", _prog("", "import jax\nimport jax.numpy as jnp\n\nX: open('{canary}', 'w') = 1.0\n"),
            "validation", "annotation"),
    Hostile("argument_annotation_payload",
            "import jax.numpy as jnp\n\ndef step(state: open('{canary}', 'w'), action):\n" + _STEP_TAIL,
            "validation", "annotation"),
    Hostile("module_tuple_repetition", _prog("", "import jax\nimport jax.numpy as jnp\n\nA = (0.0,)\nB = A * 10**9\n"),
            "validation", "tuples"),
    Hostile("tuple_repetition_in_step", _prog("    a = (0.0,)\n    b = a * 10**9\n"), "validation", "tuples"),
    Hostile("repetition_through_a_helper",
            "import jax.numpy as jnp\n\ndef rep(a):\n    return a * 1000000000\n\n"
            "def step(state, action):\n    xs = rep((0.0,))\n" + _STEP_TAIL, "validation", "integer factor"),
    Hostile("module_string_constant", _prog("", "import jax\nimport jax.numpy as jnp\n\nP = '{canary}'\n"),
            "validation", "module-level values must be constants"),
    # Issue 10 part 4: rebinding what the validator relies on.
    Hostile("rebind_builtin_len", "import jax.numpy as jnp\n\ndef len(x):\n    return 1000000\n\n"
            "def step(state, action):\n    for i in range(len(state)):\n        state = state + 1.0\n" + _STEP_TAIL,
            "validation", "builtin"),
    Hostile("rebind_builtin_as_argument", _prog("    f = lambda range: range\n"), "validation", "builtin"),
    Hostile("rebind_import", _prog("    jnp = state\n"), "validation", "names an import"),
    Hostile("rebind_step", _prog("") + "\nstep = 3\n", "validation", "defined again"),
    Hostile("redefine_step", _prog("") + "\ndef step(state, action):\n    return step(state, action)\n",
            "validation", "defined again"),
    Hostile("underscore_attribute", _prog("    v = state._value\n"), "validation", "underscore"),
    Hostile("dunder_name", _prog("    __x = 1.0\n"), "validation", "double underscore"),
    Hostile("typing_outside_annotation", "from typing import cast\n" + _prog("    state = cast(float, state)\n"),
            "validation", "typing"),
    # Issue 10 part 3: inputs that crashed or stalled the checker.
    Hostile("range_overflow", _prog("    for i in range(1 << 64):\n        state = state + 1.0\n"), "validation",
            "too long"),
    Hostile("long_constant_chain", "\n".join(f"C{i} = " + "+".join(["1"] * 120) for i in range(60)) + "\n"
            + _prog(""), "validation", "nested too deeply"),
    Hostile("deeply_nested_not", "x = " + "not " * 9000 + "1\n" + _prog(""), "syntax", "nested too deeply"),
    Hostile("huge_syntax_tree", _prog("    s = state\n    a = [" + "s," * 6000 + "]\n"), "validation",
            "syntax nodes"),
    Hostile("source_too_long", _prog("    # " + "x" * 50_000 + "\n"), "validation", "characters long"),
]
