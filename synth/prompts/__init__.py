"""Prompts of the search: generate, improve, fix.

The texts live in `synth/prompts/*.md`; this module only fills them in. The
contract and the jax-subset rules come from `cwm_jax.validate.contract`, the same text
the validator enforces.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from cwm_jax.validate import contract
from cwm_jax.envs import EnvSpec

__all__ = [
    "ACTIONS",
    "IMPROVE_WORDS",
    "PREFILLS",
    "Messages",
    "fix",
    "generate",
    "improve",
    "prompt_hash",
    "template",
    "with_prefill",
]

Messages = list[dict[str, str]]
ACTIONS = ("generate", "improve", "fix")


@cache
def template(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.md").read_text()


def _common(spec: EnvSpec) -> dict[str, str]:
    return {
        "description": spec.description.strip(),
        "contract": contract.contract_text(spec).strip(),
        "rules": contract.rules_text().strip(),
    }


def _messages(user: str) -> Messages:
    return [
        {"role": "system", "content": template("system").strip()},
        {"role": "user", "content": user.strip() + "\n"},
    ]


def generate(spec: EnvSpec, prefix: str = "", *, earlier: tuple[float, str] | None = None) -> Messages:
    """Asks for a whole program; `prefix` is the node's partial program to continue.

    `earlier`: (value, feedback) of the program the prefix was taken from: the
    prompt then says what that program scored and where it failed first (the
    paper's prompt says neither).
    """
    note = ""
    if prefix.strip():
        note = (
            "Start your program with exactly these lines and continue from there:\n\n"
            f"```python\n{prefix.rstrip()}\n```"
        )
        if earlier is not None and earlier[1].strip():
            value, feedback = earlier
            first = feedback.strip().split("\n\n", 1)[0]
            note += (
                f"\n\nAn earlier program that started with these lines scored {value:.4g} (1.0 predicts every "
                "recorded transition right). It is wrong somewhere: do not write it again. Its first wrong "
                f"prediction:\n\n{first}"
            )
    return _messages(template("generate").format(prefix_note=note, **_common(spec)))


# The improve prompt's words around its feedback: (intro, goal), for deterministic and random environments.
IMPROVE_WORDS = {
    False: ("The program runs, but it predicts this recorded transition of the real\nenvironment wrongly:",
            "Find the mistake and rewrite the whole program so that it predicts this\ntransition (and all others) "
            "correctly."),
    True: ("The program runs, but it predicts this recorded transition of the real\nenvironment as unlikely or "
           "impossible. The environment is random, so what\ncounts is the probability the program gives to what "
           "was recorded (its\nlikelihood), not whether its most likely outcome matches:",
           "Find the mistake and rewrite the whole program so that its outcomes and\ntheir probabilities explain "
           "this transition (and all others)."),
}


def improve(spec: EnvSpec, program: str, counterexample: str) -> Messages:
    """Asks to rewrite a working program given its mispredicted transitions (least likely ones, with chance)."""
    intro, goal = IMPROVE_WORDS[spec.stochastic]
    return _messages(template("improve").format(program=program.rstrip(), feedback=counterexample.strip(),
                                                feedback_intro=intro, goal=goal, **_common(spec)))


def fix(spec: EnvSpec, program: str, error: str) -> Messages:
    """Asks to rewrite a rejected program given its error message (with its line)."""
    return _messages(template("fix").format(program=program.rstrip(), feedback=error.strip(), **_common(spec)))


# How an answer starts, for servers that continue a trailing assistant message (`Sampling.prefill`):
# the paper prefilled generate with a python fence and improve/fix with its first heading.
PREFILLS = {"generate": "```python\n", "improve": "## Error explanation\n", "fix": "## Error explanation\n"}


def with_prefill(messages: Messages, action: str) -> tuple[Messages, str]:
    """`messages` with the assistant turn started for `action`, and that start."""
    lead = PREFILLS[action]
    return [*messages, {"role": "assistant", "content": lead}], lead


def prompt_hash(messages: Messages) -> str:
    """A short stable id of a prompt, for logs and for counting repeats."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
