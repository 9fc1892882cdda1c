"""Realistic model answers for CartPole, in the styles of GPT-4o, Llama 3 and Qwen coder.

Written after the answers seen on real runs (docs/ and /work/shared/reference):
prose around fenced code, several blocks, a usage block, numpy habits, classes,
`if` on traced values, float64, truncation, `<think>` blocks, typing imports,
underscore helpers, dicts of constants, a byte-order mark. Each answer names
what must happen to it: accepted with a train accuracy, or rejected with a
message an LLM can act on (its kind and a fragment of it).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Answer:
    name: str
    text: str
    accuracy: float | None = None  # accepted: train accuracy (mean of state, reward, done)
    kind: str = ""  # rejected: the CWMError kind
    mentions: tuple[str, ...] = ()  # rejected: fragments of the message, in order


# The true CartPole physics, as models usually write it (the body of `step`).
_PHYSICS = """\
    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]
    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)
    costheta = jnp.cos(theta)
    sintheta = jnp.sin(theta)
    temp = (force + POLEMASS_LENGTH * theta_dot**2 * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * costheta**2 / TOTAL_MASS)
    )
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    x = x + TAU * x_dot
    x_dot = x_dot + TAU * xacc
    theta = theta + TAU * theta_dot
    theta_dot = theta_dot + TAU * thetaacc
    next_state = jnp.array([x, x_dot, theta, theta_dot], dtype=jnp.float32)
"""
_DONE = """\
    done = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)
