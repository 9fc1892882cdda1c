"""A catalogue of hostile or broken CWM programs, each with the rejection expected.

`{canary}` in a source stands for a file path that must never be written: a
program that manages to run its payload would create it.
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
    Hostile("write_file_jnp_save", _prog("    jnp.save('{canary}', state)\n"), "validation", ""),
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
