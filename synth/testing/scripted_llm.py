"""A scripted, fallible "LLM" for the search tests, served by synth/testing/llm_server.py.

It behaves like a weak model that only gets better with the right feedback:
- generate: always a program that crashes while tracing (a Python `if` on a
  traced value);
- fix: a subtly wrong but valid program (gravity 9.81), ONLY if the prompt
  carries the loader's error text; otherwise the crashing program again;
- improve: the correct program, ONLY if the prompt carries a failing
  transition with expected and predicted values; otherwise the wrong one.
"""

from __future__ import annotations

from cwm_jax import reference

__all__ = [
    "BUGGY",
    "CORRECT",
    "FIX_PROMPT",
    "IMPROVE_PROMPT",
    "WRONG",
    "answer",
    "bench_responder",
    "left_wall_responder",
    "responder",
    "textbook_responder",
]

# A comment before the docstring, as models write: best.py must still be this text byte for byte.
CORRECT = "# CartPole dynamics\n" + reference.source("CartPole")
WRONG = CORRECT.replace("GRAVITY = 9.8", "GRAVITY = 9.81")
BUGGY = CORRECT.replace(
    "    force = jnp.where(action == 1, FORCE, -FORCE)\n",
    "    if action == 1:\n        force = FORCE\n    else:\n        force = -FORCE\n",
)
assert BUGGY != CORRECT and WRONG != CORRECT

FIX_PROMPT = "was rejected with this error"
IMPROVE_PROMPT = "predicts this recorded transition"


def answer(program: str, explanation: str = "") -> str:
    return f"## Error explanation\n{explanation or 'See below.'}\n\n## Correct code\n```python\n{program}```\n"


def textbook_responder(env: str):
    """A model that only ever writes the textbook reference CWM of `env`, whatever it is asked.

    On an "-unknown" variant that program has the structure right and the
    constants wrong: only fitting can make it exact.
    """
    program = reference.source(env)

    def respond(request: dict) -> str:
        return answer(program, "The textbook dynamics.")

    return respond


def responder(request: dict) -> str:
    """CartPole's fallible model: generate crashes, fix and improve need the right feedback."""
    user = request["messages"][-1]["content"]
    if FIX_PROMPT in user:
        if "jnp.where" in user and "line " in user:
            return answer(WRONG, "Python if on a traced value; use jnp.where.")
        return answer(BUGGY)
    if IMPROVE_PROMPT in user:
        if "expected next_state" in user and "predicted next_state" in user:
            return answer(CORRECT, "gravity is 9.8")
        return answer(WRONG)
    return "Here is the model.\n\n```python\n" + BUGGY + "```\n\nUsage: call step(state, action)."


def bench_responder(request: dict) -> str:
    """The benchmark's model: on CartPole `responder` (generate crashes, fix, then improve solve it);
    on Catch the reference program at once."""
    from cwm_jax import envs

    catch = envs.env_spec("gymnax/Catch")
    if catch.description.strip()[:60] in request["messages"][-1]["content"]:
        return "```python\n" + reference.source(catch) + "```\n"
    return responder(request)


# MountainCarContinuous as a strong model recalled it (docs/search.md, issue 22): gymnasium's version,
# which zeroes the velocity at the left wall where gymnax keeps it. Two spellings that predict the same
# (the second gives -0.0 where the first gives 0.0), as the real run's generates did.
_GOAL_QUIRK = "    velocity = jnp.where((position >= GOAL_POSITION) & (velocity < 0), 0.0, velocity)\n"
_MCC = reference.source("MountainCarContinuous")
LEFT_WALL_ZEROED = tuple(
    _MCC.replace(_GOAL_QUIRK, f"    velocity = jnp.where((position <= MIN_POSITION) & (velocity < 0), {zero}, velocity)\n")
    for zero in ("0.0", "velocity * 0.0"))
assert _GOAL_QUIRK in _MCC


def left_wall_responder():
    """A confident model on MountainCarContinuous: every generate (the first, or one that continues a
    prefix) rewrites gymnasium's version, alternating its two spellings; an improve that shows a
    failing transition with its expected and predicted next state gets gymnax's version."""
    generates = iter(range(10**6))

    def respond(request: dict) -> str:
        user = request["messages"][-1]["content"]
        if IMPROVE_PROMPT in user and "expected next_state" in user and "predicted next_state" in user:
            return answer(_MCC, "gymnax keeps the velocity at the left wall.")
        return "```python\n" + LEFT_WALL_ZEROED[next(generates) % 2] + "```\n"

    return respond


if __name__ == "__main__":
    # Serve the scripted model on loopback until killed: python -m synth.testing.scripted_llm [latency_s]
    import sys
    import time

    from synth.testing.llm_server import LLMTestServer

    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    with LLMTestServer(responder=responder, latency=latency) as server:
        print(server.base_url, flush=True)
        while True:
            time.sleep(3600)