"""
_CONSTANTS = """\
GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # actually half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds between state updates
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
"""
_CORRECT = ("import math\nimport jax\nimport jax.numpy as jnp\n\n" + _CONSTANTS
            + "\n\ndef step(state, action):\n" + _PHYSICS + _DONE
            + "    reward = jnp.float32(1.0)\n    return next_state, reward, done\n")


def _fenced(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}```\n"


def _gpt4o(code: str, extra: str = "") -> str:
    return ("Here's a JAX implementation of the CartPole dynamics as a pure `step` function:\n\n"
            + _fenced(code) + "\n### Explanation\n\n1. **Constants**: the physical parameters of the system.\n"
            "2. **Dynamics**: Euler integration of the equations of motion with `TAU = 0.02`.\n"
            "3. **Termination**: the episode ends when the cart or the pole leaves its bounds.\n" + extra)


def _llama3(code: str, tag: str = "") -> str:
    return ("Here is the Python code for the CartPole environment's step function:\n"
            + _fenced(code, tag) + "This code defines the `step` function, which takes the current state and "
            "action as input and returns the next state, reward, and done flag. Let me know if you have any "
            "questions!\n")


def _qwen(code: str, think: str = "") -> str:
    prefix = f"<think>\n{think}\n</think>\n\n" if think else ""
    return prefix + _fenced(code) + "\nThe function is pure and works under `jax.jit` and `jax.vmap`.\n"


def _replace(code: str, old: str, new: str) -> str:
    assert old in code, old
    return code.replace(old, new)


_USAGE = _fenced("state = jnp.array([0.0, 0.0, 0.05, 0.0])\nnext_state, reward, done = step(state, 1)\n"
                 "print(next_state, reward, done)\n")

ANSWERS: list[Answer] = [
    # ---- GPT-4o style: prose, one block, explanation, sometimes a usage block.
    Answer("gpt4o_plain", _gpt4o(_CORRECT), accuracy=1.0),
    Answer("gpt4o_usage_block", _gpt4o(_CORRECT, "\n### Example usage\n\n" + _USAGE), accuracy=1.0),
    Answer("gpt4o_main_guard", _gpt4o(_CORRECT + "\n\nif __name__ == \"__main__\":\n    s = jnp.zeros(4)\n"
                                      "    print(step(s, 1))\n"), accuracy=1.0),
    Answer("gpt4o_type_hints_docstring", _gpt4o(_replace(
        _CORRECT, "def step(state, action):\n",
        "def step(state: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:\n"
        '    """Advance CartPole by one step.\n\n    Args:\n        state: [x, x_dot, theta, theta_dot]\n'
        '        action: 0 (push left) or 1 (push right)\n    """\n')), accuracy=1.0),
    Answer("gpt4o_jit_decorator", _gpt4o(_replace(_CORRECT, "def step(", "@jax.jit\ndef step(")), accuracy=1.0),
    Answer("gpt4o_float64_constants", _gpt4o(_replace(
        _CORRECT, "    next_state = jnp.array([x, x_dot, theta, theta_dot], dtype=jnp.float32)\n",
        "    next_state = jnp.array([x, x_dot, theta, theta_dot], dtype=jnp.float64).astype(jnp.float32)\n")),
        accuracy=1.0),
    Answer("gpt4o_semi_implicit_euler", _gpt4o(_replace(
        _CORRECT, "    x = x + TAU * x_dot\n    x_dot = x_dot + TAU * xacc\n",
        "    x_dot = x_dot + TAU * xacc\n    x = x + TAU * x_dot\n")),
        accuracy=2 / 3),  # x uses the new velocity: state wrong everywhere, reward and done right
    Answer("gpt4o_reward_zero_when_done", _gpt4o(_replace(
        _CORRECT, "    reward = jnp.float32(1.0)\n", "    reward = jnp.where(done, 0.0, 1.0).astype(jnp.float32)\n")),
        accuracy=0.9985),  # reward wrong only on the transitions that end an episode
    Answer("gpt4o_enable_x64", _gpt4o(_replace(_CORRECT, "import jax.numpy as jnp\n",
                                               "import jax.numpy as jnp\n\njax.config.update('jax_enable_x64', True)\n")),
           kind="validation", mentions=("line 5", "only imports, constant definitions")),
    Answer("gpt4o_several_problems", _gpt4o(
        "import numpy as np\nimport jax.numpy as jnp\n\ndef step(state, action):\n    next_state = state.copy()\n"
        "    next_state[0] = state[0] + 0.02 * state[1]\n    print(next_state)\n"
        "    return next_state, 1.0, False\n"),
        kind="validation", mentions=("line 1: numpy is not allowed", "line 6: item assignment", "line 7: print")),
    Answer("gpt4o_dict_of_parameters", _gpt4o(
        "import jax.numpy as jnp\n\nPARAMS = {\n    'gravity': 9.8,\n    'masscart': 1.0,\n    'masspole': 0.1,\n"
        "    'length': 0.5,\n    'force_mag': 10.0,\n    'tau': 0.02,\n    'theta_threshold': 0.20943951023931956,\n"
        "    'x_threshold': 2.4,\n}\n\n\ndef step(state, action):\n    p = PARAMS\n"
        "    total_mass = p['masspole'] + p['masscart']\n    polemass_length = p['masspole'] * p['length']\n"
        "    x, x_dot, theta, theta_dot = state\n"
        "    force = jnp.where(action == 1, p['force_mag'], -p['force_mag'])\n"
        "    temp = (force + polemass_length * theta_dot**2 * jnp.sin(theta)) / total_mass\n"
        "    thetaacc = (p['gravity'] * jnp.sin(theta) - jnp.cos(theta) * temp) / (\n"
        "        p['length'] * (4.0 / 3.0 - p['masspole'] * jnp.cos(theta) ** 2 / total_mass))\n"
        "    xacc = temp - polemass_length * thetaacc * jnp.cos(theta) / total_mass\n"
        "    new = jnp.stack([x + p['tau'] * x_dot, x_dot + p['tau'] * xacc, theta + p['tau'] * theta_dot,\n"
        "                     theta_dot + p['tau'] * thetaacc])\n"
        "    done = (jnp.abs(new[0]) > p['x_threshold']) | (jnp.abs(new[2]) > p['theta_threshold'])\n"
        "    return new, jnp.float32(1.0), done\n"), accuracy=1.0),
    Answer("gpt4o_python_bools_returned", _gpt4o(_replace(_CORRECT, "    return next_state, reward, done\n",
                                                          "    return next_state, 1.0, done\n")), accuracy=1.0),
    Answer("gpt4o_int_reward", _gpt4o(_replace(_CORRECT, "    reward = jnp.float32(1.0)\n", "    reward = 1\n")),
           kind="contract", mentions=("reward has dtype int32; expected float32", "jnp.float32(...)")),
    # ---- Llama 3 style: bare fences, numpy habits, Python control flow on traced values.
    Answer("llama3_bare_fence", _llama3(_CORRECT), accuracy=1.0),
    Answer("llama3_numpy", _llama3(_replace(_replace(_CORRECT, "import jax.numpy as jnp\n", "import numpy as np\n"),
                                            "jnp.", "np.")),
           kind="validation", mentions=("numpy is not allowed; use jax.numpy",)),
    Answer("llama3_if_on_state", _llama3(_replace(
        _CORRECT, "    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)\n",
        "    if action == 1:\n        force = FORCE_MAG\n    else:\n        force = -FORCE_MAG\n")),
        kind="load", mentions=("line 19", "jnp.where")),
    Answer("llama3_math_on_state", _llama3(_replace(_CORRECT, "jnp.cos(theta)", "math.cos(theta)")),
           kind="load", mentions=("math.sin(x) and other math.* functions", "jnp.sin")),
    Answer("llama3_class", _llama3(
        "import jax.numpy as jnp\n\nclass CartPole:\n    def __init__(self):\n        self.gravity = 9.8\n\n"
        "    def step(self, state, action):\n        return state, 1.0, False\n\n\n"
        "def step(state, action):\n    return CartPole().step(state, action)\n"),
        kind="validation", mentions=("classes are not allowed",)),
    Answer("llama3_no_fence", "Here is the implementation:\n\n" + _CORRECT + "\nThis implements the classic "
           "cart-pole dynamics with Euler integration.\n", accuracy=1.0),
    Answer("llama3_in_place_update", _llama3(_replace(
        _CORRECT, "    next_state = jnp.array([x, x_dot, theta, theta_dot], dtype=jnp.float32)\n",
        "    next_state = jnp.zeros(4)\n    next_state[0] = x\n    next_state[1] = x_dot\n"
        "    next_state[2] = theta\n    next_state[3] = theta_dot\n")),
        kind="validation", mentions=("line 32: item assignment", ".at[i].set", "line 35: item assignment")),
    Answer("llama3_while_loop", _llama3(_replace(
        _CORRECT, "    reward = jnp.float32(1.0)\n", "    reward = jnp.float32(1.0)\n    n = 0\n    while n < 1:\n"
        "        n += 1\n")), kind="validation", mentions=("`while` loops are not allowed", "lax.fori_loop")),
    Answer("llama3_random_noise", _llama3(_replace(
        _CORRECT, "    reward = jnp.float32(1.0)\n",
        "    reward = jnp.float32(1.0)\n    noise = jax.random.normal(jax.random.PRNGKey(0), (4,)) * 0.0\n")),
        kind="validation", mentions=("randomness is not allowed",)),
    Answer("llama3_truncated", "Here is the Python code for the CartPole environment's step function:\n```\n"
           + _CORRECT[: _CORRECT.index("        LENGTH * (4.0")], kind="syntax", mentions=("syntax error",)),
    Answer("llama3_returns_four_values", _llama3(_replace(_CORRECT, "    return next_state, reward, done\n",
                                                          "    return next_state, reward, done, {}\n")),
           kind="contract", mentions=("must return a tuple (next_state, reward, done)", "length 4")),
    Answer("llama3_done_as_float", _llama3(_replace(_CORRECT, "    return next_state, reward, done\n",
                                                    "    return next_state, reward, done.astype(jnp.float32)\n")),
           kind="contract", mentions=("done has dtype float32; expected bool",)),
    # ---- Qwen coder style: typing, jit, helpers with underscores, think blocks, NamedTuple.
    Answer("qwen_typing_and_jit", _qwen(_replace(_replace(
        _CORRECT, "import math\n", "import math\nfrom typing import Tuple\n"),
        "def step(state, action):\n",
        "@jax.jit\ndef step(state: jnp.ndarray, action: int) -> Tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:\n")),
        accuracy=1.0),
    Answer("qwen_think_block_with_draft", _qwen(
        _CORRECT, think="The user wants CartPole. A first draft:\n```python\ndef step(state, action):\n"
        "    return state, 0.0, False\n```\nNo, I need the real physics with Euler integration."), accuracy=1.0),
    Answer("qwen_underscore_helpers", _qwen(_replace(_replace(
        _CORRECT, "\n\ndef step(state, action):\n",
        "\n\ndef _accelerations(theta, theta_dot, force):\n    costheta = jnp.cos(theta)\n"
        "    sintheta = jnp.sin(theta)\n    temp = (force + POLEMASS_LENGTH * theta_dot**2 * sintheta) / TOTAL_MASS\n"
        "    thetaacc = (GRAVITY * sintheta - costheta * temp) / (\n"
        "        LENGTH * (4.0 / 3.0 - MASSPOLE * costheta**2 / TOTAL_MASS))\n"
        "    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS\n    return xacc, thetaacc\n"
        "\n\ndef step(state, action):\n"), "    reward = jnp.float32(1.0)\n",
        "    reward = jnp.float32(1.0)\n    _xacc, _ = _accelerations(theta, theta_dot, force)\n")), accuracy=1.0),
    Answer("qwen_split_state", _qwen(_replace(
        _CORRECT, "    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]\n",
        "    x, x_dot, theta, theta_dot = jnp.split(state, 4)\n"
        "    x, x_dot, theta, theta_dot = x[0], x_dot[0], theta[0], theta_dot[0]\n")), accuracy=1.0),
    Answer("qwen_split_comprehension", _qwen(_replace(
        _CORRECT, "    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]\n",
        "    x, x_dot, theta, theta_dot = [s[0] for s in jnp.split(state, 4)]\n")),
        kind="validation", mentions=("line 18: for loops must iterate over range(N)",)),
    Answer("qwen_byte_order_mark", _qwen("\ufeff" + _CORRECT), accuracy=1.0),
    Answer("qwen_namedtuple_state", _qwen(
        "from typing import NamedTuple\nimport jax.numpy as jnp\n\n\nclass State(NamedTuple):\n    x: float\n"
        "    x_dot: float\n\n\ndef step(state, action):\n    s = State(state[0], state[1])\n"
        "    return state, jnp.float32(1.0), jnp.bool_(False)\n"),
        kind="validation", mentions=("classes are not allowed", "define `def step(state, action)` and helper")),
    Answer("qwen_lax_cond", _qwen(_replace(
        _CORRECT, "    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)\n",
        "    force = jax.lax.cond(action == 1, lambda: FORCE_MAG, lambda: -FORCE_MAG)\n")), accuracy=1.0),
    Answer("qwen_global_step_counter", _qwen(_replace(
        _replace(_CORRECT, "X_THRESHOLD = 2.4\n", "X_THRESHOLD = 2.4\nSTEPS = 0\n"),
        "    reward = jnp.float32(1.0)\n", "    global STEPS\n    STEPS += 1\n    reward = jnp.float32(1.0)\n")),
        kind="validation", mentions=("`global` is not allowed",)),
    Answer("qwen_try_except", _qwen(_replace(
        _CORRECT, "    reward = jnp.float32(1.0)\n",
        "    try:\n        reward = jnp.float32(1.0)\n    except Exception:\n        reward = jnp.float32(0.0)\n")),
        kind="validation", mentions=("try/except is not allowed",)),
    Answer("qwen_rk4_substeps", _qwen(_replace(
        _CORRECT, "    x = x + TAU * x_dot\n    x_dot = x_dot + TAU * xacc\n"
                  "    theta = theta + TAU * theta_dot\n    theta_dot = theta_dot + TAU * thetaacc\n",
        "    def body(i, s):\n        return s + (TAU / 4) * jnp.array([s[1], xacc, s[3], thetaacc])\n"
        "    s = jax.lax.fori_loop(0, 4, body, jnp.array([x, x_dot, theta, theta_dot]))\n"
        "    x, x_dot, theta, theta_dot = s[0], s[1], s[2], s[3]\n")),
        accuracy=2 / 3),  # substeps reuse the first accelerations: state wrong, reward and done right
    Answer("qwen_dunder_introspection", _qwen(_replace(
        _CORRECT, "    reward = jnp.float32(1.0)\n", "    reward = jnp.float32(1.0)\n    name = step.__name__\n")),
        kind="validation", mentions=("refers to itself", "attribute `.__name__`", "starting with an underscore")),
]
