"""The record every search method keeps of a program (`Node`), and comparisons of programs.

What a method keeps only for itself (GIF-MCTS's visits and values, WorldCoder's
posterior) is not here: each method holds it by node id
(`synth.search.gif_mcts_values.NodeStats`, `synth.search.baselines.WorldCoder.posteriors`).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["VALUE_METRICS", "Node", "counterexample_key", "first_failure", "normalized_program", "program_diff",
           "split_node_record"]

# Search values a run can use (`--value`): the key in an accuracy summary.
VALUE_METRICS = {"paper": "weighted_accuracy", "strict": "strict_accuracy"}


@dataclasses.dataclass
class Node:
    """One program of the search (the root holds no program).

    Common to all methods: id, parent, action ("root", "generate", "improve",
    "fix", or "fit": constants fitted to the data, no LLM call), program (the
    full completion's code, what is scored), value (the search value on the
    train split, 0 if buggy), metrics ({"paper", "strict"} train values),
    buggy, error (the rejection message), counterexample (failing train
    transitions, formatted: the first one first), fingerprint (a digest of
    which train transitions and elements it gets right and of its first
    counterexample, float noise and signed zeros normalised, to recognise a
    repeat), repeat_of (the earlier node of the tree this program repeats, if
    any), prompt_hash, tokens, seconds; and for a person
    reading the record: completion (the raw answer), explanation (the model's
    text before its code), feedback (the counterexample or error its prompt
    showed), note (e.g. "the answer repeats the program in the prompt"); and
    children, the ids of the nodes made from it.

    Statistics only one method uses do not belong here: the method keeps them
    by node id and adds them to the log record (`log_record(method_fields=...)`).
    """

    id: int
    parent: int | None
    action: str
    program: str = ""
    value: float = 0.0
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    buggy: bool = False
    error: str | None = None
    counterexample: str = ""
    fingerprint: str = ""
    repeat_of: int | None = None
    prompt_hash: str = ""
    tokens: int = 0
    seconds: float = 0.0
    completion: str = ""
    explanation: str = ""
    feedback: str = ""
    note: str = ""
    children: list[int] = dataclasses.field(default_factory=list)

    def log_record(self, parent_program: str = "", method_fields: Mapping[str, Any] | None = None) -> dict:
        """What the tree log keeps of a node; `diff` is against `parent_program`.

        `method_fields` are the search method's own statistics of the node
        (GIF-MCTS: visits, backed_up_value, temp_value), written after `error`.
        """
        diff = program_diff(parent_program, self.program) if self.program else ""
        return {
            "id": self.id,
            "parent": self.parent,
            "action": self.action,
            "prompt_hash": self.prompt_hash,
            "program": self.program,
            "value": self.value,
            "metrics": self.metrics,
            "buggy": self.buggy,
            "error": self.error,
            **(method_fields or {}),
            "repeat_of": self.repeat_of,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 4),
            "feedback": self.feedback,
            "explanation": self.explanation,
            "note": self.note,
            "diff": diff,
            "completion": self.completion,
        }


def program_diff(before: str, after: str) -> str:
    """A unified diff from `before` to `after` ('' if they are equal)."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile="parent", tofile="node"))


def normalized_program(source: str) -> str:
    """`source` without comments, docstrings and layout: two programs that differ only there are equal."""
    try:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        return ast.dump(tree)
    except Exception:  # noqa: BLE001 - SyntaxError, and RecursionError/MemoryError on deep or huge text
        return re.sub(r"\s+", " ", source).strip()


_NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")
_TRANSITION = re.compile(r"Transition #(\d+)")


def _rounded(number: str) -> str:
    value = float(number)
    return repr(0.0 if abs(value) < 1e-6 else float(f"{value:.4g}") + 0.0)  # + 0.0 turns -0.0 into 0.0


def counterexample_key(feedback: str) -> str:
    """The first counterexample of `feedback`, every number to 4 significant digits, below 1e-6 as 0.

    Two programs whose first failure is the same transition with the same
    predictions share it, whatever float noise or signed zeros they differ
    by (the default tolerance is 1e-5).
    """
    first = feedback.strip().split("\n\n", 1)[0]
    return _NUMBER.sub(lambda match: _rounded(match.group()), first)


def first_failure(feedback: str) -> int | None:
    """The index of the first failing transition that `feedback` shows, or None."""
    match = _TRANSITION.search(feedback)
    return int(match.group(1)) if match else None


def split_node_record(record: Mapping[str, Any]) -> tuple[Node, dict[str, Any]]:
    """A checkpoint's node dict as a `Node` and the fields that are not the Node's.

    Checkpoints of format 2 kept every method's statistics in the node dict;
    the method reads its own from the second value.
    """
    names = {field.name for field in dataclasses.fields(Node)}
    node = Node(**{k: v for k, v in record.items() if k in names})
    return node, {k: v for k, v in record.items() if k not in names}
